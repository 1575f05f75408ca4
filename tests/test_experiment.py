"""What hypersweep changes in how Ray Tune runs a sweep, on a real local Ray."""

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections import deque

import pytest
import ray
from ray import tune
from ray.tune import ExperimentAnalysis
from ray.tune.execution.tune_controller import TuneController as RayTuneController

from benchmarks.trivial import Trivial
from hypersweep.actor_reuse import starting_actors_kept
from hypersweep.experiment import _gone_checkpoints_count_as_deleted, _without_ray_analysis
from hypersweep.finished_trials import UNRESOLVED_CONFIG, TrimFinishedTrials
from hypersweep.lost_ray import embedded_gcs_lost, quick_end_without_ray, refuses_connections
from hypersweep.trials_on_disk import finished_on_disk, finished_trials_on_disk
from tests.conftest import ROOT
from tests.slow_start import SlowToStart

SLOTS = 4
TRIALS = 60


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=SLOTS, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _fit(tmp_path, name: str) -> tune.ResultGrid:
    tuner = tune.Tuner(Trivial, param_space={"x": tune.grid_search([0.25, 0.75])},
                       run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0))
    return tuner.fit()


def test_the_end_of_a_sweep_reads_no_result_tables(local_ray, tmp_path):
    fetch = ExperimentAnalysis._fetch_trial_dataframes
    with _without_ray_analysis():
        skipped = _fit(tmp_path, "skipped")
    assert ExperimentAnalysis._fetch_trial_dataframes is fetch, "Ray's own method is back"
    assert [r.metrics_dataframe for r in skipped] == [None, None]
    assert sorted(r.metrics["val_acc"] for r in skipped) == [0.25, 0.75], "the last results are there"
    # Without it, Ray reads every report of every trial into a table.
    read = _fit(tmp_path, "read")
    assert [list(r.metrics_dataframe["val_acc"]) for r in read] in ([[0.25], [0.75]], [[0.75], [0.25]])


def test_a_checkpoint_already_gone_counts_as_deleted(tmp_path):
    # A resumed sweep's snapshot listed a checkpoint that the killed run had deleted after it.
    from ray.train import CheckpointConfig
    from ray.train._internal import checkpoint_manager
    from ray.train._internal.session import _TrainingResult

    folders = [tmp_path / f"checkpoint_00000{i}" for i in range(3)]
    for folder in folders:
        folder.mkdir()
    manager = checkpoint_manager._CheckpointManager(CheckpointConfig(num_to_keep=1))
    manager.register_checkpoint(_TrainingResult(tune.Checkpoint(str(folders[0])), metrics={}))
    shutil.rmtree(folders[0])
    delete = checkpoint_manager._delete_fs_path
    with _gone_checkpoints_count_as_deleted():
        manager.register_checkpoint(_TrainingResult(tune.Checkpoint(str(folders[1])), metrics={}))
        manager.register_checkpoint(_TrainingResult(tune.Checkpoint(str(folders[2])), metrics={}))
    assert checkpoint_manager._delete_fs_path is delete, "Ray's own function is back"
    assert [r.checkpoint.path for r in manager.best_checkpoint_results] == [str(folders[2])]
    assert not folders[1].exists() and folders[2].exists(), "a checkpoint still there is deleted"


def test_a_gcs_that_stops_listening_counts_as_lost():
    server = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{server.getsockname()[1]}"
    assert not refuses_connections(address)
    assert not refuses_connections(address, wait=0.2), "it still listens after the wait"
    threading.Timer(0.3, server.close).start()
    assert refuses_connections(address, wait=5), "it stopped listening within the wait"
    assert refuses_connections(address)


def test_a_sweep_whose_ray_is_alive_still_removes_its_placement_groups(local_ray, tmp_path):
    # The end that skips the removals applies only to a lost GCS (a SIGTERM to the whole process
    # group: tests/test_resume.py); a live one gets Ray's own end.
    cleanup, remove = RayTuneController.cleanup, ray.util.remove_placement_group
    with quick_end_without_ray():
        assert not embedded_gcs_lost(wait=0.5)
        assert len(_fit(tmp_path, "alive")) == 2
    assert RayTuneController.cleanup is cleanup, "Ray's own method is back"
    from ray.air.execution.resources import placement_group as resources

    assert ray.util.remove_placement_group is remove is resources.remove_placement_group
    states = [group["state"] for group in ray.util.placement_group_table().values()]
    assert states and set(states) == {"REMOVED"}, states


