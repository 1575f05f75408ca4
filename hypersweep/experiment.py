"""Build (or restore) the Ray Tune experiment from a validated config, and run it."""

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from hypersweep import storage
from hypersweep.cluster import alive_nodes
from hypersweep.config import DEFAULT_TRAINABLE
from hypersweep.dotted import get_path
from hypersweep.errors import ConfigError
from hypersweep.paths import experiment_dir, experiment_location, is_uri
from hypersweep.preflight import concurrent_trials, trial_request
from hypersweep.records import TrialRecord, load_records
from hypersweep.replaced import replaced
from hypersweep.resume import record_start
from hypersweep.target_source import class_constant
from schedulers.searchers import build_search
from schedulers.space import Dimension, param_space, planned_trials
from schedulers.trial_schedulers import build_scheduler
from trainables.data import SplitData
from trainables.targets import build, import_target

# A value the user set for Ray's own variable wins over hypersweep's.
_USER_MAX_PENDING = os.environ.get("TUNE_MAX_PENDING_TRIALS_PG")
_USER_SNAPSHOT_PERIOD = os.environ.get("TUNE_GLOBAL_CHECKPOINT_S")


def pending_trials(config: dict, slots: int) -> int | None:
    """How many trials Ray Tune may make ahead of a free slot, for a cluster that runs `slots`
    at once; None keeps Ray's own number.

    Ray keeps one trial pending for a search algorithm, which ran the default TPE sweep one trial
    at a time on 2 CPUs. For random and grid search it keeps 200, so that an autoscaling cluster
    sees the demand at once; the embedded Ray never grows, and there the 200 trials, with a
    placement group requested for each, were made before the first trial started (its first step
    came 1.5-3.6 s later in a 200-trial sweep here) and walked in every step after.
    """
    if config["search"]["name"] == "hyperopt" or config["cluster"]["address"] == "local":
        return max(1, slots)
    return None


def snapshot_period(config: dict, dims: list[Dimension]) -> float:
    """Seconds between two snapshots of the experiment state: `snapshot_seconds` per 100 trials.

    Ray snapshots every 10 s or more by default; a driver killed in between would run the trials
    that ended meanwhile again, so hypersweep snapshots far more often. A snapshot writes every
    trial's state, so its cost grows with the sweep: the period grows with it (as Ray's own
    "auto" period does), which keeps snapshots a small, constant share of the driver's time (at
    1 s, they made 1,000 trials of a trainable that does nothing take 1.4x as long).
    """
    return config["snapshot_seconds"] * max(1.0, planned_trials(config, dims) / 100)


def checkpoint_config(config: dict) -> Any:
    """When trials checkpoint and how many checkpoints they keep.

    Under PBT a trial checkpoints at each perturbation, and keeps all of them: a bottom trial
    may copy a top trial's checkpoint from several perturbations ago, and must find it there.
    """
    from ray import tune

    if config["scheduler"]["name"] == "pbt":
        return tune.CheckpointConfig(
            num_to_keep=None,
            checkpoint_frequency=config["scheduler"]["perturbation_interval"],
            checkpoint_at_end=True,
        )
    return tune.CheckpointConfig(
        num_to_keep=config["checkpoint"]["num_to_keep"],
        checkpoint_frequency=config["checkpoint"]["frequency"],
        checkpoint_at_end=True,
    )


@dataclass
class Outcome:
    """What a run of the sweep left: a record per trial, and whether it was cut short."""

    records: list[TrialRecord]
    interrupted: bool


def load_data(config: dict) -> Any:
    """The experiment's data set, loaded once on the driver; trials get it from Ray's object store
    (a trial whose data settings differ loads its own, from `source`). For TorchTrainable it must
    be a SplitData that the model and the augmentation can take: ConfigError otherwise, before
    any trial."""
    data = build(config["data"], seed=config["seed"])
    if isinstance(data, SplitData):
        if config["trainable"] == DEFAULT_TRAINABLE:
            _check_model_fits(config, data)
            _check_shift_fits(config, data)
        return replace(data, source=config["data"])
    if config["trainable"] == DEFAULT_TRAINABLE:  # a trainable of one's own takes what it is given
        raise ConfigError(f"data._target_: {config['data']['_target_']} returned a "
                          f"{type(data).__name__}, and TorchTrainable trains on a SplitData; return "
                          f"trainables.data.split(features, labels, val_fraction, test_fraction, seed)")
    return data


def _check_model_fits(config: dict, data: SplitData) -> None:
    """A model that declares the shape of its examples (INPUT_DIMS, read from its source: the
    driver does not import torch) gets examples of that many dimensions."""
    target = config["model"]["_target_"]
    needs = class_constant(str(target), "INPUT_DIMS")
    if isinstance(needs, tuple) and len(needs) != len(data.input_shape):
        raise ConfigError(f"model._target_: {target} needs examples of shape ({', '.join(needs)}), and "
                          f"{config['data']['_target_']} gives {data.input_shape}; choose data of that "
                          f"shape (data=digits_images: images; data=mnist1d: sequences)")


