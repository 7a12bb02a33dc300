"""The published numbers kept as data: complete, sourced, and under our names."""

import pytest

from normtest_lib.report.published import published_results, published_studies


def test_every_study_has_published_numbers_with_a_source():
    assert published_studies() == ["convnorm_label_noise", "input_normalization", "normalization_layers"]
    for study in published_studies():
        frame = published_results(study)
        assert len(frame) > 0
        assert frame["source"].str.len().min() > 20
        assert frame["value"].between(0, 10).all()


def test_input_normalization_table_is_the_published_grid():
    frame = published_results("input_normalization")
    # 4 models x 4 data sets x 4 settings, one seed each.
    assert len(frame) == 64
    assert frame.groupby(["model", "dataset", "setting"]).size().eq(1).all()
    # Their "minmax" was plain [0, 1] scaling: stored under our name `unit`.
    assert set(frame["setting"]) == {"finetune", "pretrain", "instance", "unit"}
    assert (frame.loc[frame["setting"] == "unit", "published_name"] == "minmax").all()
    cell = frame.query("model == 'resnet50' and dataset == 'cifar10' and setting == 'pretrain'")
    assert cell["value"].item() == pytest.approx(0.9020)


def test_normalization_layers_use_our_layer_names():
    frame = published_results("normalization_layers")
    tests = frame[frame["metric"] == "test_acc"].set_index("norm_layer")["value"]
    assert set(tests.index) == {"torch_bn", "bn", "in", "bin", "ln", "gn:c/4", "none"}
    assert tests["bin"] == pytest.approx(0.881)


def test_unknown_study_names_the_known_ones():
    with pytest.raises(KeyError, match="input_normalization"):
        published_results("nope")
