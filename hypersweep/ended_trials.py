"""Each trial's end, saved the moment it ends, so that a killed driver never runs it again.

Ray Tune saves a trial's end only with its next snapshot of the whole experiment, every
`snapshot_seconds` per 100 trials (experiment.snapshot_period). A driver killed in between left a
snapshot in which the trial was still running: the resume ran it again from the checkpoint that
snapshot named, and a trial that ASHA had stopped trained on to the end, since the resumed ASHA
never saw it reach that rung again (seen in CI: a trial's metric went from 0.8583 to 0.9722).

As a trial ends, hypersweep appends its state, exactly as Ray's snapshot would hold it, to
`ended_trials.jsonl` in the experiment, before the trial's line is printed. A resume takes that
state in place of the snapshot's older one for every trial the snapshot still held as unfinished,
and restores as ended every trial that started after the snapshot and ended before the kill,
which no snapshot holds; restored_search.py then tells the search that these trials have ended
(and replays the suggestions its saved state had not made yet, so that it makes none again).

Limits: in a bucket the file goes up with Ray's snapshots, so there a trial's end is saved with the
next snapshot only.
"""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ray.tune import Callback

from hypersweep.replaced import replaced
from hypersweep.restored_search import creation_number
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


def read_trial_ends(path: str) -> dict[str, list[str]]:
    """The [state, metadata] with which each trial ended, as Ray encodes them, by trial id, in the
    order they ended, from the file at `path`; a trial it does not hold has not ended.

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
            ends[entry["trial_id"]] = [entry["state"], entry["metadata"]]
    return ends


def with_saved_ends(controller: Any, trials: list[Any], restore: Any) -> list[Any]:
    """`trials`, restored from Ray's snapshot, with the trials that ended_trials.jsonl holds as
    ended and the snapshot does not, in the state they ended with, marked TERMINATED: in place of
    the snapshot's unfinished ones, and after all the others for those it does not hold at all
    (in the order they were created, as Ray lists its trials).

    `restore` is Ray's TuneController._restore_trials, which turns snapshot entries into trials.
    """
    from ray.tune.experiment import Trial

    held = {trial.trial_id: index for index, trial in enumerate(trials)}
    unfinished = {trial.trial_id for trial in trials if trial.status not in (Trial.TERMINATED, Trial.ERROR)}
    saved = [ended for trial_id, ended in read_trial_ends(live_file(controller._storage, ENDED_FILE)).items()
             if trial_id in unfinished or trial_id not in held]
    if not saved:
        return trials
    timestamp = controller._storage._timestamp  # Ray's restore sets it from the first trial it gets
    unseen = []
    for ended in restore(controller, {"trial_data": saved}):
        ended.set_status(Trial.TERMINATED)
        if ended.trial_id in held:
            trials[held[ended.trial_id]] = ended
        else:
            unseen.append(ended)
    controller._storage._timestamp = timestamp
    trials.extend(sorted(unseen, key=lambda trial: creation_number(trial) or 0))
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