def _check_shift_fits(config: dict, data: SplitData) -> None:
    """Shifting needs images: with other examples each trial failed on it, with retries."""
    spec = get_path(config, "space.augment.shift", None)
    shifts = [config["augment"]["shift"]]
    if isinstance(spec, dict):
        shifts += [*spec.get("values", []), spec.get("high", 0)]
    if any(shifts) and len(data.input_shape) != 3:
        raise ConfigError(f"augment.shift: shifting needs images (channels, height, width), and "
                          f"{config['data']['_target_']} gives examples of shape {data.input_shape}; "
                          f"use data=digits_images or augment.shift=0")


def run(config: dict, dims: list[Dimension], resume: bool, groups: dict[str, str],
        data: Any) -> Outcome:
    """Run the sweep (or resume it) until it ends or is interrupted (Ctrl-C, SIGTERM)."""
    from ray import tune

    from hypersweep.actor_reuse import starting_actors_kept
    from hypersweep.deferred_imports import snapshots_skip_unused_datasets
    from hypersweep.ended_trials import trial_ends_restored
    from hypersweep.lost_ray import quick_end_without_ray
    from hypersweep.progress import without_ray_banner
    from hypersweep.restored_rungs import asha_rungs_restored
    from hypersweep.restored_search import search_counts_restored_trials
    from hypersweep.trial_environment import trials_without_redundant_environment
    from hypersweep.trials_on_disk import finished_trials_on_disk
    from hypersweep.whole_files import uploads_appear_whole, whole_files_filesystem  # pyarrow waits for Ray

    # The trainable writes TensorBoard itself, live and by dotted name, and ResultLog the
    # reports; Ray's own loggers would add a second TensorBoard copy and lose reports.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    # Ray forces a snapshot whenever a trial has made num_to_keep checkpoints since the last one
    # (so that the snapshot names checkpoints that still exist), and warns that snapshots "may
    # become a bottleneck" when that comes often: with short trials it does, as intended.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if _USER_SNAPSHOT_PERIOD is None:
        os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = str(snapshot_period(config, dims))
    request = trial_request(config["resources"])
    if _USER_MAX_PENDING is None:
        # Set per run, since a Hydra multirun runs several here.
        pending = pending_trials(config, concurrent_trials(request, alive_nodes(), config["max_concurrent"]))
        if pending is None:
            os.environ.pop("TUNE_MAX_PENDING_TRIALS_PG", None)
        else:
            os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(pending)
    trainable = tune.with_resources(
        tune.with_parameters(import_target(config["trainable"]), data=data),
        {name.lower(): amount for name, amount in request.items()},
    )
    path, location = experiment_dir(config), experiment_location(config)
    # Ray's files in a directory written whole (whole_files.py); a bucket's objects already are.
    filesystem = None if is_uri(location) else whole_files_filesystem()
    if resume:
        failed = config["resume_failed"]
        with _without_ray_analysis():
            tuner = tune.Tuner.restore(location, trainable=trainable, resume_unfinished=True,
                                       resume_errored=failed == "retry",
                                       restart_errored=failed == "restart",
                                       storage_filesystem=filesystem)
    else:
        record_start(config, groups)
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(config, dims, as_grid=config["search"]["name"] == "grid",
                                    with_domains=config["search"]["name"] != "hyperopt"),
            tune_config=tune.TuneConfig(
                metric=config["metric"],
                mode=config["mode"],
                search_alg=build_search(config, dims),
                scheduler=build_scheduler(config, dims),
                num_samples=config["num_samples"],
                reuse_actors=config["reuse_actors"],
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
            ),
            run_config=tune.RunConfig(
                name=config["name"],
                storage_path=config["storage_path"],
                storage_filesystem=filesystem,
                checkpoint_config=checkpoint_config(config),
                failure_config=tune.FailureConfig(max_failures=config["max_failures"]),
                callbacks=_callbacks(config, dims),
                verbose=0,
            ),
        )
    with _standing_in(path), _without_ray_analysis(), _gone_checkpoints_count_as_deleted(), \
            starting_actors_kept(), quick_end_without_ray(), trial_ends_restored(), \
            search_counts_restored_trials(planned_trials(config, dims)), asha_rungs_restored(), \
            uploads_appear_whole(), snapshots_skip_unused_datasets(), \
            trials_without_redundant_environment(), finished_trials_on_disk(), without_ray_banner():
        tuner.fit()
    # The tuner keeps Ray's copy of every trial it still holds (those that failed, or had not
    # finished); free them before the snapshot is read.
    del tuner
    gc.collect()
    if is_uri(location):
        storage.pull(location)  # what Ray uploaded last: its snapshot and the trials' results
    # Records come from the experiment's own snapshot: statuses as they were when the run ended
    # (Ray marks trials it stopped on an interrupt as terminated), and every trial's own config
    # even when it failed before reporting.
    records = load_records(path, config)
    unfinished = any(record.status == "unfinished" for record in records)
    return Outcome(records, interrupted=unfinished or len(records) < planned_trials(config, dims))


