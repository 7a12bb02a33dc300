"""Probes, best weights, evaluation cost, the global step, precision and the record of starts
(tiny synthetic runs on the CPU, deterministic)."""

import json
import signal
import subprocess
import sys

import pytest
import torch
from torch import nn

from normtest_lib.api import load_run
from normtest_lib.checkpoint import load_checkpoint, save_checkpoint
from normtest_lib.config import make_config
from normtest_lib.data.synthetic import load_synthetic
from normtest_lib.engine import loop, prepare, train
from normtest_lib.engine.history import best_row, read_history
from normtest_lib.engine.optim import bind_step_hooks, run_step_hooks
from normtest_lib.engine.probes import norm_layers, read_probes
from normtest_lib.engine.trained import evaluate_split, load_trained, predict_split
from normtest_lib.metrics import classification_metrics
from normtest_lib.errors import ConfigError, ModelError
from normtest_lib.layers import create_norm, is_norm_layer
from normtest_lib.models import BuiltModel, create_model, model_names
from normtest_lib.models.heads import head_of
from normtest_lib.report.results import collect_probes, collect_runs

TINY = dict(
    epochs=2,
    batch_size=40,
    train_subset=120,
    val_fraction=0.2,
    deterministic=True,
    device="cpu",
    eval_batch_size=16,  # below the 40 validation images: layer_stats sees one batch of several
    lr=0.05,
)
PROBED = {**TINY, "epochs": 3, "probes": ["features", "layer_stats"]}
TIMING = ("seconds", "images_per_second", "probe_seconds")
_DATA: dict = {}


def tiny_dataset(name, root=None, download=False):
    if name not in _DATA:
        _DATA[name] = load_synthetic(n_train=200, n_test=80)
    return _DATA[name]


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    monkeypatch.setattr(prepare, "load_dataset", tiny_dataset)


