"""input_norm 'center' end to end: its checkpoint lets a later 'pretrain' run see exactly its inputs."""

import pytest
import torch

from normtest_lib.checkpoint import load_checkpoint
from normtest_lib.config import make_config
from normtest_lib.data.synthetic import load_synthetic
from normtest_lib.engine import prepare, train
from normtest_lib.input_norm import make_normalizer
from normtest_lib.models import create_model
from normtest_lib.stats.channel import ChannelStats

TINY = dict(epochs=1, batch_size=40, train_subset=120, val_fraction=0.2, deterministic=True, device="cpu", lr=0.05)


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    dataset = load_synthetic("source", n_train=160, n_test=40)
    monkeypatch.setattr(prepare, "load_dataset", lambda name, root=None, download=False: dataset)


def test_center_checkpoint_records_its_mean_with_std_one_and_pretrain_reproduces_it(tmp_path):
    summary = train(make_config({**TINY, "input_norm": "center"}), tmp_path / "center")
    assert summary["status"] == "complete"
    checkpoint = tmp_path / "center" / "checkpoint.pt"
    source = load_checkpoint(checkpoint)["source"]
    assert source["input_norm"] == "center"
    assert source["mean"] == summary["finetune_stats"]["mean"] and source["std"] == [1.0, 1.0, 1.0]

    built = create_model("small", summary["num_classes"], pretrained=str(checkpoint))
    images = load_synthetic("source", n_train=160, n_test=40).train.images[:16]
    own = ChannelStats.from_dict(summary["finetune_stats"])
    seen_in_training = make_normalizer("center", finetune_stats=own)(images)
    assert torch.equal(make_normalizer("pretrain", pretrain_stats=built.pretrain_stats)(images), seen_in_training)
