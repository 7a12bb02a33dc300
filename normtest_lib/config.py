"""The one schema that validates every run's parameters.

A notebook's parameters cell, ``normtest train --set key=value`` and every
expanded grid run all go through :func:`make_config`, so an unknown key, a
wrong type, an unknown model or data set, or a missing data root fails here,
before any data is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Collection, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .errors import ConfigError, NormtestError

# Keys that say where and how fast a run executes, not what it computes: a run resumed on
# another machine, with its data elsewhere or another thread count, is the same run.
# compile and channels_last change how fast, not what (float32 either way; resolved per device,
# engine/environment.py), so committed runs stay valid when their defaults move to the fastest path.
EXECUTION_ONLY_KEYS = frozenset({"data_root", "download", "device", "num_threads", "compile", "channels_last"})

InputNorm = Literal["finetune", "pretrain", "center", "instance", "minmax", "unit", "none"]


class RunConfig(BaseModel):
    """Everything that determines one training run."""

    # strict: a wrong type is an error, never coerced (``epochs: true`` is not 1 epoch).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, protected_namespaces=())

    # Data
    dataset: str = Field(
        "synthetic", description="the data set trained and tested on: a registered name, or <name>+<shift> (shifted)"
    )
    data_root: Path | None = Field(  # a path may be given as a string
        None, strict=False, description="the folder holding the data set's files (none for the synthetic sets)"
    )
    download: bool = Field(False, description="fetch the official files into data_root when they are missing")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="share of the training split held out, stratified")
    train_subset: int | None = Field(None, ge=1, description="use only this many training images (stratified)")
    stats_subset: int | None = Field(None, ge=1, description="estimate the finetune statistics from this many images")

    # Label noise (data/label_noise.py): drawn over the training split as loaded, from noise_seed alone.
    label_noise: float = Field(0.0, ge=0.0, lt=1.0, description="fraction of the training labels replaced (0: none)")
    label_noise_kind: Literal["symmetric", "symmetric_exact", "asymmetric"] = Field(
        "symmetric",
        description="symmetric: a class drawn from all K (real rate p(1-1/K), as published); symmetric_exact: "
        "from the K-1 others (real rate p); asymmetric: the CIFAR-10 map truck->automobile, bird->airplane, "
        "cat->dog, dog->cat, deer->horse",
    )
    noise_seed: int = Field(0, description="the noise's own seed: the same noisy labels whatever seed, model or lr")
    noisy_val: bool = Field(
        False, description="give the validation split noisy labels too, as the official ConvNorm code did (errata)"
    )

    # Model
    model: str = Field("small", description="the network, by its name in the model registry")
    pretrained: str = Field("none", description="'none', 'imagenet', or the path of a normtest checkpoint")
    norm_layer: str = Field(
        "torch_bn", description="the normalization layer after each convolution: <name> or <name>:<argument>"
    )
    conv_layer: str = Field("conv", description="the convolution layer of the network: <name> or <name>:<argument>")
    depth_n: int = Field(2, ge=1, description="blocks per stage of cifar_resnet (6n+2 layers)")

    # Input pipeline
    input_norm: InputNorm = Field("finetune", description="how input pixels are normalized (an input setting)")
    input_size: int | Literal["pretrained"] | None = Field(
        None, description="resize inputs to this size; 'pretrained': the pretrained weights' own size; None: native size"
    )
    augment: bool = Field(True, description="augment training batches: a random crop after zero padding, and flips")
    pad: int = Field(4, ge=0, description="pixels of zero padding on each side before the random crop (0: no crop)")
    flip: bool = Field(True, description="flip training images horizontally at random, half of them")

    # Optimization
    epochs: int = Field(5, ge=1, description="passes over the training split")
    batch_size: int = Field(128, ge=1, description="training images per optimizer step")
    optimizer: Literal["sgd", "adam", "adamw"] = Field("sgd", description="the optimizer")
    lr: float = Field(0.05, gt=0, description="the learning rate the schedule starts from (after any warmup)")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD's momentum (adam and adamw do not use it)")
    nesterov: bool = Field(False, description="Nesterov momentum (SGD)")
    weight_decay: float = Field(
        5e-4, ge=0, description="weight decay of every parameter (adam: an L2 penalty; adamw: decoupled)"
    )
    schedule: Literal["cosine", "multistep", "constant"] = Field(
        "cosine", description="how the lr changes over the epochs: cosine to 0, multistep drops, or constant"
    )
    milestones: list[int] = Field(default_factory=list, description="epochs at which multistep divides the lr")
    gamma: float = Field(0.1, gt=0, le=1, description="the factor multistep multiplies the lr by at each milestone")
    warmup_epochs: int = Field(0, ge=0, description="epochs of linear lr warmup before the schedule")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of the training loss (0: none)")

    # Execution
    seed: int = Field(
        0, description="the seed of every random stream of the run: validation split, subsets, initialisation, shuffles"
    )
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps; auto: CUDA when available, else the CPU")
    deterministic: bool = Field(
        False, description="torch's deterministic algorithms only (on the CPU a resumed run repeats an uninterrupted one)"
    )
    amp: bool = Field(True, description="bf16 autocast on CUDA (ignored on the CPU, which computes in fp32)")
    channels_last: bool | Literal["auto"] = Field(
        "auto", description="channels_last memory format; auto: the one measured fastest on the device"
    )
    compile: bool | Literal["auto"] = Field(
        "auto", description="torch.compile the network; auto: when the run is long enough to repay it (engine/compiling.py)"
    )
    num_threads: int | None = Field(None, ge=1, description="CPU threads of the run; None: the process's setting")
    eval_batch_size: int = Field(512, ge=1, description="images per evaluation batch")

    # Evaluation and measurements
    test_every_epoch: bool = Field(
        True, description="evaluate the test split every epoch; false: once, at the end, with the best weights"
    )
    test_last_epoch: bool = Field(
        False,
        description="with test_every_epoch false, also evaluate the last epoch's weights on test once (final_test_acc)",
    )
    probes: list[str] = Field(default_factory=list, description="measurements after each epoch (engine/probes.py)")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        # A registered name or a shifted one (imagefolder+dim, data/registry.py); the error names the known ones.
        from .data import get_spec
        from .errors import DatasetError

        try:
            get_spec(name)
        except DatasetError as exc:
            raise ValueError(str(exc)) from None
        return name

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        from .models import model_names

        if name not in model_names():
            raise ValueError(f"unknown model {name!r}; known: {', '.join(model_names())}")
        return name

    @field_validator("norm_layer", "conv_layer")
    @classmethod
    def _known_layer(cls, name: str, info) -> str:
        # Only the name before any ':' is checked here; the argument depends on channel counts.
        from .errors import ModelError
        from .layers import check_conv_name, check_norm_name

        check = check_norm_name if info.field_name == "norm_layer" else check_conv_name
        try:
            check(name)
        except ModelError as exc:
            raise ValueError(str(exc)) from None
        return name

    @field_validator("probes")
    @classmethod
    def _known_probes(cls, names: list[str]) -> list[str]:
        from .engine.probes import check_probe_names

        try:
            check_probe_names(names)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return names

    @field_validator("input_size")
    @classmethod
    def _input_size_at_least_8(cls, size: int | str | None) -> int | str | None:
        if isinstance(size, int) and size < 8:
            raise ValueError("input_size must be at least 8 pixels")
        return size

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if device not in ("auto", "cpu", "mps") and not (device == "cuda" or device.startswith("cuda:")):
            raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
        return device

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "RunConfig":
        from .data import check_root
        from .errors import DatasetError

        try:
            check_root(self.dataset, self.data_root, self.download)
        except DatasetError as exc:
            raise ValueError(f"data_root: {exc}") from None
        if self.schedule == "multistep" and not self.milestones:
            raise ValueError("schedule 'multistep' needs milestones (epochs at which the lr drops)")
        if any(m < 1 or m > self.epochs for m in self.milestones):
            raise ValueError(f"milestones {self.milestones} must lie within 1..epochs ({self.epochs})")
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be below epochs ({self.epochs})")
        self._check_label_noise()
        if self.input_norm == "pretrain" and self.pretrained == "none":
            raise ValueError("input_norm 'pretrain' needs a pretrained start (pretrained='imagenet' or a checkpoint)")
        from .errors import ModelError
        from .models.check import check_model_options

        try:
            check_model_options(self.model, self.norm_layer, self.conv_layer, self.depth_n, self.pretrained)
        except ModelError as exc:
            raise ValueError(str(exc)) from None
        if self.input_size == "pretrained" and self.pretrained == "none":
            raise ValueError("input_size 'pretrained' needs a pretrained start (pretrained='imagenet' or a checkpoint)")
        # A grid validates its runs before its pretraining run has written the weights they start from.
        pending = (info.context or {}).get("pending_checkpoints", ())
        if self.pretrained not in ("none", "imagenet", *pending) and not Path(self.pretrained).is_file():
            raise ValueError(f"pretrained checkpoint {self.pretrained!r} does not exist")
        return self

    def _check_label_noise(self) -> None:
        """Refuse noise the data set cannot take, as far as its class names are known before loading.

        Data sets whose names only their files hold (``imagefolder``, ``cifar100``,
        ``tiny_imagenet_200``) are checked once loaded, still before any training.
        """
        if self.noisy_val and self.val_fraction == 0:
            raise ValueError("noisy_val: true needs a validation split to make noisy; val_fraction is 0")
        if self.label_noise > 0 and self.label_noise_kind == "asymmetric":
            from .data.label_noise import check_asymmetric_classes
            from .data.registry import known_classes

            classes = known_classes(self.dataset)
            if classes is not None:
                check_asymmetric_classes(classes, self.dataset)

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-safe values (paths as strings)."""
        return self.model_dump(mode="json")


def make_config(
    params: Mapping[str, Any] | None = None, *, pending_checkpoints: Collection[str] = (), **overrides: Any
) -> RunConfig:
    """Validate parameters from any source into a :class:`RunConfig`.

    ``pending_checkpoints``: paths accepted as ``pretrained`` before they exist
    (a grid's pretraining run writes them before the runs that use them start).
    Raises :class:`ConfigError` whose message names each offending key.
    """
    merged = {**(params or {}), **overrides}
    try:
        return RunConfig.model_validate(merged, context={"pending_checkpoints": tuple(pending_checkpoints)})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except NormtestError as exc:
        raise ConfigError(str(exc)) from None


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown parameter"
        lines.append(f"{key}: {message}" if key else message)
    return "invalid run parameters:\n  " + "\n  ".join(lines)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` from the command line; the value is read as YAML."""
    import yaml

    from .io import load_yaml

    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), load_yaml(raw) if raw != "" else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key.strip()}: cannot read {raw!r} as a value ({exc.problem})") from None
