"""``normtest predict``: reading CSV rows and image folders, predicting with a run's weights, metrics, errors."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import accuracy_score, f1_score

from normtest_lib.api import run_experiment
from normtest_lib.checkpoint import FORMAT
from normtest_lib.cli import main
from normtest_lib.data.synthetic import load_synthetic
from normtest_lib.data.types import Split
from normtest_lib.engine import evaluate_split, load_trained, prepare
from normtest_lib.engine.trained import evaluate_and_predict, predict_split
from normtest_lib.predict import classification_metrics, predict, read_csv_images, read_image_folder

TINY_RUN = dict(
    model="small", epochs=1, train_subset=120, val_fraction=0.2, batch_size=20, deterministic=True, device="cpu"
)


@pytest.fixture(scope="module")
def tiny_data():
    return load_synthetic("source", n_train=160, n_test=40)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_data):
    """A real run folder, trained once for the module on a tiny copy of the built-in data set."""
    out = tmp_path_factory.mktemp("trained") / "run"
    with pytest.MonkeyPatch.context() as patch:
        # Generating the full built-in set takes seconds; 160 images suffice for a real best.pt.
        patch.setattr(prepare, "load_dataset", lambda name, root=None, download=False: tiny_data)
        assert run_experiment(out, progress=False, **TINY_RUN)["status"] == "complete"
    return out


def write_csv(path, images):
    """One row per image: the image's values in planar order (flattening (3, 32, 32) is R, then G, then B)."""
    path.write_text("".join(",".join(map(str, image.flatten().tolist())) + "\n" for image in images))
    return path


def write_folder(root, images, labels):
    """``root/class0N/imgM.png`` with image M in the folder of its label."""
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = root / f"class{int(label):02d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"img{index:03d}.png")
    return root


def test_csv_rows_are_read_in_cifar_planar_order(tmp_path):
    row = [10] * 1024 + [20] * 1024 + [30] * 1024
    row[1024 + 2 * 32 + 5] = 200  # G plane, image row 2, column 5
    path = tmp_path / "one.csv"
    path.write_text(",".join(map(str, row)) + "\n\n")  # a trailing blank line is no image
    image = read_csv_images(path)
    assert image.shape == (1, 3, 32, 32) and image.dtype == torch.uint8
    assert image[0, 1, 2, 5] == 200 and image[0, 1].sum() == 20 * 1023 + 200
    assert (image[0, 0] == 10).all() and (image[0, 2] == 30).all()

    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(read_csv_images(write_csv(tmp_path / "five.csv", images)), images)


def test_predictions_are_the_runs_own_evaluation_of_the_images(run_dir, tiny_data, tmp_path, capsys):
    images, labels = tiny_data.test.images, tiny_data.test.labels
    model, pipeline = load_trained(run_dir, which="best", device="cpu")
    with torch.no_grad():
        expected = model(pipeline(images)).argmax(dim=1)
    predicted = predict(run_dir, images, device="cpu", batch_size=7)  # several batches, a short last one
    assert torch.equal(predicted, expected)
    assert len(set(predicted.tolist())) > 1  # a model that learnt something, not one constant class
    _, accuracy = evaluate_split(model, pipeline, Split(images, labels), batch_size=16)
    assert classification_metrics(labels, predicted)["accuracy"] == pytest.approx(accuracy)

    output = tmp_path / "out" / "predictions.txt"
    csv = write_csv(tmp_path / "test.csv", images)
    assert main(["predict", "--checkpoint", str(run_dir), "--input", str(csv), "--output", str(output)]) == 0
    assert output.read_text().splitlines() == [str(p) for p in expected.tolist()]
    assert "accuracy" not in capsys.readouterr().out  # no labels, no metrics
    assert sorted(p.name for p in output.parent.iterdir()) == ["predictions.txt"]  # no temporary file left


def test_one_pass_gives_the_evaluation_and_the_predictions_of_two(run_dir, tiny_data):
    """A run's test accuracy and its F1 come from evaluate_and_predict's one pass: the same loss and accuracy as
    evaluate_split and the same predictions as predict_split, over several batches and a short last one."""
    model, pipeline = load_trained(run_dir, which="best", device="cpu")
    split = Split(tiny_data.test.images, tiny_data.test.labels)
    loss, accuracy, predictions = evaluate_and_predict(model, pipeline, split, batch_size=7)
    assert (loss, accuracy) == evaluate_split(model, pipeline, split, batch_size=7)
    assert torch.equal(predictions, predict_split(model, pipeline, split, batch_size=7))
    assert accuracy == (predictions == split.labels).sum().item() / len(split.labels)


