"""The training loop end to end on tiny synthetic runs (CPU, deterministic)."""

import hashlib
import json
import math
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from normtest_lib.api import load_run, run_experiment
from normtest_lib.checkpoint import load_checkpoint
from normtest_lib.config import make_config
from normtest_lib.convergence import loss_slope, verdict
from normtest_lib.data.synthetic import load_synthetic
from normtest_lib.engine import loop, prepare, train
from normtest_lib.engine.environment import Execution
from normtest_lib.engine.history import COLUMNS, read_history
from normtest_lib.engine.loop import resolve_input_size
from normtest_lib.engine.seeding import capture_rng_state, restore_rng_state
from normtest_lib.errors import ConfigError, ModelError
from normtest_lib.models import BuiltModel, create_model
from normtest_lib.stats.channel import ChannelStats

TINY = dict(
    epochs=2,
    batch_size=40,
    train_subset=120,
    val_fraction=0.2,
    deterministic=True,
    device="cpu",
    eval_batch_size=256,
    lr=0.05,
)
SUMMARY_KEYS = {
    "status",
    "epochs_completed",
    "num_classes",
    "best_epoch",
    "best_selected_by",
    "best_val_acc",
    "test_acc_at_best_val",
    "final_test_acc",
    "test_micro_f1_at_best_val",
    "test_macro_f1_at_best_val",
    "seconds",
    "probe_seconds",
    "precision",
    "model_source",
    "model_source_sha256",
    "pretrain_stats",
    "finetune_stats",
    "input_size",
    "n_train",
    "n_val",
    "n_test",
    "noise_rate_actual",
    "noise_rate_actual_val",
    *(FIT_KEYS := ("train_acc_final", "train_loss_slope", "converged", "convergence")),  # set when a run ends
}
TIMING = ("seconds", "images_per_second", "probe_seconds")
_DATASETS: dict = {}


def tiny_dataset(name, root=None, download=False):
    """The synthetic family at 200 training / 80 test images, generated once per session."""
    if name not in _DATASETS:
        domain = "source" if name == "synthetic" else name.removeprefix("synthetic-")
        _DATASETS[name] = load_synthetic(domain, n_train=200, n_test=80)
    return _DATASETS[name]


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    monkeypatch.setattr(prepare, "load_dataset", tiny_dataset)


def tiny(**overrides):
    return make_config({**TINY, **overrides})


def without_timing(rows):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def folder_snapshot(path: Path):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(path.iterdir())}