def test_actor_reuse_never_throws_away_a_process_being_started(local_ray, tmp_path):
    # The k-th trial process takes k/2 seconds to set up and trials take 0.1 s: Ray's own
    # controller gave the first free actor to a trial whose process was starting and threw that
    # process away, again and again, running the sweep on fewer processes than slots.
    claims = tmp_path / "claims"
    claims.mkdir()
    with starting_actors_kept() as kept:
        results = tune.Tuner(
            SlowToStart, param_space={"claims": str(claims), "x": tune.grid_search(list(range(TRIALS)))},
            tune_config=tune.TuneConfig(reuse_actors=True),
            run_config=tune.RunConfig(name="reuse", storage_path=str(tmp_path), verbose=0),
        ).fit()
    assert kept, "this Ray's Tune takes hypersweep's controller"
    assert tune.tune.TuneController is RayTuneController, "Ray's own controller is back"
    assert len(results) == TRIALS and not results.errors
    processes_that_ran_trials = {result.metrics["pid"] for result in results}
    assert len(processes_that_ran_trials) == SLOTS, "every slot ran trials"
    assert len(list(claims.iterdir())) == SLOTS, "no process was started and thrown away"


class _KeepTrials(tune.Callback):
    """Holds on to the experiment's trials when it ends, as the driver does while it runs."""

    def __init__(self) -> None:
        self.trials: list = []

    def on_experiment_end(self, trials: list, **info) -> None:
        self.trials = list(trials)


def _deep_size(root: object) -> int:
    """Bytes of `root` and everything it reaches through dicts, sequences and object attributes,
    each object counted once."""
    seen: set[int] = set()
    total, stack = 0, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset | deque):
            stack.extend(obj)
        elif hasattr(obj, "__dict__"):
            stack.append(obj.__dict__)
    return total


def _run_with_config_tree(tmp_path, name: str, trim: bool) -> tuple[list, str]:
    """Six trivial trials whose config is a tree like a Hydra config's, only `x` tuned; the
    trials as the driver held them at the end, and the experiment's directory."""
    tree = {section: {f"key_{k}": {"value": k * 0.5, "name": f"{section}-{k}", "on": k % 2 == 0}
                      for k in range(12)} for section in ("model", "optim", "data", "train")}
    keeper = _KeepTrials()
    callbacks = [keeper, TrimFinishedTrials()] if trim else [keeper]
    tune.Tuner(Trivial, param_space={"x": tune.grid_search([0.1 * k for k in range(6)]), **tree},
               run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                         callbacks=callbacks,
                                         checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True))
               ).fit()
    return sorted(keeper.trials, key=lambda trial: trial.config["x"]), str(tmp_path / name)


def test_finished_trials_keep_less_on_the_driver_and_lose_nothing(local_ray, tmp_path):
    kept, kept_dir = _run_with_config_tree(tmp_path, "kept", trim=False)
    trimmed, trimmed_dir = _run_with_config_tree(tmp_path, "trimmed", trim=True)
    assert len(kept) == len(trimmed) == 6
    assert _deep_size(trimmed) < 0.4 * _deep_size(kept)  # 0.32 on Ray 2.60
    for trial in trimmed:
        assert trial.run_metadata.metric_n_steps == {}
        assert "config" not in trial.run_metadata.last_result
        assert all("config" not in result.metrics for result in
                   trial.run_metadata.checkpoint_manager._checkpoint_results)
        assert getattr(trial, UNRESOLVED_CONFIG) is trial.config
        assert trial.config["model"] is trimmed[0].config["model"], "the untuned parts are shared"
    # What the experiment says of each trial is the same, restored from its snapshot as Ray reads it.
    before, after = (ExperimentAnalysis(path).trials for path in (kept_dir, trimmed_dir))
    for old, new in zip(sorted(before, key=lambda t: t.config["x"]),
                        sorted(after, key=lambda t: t.config["x"]), strict=True):
        assert new.status == old.status == "TERMINATED"
        assert new.config == old.config
        assert new.metric_analysis.keys() == old.metric_analysis.keys()
        for metric in ("val_acc", "epoch", "training_iteration"):  # the others are timings
            assert new.metric_analysis[metric] == old.metric_analysis[metric]
        assert new.last_result["val_acc"] == old.last_result["val_acc"]
        assert new.checkpoint is not None and os.path.basename(new.checkpoint.path) == "checkpoint_000000"
    best = ExperimentAnalysis(trimmed_dir).get_best_trial("val_acc", "max", scope="all")
    assert best.config["x"] == pytest.approx(0.5)