def test_which_last_reads_the_last_epochs_checkpoint(run_dir, tiny_data, tmp_path):
    without_best = tmp_path / "run"
    shutil.copytree(run_dir, without_best)
    (without_best / "best.pt").unlink()
    images = tiny_data.test.images
    # One epoch: the last weights are the best ones.
    assert torch.equal(predict(without_best, images, device="cpu", which="last"), predict(run_dir, images, device="cpu"))


def test_image_folder_with_class_labels_prints_and_writes_sklearns_metrics(run_dir, tiny_data, tmp_path, capsys):
    images, labels = tiny_data.test.images, tiny_data.test.labels
    root = write_folder(tmp_path / "folder", images, labels)
    read, folder_labels, classes = read_image_folder(root)
    assert classes == [f"class{k:02d}" for k in range(10)]
    order = torch.argsort(labels, stable=True)  # the reader goes class by class
    assert torch.equal(read, images[order]) and torch.equal(folder_labels, labels[order])

    output, report = tmp_path / "pred.txt", tmp_path / "metrics.json"
    argv = ["predict", "--checkpoint", str(run_dir), "--input", str(root), "--output", str(output)]
    assert main([*argv, "--json", str(report), "--device", "cpu"]) == 0
    predicted = [int(line) for line in output.read_text().splitlines()]
    assert predicted == predict(run_dir, read, device="cpu").tolist()
    truth = folder_labels.tolist()
    expected = {
        "n": 40,
        "accuracy": accuracy_score(truth, predicted),
        "micro_f1": f1_score(truth, predicted, average="micro"),
        "macro_f1": f1_score(truth, predicted, average="macro", zero_division=0),
    }
    assert json.loads(report.read_text()) == pytest.approx(expected)
    printed = capsys.readouterr().out
    assert f"accuracy {expected['accuracy']:.4f}" in printed and f"macro-F1 {expected['macro_f1']:.4f}" in printed

    # --labels overrides the class folders: here every image is said to be class 0.
    zeros = tmp_path / "zeros.txt"
    zeros.write_text("0\n" * 40)
    assert main([*argv, "--labels", str(zeros), "--json", str(report)]) == 0
    assert json.loads(report.read_text())["accuracy"] == pytest.approx(predicted.count(0) / 40)


def test_classification_metrics_match_a_hand_computation():
    metrics = classification_metrics([0, 0, 1, 2], torch.tensor([0, 1, 1, 2]))
    # Per class F1: class 0 (precision 1, recall 1/2) 2/3; class 1 (1/2, 1) 2/3; class 2 1.
    assert metrics == pytest.approx({"n": 4, "accuracy": 0.75, "micro_f1": 0.75, "macro_f1": (2 / 3 + 2 / 3 + 1) / 3})
    assert classification_metrics([1, 1], [0, 0])["macro_f1"] == 0.0  # no warning, no NaN


GOOD_ROW = ",".join(["7"] * 3072)