def _callbacks(config: dict, dims: list[Dimension]) -> list[Any]:
    """The run's callbacks: the result log, lighter finished trials, their ends saved at once, the
    progress lines, our files kept out of Tune's sync, freed memory given back, and checkpoints by
    training time."""
    from hypersweep.checkpoint_timer import CheckpointTimer
    from hypersweep.ended_trials import SaveTrialEnds
    from hypersweep.finished_trials import TrimFinishedTrials
    from hypersweep.freed_memory import GiveBackFreedMemory
    from hypersweep.progress import TrialLines
    from hypersweep.result_log import ResultLog
    from hypersweep.tune_sync import OwnFilesOutOfTuneSync

    # In this order: a trial's end is saved lighter, and saved before its line says it ended.
    callbacks = [ResultLog(), TrimFinishedTrials(), SaveTrialEnds(),
                 TrialLines(config, total=planned_trials(config, dims)),
                 OwnFilesOutOfTuneSync(config["name"]), GiveBackFreedMemory()]
    # Under PBT a trial checkpoints at each perturbation (checkpoint_config), and nowhere else.
    if config["checkpoint"]["seconds"] and config["scheduler"]["name"] != "pbt":
        callbacks.append(CheckpointTimer(config["checkpoint"]["seconds"]))
    return callbacks


@contextmanager
def _without_ray_analysis() -> Iterator[None]:
    """Skip what Ray's ExperimentAnalysis reads of every trial, which hypersweep never looks at
    (its records come from the snapshot, one trial at a time, and from the files).

    - Its table of every report of every trial, which tuner.fit() builds for its ResultGrid by
      reading each trial's result.json into a pandas DataFrame (every report, the config
      flattened into a hundred columns): about 0.1 MiB and 2 ms a trial on the driver.
    - Its trials read back from the whole snapshot, decoded at once, whenever it is given none:
      at Tuner.restore, and at the end of a sweep whose finished trials have left the driver
      (trials_on_disk.py), where it took the driver from 245 to 308 MiB for 2,000 trials.

    A ResultGrid is built as before, of the trials Ray still holds, with no metrics_dataframe.
    """
    from ray.tune import ExperimentAnalysis

    with replaced(ExperimentAnalysis, "_fetch_trial_dataframes", lambda self: {}), \
            replaced(ExperimentAnalysis, "_load_trials", lambda self: []):
        yield


@contextmanager
def _gone_checkpoints_count_as_deleted() -> Iterator[None]:
    """Let Ray delete a checkpoint that is already gone without raising.

    When Ray registers a trial's new checkpoint, it deletes those beyond `num_to_keep`. A resumed
    sweep's snapshot can list one that the killed run deleted after that snapshot was taken (on a
    bucket, whose snapshot is uploaded in the background, the window is wide), and Ray's deletion
    raised on the missing folder, outside its own guard against failed deletions: the rest of
    the save's bookkeeping was skipped, the trial's count of its checkpoints among it.
    """
    from ray.train._internal import checkpoint_manager

    delete = checkpoint_manager._delete_fs_path  # Ray 2.x; tests check it is still there

    def delete_unless_gone(fs: Any, fs_path: str) -> None:
        try:
            delete(fs=fs, fs_path=fs_path)
        except FileNotFoundError:
            pass  # gone already: deleted

    with replaced(checkpoint_manager, "_delete_fs_path", delete_unless_gone):
        yield


@contextmanager
def _standing_in(path: str) -> Iterator[None]:
    """Run with `path` as the working directory, and come back if the old one still exists.

    Under `ray job submit`, Ray can delete the job's unpacked working_dir (our cwd) while the
    sweep runs, and Tune's path handling calls os.getcwd(). A Hydra multirun runs its next job in
    this same process, so the old directory is restored for it.
    """
    try:
        before: str | None = os.getcwd()
    except FileNotFoundError:  # already deleted under us
        before = None
    os.chdir(path)
    try:
        yield
    finally:
        if before is not None and os.path.isdir(before):
            os.chdir(before)


def _trial_name(trial: Any) -> str:
    # Ray's default names pack the whole config into the directory name.
    return f"trial_{trial.trial_id}"
