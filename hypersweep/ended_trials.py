"""Each trial's end, saved the moment it ends, so that a killed driver never runs it again.

Ray Tune saves a trial's end only with its next snapshot of the whole experiment, every
`snapshot_seconds` per 100 trials (experiment.snapshot_period). A driver killed in between left a
snapshot in which the trial was still running: the resume ran it again from the checkpoint that
snapshot named, and a trial that ASHA had stopped trained on to the end, since the resumed ASHA
never saw it reach that rung again (seen in CI: a trial's metric went from 0.8583 to 0.9722).

As a trial ends, hypersweep appends its state, exactly as Ray's snapshot would hold it, to
`ended_trials.jsonl` in the experiment, before the trial's line is printed. A resume takes that
state in place of the snapshot's older one for every trial the snapshot still held as unfinished;
restored_search.py then tells the search that these trials have ended.

Limits: a trial that started after the last snapshot and ended before the kill is in no snapshot,
and the search state saved with it never suggested it: it runs again, as before. In a bucket the
file goes up with Ray's snapshots, so there a trial's end is saved with the next snapshot only.
"""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ray.tune import Callback

from hypersweep.replaced import replaced
from hypersweep.storage import live_file

ENDED_FILE = "ended_trials.jsonl"


class SaveTrialEnds(Callback):
    """Appends each trial that ends (finished or stopped early) to the experiment's ended_trials.jsonl.

    A trial that failed is left to Ray's snapshot: a resume may retry it (resume_failed).
    """

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Ray's own encoding, as its snapshot writes it (and cached for that snapshot). Ray calls
        # this before it marks the trial TERMINATED: the resume marks it.
        state, metadata = trial.get_json_state()
        line = json.dumps({"trial_id": trial.trial_id, "state": state, "metadata": metadata})
        with open(live_file(trial.storage, ENDED_FILE), "a") as handle:
            handle.write(line + "\n")


def read_trial_ends(path: str, trial_ids: set[str]) -> dict[str, list[str]]:
    """The [state, metadata] with which each of `trial_ids` ended, as Ray encodes them, by trial
    id, from the file at `path`; a trial it does not hold has not ended.

    A line the killed driver left half-written is skipped: that trial's end was not saved.
    """
    ends: dict[str, list[str]] = {}
    if not os.path.exists(path):
        return ends
    with open(path) as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry["trial_id"] in trial_ids:
                ends[entry["trial_id"]] = [entry["state"], entry["metadata"]]
    return ends


def with_saved_ends(controller: Any, trials: list[Any], restore: Any) -> list[Any]:
    """`trials`, restored from Ray's snapshot, with each one the snapshot holds as unfinished but
    ended_trials.jsonl holds as ended in the state it ended with, marked TERMINATED.

    `restore` is Ray's TuneController._restore_trials, which turns snapshot entries into trials.
    """
    from ray.tune.experiment import Trial

    unfinished = {trial.trial_id: index for index, trial in enumerate(trials)
                  if trial.status not in (Trial.TERMINATED, Trial.ERROR)}
    saved = list(read_trial_ends(live_file(controller._storage, ENDED_FILE), set(unfinished)).values())
    if not saved:
        return trials
    timestamp = controller._storage._timestamp  # Ray's restore sets it from the first trial it gets
    for ended in restore(controller, {"trial_data": saved}):
        ended.set_status(Trial.TERMINATED)
        trials[unfinished[ended.trial_id]] = ended
    controller._storage._timestamp = timestamp
    trials_had = "1 trial had" if len(saved) == 1 else f"{len(saved)} trials had"
    print(f"{trials_had} ended after the last snapshot: saved as ended, not run again", flush=True)
    return trials


@contextmanager
def trial_ends_restored() -> Iterator[None]:
    """Inside the block, Ray Tune's resume of an experiment restores the trials that ended after
    its last snapshot as ended (with_saved_ends)."""
    from ray.tune.execution.tune_controller import TuneController

    restore = TuneController._restore_trials  # Ray 2.x; tests check it is still there

    def restore_with_ends(controller: TuneController, experiment_state: dict) -> list[Any]:
        return with_saved_ends(controller, restore(controller, experiment_state), restore)

    with replaced(TuneController, "_restore_trials", restore_with_ends):
        yield
