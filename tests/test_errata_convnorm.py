"""Study 3's errata evidence: our ConvNorm preconditioner normalizes every frequency, the re-derived port does not."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from normtest_lib.layers.convnorm import PreconditionedConv2d, preconditioner  # noqa: E402
from normtest_lib.models import create_model  # noqa: E402
from normtest_lib.report import errata_convnorm  # noqa: E402
from normtest_lib.report.errata_convnorm import (  # noqa: E402
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

    monkeypatch.setattr(errata_convnorm, "published_port_precondition", correct_port)
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