def without_timing(rows):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """A 3-epoch run with both probes, trained in one go."""
    out = tmp_path_factory.mktemp("probed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prepare, "load_dataset", tiny_dataset)
        summary = train(make_config(PROBED), out)
    return out, summary


def held_out_splits(params):
    """The run's validation and test splits, as the engine cut them."""
    data = prepare.prepare_data(make_config(params))
    return data.val, data.test


# --- probes ---------------------------------------------------------------------------------


def test_probes_csv_is_long_and_features_match_a_hand_computation(probed):
    out, summary = probed
    assert (out / "probes.csv").read_text().splitlines()[0] == "epoch,probe,name,value"
    frame = load_run(out).probes
    assert list(frame.columns) == ["epoch", "probe", "name", "value"]
    assert sorted(frame["epoch"].unique()) == [1, 2, 3] and set(frame["probe"]) == {"features", "layer_stats"}
    features = frame[(frame["probe"] == "features") & (frame["epoch"] == 3)].set_index("name")["value"]
    assert list(features.index) == ["p01", "p20", "p80", "p99"]
    assert features["p01"] <= features["p20"] <= features["p80"] <= features["p99"]

    model, pipeline = load_trained(out, which="last")  # the final weights
    val, _ = held_out_splits(PROBED)
    with torch.no_grad():
        pooled = torch.cat([model.forward_features(pipeline(val.images[i : i + 7])) for i in range(0, len(val), 7)])
    for name, q in {"p01": 0.01, "p20": 0.2, "p80": 0.8, "p99": 0.99}.items():
        assert features[name] == pytest.approx(torch.quantile(pooled.flatten(), q).item(), rel=1e-5, abs=1e-6)
    history = read_history(out / "history.csv")
    assert all(row["probe_seconds"] > 0 and row["probe_seconds"] < row["seconds"] for row in history)
    assert summary["probe_seconds"] == pytest.approx(sum(row["probe_seconds"] for row in history))


def test_layer_stats_are_named_by_module_path_and_match_a_hook(probed):
    out, _ = probed
    model, pipeline = load_trained(out, which="last")
    paths = [path for path, _ in norm_layers(model)]
    assert paths == ["layers.0.norm", "layers.1.norm", "layers.2.norm", "layers.3.norm"]
    rows = [row for row in read_probes(out / "probes.csv") if row["probe"] == "layer_stats" and row["epoch"] == 3]
    assert [row["name"] for row in rows] == [f"{path}/{stat}" for path in paths for stat in ("mean", "std")]

    outputs = {}
    modules = dict(model.named_modules())
    for path in paths:
        modules[path].register_forward_hook(lambda m, i, o, path=path: outputs.__setitem__(path, o))
    val, _ = held_out_splits(PROBED)
    with torch.no_grad():
        model(pipeline(val.images[: PROBED["eval_batch_size"]]))  # the first evaluation batch
    recorded = {row["name"]: row["value"] for row in rows}
    for path in paths:
        assert recorded[f"{path}/mean"] == pytest.approx(outputs[path].mean().item(), abs=1e-6)
        assert recorded[f"{path}/std"] == pytest.approx(outputs[path].std(correction=0).item(), rel=1e-5)


def test_norm_layer_marker():
    class ScratchNorm(nn.Module):
        is_norm_layer = True  # how a from-scratch layer says what it is

        def forward(self, x):
            return x

    assert is_norm_layer(create_norm("torch_bn", 8)) and is_norm_layer(create_norm("torch_gn", 8))
    assert not is_norm_layer(create_norm("none", 8)) and not is_norm_layer(nn.Conv2d(3, 3, 1))
    assert is_norm_layer(ScratchNorm()) and is_norm_layer(nn.LayerNorm(4))
    assert norm_layers(create_model("small", 3, norm_layer="none").module) == []


@pytest.mark.parametrize("name", model_names())
def test_every_model_exposes_forward_features(name):
    with torch.device("meta"):  # shapes only: no memory, no time
        model = create_model(name, 5).module.eval()
        x = torch.empty(2, 3, 64, 64)
        features = model.forward_features(x)
    assert features.shape == (2, head_of(model)[1].in_features)


def test_unknown_probe_is_rejected_by_the_schema():
    with pytest.raises(ConfigError, match=r"probes: unknown probe 'nope'; known: bin_gate, features, layer_stats"):
        make_config(probes=["features", "nope"])
    with pytest.raises(ConfigError, match="probes"):
        make_config(probes="features")  # strict: a list, not a string
    assert make_config().probes == []


def test_a_model_a_probe_cannot_measure_fails_before_any_file(tmp_path, monkeypatch):
    plain = lambda config, k: BuiltModel(nn.Sequential(nn.Flatten(), nn.LazyLinear(k)), None, None, None, "t")  # noqa: E731
    monkeypatch.setattr(loop, "build_model", plain)
    with pytest.raises(ModelError, match="forward_features"):
        train(make_config({**TINY, "probes": ["features"]}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_bin_gate_reports_each_bin_layers_rho_and_needs_one(tmp_path):
    summary = train(make_config({**TINY, "norm_layer": "bin", "probes": ["bin_gate"]}), tmp_path / "bin")
    assert summary["status"] == "complete"
    rows = read_probes(tmp_path / "bin" / "probes.csv")
    model, _ = load_trained(tmp_path / "bin", which="last")
    gates = {path: module.rho.detach() for path, module in model.named_modules() if hasattr(module, "rho")}
    last = {row["name"]: row["value"] for row in rows if row["epoch"] == 2}
    assert set(last) == {f"{path}/{stat}" for path in gates for stat in ("mean", "min", "max")} and len(gates) == 4
    for path, rho in gates.items():
        assert last[f"{path}/mean"] == pytest.approx(float(rho.double().mean()))
        assert 0.0 <= last[f"{path}/min"] <= last[f"{path}/max"] <= 1.0
    assert any(value < 1.0 for name, value in last.items() if name.endswith("/min"))  # the gate moved off 1
    with pytest.raises(ModelError, match="no Batch-Instance Norm layer"):
        train(make_config({**TINY, "probes": ["bin_gate"]}), tmp_path / "bn")
    assert not (tmp_path / "bn").exists()


def test_collect_probes_across_runs(probed, tmp_path):
    out, _ = probed
    run_dir = tmp_path / "runs" / "study" / "smoke" / "abc"
    run_dir.parent.mkdir(parents=True)
    run_dir.symlink_to(out, target_is_directory=True)
    frame = collect_probes(tmp_path / "runs")
    assert len(frame) == len(read_probes(out / "probes.csv"))
    assert {"study", "run_id", "epochs", "epoch", "probe", "name", "value"} <= set(frame.columns)
    assert set(frame["run_id"]) == {"abc"} and (frame["epochs"] == 3).all()
    assert collect_probes(tmp_path / "nothing").columns.tolist()[-4:] == ["epoch", "probe", "name", "value"]
    assert collect_probes(runs=collect_runs(tmp_path / "runs")).equals(frame)


# The child that SIGKILLs itself after epoch 2, shared with the engine's resume test.
from test_engine_train import KILLED_CHILD  # noqa: E402


def test_killed_run_resumes_to_the_same_probes(tmp_path, probed):
    reference, _ = probed
    child = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD, json.dumps(PROBED), str(tmp_path)], capture_output=True, text=True
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert {row["epoch"] for row in read_probes(tmp_path / "probes.csv")} == {1, 2}
    summary = train(make_config(PROBED), tmp_path)
    assert summary["status"] == "complete"
    assert (tmp_path / "probes.csv").read_bytes() == (reference / "probes.csv").read_bytes()
    resumed, straight = (read_history(folder / "history.csv") for folder in (tmp_path, reference))
    assert without_timing(resumed) == without_timing(straight)


# --- best weights and evaluation cost -----------------------------------------------------------


def test_best_weights_reproduce_the_best_validation_accuracy(probed, tmp_path):
    out, summary = probed
    assert sorted(p.name for p in out.glob("*.pt")) == ["best.pt", "checkpoint.pt"]
    best = load_checkpoint(out / "best.pt")
    assert "train_state" not in best and best["epoch"] == summary["best_epoch"] and best["selected_by"] == "val_acc"
    assert best["model"] == load_checkpoint(out / "checkpoint.pt")["model"] and best["precision"] == "fp32"
    assert summary["best_selected_by"] == "val_acc"
    model, pipeline = load_trained(out)
    val, _ = held_out_splits(PROBED)
    _, val_acc = evaluate_split(model, pipeline, val, PROBED["eval_batch_size"])
    assert val_acc == pytest.approx(summary["best_val_acc"], abs=1e-6)
    # The summary's F1 are scikit-learn's, of the best weights' test predictions.
    _, test = held_out_splits(PROBED)
    predictions = predict_split(model, pipeline, test, PROBED["eval_batch_size"])
    f1 = classification_metrics(test.labels, predictions)
    assert summary["test_micro_f1_at_best_val"] == pytest.approx(f1["micro_f1"])
    assert summary["test_macro_f1_at_best_val"] == pytest.approx(f1["macro_f1"]) and f1["macro_f1"] < f1["micro_f1"]
    assert f1["accuracy"] == pytest.approx(summary["test_acc_at_best_val"])
    # best.pt starts another run as checkpoint.pt does.
    started = train(make_config({**TINY, "epochs": 1, "pretrained": str(out / "best.pt")}), tmp_path / "next")
    assert started["status"] == "complete" and started["model_source"].startswith("checkpoint:")


def test_best_is_the_first_strictly_better_epoch():
    rows = [{"epoch": 1, "val_acc": 0.5, "train_loss": 1.0}, {"epoch": 2, "val_acc": 0.5, "train_loss": 0.9}]
    assert best_row(rows)["epoch"] == 1
    no_val = [{"epoch": e, "val_acc": None, "test_acc": None, "train_loss": 1.0} for e in (1, 2)]
    assert best_row(no_val)["epoch"] == 2  # the last epoch, never one chosen on test


def test_test_split_once_at_the_end_with_the_best_weights(tmp_path):
    params = {**TINY, "epochs": 3, "test_every_epoch": False}
    summary = train(make_config(params), tmp_path)
    history = read_history(tmp_path / "history.csv")
    assert all(row["test_loss"] is None and row["test_acc"] is None for row in history)
    assert all(row["val_acc"] is not None for row in history)
    model, pipeline = load_trained(tmp_path)
    _, test = held_out_splits(params)
    assert summary["test_acc_at_best_val"] == evaluate_split(model, pipeline, test, params["eval_batch_size"])[1]
    if summary["best_epoch"] == 3:
        assert summary["final_test_acc"] == summary["test_acc_at_best_val"]
    else:
        assert summary["final_test_acc"] is None


def test_test_last_epoch_tests_the_last_weights_once(tmp_path):
    # The same run tested every epoch is the reference: its last row holds the last weights' test accuracy.
    params = {**TINY, "epochs": 3}
    every = train(make_config(params), tmp_path / "every")
    once = train(make_config({**params, "test_every_epoch": False, "test_last_epoch": True}), tmp_path / "once")
    assert [row["train_loss"] for row in read_history(tmp_path / "once" / "history.csv")] == [
        row["train_loss"] for row in read_history(tmp_path / "every" / "history.csv")
    ]
    assert once["final_test_acc"] == every["final_test_acc"] is not None
    assert once["test_acc_at_best_val"] == every["test_acc_at_best_val"]


def test_without_validation_best_is_the_last_epoch(tmp_path):
    summary = train(make_config({**TINY, "val_fraction": 0.0, "test_every_epoch": False}), tmp_path)
    assert summary["best_selected_by"] == "last" and summary["best_epoch"] == 2
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 2
    assert summary["final_test_acc"] == summary["test_acc_at_best_val"] is not None


def test_a_best_pt_missed_by_a_kill_is_rewritten_on_resume(tmp_path, monkeypatch):
    params = {**TINY, "val_fraction": 0.0, "epochs": 3}

    def crash_after_second_epoch(row):
        if row["epoch"] == 2:
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        train(make_config(params), tmp_path, on_epoch_end=crash_after_second_epoch)
    # As if killed between checkpoint.pt and best.pt: best.pt still holds an older epoch.
    epoch2 = load_checkpoint(tmp_path / "checkpoint.pt")
    stale = {k: v for k, v in load_checkpoint(tmp_path / "best.pt").items() if k != "format"}
    save_checkpoint(tmp_path / "best.pt", {**stale, "epoch": 1})
    synced = []
    original = loop._sync_best

    def sync_and_look(session, folder):
        original(session, folder)
        synced.append(load_checkpoint(folder.best))

    monkeypatch.setattr(loop, "_sync_best", sync_and_look)
    train(make_config(params), tmp_path)
    assert synced[0]["epoch"] == 2
    assert all(torch.equal(synced[0]["state_dict"][k], v) for k, v in epoch2["state_dict"].items())
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 3


# --- the optimizer step, precision, environment ---------------------------------------------------

STEPS: list = []


class CountingNet(nn.Module):
    """One hook that takes the global step, one that takes nothing (as BIN's does)."""

    class Counter(nn.Module):
        def after_optimizer_step(self, step):
            STEPS.append(step)

    class OldStyle(nn.Module):
        calls = 0

        def after_optimizer_step(self):
            CountingNet.OldStyle.calls += 1

    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Linear(3, num_classes)
        self.counter = self.Counter()
        self.old = self.OldStyle()

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


def test_step_hooks_get_the_global_step_across_a_resume_and_environment_keeps_both_starts(tmp_path, monkeypatch):
    STEPS.clear()
    CountingNet.OldStyle.calls = 0
    monkeypatch.setattr(loop, "build_model", lambda config, k: BuiltModel(CountingNet(k), None, None, None, "t"))
    params = {**TINY, "epochs": 3}

    def crash_after_first_epoch(row):
        if row["epoch"] == 1:
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        train(make_config(params), tmp_path, on_epoch_end=crash_after_first_epoch)
    train(make_config(params), tmp_path)
    assert STEPS == list(range(1, 3 * 3 + 1))  # 120 images, batch 40: 3 steps per epoch
    assert CountingNet.OldStyle.calls == 9
    starts = json.loads((tmp_path / "environment.json").read_text())["starts"]
    assert [(s["kind"], s["from_epoch"]) for s in starts] == [("start", 0), ("resume", 1)]
    assert all({"time", "torch", "device", "precision"} <= set(s) for s in starts)


def test_a_hook_with_two_arguments_is_refused():
    class Bad(nn.Module):
        def after_optimizer_step(self, step, other):
            pass

    with pytest.raises(ModelError, match="after_optimizer_step"):
        bind_step_hooks(Bad())
    seen = []

    class Optional(nn.Module):
        def after_optimizer_step(self, step=None):
            seen.append(step)

    run_step_hooks(bind_step_hooks(Optional()), 7)
    assert seen == [7]


def test_resume_in_another_precision_is_refused(tmp_path):
    def crash(row):
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        train(make_config(TINY), tmp_path, on_epoch_end=crash)
    checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint["precision"] == "fp32"
    faked = {**{k: v for k, v in checkpoint.items() if k != "format"}, "precision": "bf16"}
    save_checkpoint(tmp_path / "checkpoint.pt", faked)
    before = (tmp_path / "summary.json").read_bytes()
    with pytest.raises(ConfigError, match=r"trained in bf16 so far.*computes in fp32.*delete the folder"):
        train(make_config(TINY), tmp_path)
    assert (tmp_path / "summary.json").read_bytes() == before
