import hashlib
import re
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from normtest_lib.checkpoint import save_checkpoint
from normtest_lib.config import make_config
from normtest_lib.errors import ModelError
from normtest_lib.models import create_model, model_names
from normtest_lib.stats.reference import IMAGENET
from normtest_lib.stats.channel import ChannelStats

ALL_MODELS = ["cifar_resnet", "cifar_resnet18", "densenet121", "densenet161", "resnet18", "resnet50", "small"]
RESNET18_FILE = "resnet18-f37072fd.pth"
RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any download attempt is recorded and fails, so a test can never touch the network."""
    attempts = []

    def refuse(url, dst, *args, **kwargs):
        attempts.append((url, dst))
        raise OSError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return attempts


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch cache; torch.hub.get_dir() reads $TORCH_HOME at every call."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    assert Path(torch.hub.get_dir()) / "checkpoints" == checkpoints
    checkpoints.mkdir(parents=True)
    return checkpoints


def _trunk(state_dict, head="fc."):
    return {k: v for k, v in state_dict.items() if not k.startswith(head)}


def _assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_every_model_is_listed_and_accepted_by_the_config():
    assert model_names() == ALL_MODELS
    for name in ALL_MODELS:
        assert make_config(model=name).model == name


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_trains_one_step_on_32px_images(name):
    torch.manual_seed(0)
    built = create_model(name, 10, depth_n=1)
    assert (built.source, built.pretrain_stats, built.input_size) == ("scratch", None, None)
    batch = 2 if name == "densenet161" else 4
    images = torch.randn(batch, 3, 32, 32)
    logits = built.module(images)
    assert logits.shape == (batch, 10)
    nn.functional.cross_entropy(logits, torch.arange(batch) % 10).backward()
    missing = [n for n, p in built.module.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


@pytest.mark.parametrize("name", ["cifar_resnet", "cifar_resnet18", "small", "resnet18"])
def test_larger_inputs_and_channels_last_give_the_same_logits(name):
    torch.manual_seed(0)
    module = create_model(name, 7, depth_n=1).module.eval()
    images = torch.randn(2, 3, 48, 48)
    expected = module(images)
    assert expected.shape == (2, 7)
    module = module.to(memory_format=torch.channels_last)
    got = module(images.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_torchvision_parameter_counts_with_imagenet_heads():
    from normtest_lib.models.imagenet import resolve_weights
    from normtest_lib.models.registry import get_model_spec

    for name in ["resnet18", "resnet50", "densenet121", "densenet161"]:
        built = create_model(name, 1000).module
        published = resolve_weights(get_model_spec(name).imagenet_weights).meta["num_params"]
        assert sum(p.numel() for p in built.parameters()) == published, name


def _shapes_per_stage(module, size=32):
    shapes = []
    hooks = [stage.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for stage in module.stages]
    module(torch.randn(2, 3, size, size))
    for hook in hooks:
        hook.remove()
    return shapes


def _convs(module):
    """(main-path convs, shortcut convs)."""
    convs = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]
    return [m for n, m in convs if "shortcut" not in n], [m for n, m in convs if "shortcut" in n]


def test_cifar_resnet_n2_is_studys_14_layer_network():
    module = create_model("cifar_resnet", 10, depth_n=2).module
    main, shortcuts = _convs(module)
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    assert (len(main), len(linears), len(shortcuts)) == (13, 1, 2)  # 14 weighted layers + 2 projections
    assert [c.kernel_size for c in shortcuts] == [(1, 1), (1, 1)]
    assert _shapes_per_stage(module) == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert [len(stage) for stage in module.stages] == [2, 2, 2]
    # The stem convolution has a bias (as specified); convolutions followed by BN have none.
    assert main[0].bias is not None and main[0].out_channels == 16
    assert all(c.bias is None for c in main[1:] + shortcuts)
    assert linears[0].in_features == 64 and module.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 64)


@pytest.mark.parametrize("n", [1, 3])
def test_cifar_resnet_has_6n_plus_2_layers(n):
    main, _ = _convs(create_model("cifar_resnet", 10, depth_n=n).module)
    assert len(main) + 1 == 6 * n + 2


def test_without_normalization_every_convolution_has_a_bias():
    module = create_model("cifar_resnet", 10, depth_n=1, norm_layer="none").module
    main, shortcuts = _convs(module)
    assert all(c.bias is not None for c in main + shortcuts)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in module.modules())


def test_cifar_resnet18_is_study_3s_network():
    module = create_model("cifar_resnet18", 10).module
    main, shortcuts = _convs(module)
    # 3x3 stem + 16 block convolutions + 3 projection shortcuts: the 20 layers ConvNorm replaces.
    assert (len(main), len(shortcuts)) == (17, 3)
    assert main[0].kernel_size == (3, 3) and main[0].stride == (1, 1) and main[0].bias is None
    assert not any(isinstance(m, nn.MaxPool2d) for m in module.modules())
    assert _shapes_per_stage(module) == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]


def test_norm_and_conv_are_chosen_by_name():
    module = create_model("cifar_resnet", 10, depth_n=1, norm_layer="torch_gn:c/4").module
    groups = [m for m in module.modules() if isinstance(m, nn.GroupNorm)]
    assert len(groups) == 9 and not any(isinstance(m, nn.BatchNorm2d) for m in module.modules())
    assert all(g.num_groups == g.num_channels // 4 for g in groups)
    small = create_model("small", 10, norm_layer="torch_gn").module
    assert 50_000 <= sum(p.numel() for p in small.parameters()) <= 150_000
    with pytest.raises(ModelError, match="unknown convolution 'deformable'"):
        create_model("small", 10, conv_layer="deformable")


def test_torchvision_resnets_take_norm_layer_but_densenets_do_not():
    resnet = create_model("resnet18", 10, norm_layer="torch_gn").module
    assert any(isinstance(m, nn.GroupNorm) for m in resnet.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in resnet.modules())
    with pytest.raises(ModelError, match="norm_layer 'torch_gn' is not supported by densenet121"):
        create_model("densenet121", 10, norm_layer="torch_gn")
    with pytest.raises(ModelError, match="conv_layer 'other' is not supported by resnet18"):
        create_model("resnet18", 10, conv_layer="other")


def test_bad_requests_are_refused():
    with pytest.raises(ModelError, match="unknown model 'resnet7'.*resnet18"):
        create_model("resnet7", 10)
    with pytest.raises(ModelError, match="num_classes"):
        create_model("small", 0)
    with pytest.raises(ModelError, match="'small' has no ImageNet weights"):
        create_model("small", 10, pretrained="imagenet")


# ImageNet weights ---------------------------------------------------------------------------


def test_imagenet_weights_load_from_the_torch_cache(torch_home, no_network):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18().state_dict()
    torch.save(reference, torch_home / RESNET18_FILE)

    torch.manual_seed(2)
    built = create_model("resnet18", 10, pretrained="imagenet")
    _assert_same_tensors(_trunk(built.module.state_dict()), _trunk(reference))
    assert built.module.fc.out_features == 10
    assert not torch.equal(built.module.fc.weight, reference["fc.weight"][:10])
    transform = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms()
    assert built.pretrain_stats == ChannelStats(tuple(transform.mean), tuple(transform.std)) == IMAGENET
    assert (built.input_size, built.interpolation) == (224, "bilinear")
    assert built.source == "imagenet:ResNet18_Weights.IMAGENET1K_V1"
    assert no_network == []


def test_densenet_files_with_legacy_key_names_load(torch_home):
    torch.manual_seed(3)
    reference = torchvision.models.densenet121().state_dict()
    # torchvision's published DenseNet files predate BN's num_batches_tracked and spell
    # "denselayer1.norm1.weight" as "denselayer1.norm.1.weight".
    legacy = {
        re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key): value
        for key, value in reference.items()
        if not key.endswith("num_batches_tracked")
    }
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    torch.save(legacy, torch_home / "densenet121-a639ec97.pth")

    built = create_model("densenet121", 5, pretrained="imagenet")
    loaded = {k: v for k, v in built.module.state_dict().items() if not k.endswith("num_batches_tracked")}
    expected = {k: v for k, v in reference.items() if not k.endswith("num_batches_tracked")}
    _assert_same_tensors(_trunk(loaded, "classifier."), _trunk(expected, "classifier."))
    assert built.module.classifier.out_features == 5


def test_missing_weights_name_the_file_path_and_url_without_downloading(torch_home, no_network):
    with pytest.raises(ModelError) as info:
        create_model("resnet18", 10, pretrained="imagenet")
    message = str(info.value)
    assert RESNET18_FILE in message and str(torch_home / RESNET18_FILE) in message
    assert RESNET18_URL in message and "allow downloads" in message
    assert no_network == []


def test_a_failed_download_is_reported_and_leaves_no_file(torch_home, no_network):
    with pytest.raises(ModelError, match=f"downloading ImageNet weights {RESNET18_FILE} from {RESNET18_URL} failed"):
        create_model("resnet18", 10, pretrained="imagenet", allow_download=True)
    assert no_network == [(RESNET18_URL, str(torch_home / RESNET18_FILE))]
    assert not (torch_home / RESNET18_FILE).exists()


def test_an_allowed_download_is_used(torch_home, monkeypatch):
    torch.manual_seed(4)
    reference = torchvision.models.resnet18().state_dict()
    fetched = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        fetched.append((url, hash_prefix))
        torch.save(reference, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    built = create_model("resnet18", 3, pretrained="imagenet", allow_download=True)
    assert fetched == [(RESNET18_URL, "f37072fd")]
    _assert_same_tensors(_trunk(built.module.state_dict()), _trunk(reference))


def test_unreadable_or_wrong_weights_files_are_reported(torch_home):
    (torch_home / RESNET18_FILE).write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match=r"cannot be read \(not a file of plain tensors\); delete it"):
        create_model("resnet18", 10, pretrained="imagenet")
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), torch_home / RESNET18_FILE)
    with pytest.raises(ModelError, match="does not fit the network"):
        create_model("resnet18", 10, pretrained="imagenet")


def test_imagenet_weights_need_batch_norm(torch_home):
    with pytest.raises(ModelError, match="norm_layer 'torch_gn' cannot hold resnet18's ImageNet weights"):
        create_model("resnet18", 10, pretrained="imagenet", norm_layer="torch_gn")


# Our own checkpoints ------------------------------------------------------------------------


def _save_cifar_resnet(path, source_overrides=None, **model_overrides):
    torch.manual_seed(5)
    module = create_model("cifar_resnet", 10, depth_n=1).module
    module.train()(torch.randn(8, 3, 32, 32))  # moves the BN running statistics off their defaults
    spec = {"name": "cifar_resnet", "num_classes": 10, "norm_layer": "torch_bn", "conv_layer": "conv", "depth_n": 1}
    source = {
        "dataset": "cifar10",
        "mean": [0.49, 0.48, 0.45],
        "std": [0.25, 0.24, 0.26],
        "input_size": 32,
        "input_norm": "finetune",
        **(source_overrides or {}),
    }
    payload = {"model": {**spec, **model_overrides}, "state_dict": module.state_dict(), "source": source, "epoch": 3}
    save_checkpoint(path, payload)
    return module.state_dict()


def test_checkpoint_round_trip_with_a_new_head(tmp_path):
    path = tmp_path / "checkpoint.pt"
    saved = _save_cifar_resnet(path)
    built = create_model("cifar_resnet", 4, pretrained=str(path), depth_n=1)
    _assert_same_tensors(_trunk(built.module.state_dict()), _trunk(saved))
    assert built.module.fc.out_features == 4
    assert built.pretrain_stats == ChannelStats((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
    assert built.input_size == 32 and built.trained_input_norm == "finetune"
    # The path as given (relative stays relative) and the file's hash: which weights, from where.
    assert built.source == f"checkpoint:{path}"
    assert built.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    same_classes = create_model("cifar_resnet", 10, pretrained=str(path), depth_n=1)
    _assert_same_tensors(same_classes.module.state_dict(), saved)


def test_checkpoint_without_statistics_gives_no_pretrain_stats(tmp_path):
    # A network trained with input_norm 'instance' records mean/std None; weights_only loading accepts them.
    path = tmp_path / "checkpoint.pt"
    _save_cifar_resnet(path, {"mean": None, "std": None, "input_norm": "instance"})
    built = create_model("cifar_resnet", 10, pretrained=str(path), depth_n=1)
    assert built.pretrain_stats is None and built.trained_input_norm == "instance"
    assert built.input_size == 32

    broken = tmp_path / "broken.pt"
    _save_cifar_resnet(broken, {"std": None})
    with pytest.raises(ModelError, match="broken mean/std"):
        create_model("cifar_resnet", 10, pretrained=str(broken), depth_n=1)


def test_checkpoint_of_another_model_or_architecture_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    _save_cifar_resnet(path)
    with pytest.raises(ModelError, match="holds model 'cifar_resnet', not 'small'"):
        create_model("small", 10, pretrained=str(path))
    with pytest.raises(ModelError, match=r"depth_n=1 \(asked: 2\)"):
        create_model("cifar_resnet", 10, pretrained=str(path), depth_n=2)
    with pytest.raises(ModelError, match=r"norm_layer='torch_bn' \(asked: 'torch_gn'\)"):
        create_model("cifar_resnet", 10, pretrained=str(path), depth_n=1, norm_layer="torch_gn")
    with pytest.raises(ModelError, match="does not exist"):
        create_model("cifar_resnet", 10, pretrained=str(tmp_path / "missing.pt"))


def test_checkpoint_whose_weights_do_not_match_its_record_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    _save_cifar_resnet(path, depth_n=2)  # records n=2 but holds n=1 weights
    with pytest.raises(ModelError, match="does not fit the network"):
        create_model("cifar_resnet", 10, pretrained=str(path), depth_n=2)


def test_bad_options_are_reported_before_looking_for_weights(torch_home):
    with pytest.raises(ModelError, match="conv_layer 'other' is not supported by resnet50"):
        create_model("resnet50", 10, pretrained="imagenet", conv_layer="other")


def test_each_pinned_checkpoint_records_its_own_preprocessing():
    from normtest_lib.models.torchvision_models import TORCHVISION_MODELS, recorded_preprocessing

    rows = {row["model"]: row for row in recorded_preprocessing()}
    assert set(rows) == set(TORCHVISION_MODELS)
    # torchvision's V1 ImageNet recipe: resize 256, centre crop 224, bilinear, ImageNet statistics.
    assert {(row["resize"], row["crop"], row["interpolation"]) for row in rows.values()} == {(256, 224, "bilinear")}
    assert rows["resnet18"]["mean"] == pytest.approx((0.485, 0.456, 0.406))
    assert rows["densenet161"]["weights"] == "DenseNet161_Weights.IMAGENET1K_V1"
