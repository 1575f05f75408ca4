"""TorchTrainable on real torch and a real (local) Ray object store: train, save, restore, reset."""

import ast
import math
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import ray
import torch
from ray import tune
from ray.tune.experiment.trial import _TrialInfo

from hypersweep.deferred_imports import is_deferred
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


def test_a_trial_process_leaves_torchs_compiler_unloaded(trainable_class, config, tmp_path):
    # It would cost each trial process about 1.4 CPU-s before its first step (eager_optim.py).
    actor = ray.remote(num_cpus=1)(trainable_class).remote(config=config)
    ray.get(actor.train.remote())
    ray.get(actor.save.remote(str(tmp_path / "checkpoint")))
    loaded = ray.get(actor.__ray_call__.remote(
        lambda _: sorted(name for name in sys.modules if name.startswith("torch._dynamo"))))
    assert loaded == []


def test_a_trial_process_runs_the_code_of_neither_pandas_ray_data_nor_boto3(trainable_class, config,
                                                                            tmp_path):
    # Ray Tune imports the first two, TensorBoard boto3; deferred, each trial process starts 0.6 CPU-s
    # sooner (deferred_imports.py).
    actor = ray.remote(num_cpus=1)(trainable_class).remote(config=config)
    ray.get(actor.train.remote())
    ray.get(actor.save.remote(str(tmp_path / "checkpoint")))
    ran = ray.get(actor.__ray_call__.remote(lambda _: {
        name: name in sys.modules and not is_deferred(sys.modules[name])
        for name in ("ray.tune", "tensorboard", "pandas", "ray.data", "boto3")}))
    assert ran == {"ray.tune": True, "tensorboard": True, "pandas": False, "ray.data": False, "boto3": False}


def _as_trial(trainable, trial_id: str) -> None:
    # What Trainable.reset does before reset_config when Ray hands the actor another trial.
    trainable._trial_info = _TrialInfo(SimpleNamespace(
        trial_id=trial_id, placement_group_factory=None, experiment_dir_name="test"))


def test_reset_config_starts_a_new_trial_in_the_same_actor(trainable_class, config, tmp_path):
    trainable = _make(trainable_class, config, tmp_path)
    trainable.train()
    new_config = {**config, "model": {**config["model"], "hidden_units": 64},
                  "optim": {**config["optim"], "lr": 0.05, "name": "sgd"}}
    _as_trial(trainable, "next_trial")
    assert trainable.reset_config(new_config) is True
    assert trainable.epoch == 0
    assert trainable.learner.model.net[1].out_features == 64
    assert trainable.learner.optimizer.param_groups[0]["lr"] == 0.05
    assert trainable.train()["epoch"] == 1


def test_new_values_for_the_same_trial_reach_the_live_optimizer_and_model(trainable_class, config,
                                                                         tmp_path):
    trainable = _make(trainable_class, config, tmp_path)
    trainable.train()
    model = trainable.learner.model
    explored = {**config, "optim": {**config["optim"], "lr": 0.0123, "weight_decay": 1e-4},
                "model": {**config["model"], "dropout": 0.45}}
    assert trainable.reset_config(explored) is True
    assert trainable.learner.model is model, "PBT's explore keeps the model: only values change"
    assert trainable.epoch == 1
    groups = trainable.learner.optimizer.param_groups
    assert {(g["lr"], g["weight_decay"]) for g in groups} == {(0.0123, 1e-4)}
    dropouts = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and set(dropouts) == {0.45}
    result = trainable.train()
    assert result["epoch"] == 2 and result["lr"] == 0.0123


def test_a_copied_checkpoint_brings_weights_and_moments_but_not_the_learning_rate(
        trainable_class, config, tmp_path):
    donor = _make(trainable_class, {**config, "optim": {**config["optim"], "lr": 0.01}}, tmp_path)
    donor.train(), donor.train()
    checkpoint = donor.save(str(tmp_path / "donor"))
    receiver = _make(trainable_class, {**config, "optim": {**config["optim"], "lr": 0.002}}, tmp_path)
    receiver.train()
    receiver.restore(checkpoint)
    mine, theirs = receiver.learner, donor.learner
    for ours, copied in zip(mine.model.state_dict().values(), theirs.model.state_dict().values(),
                            strict=True):
        assert torch.equal(ours, copied)
    moments = [(mine.optimizer.state[a]["exp_avg"], theirs.optimizer.state[b]["exp_avg"])
               for a, b in zip(mine.model.parameters(), theirs.model.parameters(), strict=True)]
    assert moments and all(torch.equal(ours, copied) for ours, copied in moments)
    assert receiver.epoch == 2
    assert mine.optimizer.param_groups[0]["lr"] == 0.002, "the trial's own (explored) value"
    assert receiver.train()["lr"] == 0.002


