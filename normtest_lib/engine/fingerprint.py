"""A run's numerical fingerprint: what its first optimizer steps computed, recorded and recomputed.

An epoch's metrics cannot tell a changed layer from another processor's rounding: by the end
of an epoch the two have diverged chaotically. The first steps have not. ``fingerprint.json``
(:data:`~normtest_lib.run_files.FINGERPRINT`) holds, from the real run (its batch order,
augmentation and label-noise draw, its threads and precision):

- ``steps``: the training loss of each of the first :data:`STEPS` optimizer steps (fewer when
  the whole run has fewer; across epoch boundaries, each epoch with its scheduled learning
  rate); None for a non-finite loss;
- ``initial_loss`` and ``initial_logit_rms``: the cross-entropy and the root mean square of the
  logits of the initial weights, in evaluation mode, on the first :data:`EVAL_IMAGES` images of
  the validation split in stored order (``eval_split: "val"``), or of the training split as
  trained on when the run has no validation split (``"train"``); near the initial weights the
  loss is about ln(classes) whatever the layers compute, the logits' scale is not;
- ``loss_after_steps`` and ``logit_rms_after_steps``: the same after step :data:`EVAL_AFTER`,
  which sees what training losses cannot: running statistics (a BatchNorm momentum, ConvNorm's
  running preconditioner) are used only in evaluation;
- where it was computed: ``device``, ``device_name``, ``threads``, ``precision``.

Recording changes no number of the run: both evaluations run on a copy of the network
(``copy.deepcopy``; evaluation mode would otherwise be set on the real one, and a layer may
initialise state on its first forward), the losses are the ones the training step computed
anyway, and nothing draws from a random stream. ``tests/test_fingerprint.py`` checks that a
run's history and weights are bit-identical with and without the recorder; the history of tiny
runs (from-scratch bn, ConvNorm + torch_bn, BIN) was also identical to the code before fingerprints.

:func:`recompute` builds the run again with the current code (the engine's own
``build_session``, so data, seeds and initial weights come from the same code paths) and takes
the same steps; :func:`compare` sets one against the other.

Tolerance. ``benchmarks/fingerprint_tolerance.py`` (figures in
``benchmarks/results/fingerprint-tolerance-cpu.json``) measured, on this 2-core Intel Xeon, fp32,
four settings shaped like the local profiles (cifar_resnet n=1 torch_bn and ConvNorm with 20 %
label noise, cifar_resnet n=2 from-scratch bn, the small CNN) on the synthetic set, batch 128:

- 1 thread against 2 threads (rounding only: reductions split differently): 0 for the initial
  values and step 1, at most 1e-7 at step 2, 6e-7 at step 3, 7.6e-7 for the evaluations after
  step 2; then it grows chaotically, about 4x a step: 1.7e-5 at step 4, 1e-3 at step 7, 2.6e-3
  by step 20 (the ConvNorm setting stays below 3e-6 throughout);
- real changes: a from-scratch BatchNorm's eps 1e-5 -> 1e-4 moves the initial logit RMS by
  8e-5 and step 1 by 7e-5; another label-noise draw moves step 1 by 2.7e-4 to 7e-4; the torch_bn
  momentum 0.1 -> 0.2 leaves every training loss bit-identical and moves the logit RMS after
  step 2 by 1.6e-2 to 4.6e-2.

So a value computed after k steps gets :func:`tolerance_at` (k): 1e-5 for the initial values
and step 1 (13x or more above any rounding measured up to step 3, 7x below the smallest real
change), times 4 a step after (faster than the measured growth: every thread-to-thread
difference stayed at least 19x inside it), at most :data:`MAX_TOLERANCE` (0.2). Early values decide;
late steps only catch gross changes. Another processor rounds differently for the same reason as
another thread count (other vector widths and reduction orders in the same float32 kernels), and
its trajectory drifts apart faster: study 3's from-scratch bn run ``2a6ebf01d4eb``, made on the
Intel Xeon and recomputed on an AMD EPYC, differs by 1.3e-8 in the initial loss, 9.2e-8 at step 1,
3.0e-5 in the logit RMS after 2 steps (all inside their tolerances), then 8.4e-3 at step 7 and
1.2e-2 to 6.8e-2 from step 9 to 20: by then the two are different SGD trajectories, their losses
apart by the batch-to-batch noise of training at learning rate 0.1. A first cap of 5e-2 failed
that run at steps 13 and 20; 0.2 is 3x the largest such drift and still far below a gross change
(a loss off by a fifth). On the recorded processor and threads a rerun is bit-identical, which
``normtest verify --epochs N`` checks on whole epochs.

Across processors a network whose forward amplifies rounding drifts apart from the second update on, not
the fourth: study 3's ConvNorm+BN run ``94029ea16ae5`` (Intel-made, recomputed on the AMD EPYC) agrees to
1.3e-8 in the initial loss, 1.0e-7 at step 1 and 2.1e-7 at step 2, then differs by 2.4e-4 in the logit RMS
after 2 steps and 2.2e-4 at step 3 (the preconditioner's gain of up to 1/sqrt(eps) and batch statistics
magnify the other processor's rounding of the first two updates). So when the recorded processor is not
this one, a value after k >= 2 steps gets at least :data:`CROSS_PROCESSOR_TOLERANCE` (1e-3, 4x that
drift) times 4 a step after the second (:func:`tolerance_at` with ``other_processor``); the initial
values and step 1 keep the base, so every real change measured above is still caught (each moves an
initial value or step 1 by 7e-5 or more, or the logit RMS after 2 steps by 1.6e-2).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

import torch.nn.functional as F

from ..data import Split
from ..errors import ConfigError
from ..io import read_json, write_json
from .loader import eval_batches

if TYPE_CHECKING:
    from ..config import RunConfig
    from .loop import Session

STEPS = 20  # optimizer steps recorded
EVAL_AFTER = 2  # the second evaluation follows this step: running statistics updated twice, rounding still ~1e-7
EVAL_IMAGES = 2048  # images of the evaluation split the two losses are taken on (stored order)
# The tolerance of a value computed after k optimizer steps: RELATIVE_TOLERANCE * GROWTH ** (k - 1), at most
# MAX_TOLERANCE; the initial loss and step 1 get RELATIVE_TOLERANCE. See the module docstring for the figures.
RELATIVE_TOLERANCE = 1e-5
GROWTH = 4.0
MAX_TOLERANCE = 0.2
# The least tolerance after the second step when the run was recorded on another processor model.
CROSS_PROCESSOR_TOLERANCE = 1e-3
FORMAT = 1


def tolerance_at(step: int, base: float = RELATIVE_TOLERANCE, other_processor: bool = False) -> float:
    """The relative tolerance of a value computed after ``step`` optimizer steps (0: the initial weights);
    wider from step 2 on when the run was recorded on ``other_processor`` (module docstring)."""
    tolerance = base * GROWTH ** max(step - 1, 0)
    if other_processor and step >= 2:
        tolerance = max(tolerance, CROSS_PROCESSOR_TOLERANCE * GROWTH ** (step - 2))
    return min(tolerance, max(MAX_TOLERANCE, base))


@dataclass
class Fingerprint:
    """The content of ``fingerprint.json``."""

    steps: list[float | None]
    target_steps: int  # min(STEPS, the run's total steps): steps < target_steps means an unfinished record
    initial_loss: float | None
    loss_after_steps: float | None  # after eval_after steps
    eval_after: int
    eval_split: str  # "val" or "train"
    eval_images: int
    device: str
    device_name: str
    threads: int
    precision: str
    # The root mean square of the logits on the same images: near the initial weights the loss is about
    # ln(classes) whatever the network computes, while the logits' scale moves with every layer.
    initial_logit_rms: float | None = None
    logit_rms_after_steps: float | None = None
    format: int = FORMAT

    @property
    def complete(self) -> bool:
        return len(self.steps) >= self.target_steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Fingerprint":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"not a fingerprint of format {FORMAT}: {str(data)[:80]}")
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})


def read_fingerprint(path: str | Path) -> Fingerprint | None:
    """The fingerprint in ``path``; None when there is no file."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return Fingerprint.from_dict(read_json(path))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} cannot be read as a fingerprint ({exc}); delete it and rerun the run") from None


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def eval_split(session: "Session") -> tuple[str, Split]:
    """The split the fingerprint's two losses are taken on: the first EVAL_IMAGES in stored order."""
    name, split = ("val", session.val) if session.val is not None else ("train", session.train)
    assert split is not None
    n = min(EVAL_IMAGES, len(split))
    return name, Split(split.images[:n], split.labels[:n])


