"""Evidence for the errata of study 2 (normalization layers in a CIFAR ResNet), computed here.

The earlier work's batch-instance norm re-created its gate ``rho`` inside
``forward``, so the optimizer never saw it: every forward started from a fresh
gate at 1, and "bin" was a second batch norm. :func:`recreated_gate_demo`
trains the same small network twice, once with that defect and once with our
layer, and reports where the gates end; :func:`final_gates` reads where the
gates of real runs ended from their ``bin_gate`` probe.

Its batch norm and its scripts had defects of their own, each reproduced here beside
ours: running statistics that kept their autograd history
(:func:`running_stats_history_demo`), a variance correction taken from the evaluation
batch (:func:`eval_batch_size_demo`), flags kept as text and tested against ``False``
(:func:`flag_parsing_table`), a data folder cut by a fixed number of characters
(:func:`data_dir_cut_table`; our package's own ``sys.path`` edits: :func:`sys_path_edits`), no tests
(:func:`test_counts`) and a hard-coded batch size (:func:`batch_size_table` counts the
batch sizes our runs trained with). The defective layers and scripts are re-derived from what the
earlier work's files do (``Normalisations.py``, ``train_cifar.py``, ``test_cifar.py``; the errata
chapter names each) and from ../shared/STUDIES.md (study 2), in our own code: none of theirs is copied.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ...config import make_config, parse_override
from ...errors import ConfigError
from ...layers._moments import per_channel
from ...layers.batchinstancenorm import RHO_OPTIM_OVERRIDES, BatchInstanceNorm
from ...layers.batchnorm import BatchNorm
from ...report.tables import aggregate_seeds, format_mean_std


class RecreatedGateBIN(BatchInstanceNorm):
    """The earlier work's defect, reproduced: a new gate at 1 on every forward, never the one being optimized."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rho = nn.Parameter(torch.ones_like(self.rho))
        return super().forward(x)


def _network(norm: type[BatchInstanceNorm], channels: int = 8) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1, bias=False), norm(channels), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 2),
    )  # fmt: skip


def _train(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int, lr: float) -> None:
    norm = model[1]
    gate = [norm.rho]
    others = [p for p in model.parameters() if p is not norm.rho]
    optimizer = torch.optim.SGD(
        [{"params": others}, {"params": gate, "lr": lr * RHO_OPTIM_OVERRIDES["lr_scale"], "weight_decay": 0.0}], lr=lr
    )
    for _ in range(steps):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        norm.after_optimizer_step()


