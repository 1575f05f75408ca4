"""Build (or restore) the Ray Tune experiment from a validated config, and run it."""

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any

from hypersweep.errors import ExperimentError
from schedulers.searchers import build_search
from schedulers.space import (
    Dimension,
    baseline_point,
    discrete_combinations,
    param_space,
    tuned_values,
)
from schedulers.trial_schedulers import build_scheduler
from trainables.targets import build
from trainables.trainable import TorchTrainable, experiment_dir

SWEEP_FILE = "sweep.json"  # the plain config the experiment was started with
SUMMARY_FILE = "summary.json"
# Keys that may change between the run that starts a sweep and the one that resumes it.
RESUMABLE_CHANGES = ("cluster", "storage_path")


@dataclass
class TrialRecord:
    """One trial as the summary and the report see it: plain values only."""

    trial_id: str
    status: str  # finished | stopped early | diverged | failed
    metric: float | None
    epochs: int
    test_acc: float | None
    tuned: dict[str, Any]
    error: str | None
    path: str


def planned_trials(config: dict, dims: list[Dimension]) -> int:
    """How many trials the sweep will run: num_samples, times the grid for grid search."""
    if config["search"]["name"] == "grid":
        return discrete_combinations(dims) * config["num_samples"]
    return config["num_samples"]


def _comparable(config: dict) -> dict:
    return {key: value for key, value in config.items() if key not in RESUMABLE_CHANGES}


def _first_difference(old: dict, new: dict, prefix: str = "") -> str | None:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = _first_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key}: {a!r} -> {b!r}"
    return None


def check_resumable(config: dict) -> bool:
    """True when the experiment directory holds this same sweep (resume it); False when new.

    Raises ExperimentError when it holds a different sweep, which must never be overwritten.
    """
    from ray.tune import Tuner

    path = experiment_dir(config)
    saved = os.path.join(path, SWEEP_FILE)
    if not os.path.exists(saved):
        return False
    with open(saved) as handle:
        difference = _first_difference(_comparable(json.load(handle)), _comparable(config))
    if difference:
        raise ExperimentError(f"name: {path} holds a sweep with other settings ({difference}); "
                              f"choose a new name=... or delete that directory")
    if not Tuner.can_restore(path):
        raise ExperimentError(f"name: {path} has {SWEEP_FILE} but no Ray Tune state to resume; "
                              f"choose a new name=... or delete that directory")
    return True


def _write_json(path: str, data: Any) -> None:
    # Write then rename: a crash never leaves a half-written file behind.
    with open(path + ".tmp", "w") as handle:
        json.dump(data, handle, indent=2, default=str)
    os.replace(path + ".tmp", path)


def run(config: dict, dims: list[Dimension], resume: bool) -> list[TrialRecord]:
    """Run the sweep (or resume it) and return a record per trial."""
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from hypersweep.progress import TrialLines

    # TorchTrainable writes TensorBoard itself, live and by dotted name; Ray's own TensorBoard
    # logger would add a second, differently named copy of every run.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    # Every trial checkpoints at its end, which forces a state snapshot: that is what makes a
    # resume lose nothing, so Ray's "snapshotting may become a bottleneck" warning is expected.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    data = build(config["data"], seed=config["seed"])
    trainable = tune.with_resources(
        tune.with_parameters(TorchTrainable, data=data),
        {"cpu": config["resources"]["cpu"], "gpu": config["resources"]["gpu"]},
    )
    path = experiment_dir(config)
    if resume:
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True,
                                   resume_errored=False)
    else:
        os.makedirs(path, exist_ok=True)
        _write_json(os.path.join(path, SWEEP_FILE), config)
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
                callbacks=[JsonLoggerCallback(), CSVLoggerCallback(),
                           TrialLines(config, total=planned_trials(config, dims))],
                verbose=0,
            ),
        )
    results = tuner.fit()
    records = [_record(result, config) for result in results]
    return sorted(records, key=lambda record: record.trial_id)


def _trial_name(trial: Any) -> str:
    # Ray's default names pack the whole config into the directory name.
    return f"trial_{trial.trial_id}"


def _record(result: Any, config: dict) -> TrialRecord:
    metrics = result.metrics or {}
    trial_config = result.config or {}
    epochs = int(metrics.get("epoch", 0))
    if result.error is not None:
        status = "failed"
    elif metrics.get("diverged"):
        status = "diverged"
    elif epochs >= config["train"]["max_epochs"]:
        status = "finished"
    else:
        status = "stopped early"
    metric = metrics.get(config["metric"])
    # The traceback's last line is the exception itself: the part worth a line in the summary.
    error = str(result.error).strip().splitlines()[-1] if result.error is not None else None
    return TrialRecord(
        trial_id=metrics.get("trial_id") or os.path.basename(result.path).split("_", 1)[-1],
        status=status,
        metric=metric if status != "diverged" else None,
        epochs=epochs,
        test_acc=metrics.get("test_acc"),
        tuned=tuned_values(trial_config) if trial_config else {},
        error=error,
        path=result.path,
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
    _write_json(path, {
        "metric": config["metric"],
        "mode": config["mode"],
        "best": asdict(best) if best else None,
        "baseline": asdict(baseline) if baseline else None,
        "trials": [asdict(record) for record in records],
    })
    return path