def _copy_eval(session: "Session") -> tuple[float | None, float | None]:
    """Loss and logit RMS of a copy of the current network in evaluation mode: the run's own is left as it is."""
    _, split = eval_split(session)
    model = copy.deepcopy(session.model)
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=split.images.device)
    square_sum = torch.zeros((), dtype=torch.float64, device=split.images.device)
    with torch.no_grad():
        for images, labels in eval_batches(split, session.config.eval_batch_size):
            with session.execution.autocast():
                logits = model(session.pipeline(images))
            logits = logits.float()
            loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
            square_sum += logits.double().square().sum()
    n = len(split)
    return _finite_or_none(loss_sum.item() / n), _finite_or_none(math.sqrt(square_sum.item() / (n * logits.shape[1])))


@dataclass
class Recorder:
    """Collects a fingerprint while a session trains (the real run, or :func:`recompute`).

    ``record(step, loss)`` is called by the training loop after each optimizer step with the
    global step count (1 after the first) and the step's loss; it returns True when the loop
    should stop: never in a real run, once the last step is recorded with ``stop_when_done``
    (:func:`recompute`).
    """

    session: "Session"
    fingerprint: Fingerprint
    dirty: bool = field(default=False)
    stop_when_done: bool = False

    @classmethod
    def start(cls, session: "Session") -> "Recorder":
        """A new record, with the initial weights' loss; call before the first step."""
        name, split = eval_split(session)
        execution = session.execution
        from .environment import device_name

        target = min(STEPS, session.config.epochs * len(session.batches))
        fingerprint = Fingerprint(
            steps=[],
            target_steps=target,
            initial_loss=None,
            loss_after_steps=None,
            eval_after=min(EVAL_AFTER, target),
            eval_split=name,
            eval_images=len(split),
            device=execution.device.type,
            device_name=device_name(execution.device),
            threads=execution.threads,
            precision=execution.precision,
        )
        fingerprint.initial_loss, fingerprint.initial_logit_rms = _copy_eval(session)
        return cls(session, fingerprint, dirty=True)

    @property
    def done(self) -> bool:
        return len(self.fingerprint.steps) >= self.fingerprint.target_steps

    def record(self, step: int, loss: torch.Tensor) -> bool:
        if not self.done and step == len(self.fingerprint.steps) + 1:
            self.fingerprint.steps.append(_finite_or_none(loss.detach().float().item()))
            self.dirty = True
            if len(self.fingerprint.steps) == self.fingerprint.eval_after:
                self.fingerprint.loss_after_steps, self.fingerprint.logit_rms_after_steps = _copy_eval(self.session)
        return self.done and self.stop_when_done

    def save(self, path: Path) -> None:
        """Write ``fingerprint.json`` when something was added since the last write."""
        if self.dirty:
            write_json(path, self.fingerprint.to_dict())
            self.dirty = False