def use_model(monkeypatch, factory):
    """Make the engine build ``factory(num_classes)`` instead of a registered model."""
    monkeypatch.setattr(
        loop, "build_model", lambda config, num_classes: BuiltModel(factory(num_classes), None, None, None, "test")
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A 3-epoch run trained in one go, the reference for the resume tests."""
    out = tmp_path_factory.mktemp("uninterrupted")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prepare, "load_dataset", tiny_dataset)
        summary = train(tiny(epochs=3), out)
    return out, summary


def test_run_folder_contents(uninterrupted):
    out, summary = uninterrupted
    assert sorted(p.name for p in out.iterdir()) == [
        "best.pt", "checkpoint.pt", "environment.json", "fingerprint.json", "history.csv", "params.yaml", "summary.json"
    ]
    assert set(summary) == SUMMARY_KEYS
    assert summary["status"] == "complete" and summary["epochs_completed"] == 3
    assert summary["num_classes"] == 10 and summary["n_train"] == 120 and summary["n_val"] == 40
    assert summary["model_source"] == "scratch" and summary["pretrain_stats"] is None
    assert summary["finetune_stats"]["n_images"] == 120
    rows = read_history(out / "history.csv")
    assert (out / "history.csv").read_text().splitlines()[0] == ",".join(COLUMNS)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    best = max(rows, key=lambda row: row["val_acc"])
    assert summary["best_epoch"] == best["epoch"] and summary["best_val_acc"] == best["val_acc"]
    assert summary["test_acc_at_best_val"] == best["test_acc"]
    assert summary["final_test_acc"] == rows[-1]["test_acc"]
    assert summary["seconds"] == pytest.approx(sum(row["seconds"] for row in rows))
    assert rows[0]["lr"] == 0.05 and rows[1]["lr"] == pytest.approx(0.05 * 0.75)
    assert rows[-1]["train_acc"] > 0.15  # it learns something in three tiny epochs
    (environment,) = json.loads((out / "environment.json").read_text())["starts"]
    assert environment["kind"] == "start" and environment["precision"] == summary["precision"] == "fp32"
    assert {"python", "torch", "torchvision", "numpy", "device_name", "threads", "hostname", "git_commit"} <= set(environment)
    assert make_config(load_run(out).params) == tiny(epochs=3)


def test_checkpoint_holds_model_source_and_train_state(uninterrupted):
    out, summary = uninterrupted
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint["epoch"] == 3
    assert checkpoint["model"] == {"name": "small", "num_classes": 10, "norm_layer": "torch_bn", "conv_layer": "conv", "depth_n": 2}
    source = checkpoint["source"]
    assert source["dataset"] == "synthetic" and source["input_size"] == 32 and source["input_norm"] == "finetune"
    assert source["mean"] == summary["finetune_stats"]["mean"] and source["std"] == summary["finetune_stats"]["std"]
    state = checkpoint["train_state"]
    assert set(state) >= {"optimizer", "scheduler", "rng", "best", "history"}
    assert state["best"]["epoch"] == summary["best_epoch"]


def test_complete_run_rerun_is_a_no_op(uninterrupted):
    out, summary = uninterrupted
    before = folder_snapshot(out)
    assert train(tiny(epochs=3), out) == json.loads((out / "summary.json").read_text())
    assert folder_snapshot(out) == before


def test_failure_is_recorded_then_resume_equals_uninterrupted(tmp_path, uninterrupted):
    reference, _ = uninterrupted

    def crash_after_first_epoch(row):
        if row["epoch"] == 1:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny(epochs=3), tmp_path, on_epoch_end=crash_after_first_epoch)
    failed = json.loads((tmp_path / "summary.json").read_text())
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: simulated crash"
    assert set(failed) == SUMMARY_KEYS - set(FIT_KEYS) | {"error"} and failed["epochs_completed"] == 1

    summary = train(tiny(epochs=3), tmp_path)
    assert summary["status"] == "complete" and "error" not in summary
    assert without_timing(read_history(tmp_path / "history.csv")) == without_timing(read_history(reference / "history.csv"))
    resumed = load_checkpoint(tmp_path / "checkpoint.pt")["state_dict"]
    straight = load_checkpoint(reference / "checkpoint.pt")["state_dict"]
    assert all(torch.equal(resumed[key], straight[key]) for key in straight)


KILLED_CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from normtest_lib.config import make_config
    from normtest_lib.data.synthetic import load_synthetic
    from normtest_lib.engine import prepare, train

    data = load_synthetic(n_train=200, n_test=80)
    prepare.load_dataset = lambda name, root=None, download=False: data

    def kill_after_second_epoch(row):
        if row["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    train(make_config(json.loads(sys.argv[1])), sys.argv[2], on_epoch_end=kill_after_second_epoch)
    """
)


