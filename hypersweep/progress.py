"""A compact console view of a running sweep: one line per ended trial, instead of Ray's tables."""

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ray.tune import Callback

from hypersweep.replaced import replaced
from hypersweep.summary import tuned_text
from hypersweep.trials_on_disk import finished_on_disk
from schedulers.space import tuned_values

ENDED = ("TERMINATED", "ERROR")  # Ray's statuses of a trial that has ended


def _ranked_value(trial: Any, metric: str) -> float | None:
    """What an ended trial adds to the best so far: its last metric, unless it failed or diverged."""
    result = trial.last_result or {}
    return None if trial.status != "TERMINATED" or result.get("diverged") else result.get(metric)


@contextmanager
def without_ray_banner() -> Iterator[None]:
    """Inside the block, Ray Tune prints no box as an experiment starts.

    Even silenced (verbose=0), Ray's console reporter printed one naming its own classes
    ("Search algorithm  SearchedValuesTags", "Scheduler  BaselineASHA"), then "View detailed
    results here: ..." and, at the end, a blank line: hypersweep's plan says the same in the
    user's terms, and its outcome where the experiment is.
    """
    from ray.tune.experimental.output import TuneTerminalReporter

    with replaced(TuneTerminalReporter, "experiment_started", lambda self, *args, **kwargs: None):
        yield


class TrialLines(Callback):
    """Prints `[ended/total] trial ... status ... | best so far` as each trial ends."""

    def __init__(self, config: dict, total: int):
        self.metric, self.mode = config["metric"], config["mode"]
        self.max_epochs = config["train"]["max_epochs"]
        self.total = total
        self.best: float | None = None
        self.started = time.monotonic()
        self.ended_before: int | None = None  # trials that had ended before this run started

    def setup(self, total_num_samples: int | None = None, **info: Any) -> None:
        # Ray restores callbacks with the experiment, as they were when it began: a resumed run
        # starts its clock afresh, learns what ended before it at its first step, and takes the
        # total from the search, which a larger num_samples has grown since.
        self.best, self.started, self.ended_before = None, time.monotonic(), None
        self.total = total_num_samples or self.total

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self.ended_before is not None:
            return
        # A resumed run's first step still holds every trial restored as ended (they leave the
        # driver's memory after it: trials_on_disk.py). Their best is the best so far, and the
        # time left is paced by the trials that end in this run only.
        ended = [trial for trial in trials if trial.status in ENDED]
        self.ended_before = len(ended)
        for trial in ended:
            self._count_for_best(_ranked_value(trial, self.metric))

    def _count_for_best(self, value: float | None) -> bool:
        """Make a finite `value` that beats the best so far the best; whether it did."""
        if value is None or not math.isfinite(value):
            return False
        if self.best is not None and (value <= self.best if self.mode == "max" else value >= self.best):
            return False
        self.best = value
        return True

    def _print(self, trial: Any, status: str, value: float | None, trials: list) -> None:
        # Counted from the trials, not kept: a resumed sweep starts with some already ended. Ray
        # no longer holds those that finished before this one (trials_on_disk.py).
        others = [t for t in trials if t is not trial]
        ended = 1 + finished_on_disk() + sum(t.status in ENDED for t in others)
        running = sum(t.status == "RUNNING" for t in others)
        pending = self.total - ended - running
        improved = self._count_for_best(value)
        shown = f"{self.metric} {value:.4f}" if value is not None and math.isfinite(value) else ""
        best = f"best {self.best:.4f}" if self.best is not None else "no best yet"
        elapsed = time.monotonic() - self.started
        left = elapsed / max(1, ended - (self.ended_before or 0)) * (self.total - ended)
        count = f"{ended:>{len(str(self.total))}}/{self.total}"  # [ 1/32]: the columns line up
        print(f"[{count}] {trial.trial_id} {status:<14} {shown:<16} | {best} | "
              f"{running} running, {pending} to go | {elapsed:.0f}s, ~{left:.0f}s left", flush=True)
        if improved:
            print(f"    new best: {tuned_text(tuned_values(trial.config))}", flush=True)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if result.get("diverged"):
            self._print(trial, "diverged", None, trials)
            return
        epochs = result.get("epoch", 0)
        status = "finished" if epochs >= self.max_epochs else f"stopped@{epochs}"
        self._print(trial, status, result.get(self.metric), trials)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._print(trial, "failed", None, trials)
