import pytest

from normtest_lib.config import RunConfig, make_config, parse_override
from normtest_lib.errors import ConfigError


def test_defaults_are_a_valid_smoke_run():
    config = make_config()
    assert config.dataset == "synthetic"
    assert config.input_norm == "finetune"


def test_unknown_key_is_rejected_by_name():
    with pytest.raises(ConfigError, match="learning_rate: unknown parameter"):
        make_config({"learning_rate": 0.1})


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match="epochs"):
        make_config({"epochs": "many"})


def test_unknown_dataset_and_model_are_rejected():
    with pytest.raises(ConfigError, match="unknown data set 'cifar11'"):
        make_config(dataset="cifar11")
    with pytest.raises(ConfigError, match="unknown model 'resnet7'"):
        make_config(model="resnet7")


def test_missing_data_root_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="needs a data root"):
        make_config(dataset="imagefolder")
    with pytest.raises(ConfigError, match="does not exist"):
        make_config(dataset="imagefolder", data_root=str(tmp_path / "nowhere"))


def test_pretrain_setting_needs_a_pretrained_start():
    with pytest.raises(ConfigError, match="input_norm 'pretrain'"):
        make_config(input_norm="pretrain")


def test_multistep_milestones_must_fit_the_epochs():
    with pytest.raises(ConfigError, match="milestones"):
        make_config(schedule="multistep", milestones=[10], epochs=5)


def test_config_is_frozen_and_round_trips():
    config = make_config(epochs=3, lr=0.1)
    with pytest.raises(Exception):
        config.epochs = 4
    assert RunConfig(**config.to_dict()) == config


def test_parse_override_reads_yaml_values():
    assert parse_override("epochs=3") == ("epochs", 3)
    assert parse_override("milestones=[1, 2]") == ("milestones", [1, 2])
    assert parse_override("data_root=/tmp/x") == ("data_root", "/tmp/x")
    with pytest.raises(ConfigError):
        parse_override("epochs")


def test_wrong_types_are_rejected_not_coerced():
    with pytest.raises(ConfigError, match="epochs"):
        make_config(epochs=True)
    with pytest.raises(ConfigError, match="lr"):
        make_config(lr="0.1")
    with pytest.raises(ConfigError, match="deterministic"):
        make_config(deterministic=1)
    assert make_config(lr=1).lr == 1.0  # an integer is a number
    assert str(make_config(dataset="synthetic", data_root="/tmp").data_root) == "/tmp"


def test_yaml_exponent_floats_are_numbers():
    assert parse_override("lr=1e-3") == ("lr", 0.001)
    assert make_config(dict([parse_override("lr=5e-4")])).lr == 0.0005
    with pytest.raises(ConfigError, match="--set milestones"):
        parse_override("milestones=[1")


@pytest.mark.parametrize(
    "params,message",
    [
        ({"model": "small", "pretrained": "imagenet"}, "has no ImageNet weights"),
        ({"model": "densenet121", "norm_layer": "torch_gn"}, "not supported by densenet121"),
        ({"model": "cifar_resnet", "norm_layer": "torch_gn:7"}, "7 groups do not divide 16"),
        ({"model": "small", "conv_layer": "conv:3"}, "takes no argument"),
    ],
)
def test_model_and_layer_combinations_are_checked_before_any_data_is_loaded(params, message):
    with pytest.raises(ConfigError, match=message):
        make_config(params)
