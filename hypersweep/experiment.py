"""Build (or restore) the Ray Tune experiment from a validated config, and run it."""

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from hypersweep.preflight import trial_request
from hypersweep.resume import record_start, write_json
from schedulers.searchers import build_search
from schedulers.space import (
    Dimension,
    baseline_point,
    discrete_combinations,
    param_space,
    tuned_values,
)
from schedulers.trial_schedulers import build_scheduler
from trainables.targets import build, import_target
from trainables.trainable import experiment_dir

SUMMARY_FILE = "summary.json"


@dataclass
class TrialRecord:
    """One trial as the summary and the report see it: plain values only."""

    trial_id: str
    status: str  # finished | stopped early | diverged | failed | unfinished
    metric: float | None
    epochs: int
    test_acc: float | None
    tuned: dict[str, Any]
    error: str | None
    failures: int  # times it raised; each retry went on from its last checkpoint
    path: str


def planned_trials(config: dict, dims: list[Dimension]) -> int:
    """How many trials the sweep will run: num_samples, times the grid for grid search."""
    if config["search"]["name"] == "grid":
        return discrete_combinations(dims) * config["num_samples"]
    return config["num_samples"]


@dataclass
class Outcome:
    """What a run of the sweep left: a record per trial, and whether it was cut short."""

    records: list[TrialRecord]
    interrupted: bool


def run(config: dict, dims: list[Dimension], resume: bool) -> Outcome:
    """Run the sweep (or resume it) until it ends or is interrupted (Ctrl-C, SIGTERM)."""
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from hypersweep.progress import TrialLines

    # The trainable writes TensorBoard itself, live and by dotted name; Ray's own TensorBoard
    # logger would add a second, differently named copy of every run.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    # Every trial checkpoints at its end, which forces a state snapshot: that is what makes a
    # resume lose nothing, so Ray's "snapshotting may become a bottleneck" warning is expected.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Ray snapshots the experiment every 10 s or more by default; a driver killed in between
    # would run the trials that ended meanwhile again. A snapshot of a sweep this size is cheap.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", str(config["snapshot_seconds"]))
    data = build(config["data"], seed=config["seed"])
    request = trial_request(config["resources"])
    trainable = tune.with_resources(
        tune.with_parameters(import_target(config["trainable"]), data=data),
        {name.lower(): amount for name, amount in request.items()},
    )
    path = experiment_dir(config)
    if resume:
        failed = config["resume_failed"]
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True,
                                   resume_errored=failed == "retry",
                                   restart_errored=failed == "restart")
    else:
        record_start(config)
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(config, dims, as_grid=config["search"]["name"] == "grid"),
            tune_config=tune.TuneConfig(
                metric=config["metric"],
                mode=config["mode"],
                search_alg=build_search(config, dims),
                scheduler=build_scheduler(config),
                num_samples=config["num_samples"],
                max_concurrent_trials=config["max_concurrent"] or None,
                reuse_actors=True,
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
            ),
            run_config=tune.RunConfig(
                name=config["name"],
                storage_path=config["storage_path"],
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=config["checkpoint"]["num_to_keep"],
                    checkpoint_frequency=config["checkpoint"]["frequency"],
                    checkpoint_at_end=True,
                ),
                failure_config=tune.FailureConfig(max_failures=config["max_failures"]),
                callbacks=[JsonLoggerCallback(), CSVLoggerCallback(),
                           TrialLines(config, total=planned_trials(config, dims))],
                verbose=0,
            ),
        )
    with _standing_in(path):
        tuner.fit()
    # Records come from the experiment's own snapshot: statuses as they were when the run ended
    # (Ray marks trials it stopped on an interrupt as terminated), and every trial's own config
    # even when it failed before reporting.
    trials = tune.ExperimentAnalysis(path).trials
    records = sorted((_record(trial, config) for trial in trials), key=lambda r: r.trial_id)
    unfinished = any(record.status == "unfinished" for record in records)
    return Outcome(records, interrupted=unfinished or len(records) < planned_trials(config, dims))


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


def _error_line(trial: Any) -> str:
    """The exception line of a failed trial's traceback (error.txt), or its status."""
    path = trial.error_file
    if path and os.path.exists(path):
        lines = [line for line in open(path).read().splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return "failed without an error file"


def _record(trial: Any, config: dict) -> TrialRecord:
    metrics = trial.last_result or {}
    epochs = int(metrics.get("epoch", 0))
    if trial.status == "ERROR":
        status = "failed"
    elif metrics.get("diverged"):
        status = "diverged"
    elif epochs >= config["train"]["max_epochs"]:
        status = "finished"
    elif trial.status != "TERMINATED":
        status = "unfinished"
    else:
        status = "stopped early"
    return TrialRecord(
        trial_id=trial.trial_id,
        status=status,
        metric=metrics.get(config["metric"]) if status != "diverged" else None,
        epochs=epochs,
        test_acc=metrics.get("test_acc"),
        tuned=tuned_values(trial.config),
        error=_error_line(trial) if status == "failed" else None,
        failures=trial.num_failures,
        path=trial.path,
    )


def best_record(records: list[TrialRecord], mode: str) -> TrialRecord | None:
    """The trial with the best final metric; failed and diverged trials never win."""
    ranked = [r for r in records if r.status in ("finished", "stopped early")
              and r.metric is not None and math.isfinite(r.metric)]
    if not ranked:
        return None
    return (max if mode == "max" else min)(ranked, key=lambda record: record.metric)


def baseline_record(records: list[TrialRecord], config: dict,
                    dims: list[Dimension]) -> TrialRecord | None:
    """The trial that ran the config's own default values."""
    from hypersweep.dotted import leaves

    defaults = dict(leaves(baseline_point(config, dims)))
    return next((r for r in records if r.tuned == defaults), None)


def save_summary(config: dict, records: list[TrialRecord], best: TrialRecord | None,
                 baseline: TrialRecord | None) -> str:
    """Write summary.json into the experiment directory and return its path."""
    path = os.path.join(experiment_dir(config), SUMMARY_FILE)
    write_json(path, {
        "metric": config["metric"],
        "mode": config["mode"],
        "best": asdict(best) if best else None,
        "baseline": asdict(baseline) if baseline else None,
        "trials": [asdict(record) for record in records],
    })
    return path