def resume_recorder(session: "Session", path: Path) -> Recorder | None:
    """The recorder of a resumed run: a complete record needs none; a partial one goes on if it can.

    Steps recorded beyond the checkpoint's epoch (a kill between ``fingerprint.json`` and the
    checkpoint) are dropped: the resumed run computes them again, bit for bit on the same machine.
    """
    try:
        recorded = read_fingerprint(path)
    except ConfigError:
        return None
    if recorded is None or recorded.complete:
        return None
    done_steps = session.start_epoch * len(session.batches)
    if len(recorded.steps) < done_steps:
        return None  # steps are missing in the middle: leave the partial record as it is
    recorded.steps = recorded.steps[:done_steps]
    if len(recorded.steps) < recorded.eval_after:
        recorded.loss_after_steps = recorded.logit_rms_after_steps = None
    return Recorder(session, recorded)


def recompute(config: "RunConfig", steps: int, *, eval_after: int = EVAL_AFTER) -> Fingerprint:
    """The fingerprint of ``config``'s first ``steps`` optimizer steps, computed now; writes no file.

    ``config`` carries the threads and device to compute with (``num_threads``, ``device``);
    the second evaluation follows step ``eval_after`` (the recorded fingerprint's).
    """
    from .environment import execution_context
    from .loop import build_session, train_one_epoch
    from .optim import set_epoch_lr

    with execution_context(config) as execution:
        session = build_session(config, execution)
        recorder = Recorder.start(session)
        recorder.fingerprint.target_steps = steps
        recorder.fingerprint.eval_after = eval_after
        recorder.stop_when_done = True
        session.fingerprint = recorder
        epoch = 0
        while not recorder.done and epoch < config.epochs:
            set_epoch_lr(session.optimizer, epoch, config)
            train_one_epoch(session, epoch)
            epoch += 1
        return recorder.fingerprint