def bad_input(case, tmp_path, run_dir):
    """(CLI arguments after --output, fragments the error message must hold) for one bad input."""
    csv = tmp_path / "in.csv"
    csv.write_text(f"{GOOD_ROW}\n{GOOD_ROW}\n")
    labels = tmp_path / "labels.txt"
    folder = tmp_path / "folder"
    broken_run = tmp_path / "run"
    checkpoint = broken_run / "best.pt"
    if case in ("no best.pt", "corrupt best.pt", "incomplete best.pt"):
        shutil.copytree(run_dir, broken_run)
        checkpoint.unlink()
        if case == "corrupt best.pt":
            checkpoint.write_bytes(b"not a checkpoint")
        if case == "incomplete best.pt":
            torch.save({"format": FORMAT, "model": {"num_classes": 10}, "source": {"input_norm": "unit"}}, checkpoint)
        return ["--checkpoint", str(broken_run), "--input", str(csv)], [str(checkpoint)]
    args = ["--checkpoint", str(run_dir), "--input", str(csv)]
    if case == "no run folder":
        return ["--checkpoint", str(tmp_path / "nowhere"), "--input", str(csv)], [str(tmp_path / "nowhere")]
    if case == "short row":
        csv.write_text(f"{GOOD_ROW}\n{GOOD_ROW[:-2]}\n")
        return args, [str(csv), "row 2", "3071 values"]
    if case == "value 256":
        csv.write_text(f"{GOOD_ROW}\n{GOOD_ROW}\n256{GOOD_ROW[1:]}\n")
        return args, [str(csv), "row 3", "256 is outside 0..255"]
    if case == "non-integer":
        csv.write_text(f"1.5{GOOD_ROW[1:]}\n")
        return args, [str(csv), "row 1", "'1.5' is not an integer"]
    if case == "labels count":
        labels.write_text("1\n")
        return [*args, "--labels", str(labels)], [str(labels), "1 label(s) for 2 images"]
    if case == "labels non-integer":
        labels.write_text("1\nbird\n")
        return [*args, "--labels", str(labels)], [str(labels), "line 2", "'bird'"]
    if case == "label beyond classes":
        labels.write_text("0\n10\n")
        return [*args, "--labels", str(labels)], [str(labels), "label 10", "best.pt", "10 classes"]
    if case == "json without labels":
        return [*args, "--json", str(tmp_path / "m.json")], ["needs labels"]
    if case == "empty folder":
        folder.mkdir()
        return ["--checkpoint", str(run_dir), "--input", str(folder)], [str(folder), "no class folders"]
    if case == "other size than trained":
        for name in ("a", "b"):
            (folder / name).mkdir(parents=True)
            Image.new("RGB", (16, 16)).save(folder / name / "x.png")
        return ["--checkpoint", str(run_dir), "--input", str(folder)], ["trained on 32x32 images", "these are 16x16"]
    assert case == "mixed sizes"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    Image.new("RGB", (32, 32)).save(folder / "a" / "big.png")
    Image.new("RGB", (16, 16)).save(folder / "b" / "small.png")
    return ["--checkpoint", str(run_dir), "--input", str(folder)], [str(folder / "b" / "small.png"), "16x16"]


CASES = [
    "no run folder", "no best.pt", "corrupt best.pt", "incomplete best.pt", "short row", "value 256", "non-integer",
    "labels count", "labels non-integer", "label beyond classes", "json without labels", "empty folder", "mixed sizes",
    "other size than trained",
]


@pytest.mark.parametrize("existing", [False, True], ids=["no-output-yet", "output-exists"])
@pytest.mark.parametrize("case", CASES)
def test_bad_inputs_exit_2_naming_the_file_and_write_nothing(case, existing, run_dir, tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / "predictions.txt"
    if existing:
        output.write_text("earlier predictions\n")
    args, fragments = bad_input(case, tmp_path, run_dir)
    assert main(["predict", "--output", str(output), *args]) == 2
    error = capsys.readouterr().err
    assert error.startswith("normtest: error:") and "Traceback" not in error
    for fragment in fragments:
        assert fragment in error
    assert [p.name for p in out_dir.iterdir()] == (["predictions.txt"] if existing else [])
    if existing:
        assert output.read_text() == "earlier predictions\n"
    assert not (tmp_path / "m.json").exists()


def test_predictions_use_the_precision_the_run_recorded(run_dir, tiny_data, tmp_path, monkeypatch):
    """A bf16 run (a CUDA run's weights) is predicted under bf16 autocast, an fp32 run in float32 without TF32."""
    import normtest_lib.predict as predict_module
    from normtest_lib.checkpoint import load_checkpoint, save_checkpoint

    bf16_run = tmp_path / "bf16-run"
    shutil.copytree(run_dir, bf16_run)
    payload = load_checkpoint(bf16_run / "best.pt")
    assert payload["precision"] == "fp32"
    save_checkpoint(bf16_run / "best.pt", {**payload, "precision": "bf16"})

    seen = []

    def spy(precision, device):
        seen.append((precision, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        return predict_module_autocast(precision, device)

    predict_module_autocast = predict_module.precision_autocast
    monkeypatch.setattr(predict_module, "precision_autocast", spy)
    images = tiny_data.test.images[:8]
    predict(run_dir, images, device="cpu")
    predict(bf16_run, images, device="cpu")
    assert [precision for precision, *_ in seen] == ["fp32", "bf16"]
    assert all(flags == [False, False] for _, *flags in seen)  # TF32 off while predicting ...
    assert torch.backends.cudnn.allow_tf32  # ... and torch's default back afterwards
    with predict_module_autocast("bf16", torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
