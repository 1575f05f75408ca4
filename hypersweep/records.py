"""What an experiment directory says about its trials, read from JSON files only.

Ray's experiment-state snapshot (`experiment_state-*.json`) gives each trial's status, config and
failure count; `trial_<id>/result.json` its reports; `trial_<id>/error.txt` its traceback. Reading
them needs neither Ray running nor unpickling anything, so the summary and the report work on a
finished, interrupted or still running experiment alike.
"""

import glob
import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any

from hypersweep.paths import SUMMARY_FILE
from hypersweep.resume import write_json
from hypersweep.snapshot import snapshot_trials
from schedulers.pbt import read_lineage
from schedulers.space import tuned_values

RANKED = ("finished", "stopped early")


@dataclass
class TrialRecord:
    """One trial as the summary and the report see it: plain values only."""

    trial_id: str
    status: str  # finished | stopped early | diverged | failed | unfinished
    metric: float | None  # the last reported value; None when diverged or never reported
    best_metric: float | None  # the best value it reported on the way
    epochs: int
    test_acc: float | None
    tuned: dict[str, Any]  # the values it ended with
    started_with: dict[str, Any]  # the values it started with (PBT changes them on the way)
    error: str | None
    failures: int  # times it raised; each retry went on from its last checkpoint
    path: str


def trial_rows(path: str) -> list[dict]:
    """Every report of one trial (its result.json), oldest first."""
    results = os.path.join(path, "result.json")
    if not os.path.exists(results):
        return []
    with open(results) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _error_line(trial_path: str) -> str:
    """The exception line of a failed trial's traceback (error.txt)."""
    path = os.path.join(trial_path, "error.txt")
    if os.path.exists(path):
        lines = [line.strip() for line in open(path).read().splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "failed without an error file"


def _best(values: list[float], mode: str) -> float | None:
    finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if mode == "max" else min(finite)


def _record(trial: dict, meta: dict, experiment: str, config: dict,
            starts: dict[str, dict]) -> TrialRecord:
    trial_id = trial["trial_id"]
    path = os.path.join(experiment, f"trial_{trial_id}")
    last = meta.get("last_result") or {}
    epochs = int(last.get("epoch", last.get("training_iteration", 0)))
    if trial["status"] == "ERROR":
        status = "failed"
    elif last.get("diverged"):
        status = "diverged"
    elif epochs >= config["train"]["max_epochs"]:
        status = "finished"
    elif trial["status"] != "TERMINATED":
        status = "unfinished"
    else:
        status = "stopped early"
    metric_name = config["metric"]
    ranked = status != "diverged"
    return TrialRecord(
        trial_id=trial_id,
        status=status,
        metric=last.get(metric_name) if ranked else None,
        best_metric=_best([row.get(metric_name) for row in trial_rows(path)], config["mode"])
        if ranked else None,
        epochs=epochs,
        test_acc=last.get("test_acc"),
        tuned=tuned_values(trial["config"]),
        started_with=starts.get(trial_id, tuned_values(trial["config"])),
        error=_error_line(path) if status == "failed" else None,
        failures=int(meta.get("num_failures", 0)),
        path=path,
    )


def load_records(experiment: str, config: dict) -> list[TrialRecord]:
    """A record per trial of the experiment at `experiment`, by trial id."""
    snapshots = sorted(glob.glob(os.path.join(experiment, "experiment_state-*.json")))
    if not snapshots:
        return []
    starts = {event["trial_id"]: event["tuned"] for event in read_lineage(experiment)
              if event["event"] == "start"}
    records = [_record(trial, meta, experiment, config, starts)
               for trial, meta in snapshot_trials(snapshots[-1])]
    return sorted(records, key=lambda record: record.trial_id)


def best_record(records: list[TrialRecord], mode: str) -> TrialRecord | None:
    """The trial with the best final metric; failed and diverged trials never win."""
    ranked = [r for r in records if r.status in RANKED and r.metric is not None
              and math.isfinite(r.metric)]
    if not ranked:
        return None
    return (max if mode == "max" else min)(ranked, key=lambda record: record.metric)


def gain(best: TrialRecord | None, baseline: TrialRecord | None, mode: str) -> float | None:
    """How much the best trial beat the baseline in the direction the sweep optimizes (for
    mode=min, how much lower it ended): positive is better. None unless both have a metric."""
    if best is None or baseline is None or best.metric is None or baseline.metric is None:
        return None
    return best.metric - baseline.metric if mode == "max" else baseline.metric - best.metric


def gain_text(amount: float, mode: str, metric: str) -> str:
    """A gain (see `gain`) in words: 'tuning gained +0.0056', or for mode=min 'tuning lowered
    val_loss by 0.4552' (a signed loss would read as a setback)."""
    if mode == "max":
        return f"tuning gained {amount:+.4f}"
    return f"tuning {'lowered' if amount >= 0 else 'raised'} {metric} by {abs(amount):.4f}"


def baseline_record(records: list[TrialRecord], config: dict) -> TrialRecord | None:
    """The trial that started with the config's own default values."""
    defaults = tuned_values(config)  # the config's own values, conditional ones only if active
    return next((r for r in records if r.started_with == defaults), None)


def save_summary(config: dict, experiment: str, records: list[TrialRecord],
                 best: TrialRecord | None, baseline: TrialRecord | None) -> str:
    """Write summary.json into the experiment directory and return its path."""
    path = os.path.join(experiment, SUMMARY_FILE)
    write_json(path, {
        "metric": config["metric"],
        "mode": config["mode"],
        "best": asdict(best) if best else None,
        "baseline": asdict(baseline) if baseline else None,
        "trials": [asdict(record) for record in records],
    })
    return path