def test_killed_process_resumes_to_the_same_numbers(tmp_path, uninterrupted):
    reference, _ = uninterrupted
    params = {**TINY, "epochs": 3}
    child = subprocess.run([sys.executable, "-c", KILLED_CHILD, json.dumps(params), str(tmp_path)], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "running"
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 2
    # A kill between the checkpoint and the history write must not matter: fake a stale extra row.
    history = (tmp_path / "history.csv").read_text()
    (tmp_path / "history.csv").write_text(history + history.splitlines()[-1].replace("2,", "3,", 1) + "\n")

    summary = train(make_config(params), tmp_path)
    assert summary["status"] == "complete" and summary["epochs_completed"] == 3
    assert without_timing(read_history(tmp_path / "history.csv")) == without_timing(read_history(reference / "history.csv"))


def test_folder_with_different_params_is_refused_untouched(uninterrupted):
    out, _ = uninterrupted
    before = folder_snapshot(out)
    with pytest.raises(ConfigError, match=r"different parameters[\s\S]*lr: 0.05 in the folder, 0.1 now"):
        train(tiny(epochs=3, lr=0.1), out)
    assert folder_snapshot(out) == before


def test_folder_with_results_but_no_params_is_refused(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(ConfigError, match="no params.yaml"):
        train(tiny(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_data_and_model_errors_surface_before_any_file_is_written(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="train_subset"):
        train(tiny(train_subset=5000), out)
    assert not out.exists()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot be read safely"):
        train(tiny(pretrained=str(broken)), out)
    assert not out.exists()


class NanAfter(nn.Module):
    """A linear classifier whose output turns NaN after ``steps`` training forwards."""

    def __init__(self, num_classes, steps):
        super().__init__()
        self.fc = nn.Linear(3, num_classes)
        self.steps = steps
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
        out = self.fc(x.mean(dim=(2, 3)))
        return out * float("nan") if self.calls > self.steps else out


def test_divergence_is_recorded_not_raised(tmp_path, monkeypatch):
    # 120 images at batch 40 = 3 steps per epoch: NaN from the 5th step, in epoch 2.
    use_model(monkeypatch, lambda k: NanAfter(k, steps=4))
    summary = train(tiny(epochs=3), tmp_path)
    assert summary["status"] == "diverged" and summary["diverged_epoch"] == 2
    assert set(summary) == SUMMARY_KEYS | {"diverged_epoch"}
    assert summary["epochs_completed"] == 1 and summary["best_epoch"] == 1
    rows = read_history(tmp_path / "history.csv")
    assert len(rows) == 2 and math.isnan(rows[1]["train_loss"]) and rows[1]["test_acc"] is None
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1  # NaN weights are never saved
    assert train(tiny(epochs=3), tmp_path) == summary  # a diverged run is finished


class GatedNet(nn.Module):
    """A BIN-like gate: own parameter group (10x lr, no decay), clipped after every step."""

    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Linear(3, num_classes)
        self.gate = nn.Parameter(torch.full((3,), 0.99))
        self.gate.optim_overrides = {"lr_scale": 10.0, "weight_decay": 0.0}
        self.steps = 0

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)) * self.gate)

    def after_optimizer_step(self):
        self.steps += 1
        self.gate.clamp_(0, 1)


def test_param_group_overrides_and_step_hook_are_used(tmp_path, monkeypatch):
    built = []

    def build(num_classes):
        built.append(GatedNet(num_classes))
        return built[-1]

    use_model(monkeypatch, build)
    train(tiny(epochs=2, val_fraction=0.0), tmp_path)
    (net,) = built
    assert net.steps == 2 * 3  # 120 images, batch 40: 3 steps per epoch
    assert ((net.gate >= 0) & (net.gate <= 1)).all() and not torch.equal(net.gate, torch.full((3,), 0.99))
    groups = load_checkpoint(tmp_path / "checkpoint.pt")["train_state"]["optimizer"]["param_groups"]
    assert sorted((g["base_lr"], g["weight_decay"], len(g["params"])) for g in groups) == [(0.05, 5e-4, 2), (0.5, 0.0, 1)]
    assert sorted(g["lr"] for g in groups) == pytest.approx([0.05 * 0.5, 0.5 * 0.5])  # epoch 2 of 2, cosine


def test_no_validation_means_best_is_last(tmp_path):
    summary = train(tiny(val_fraction=0.0), tmp_path)
    assert summary["best_epoch"] == 2 and summary["best_val_acc"] is None and summary["n_val"] == 0
    assert summary["test_acc_at_best_val"] == summary["final_test_acc"]
    assert read_history(tmp_path / "history.csv")[0]["val_loss"] is None


def test_cuda_code_path_runs_on_cpu(tmp_path, monkeypatch):
    """bf16 autocast, channels-last and a resize, as a GPU run would use them."""
    import contextlib

    @contextlib.contextmanager
    def like_cuda(config):
        yield Execution(torch.device("cpu"), amp=True, channels_last=True, threads=torch.get_num_threads())

    monkeypatch.setattr(loop, "execution_context", like_cuda)
    summary = train(tiny(epochs=1, input_size=40, deterministic=False), tmp_path)
    assert summary["status"] == "complete" and summary["input_size"] == 40
    assert load_checkpoint(tmp_path / "checkpoint.pt")["source"]["input_size"] == 40
    assert math.isfinite(read_history(tmp_path / "history.csv")[0]["train_loss"])


def hand_train_accuracy(out: Path, config, labels=None) -> float:
    """The last epoch's weights (checkpoint.pt) evaluated by hand on the run's training split."""
    from normtest_lib.data import Split
    from normtest_lib.engine.trained import evaluate_split, load_trained

    model, pipeline = load_trained(out, "last")
    split = prepare.prepare_data(config).train
    return evaluate_split(model, pipeline, Split(split.images, split.labels if labels is None else labels), 256)[1]


def test_train_acc_final_is_the_last_weights_on_the_training_split(uninterrupted):
    out, summary = uninterrupted
    assert summary["train_acc_final"] == pytest.approx(hand_train_accuracy(out, tiny(epochs=3)))
    rows = read_history(out / "history.csv")
    assert summary["train_loss_slope"] == pytest.approx(loss_slope([row["train_loss"] for row in rows]))
    judged = verdict(rows, "complete")
    assert (summary["converged"], summary["convergence"]) == (judged.converged, judged.reason)


def test_train_acc_final_uses_the_noisy_labels_it_trained_on(tmp_path):
    config = tiny(epochs=2, label_noise=0.4)
    summary = train(config, tmp_path)
    prepared = prepare.prepare_data(config)
    assert not torch.equal(prepared.train.labels, prepared.train_labels_original)
    noisy = hand_train_accuracy(tmp_path, config)
    clean = hand_train_accuracy(tmp_path, config, labels=prepared.train_labels_original.cpu())
    assert summary["train_acc_final"] == pytest.approx(noisy) and noisy != pytest.approx(clean)


def test_the_final_evaluation_leaves_the_run_unchanged(tmp_path, uninterrupted):
    """The extra pass over the training split draws no random numbers: the numbers equal those of a run without it."""
    out, summary = uninterrupted
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "_training_fit", lambda session, status: {})
        without = train(tiny(epochs=3), tmp_path)
    assert without_timing(read_history(tmp_path / "history.csv")) == without_timing(read_history(out / "history.csv"))
    assert {k: v for k, v in without.items() if k not in TIMING} == {
        k: v for k, v in summary.items() if k not in (*TIMING, *FIT_KEYS)
    }