# --- comparison --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One value of a fingerprint, recorded against recomputed."""

    name: str  # "initial loss", "step 3", "loss after 4 steps"
    step: int  # optimizer steps before the value was computed (0: the initial weights)
    recorded: float | None
    recomputed: float | None
    tolerance: float

    @property
    def relative(self) -> float:
        """|recomputed - recorded| / |recorded|; 0 when both are None (non-finite), inf when one is."""
        if self.recorded is None or self.recomputed is None:
            return 0.0 if self.recorded is None and self.recomputed is None else math.inf
        if self.recorded == self.recomputed:
            return 0.0
        return abs(self.recomputed - self.recorded) / max(abs(self.recorded), 1e-12)


    @property
    def within(self) -> bool:
        return self.relative <= self.tolerance


@dataclass(frozen=True)
class Comparison:
    differences: list[Difference]
    tolerance: float  # the base: that of the initial loss and step 1

    @property
    def first_failure(self) -> Difference | None:
        """The first value, in the order computed, whose relative difference exceeds its tolerance."""
        return next((d for d in self.differences if not d.within), None)

    @property
    def ok(self) -> bool:
        return self.first_failure is None

    @property
    def max_relative(self) -> float:
        return max((d.relative for d in self.differences), default=0.0)


def compare(recorded: Fingerprint, recomputed: Fingerprint, tolerance: float = RELATIVE_TOLERANCE) -> Comparison:
    """Every value of ``recorded`` against ``recomputed``, in the order the run computed them.

    ``tolerance`` is the base (:func:`tolerance_at` widens it per step, and more when ``recomputed`` comes from
    another processor model than ``recorded``).
    """
    other_processor = recorded.device_name != recomputed.device_name

    def tolerance_after(step: int) -> float:
        return tolerance_at(step, tolerance, other_processor=other_processor)

    base = tolerance_after(0)
    rows = [Difference("initial loss", 0, recorded.initial_loss, recomputed.initial_loss, base),
            Difference("initial logit rms", 0, recorded.initial_logit_rms, recomputed.initial_logit_rms, base)]
    for index, value in enumerate(recorded.steps):
        step = index + 1
        other = recomputed.steps[index] if index < len(recomputed.steps) else None
        rows.append(Difference(f"step {step}", step, value, other, tolerance_after(step)))
        if step == recorded.eval_after and recorded.loss_after_steps is not None:
            rows.append(Difference(f"loss after {step} steps", step, recorded.loss_after_steps,
                                   recomputed.loss_after_steps, tolerance_after(step)))  # fmt: skip
            rows.append(Difference(f"logit rms after {step} steps", step, recorded.logit_rms_after_steps,
                                   recomputed.logit_rms_after_steps, tolerance_after(step)))  # fmt: skip
    return Comparison(rows, tolerance)
