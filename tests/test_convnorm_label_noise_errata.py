"""Study 3's errata evidence (studies/convnorm_label_noise/errata.py): our ConvNorm preconditioner normalizes every
frequency, the re-derived port does not; the label-noise errata against hand computations."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from normtest_lib.layers.convnorm import PreconditionedConv2d, preconditioner  # noqa: E402
from normtest_lib.models import create_model  # noqa: E402
from normtest_lib.studies.convnorm_label_noise import errata  # noqa: E402
from normtest_lib.studies.convnorm_label_noise.errata import (  # noqa: E402
    OURS, PORT, TOLERANCE, channel_spectra, convnorm_layers, energy_table, filter_energy, network_energy_table,
    ours_precondition, published_port_precondition, published_port_preconditioner,
)  # fmt: skip
from test_plots import close_figures  # noqa: E402, F401 (autouse fixture)


def weights(out_channels=6, in_channels=4, kernel_size=3, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Conv2d(in_channels, out_channels, kernel_size, bias=False).weight.detach()


def test_ours_is_the_layers_preconditioning_and_normalizes_every_frequency():
    weight = weights()
    energy = filter_energy(weight, (8, 7), ours_precondition)
    assert energy.shape == (6, 8, 4)
    torch.testing.assert_close(energy, torch.ones_like(energy), rtol=TOLERANCE, atol=TOLERANCE)
    # The same preconditioning as the layer's: on the full convolution, before the window and the affine.
    layer = PreconditionedConv2d(4, 6, 3, padding=2, eps=0.0, affine="channel")  # padding k - 1: no window
    with torch.no_grad():
        layer.weight.copy_(weight)
    x = torch.randn(2, 4, 10, 9)
    full = F.conv2d(x, weight, padding=2)
    torch.testing.assert_close(ours_precondition(full, weight), layer(x), rtol=1e-5, atol=1e-5)


def test_the_port_runs_on_layer_outputs_but_does_not_normalize():
    weight = weights()
    v = published_port_preconditioner(weight, (8, 8))
    assert v.shape == (6, 8) and v.is_complex()  # one complex value per row frequency, not one real per frequency
    out = published_port_precondition(F.conv2d(torch.randn(2, 4, 10, 10), weight), weight)
    assert out.shape == (2, 6, 8, 8) and torch.isfinite(out).all()
    energy = filter_energy(weight, (8, 8), published_port_precondition)
    assert not torch.allclose(energy, torch.ones_like(energy), rtol=0, atol=TOLERANCE)
    assert ((energy - 1).abs() <= TOLERANCE).float().mean() < 0.01
    assert (energy[..., 2:] < 1e-6).all()  # only the first two frequency columns survive the re/im indexing


def test_the_port_differs_from_ours_only_in_the_two_lines_the_description_names(monkeypatch):
    # With the magnitude computed right (|z|^2 over the frequencies kept) and the product done on complex
    # numbers, the port would be ours: patching the port's pieces back to correct ones must give 1 again.
    weight = weights()

    def correct_port(out, w, eps):
        size = tuple(out.shape[-2:])
        return torch.fft.irfft2(torch.fft.rfft2(out) * preconditioner(w, size, eps), s=size)

    monkeypatch.setattr(errata, "published_port_precondition", correct_port)
    table = energy_table({"layer": (weight, (6, 6))})
    assert table.loc[("layer", PORT), "min"] == pytest.approx(1.0, abs=TOLERANCE)


def test_energy_table_per_layer_of_a_network():
    torch.manual_seed(0)
    model = create_model("cifar_resnet", 10, depth_n=1, norm_layer="none", conv_layer="convnorm").module
    layers = convnorm_layers(model, image_size=16)
    assert len(layers) == 9 and layers["stem.conv"][1] == (18, 18)  # the full convolution's torus
    assert layers["stages.2.0.shortcut.conv"][1] == (8, 8)  # 1x1: its 8x8 input, preconditioned before the stride
    assert model.training  # the mode is restored, and nothing was trained
    assert all(m.running_preconditioner.numel() == 0 for m in model.modules() if isinstance(m, PreconditionedConv2d))
    table = energy_table(layers)
    assert list(table.index.get_level_values("implementation").unique()) == [OURS, PORT]
    ours, port = table.xs(OURS, level="implementation"), table.xs(PORT, level="implementation")
    assert ((ours["min"] - 1).abs() < TOLERANCE).all() and ((ours["max"] - 1).abs() < TOLERANCE).all()
    assert (ours[f"share within {TOLERANCE:g} of 1"] == 1.0).all()
    assert ((port["max"] - 1).abs() > TOLERANCE).any() and ((port["min"] - 1).abs() > TOLERANCE).all()
    assert (port[f"share within {TOLERANCE:g} of 1"] < 0.01).all()
    # Our layer's eps, when asked for, lowers the energy only slightly.
    with_eps = energy_table({"stem.conv": layers["stem.conv"]}, eps=1e-5).loc[("stem.conv", OURS)]
    assert 0.99 < with_eps["min"] <= with_eps["max"] <= 1.0


def test_network_energy_table_builds_its_own_model():
    table = network_energy_table("cifar_resnet", image_size=8)
    assert len(table) == 2 * 15  # n=2: the stem, 12 block convolutions, 2 projection shortcuts
    with pytest.raises(ValueError, match="no ConvNorm layer"):
        convnorm_layers(create_model("cifar_resnet", 10, depth_n=1).module, 8)


def test_channel_spectra_figure_shows_ours_flat_at_one():
    fig = channel_spectra(weights(), (8, 8), channel=2)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in fig.axes if ax.images] == [OURS, PORT]
    ours, port = (image.get_array() for image in images)
    assert ours.shape == (8, 5) and abs(ours - 1).max() < TOLERANCE
    assert abs(port - 1).max() > TOLERANCE


# --- label noise ------------------------------------------------------------------------


def test_expected_rate_of_published_symmetric_noise_is_p_times_one_minus_one_over_k():
    assert errata.expected_rate(0.2, "symmetric", 10) == pytest.approx(0.18)
    assert errata.expected_rate(0.2, "symmetric_exact", 10) == pytest.approx(0.2)


def test_noise_rate_table_sets_measured_beside_nominal_and_expected():
    runs = pd.DataFrame({
        "label_noise": [0.0, 0.2, 0.2], "label_noise_kind": ["symmetric"] * 3, "num_classes": [10] * 3,
        "noise_rate_actual": [0.0, 0.17, 0.19],
    })  # fmt: skip
    table = errata.noise_rate_table(runs)
    row = table.loc[("symmetric", "20 %")]
    assert row["expected real (%)"] == pytest.approx(18.0)
    assert row["measured, mean (%)"] == pytest.approx(18.0) and row["measured, max (%)"] == pytest.approx(19.0)
    assert row["runs"] == 2
    with pytest.raises(ValueError, match="noise_rate_actual"):
        errata.noise_rate_table(runs.iloc[:1])


def test_official_validation_counts_the_wrong_labels_of_images_drawn_from_the_noisy_training_set(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    # 10 images, every one flipped: any validation drawn from them is 100 % wrong.
    pd.DataFrame({"index": range(10), "label": [0] * 10, "noisy_label": [1] * 10}).to_csv(run / "noisy_labels.csv", index=False)
    runs = pd.DataFrame({"label_noise": [0.2], "path": [str(run)], "noise_rate_actual_val": [0.0]})
    table = errata.official_validation_table(runs, val_fraction=0.5)
    assert table.loc["20 %", "official-style validation: wrong labels (%)"] == 100.0
    assert table.loc["20 %", "ours: validation noise (%)"] == 0.0
    with pytest.raises(ValueError, match="noisy_labels.csv"):
        errata.official_validation_table(runs.assign(path=str(tmp_path / "missing")))


def _noisy_run(folder, rows, **columns) -> dict:
    folder.mkdir()
    pd.DataFrame(rows, columns=["index", "label", "noisy_label"]).to_csv(folder / "noisy_labels.csv", index=False)
    return {"path": str(folder), **columns}


def test_saved_labels_table_counts_saved_files_and_checks_them_against_the_recorded_rate(tmp_path):
    flipped_one_of_four = [(0, 1, 2), (1, 1, 1), (2, 0, 0), (3, 3, 3)]
    runs = pd.DataFrame([
        _noisy_run(tmp_path / "a", flipped_one_of_four, label_noise=0.2, noise_rate_actual=0.25),
        _noisy_run(tmp_path / "b", flipped_one_of_four, label_noise=0.2, noise_rate_actual=0.5),  # disagrees
        {"path": str(tmp_path / "none"), "label_noise": 0.1, "noise_rate_actual": 0.1},  # saved nothing
        {"path": str(tmp_path / "clean"), "label_noise": 0.0, "noise_rate_actual": 0.0},
    ])  # fmt: skip
    table = errata.saved_labels_table(runs)
    assert table.index.tolist() == ["10 %", "20 %"]
    assert table.loc["20 %"].tolist() == [2, 2, 1]
    assert table.loc["10 %"].tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="no run with label noise"):
        errata.saved_labels_table(runs.iloc[3:])


def test_noise_seed_table_counts_distinct_label_files_per_noise_seed(tmp_path):
    same, other = [(0, 1, 2), (1, 1, 1)], [(0, 1, 1), (1, 1, 2)]
    runs = pd.DataFrame([
        _noisy_run(tmp_path / "bn", same, label_noise=0.1, noise_seed=0, seed=0, variant="bn"),
        _noisy_run(tmp_path / "cn", same, label_noise=0.1, noise_seed=0, seed=0, variant="convnorm"),
        _noisy_run(tmp_path / "s1", other, label_noise=0.1, noise_seed=1, seed=1, variant="bn"),
    ])  # fmt: skip
    table = errata.noise_seed_table(runs)
    assert table.loc[("10 %", 0)].tolist() == [2, 2, 1, 1]
    assert table.loc[("10 %", 1)].tolist() == [1, 1, 1, 1]


def test_our_noise_follows_the_noise_seed_and_not_the_global_seed():
    table = errata.noise_independent_of_seed(rate=0.5, n=200)
    assert table.loc[(1, 0)].item() == 0  # another global seed, the same noise seed: the same labels
    assert table.loc[(0, 1)].item() > 0