def test_input_size_resolution():
    assert resolve_input_size(None, 224) is None
    assert resolve_input_size(64, 224) == 64
    assert resolve_input_size("pretrained", 224) == 224
    with pytest.raises(ConfigError, match="input_size"):
        resolve_input_size("pretrained", None)


def test_pretrain_then_finetune_chain(tmp_path):
    source = run_experiment(tmp_path / "pretrain", **TINY)
    checkpoint = tmp_path / "pretrain" / "checkpoint.pt"
    recorded = load_checkpoint(checkpoint)["source"]
    assert recorded["mean"] == source["finetune_stats"]["mean"]

    summary = run_experiment(
        tmp_path / "finetune", **{**TINY, "dataset": "synthetic-dim", "pretrained": str(checkpoint), "input_norm": "pretrain"}
    )
    assert summary["model_source"] == f"checkpoint:{checkpoint}"
    assert summary["model_source_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert summary["model_source"] == f"checkpoint:{checkpoint}"
    assert summary["pretrain_stats"]["mean"] == recorded["mean"] and summary["pretrain_stats"]["std"] == recorded["std"]
    # The target domain is dark: its own statistics differ from the source's.
    assert summary["finetune_stats"]["mean"][0] < recorded["mean"][0] - 0.1
    run = load_run(tmp_path / "finetune")
    assert run.status == "complete" and list(run.history.columns) == list(COLUMNS) and len(run.history) == 2


def test_checkpoint_of_a_run_without_statistics_cannot_start_a_pretrain_run(tmp_path):
    run_experiment(tmp_path / "pretrain", **{**TINY, "epochs": 1, "input_norm": "unit"})
    checkpoint = tmp_path / "pretrain" / "checkpoint.pt"
    recorded = load_checkpoint(checkpoint)["source"]
    assert recorded["mean"] is None and recorded["std"] is None and recorded["input_norm"] == "unit"

    out = tmp_path / "finetune"
    expected = rf"checkpoint {checkpoint} was trained with input_norm 'unit' and records no statistics.*use input_norm 'unit'"
    with pytest.raises(ModelError, match=expected):
        run_experiment(out, **{**TINY, "pretrained": str(checkpoint), "input_norm": "pretrain"})
    assert not out.exists()
    # The same start with the normalization it was trained with is fine.
    summary = run_experiment(out, **{**TINY, "epochs": 1, "pretrained": str(checkpoint), "input_norm": "unit"})
    assert summary["status"] == "complete" and summary["pretrain_stats"] is None


def test_pretrain_run_records_the_pretrain_statistics_it_used(tmp_path, monkeypatch):
    imagenet_like = ChannelStats((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    def from_imagenet(config, num_classes):
        module = create_model("small", num_classes).module
        return BuiltModel(module, imagenet_like, 224, "bilinear", "imagenet:test")

    monkeypatch.setattr(loop, "build_model", from_imagenet)
    summary = train(tiny(epochs=1, model="resnet18", pretrained="imagenet", input_norm="pretrain"), tmp_path)
    source = load_checkpoint(tmp_path / "checkpoint.pt")["source"]
    assert source["input_norm"] == "pretrain"
    assert source["mean"] == list(imagenet_like.mean) and source["std"] == list(imagenet_like.std)
    assert source["mean"] != summary["finetune_stats"]["mean"]  # not the training set's own


def test_rng_state_is_the_run_devices_not_the_current_one(monkeypatch):
    """A run on cuda:1 in a process whose current device is 0 saves and restores cuda:1's
    generator; a checkpoint from a 2-GPU machine resumes on one GPU; a CPU run saves none."""
    states = {0: torch.zeros(3, dtype=torch.uint8), 1: torch.full((3,), 7, dtype=torch.uint8)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": states[device].clone())
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": restored.append((device, state)))
    state = capture_rng_state(torch.device("cuda:1"))
    assert state["cuda"].tolist() == [7, 7, 7]
    restore_rng_state(state, torch.device("cuda:1"))
    assert [(d, s.tolist()) for d, s in restored] == [(1, [7, 7, 7])]
    assert "cuda" not in capture_rng_state(torch.device("cpu"))
    restored.clear()
    restore_rng_state(state, torch.device("cpu"))  # a CPU resume leaves every GPU alone
    assert restored == []
    older = {**state, "cuda": [torch.ones(3, dtype=torch.uint8), torch.zeros(3, dtype=torch.uint8)]}
    restore_rng_state(older, torch.device("cuda"))  # an older checkpoint with one state per GPU: the device's own
    restore_rng_state(older, torch.device("cuda:2"))  # this device had no saved state: it keeps its own
    assert [(d, s.tolist()) for d, s in restored] == [(0, [1, 1, 1])]


def test_api_validates_before_touching_the_folder(tmp_path):
    with pytest.raises(ConfigError, match="learning_rate: unknown parameter"):
        run_experiment(tmp_path / "run", learning_rate=0.1)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="not a run folder"):
        load_run(tmp_path)


def test_execution_only_keys_may_change_on_resume(uninterrupted):
    out, summary = uninterrupted
    # Another thread count (or device, data_root) is the same run: a finished one is returned as is.
    assert train(tiny(epochs=3, num_threads=1), out) == summary


def test_default_out_dir_is_the_run_id_under_runs_interactive():
    from normtest_lib.api import resolve_out_dir
    from normtest_lib.grid.spec import run_id

    config = tiny()
    assert resolve_out_dir("somewhere", config) == Path("somewhere")
    default = resolve_out_dir(None, config)
    assert default.parts[-3:] == ("runs", "interactive", run_id(config)) and default.is_absolute()