def recreated_gate_demo(steps: int = 30, lr: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Where the gate ends after ``steps`` SGD steps, with the earlier work's defect and with ours.

    The task is one in which instance statistics matter: two classes of random
    images that differ only in their contrast, which per-image normalization
    would erase, so the gate has a reason to move either way. Each row: the gate's
    mean, min and max over channels after training, and whether the optimizer
    ever held the gate the forward pass used.
    """
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (64,), generator=generator)
    contrast = 0.5 + labels.float().view(-1, 1, 1, 1)
    images = torch.randn(64, 3, 16, 16, generator=generator) * contrast
    rows = {}
    for name, norm in (("the earlier work's BIN (gate re-created in forward)", RecreatedGateBIN), ("ours", BatchInstanceNorm)):
        torch.manual_seed(seed)
        model = _network(norm)
        _train(model, images, labels, steps, lr)
        rho = model[1].rho.detach()
        rows[name] = {"rho mean": float(rho.mean()), "rho min": float(rho.min()), "rho max": float(rho.max())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(f"after {steps} steps")


def final_gates(probes: pd.DataFrame) -> pd.DataFrame:
    """Per BIN layer: the mean over runs of its gate's mean and min at each run's last epoch (``bin_gate`` probe)."""
    gates = probes[probes["probe"] == "bin_gate"]
    if gates.empty:
        raise ValueError("no bin_gate probe rows: run norm_layer 'bin' with probes [bin_gate]")
    last = gates[gates["epoch"] == gates.groupby("run_id")["epoch"].transform("max")]
    split = last["name"].str.rsplit("/", n=1, expand=True)
    last = last.assign(layer=split[0], statistic=split[1])
    order = list(dict.fromkeys(last["layer"]))
    table = last.pivot_table(index="layer", columns="statistic", values="value", aggfunc="mean").reindex(order)
    table["runs"] = last.groupby("layer")["run_id"].nunique().reindex(order)
    return table[["mean", "min", "max", "runs"]]


# --- batch norm's running statistics --------------------------------------------------


class HistoryKeepingBN(BatchNorm):
    """The earlier work's defect, reproduced: running statistics updated from the batch moments *with*
    their autograd history, so each step's running mean hangs on to the graph of every earlier step."""

    def statistics(self, x: torch.Tensor, batch_moments: Callable) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.training:
            return super().statistics(x, batch_moments)
        mean, var = batch_moments()
        count = x.numel() // self.num_features
        m = self.momentum
        self.running_mean = (1 - m) * self.running_mean + m * mean.flatten()
        self.running_var = (1 - m) * self.running_var + m * var.flatten() * (count / (count - 1))
        return mean, var


def autograd_nodes(tensor: torch.Tensor) -> int:
    """How many autograd nodes ``tensor``'s history holds (0 for a tensor without history)."""
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return len(seen)


def running_stats_history_demo(steps: Sequence[int] = (1, 10, 50), lr: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """The autograd nodes the running mean holds after some SGD steps, with the earlier work's defect and with ours.

    A convolution followed by the batch norm, trained on random images; after each
    count of ``steps``, the size of the running mean's autograd history. With the
    defect it grows with every step (memory that is never freed, and a graph a
    later backward pass could run into); ours has none.
    """
    generator = torch.Generator().manual_seed(seed)
    images, labels = torch.randn(32, 3, 8, 8, generator=generator), torch.randint(0, 2, (32,), generator=generator)
    rows = {}
    for name, norm in (("the earlier work's bn (history kept)", HistoryKeepingBN), ("ours (bn)", BatchNorm)):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), norm(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        counts = {}
        for step in range(1, max(steps) + 1):
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step in steps:
                counts[f"after {step} step{'s' if step > 1 else ''}"] = autograd_nodes(model[1].running_mean)
        rows[name] = counts
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("autograd nodes behind running_mean")


class EvalBatchCorrectionBN(BatchNorm):
    """The earlier work's defect, reproduced: the running variance kept biased, and made unbiased at evaluation
    with the *evaluation* batch's count (n / (n - 1), n = its images x H x W) instead of the training batches'."""

    def statistics(self, x: torch.Tensor, batch_moments: Callable) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            mean, var = batch_moments()
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(mean.detach().flatten() * self.momentum)
                self.running_var.mul_(1 - self.momentum).add_(var.detach().flatten() * self.momentum)
            return mean, var
        count = x.numel() // self.num_features
        return per_channel(self.running_mean, x.ndim), per_channel(self.running_var * (count / (count - 1)), x.ndim)


def eval_batch_size_demo(eval_batch_sizes: Sequence[int] = (1, 8, 128), steps: int = 20, seed: int = 0) -> pd.DataFrame:
    """Evaluation outputs against torch's ``BatchNorm2d``, per evaluation batch size.

    The three layers see the same ``steps`` training batches (32 images of 4
    channels, 8 x 8), then evaluate the same 128 images in batches of each size.
    A cell is the largest absolute difference to ``torch.nn.BatchNorm2d``'s
    evaluation output on those images: an evaluated image must not depend on how
    many images share its batch.
    """
    generator = torch.Generator().manual_seed(seed)
    batches = [torch.randn(32, 4, 8, 8, generator=generator) * 2 + 1 for _ in range(steps)]
    test = torch.randn(128, 4, 8, 8, generator=generator) * 2 + 1
    layers = {"torch.nn.BatchNorm2d": nn.BatchNorm2d(4), "ours (bn)": BatchNorm(4),
              "the earlier work's bn (correction by the eval batch)": EvalBatchCorrectionBN(4)}  # fmt: skip
    with torch.no_grad():
        for layer in layers.values():
            for batch in batches:
                layer.train()(batch)
        reference = layers["torch.nn.BatchNorm2d"].eval()(test)
        rows = {}
        for name, layer in list(layers.items())[1:]:
            layer.eval()
            rows[name] = {
                f"eval batch {size}": float((torch.cat([layer(part) for part in test.split(size)]) - reference).abs().max())
                for size in eval_batch_sizes
            }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("max |output - torch's|")


# --- the scripts around the layers ---------------------------------------------------------


EARLIER_FLAG_COLUMN = "the earlier work (text != False)"


def flag_parsing_table(texts: Sequence[str] = ("True", "False", "false", "0", "no"), key: str = "flip") -> pd.DataFrame:
    """What a boolean flag given as ``texts`` turns into: the earlier work's way and ours.

    Its ``train_cifar.py`` declared its on/off options with a default of ``False`` and no type, so a value
    given on the command line stays text, and the script switched the option on when that text is not
    ``False``: any text is not, "False" included. Ours is ``normtest train --set <key>=<text>``, read as
    YAML and validated strictly by the run schema.
    """
    rows = {}
    for text in texts:
        name, value = parse_override(f"{key}={text}")
        try:
            ours = str(getattr(make_config({name: value}), key))
        except ConfigError as error:
            ours = "refused: " + str(error).splitlines()[-1].strip()
        rows[text] = {EARLIER_FLAG_COLUMN: text != False, f"ours, --set {key}=...": ours}  # noqa: E712 (their test)
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("value given")


# The folder name its train_cifar.py expected at the end of --data_dir, whose length it cut off.
CIFAR_FOLDER = "cifar-10-batches-py"


def earlier_data_root(data_dir: str) -> str:
    """Where the earlier work's ``train_cifar.py`` looked for CIFAR-10 when given ``data_dir``: the text without its
    last 19 characters (the length of ``cifar-10-batches-py``), whatever they were."""
    return data_dir[: -len(CIFAR_FOLDER)]


def data_dir_cut_table(data_dirs: Sequence[str] = ("./dataset/cifar-10-batches-py", "./dataset/cifar-10-batches-py/",
                                                 "/data/cifar10")) -> pd.DataFrame:
    """Each ``--data_dir`` given, where the earlier work then looked, whether that is the folder holding
    ``cifar-10-batches-py`` (the only case that works), and what ours says to the same folder as ``data_root``.

    The first is its README's example; a trailing slash or another layout sends it elsewhere without a word.
    """
    from ...data import load_dataset
    from ...errors import DatasetError

    rows = {}
    for data_dir in data_dirs:
        root = earlier_data_root(data_dir)
        intended = str(Path(data_dir).parent) if Path(data_dir).name == CIFAR_FOLDER else None
        try:
            load_dataset("cifar10", data_dir)
            ours = "loaded"
        except DatasetError as error:  # never a download: download stays off
            ours = "refused: " + str(error).split(";")[0]
        rows[data_dir] = {  # HTML table cells: quotes, not Markdown's backticks
            "the earlier work looked in": f"'{root}'" if root else "'' (empty: the current folder)",
            "the folder holding cifar-10-batches-py": intended is not None and Path(root or ".") == Path(intended),
            "ours (data_root)": ours,
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("--data_dir given")


LIST_MUTATORS = frozenset({"insert", "append", "extend", "remove", "pop", "clear"})


def sys_path_edits(package: Path) -> pd.DataFrame:
    """Every statement under ``package`` (its ``.py`` files) that changes ``sys.path``: file, line and code.

    Found in the syntax tree: assignments to ``sys.path`` and calls of the methods that
    change a list (``sys.path.insert(0, ...)``, the usual hack). An empty frame means none; its
    ``attrs["files"]`` holds how many files were read.
    """
    files = sorted(Path(package).rglob("*.py"))
    rows = []
    for path in files:
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
            method = node.func if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else None
            mutates = method is not None and method.attr in LIST_MUTATORS and _is_sys_path(method.value)
            if mutates or any(_is_sys_path(t) for t in targets):
                rows.append({"file": str(path.relative_to(package)), "line": node.lineno, "code": ast.get_source_segment(source, node)})
    frame = pd.DataFrame(rows, columns=["file", "line", "code"]).sort_values(["file", "line"], ignore_index=True)
    frame.attrs["files"] = len(files)
    return frame


def _is_sys_path(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) and node.value.id == "sys"


def test_counts(tests_dir: Path) -> pd.DataFrame:
    """Per test file under ``tests_dir`` (``test_*.py``): how many test functions it defines (``test_*``)."""
    counts = {}
    for path in sorted(Path(tests_dir).glob("test_*.py")):
        tree = ast.parse(path.read_text())
        counts[path.name] = sum(
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_") for node in ast.walk(tree)
        )
    return pd.Series(counts, name="tests", dtype=int).rename_axis("file").to_frame()


test_counts.__test__ = False  # pytest: a function named test_* here is not a test


def batch_size_table(runs: pd.DataFrame, metric: str, variant: str = "norm_layer") -> pd.DataFrame:
    """Per variant and batch size among complete ``runs``: ``metric`` in percent, mean ± std over seeds (n).

    The earlier work's batch size was hard-coded, so its batch-size results could
    not be run from its code; a cell here is runs that did.
    """
    stats = aggregate_seeds(runs.assign(_value=pd.to_numeric(runs[metric], errors="coerce") * 100), "_value", [variant, "batch_size"])
    cells = stats.apply(lambda row: format_mean_std(row["mean"], row["std"], row["n"]), axis=1)
    table = cells.unstack("batch_size")
    table.columns = [f"batch {int(size)}" for size in table.columns]
    return table.fillna("–")
