"""TorchTrainable on real torch and a real (local) Ray object store: train, save, restore, reset."""

import ast
import math
from pathlib import Path

import pytest
import ray
from ray import tune

from tests.conftest import ROOT
from trainables.data import load_digits
from trainables.trainable import CHECKPOINT_FILE, TorchTrainable


@pytest.fixture(scope="module")
def trainable_class():
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield tune.with_parameters(TorchTrainable, data=load_digits(seed=0))
    ray.shutdown()


@pytest.fixture
def config(compose_config, tmp_path: Path) -> dict:
    return compose_config("experiment=smoke", f"storage_path={tmp_path}")


def _make(trainable_class, config: dict, tmp_path: Path):
    return trainable_class(config=config)


def test_same_config_gives_the_same_curve(trainable_class, config, tmp_path):
    first, second = _make(trainable_class, config, tmp_path), _make(trainable_class, config, tmp_path)
    for _ in range(2):
        a, b = first.train(), second.train()
        assert (a["train_loss"], a["val_acc"]) == (b["train_loss"], b["val_acc"])
    assert a["epoch"] == 2 and 0.5 < a["val_acc"] <= 1.0
    assert set(a) >= {"train_loss", "val_loss", "val_acc", "test_acc", "lr", "epoch", "diverged"}


def test_restore_continues_exactly_where_the_checkpoint_was(trainable_class, config, tmp_path):
    original = _make(trainable_class, config, tmp_path)
    original.train()
    checkpoint = original.save(str(tmp_path / "checkpoint"))
    saved = Path(checkpoint.checkpoint.path)
    assert (saved / CHECKPOINT_FILE).is_file()
    assert not list(saved.glob("*.tmp")), "the checkpoint is renamed into place, never left half-written"

    restored = _make(trainable_class, config, tmp_path)
    restored.restore(checkpoint)
    after_original, after_restored = original.train(), restored.train()
    assert after_restored["epoch"] == 2
    assert after_restored["train_loss"] == after_original["train_loss"]
    assert after_restored["val_acc"] == after_original["val_acc"]


def test_reset_config_starts_a_new_trial_in_the_same_actor(trainable_class, config, tmp_path):
    trainable = _make(trainable_class, config, tmp_path)
    trainable.train()
    new_config = {**config, "model": {**config["model"], "hidden_units": 64},
                  "optim": {**config["optim"], "lr": 0.05, "name": "sgd"}}
    assert trainable.reset_config(new_config) is True
    assert trainable.epoch == 0
    assert trainable.model.net[1].out_features == 64
    assert trainable.optimizer.param_groups[0]["lr"] == 0.05
    assert trainable.train()["epoch"] == 1


def test_a_diverging_trial_stops_at_once_with_the_worst_metric(trainable_class, config, tmp_path):
    exploding = {**config, "optim": {**config["optim"], "name": "sgd", "lr": 1e6}}
    result = _make(trainable_class, exploding, tmp_path).train()
    assert result["diverged"] is True and result["done"] is True
    assert result["val_acc"] == -math.inf
    assert not math.isfinite(result["train_loss"])


def test_every_torch_load_uses_weights_only():
    for path in ROOT.glob("[!.]*/**/*.py"):
        if ".venv" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "load" \
                    and getattr(node.func.value, "id", "") == "torch":
                keywords = {k.arg: k.value for k in node.keywords}
                assert getattr(keywords.get("weights_only"), "value", None) is True, f"{path}:{node.lineno}"