class _CountHeldTrials(tune.Callback):
    """How many trials Ray held as each trial ended, and those it held when the experiment ended."""

    def __init__(self) -> None:
        self.held: list[int] = []
        self.held_at_end: list = []

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self.held.append(len(trials))

    def on_experiment_end(self, trials: list, **info) -> None:
        self.held_at_end = list(trials)


def _fit_counting(tmp_path, name: str) -> tuple[_CountHeldTrials, tune.ResultGrid]:
    """TRIALS trivial trials, each checkpointed at its end; what Ray held, and what tuner.fit()
    returned."""
    counter = _CountHeldTrials()
    results = tune.Tuner(
        Trivial, param_space={"x": tune.grid_search([k / TRIALS for k in range(TRIALS)])},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, callbacks=[counter],
                                  checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True)),
    ).fit()
    return counter, results


def _restored_trials(tmp_path, name: str) -> list:
    """The experiment's trials as Ray restores them from its snapshot, by x."""
    return sorted(ExperimentAnalysis(str(tmp_path / name)).trials, key=lambda trial: trial.config["x"])


def test_finished_trials_leave_the_driver_and_the_snapshot_still_holds_them(local_ray, tmp_path):
    step, save = RayTuneController.step, RayTuneController.save_to_dir
    with _without_ray_analysis(), finished_trials_on_disk() as store:
        on_disk, results = _fit_counting(tmp_path, "on_disk")
        assert finished_on_disk() == store.count
        # Nor does Ray read them all back from the snapshot, at the end or on a restore.
        assert len(results) == len(on_disk.held_at_end) < TRIALS
        assert len(tune.Tuner.restore(str(tmp_path / "on_disk"), Trivial).get_results()) == 0
    assert len(tune.Tuner.restore(str(tmp_path / "on_disk"), Trivial).get_results()) == TRIALS
    assert (RayTuneController.step, RayTuneController.save_to_dir) == (step, save), "Ray's own are back"
    assert finished_on_disk() == 0, "no sweep runs"
    # Ray creates the grid's trials up front; as they end it holds fewer and fewer: those still
    # running or waiting, and those that ended since its last step.
    assert len(on_disk.held) == TRIALS and on_disk.held[-1] < TRIALS / 4
    assert store.count + len(on_disk.held_at_end) == TRIALS
    assert store.count > TRIALS / 2
    in_memory, _ = _fit_counting(tmp_path, "in_memory")
    assert in_memory.held[-1] == len(in_memory.held_at_end) == TRIALS, "Ray's own held every trial"
    # The snapshot says the same of every trial, whichever way its state was kept.
    in_memory_trials, on_disk_trials = (_restored_trials(tmp_path, name) for name in ("in_memory", "on_disk"))
    assert len(on_disk_trials) == len(in_memory_trials) == TRIALS
    for kept, ours in zip(in_memory_trials, on_disk_trials, strict=True):
        assert ours.status == kept.status == "TERMINATED"
        assert ours.config == kept.config
        assert ours.last_result["val_acc"] == kept.last_result["val_acc"] == kept.config["x"]
        assert ours.metric_analysis["val_acc"] == kept.metric_analysis["val_acc"]
        assert ours.checkpoint is not None and os.path.isdir(ours.checkpoint.path)


def test_the_driver_imports_the_experiment_module_ahead_of_ray_without_ray_or_pyarrow():
    # sweep.py imports it before starting Ray; Ray's own imports come later, in run(), while the
    # embedded Ray starts. pyarrow added 0.57 s there (measured with both CPUs busy).
    done = subprocess.run([sys.executable, "-c", "import sys, hypersweep.experiment; print(sorted("
                           "m for m in ('ray', 'pyarrow', 'torch') if m in sys.modules))"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout == "[]\n", done.stderr[-2000:]