def test_a_replayed_schedule_switches_values_at_its_epochs(trainable_class, config, tmp_path):
    schedule = [{"epoch": 1, "values": {"optim.lr": 0.004}},
                {"epoch": 3, "values": {"optim.lr": 0.0005, "train.batch_size": 128}}]
    trainable = _make(trainable_class, {**config, "pbt_schedule": schedule}, tmp_path)
    rates = [trainable.train()["lr"] for _ in range(4)]
    assert rates == [config["optim"]["lr"], 0.004, 0.004, 0.0005]
    assert trainable.settings["train"]["batch_size"] == 128


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


def test_tensorboard_off_writes_no_run(trainable_class, config, tmp_path):
    trainable = _make(trainable_class, {**config, "tensorboard": False}, tmp_path)
    assert trainable.train()["val_acc"] > 0.5
    trainable.stop()
    assert not (tmp_path / config["name"] / "tensorboard").exists()
    _make(trainable_class, config, tmp_path).train()
    assert (tmp_path / config["name"] / "tensorboard").is_dir()


def test_a_trial_restored_from_its_end_reports_the_end_again_and_trains_nothing(
        trainable_class, config, tmp_path):
    short = {**config, "train": {**config["train"], "max_epochs": 2}}
    finished = _make(trainable_class, short, tmp_path)
    finished.train()
    last = finished.train()
    assert last["done"] is True
    checkpoint = finished.save(str(tmp_path / "end"))
    restored = _make(trainable_class, short, tmp_path)
    restored.restore(checkpoint)
    weights = [p.clone() for p in restored.learner.model.parameters()]
    again = restored.train()
    assert again["done"] is True and again["epoch"] == 2
    assert (again["val_acc"], again["train_loss"]) == (last["val_acc"], last["train_loss"])
    assert all(torch.equal(a, b) for a, b in zip(weights, restored.learner.model.parameters(), strict=True))


def test_a_checkpoint_in_a_whole_files_directory_is_loaded_in_place(trainable_class, config, tmp_path):
    from ray.train._internal.checkpoint_manager import _TrainingResult

    from hypersweep.whole_files import whole_files_filesystem

    original = _make(trainable_class, config, tmp_path)
    original.train()
    saved = original.save(str(tmp_path / "trial" / "checkpoint_000000"))
    named = _TrainingResult(tune.Checkpoint(saved.checkpoint.path, filesystem=whole_files_filesystem()),
                            metrics=saved.metrics)
    restored = _make(trainable_class, config, tmp_path)
    loaded_from = []
    load = restored.load_checkpoint
    restored.load_checkpoint = lambda folder: (loaded_from.append(folder), load(folder))
    restored.restore(named)
    # Ray copies a checkpoint on any other filesystem than pyarrow's local one to a temporary
    # folder first.
    assert loaded_from == [saved.checkpoint.path]
    assert restored.train()["train_loss"] == original.train()["train_loss"]


def test_a_restore_whose_checkpoint_was_deleted_goes_on_from_the_furthest_one_kept(
        trainable_class, config, tmp_path):
    # The race a SIGKILL of the driver can hit: Ray deleted the checkpoint the snapshot names
    # (num_to_keep) after registering newer ones, and the snapshot never learnt of them.
    original = _make(trainable_class, config, tmp_path)
    original.train()
    named = original.save(str(tmp_path / "trial" / "checkpoint_000000"))
    original.train()
    original.save(str(tmp_path / "trial" / "checkpoint_000001"))
    original.train()
    newest = original.save(str(tmp_path / "trial" / "checkpoint_000002"))
    (Path(newest.checkpoint.path) / CHECKPOINT_FILE).write_bytes(b"half-written")
    shutil.rmtree(named.checkpoint.path)

    restored = _make(trainable_class, config, tmp_path)
    restored.restore(named)
    after_original, after_restored = original.train(), restored.train()
    # checkpoint_000002 cannot be read: it went on from checkpoint_000001 (2 epochs), so its next
    # report is the third, as Ray counts it and as the trial trains it.
    assert (after_restored["epoch"], after_restored["training_iteration"]) == (3, 3)
    original_third = _make(trainable_class, config, tmp_path)
    for _ in range(3):
        third = original_third.train()
    assert (after_restored["train_loss"], after_restored["val_acc"]) == (third["train_loss"],
                                                                         third["val_acc"])
    assert after_original["epoch"] == 4


def test_a_restore_with_no_checkpoint_left_fails_as_ray_does(trainable_class, config, tmp_path):
    original = _make(trainable_class, config, tmp_path)
    original.train()
    named = original.save(str(tmp_path / "trial" / "checkpoint_000000"))
    shutil.rmtree(named.checkpoint.path)
    with pytest.raises(ValueError, match="does not exist on storage anymore"):
        _make(trainable_class, config, tmp_path).restore(named)
