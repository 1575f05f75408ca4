"""Each trial's reports, appended to `trial_<id>/result.json` in the experiment.

Ray's JsonLoggerCallback writes to a staging copy and, whenever a trial restarts from a
checkpoint (a pause, a PBT exploit, a retry), copies the experiment's older file back over it:
the reports since the last sync are lost. This log appends straight to the experiment's file
(for a URI, to the copy Ray uploads with each snapshot: storage.live_file).

A trial that goes on from its last checkpoint (after the driver was killed, or after it raised)
repeats the reports it made after that checkpoint; their state was lost with the process. The
first report after such a restart replaces the rows it repeats, so the file holds one row per
iteration: the history of the weights the trial has now. The replaced rows move to
`replaced.json` beside it; nothing is deleted. A trial that had ended just before the driver
died reports its end again (TorchTrainable trains nothing more): that report is not repeated.
"""

import json
import os
from typing import Any

from ray.tune import Callback

from hypersweep.storage import live_file, publish

RESULT_FILE = "result.json"
REPLACED_FILE = "replaced.json"


class ResultLog(Callback):
    """Appends every result of every trial as one JSON line to its result.json."""

    def __init__(self) -> None:
        self.continuing: set[str] = set()  # trials whose next report follows on the file's rows

    def setup(self, **info: Any) -> None:
        # Ray calls this when the experiment starts and when it is resumed: a resumed trial's
        # first report may repeat rows that are already in its file.
        self.continuing = set()

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.continuing.discard(trial.trial_id)  # it goes on from its last checkpoint

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.continuing.discard(trial.trial_id)  # no report follows: keep nothing per ended trial

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        folder = trial.storage.trial_dir_name
        path = live_file(trial.storage, f"{folder}/{RESULT_FILE}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if trial.trial_id not in self.continuing:
            self.continuing.add(trial.trial_id)
            if not _follow_on(path, live_file(trial.storage, f"{folder}/{REPLACED_FILE}"), result):
                _drop_config(result)
                return  # it ended just before the driver died; the end is already recorded
        with open(path, "a") as handle:
            handle.write(json.dumps(result, default=str) + "\n")
        _drop_config(result)


    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any,
                      **info: Any) -> None:
        # Ray calls this before it counts the checkpoint (and deletes older ones): on a bucket,
        # the results up to it go up first, so a restore from it never skips a report.
        publish(trial.storage, f"{trial.storage.trial_dir_name}/{RESULT_FILE}")


def _drop_config(result: dict) -> None:
    """Ray keeps a copy of the trial's whole config in every result it holds (and in the JSON of
    its snapshots) next to the trial's own config: once written to the file, it goes."""
    result.pop("config", None)


def _follow_on(path: str, replaced: str, result: dict) -> bool:
    """Make the file ready for a trial's first report after a restart; False when that report
    is the trial's end again (already the file's last row) and must not be written.

    The trailing rows at or after the report's iteration are made again by it: they move to
    `replaced` (replaced.json).
    """
    if not os.path.exists(path):
        return True
    with open(path) as handle:
        rows = handle.read().splitlines()
    last = json.loads(rows[-1]) if rows else {}
    if last.get("done") and "epoch" in last and last["epoch"] == result.get("epoch"):
        return False
    iteration = result.get("training_iteration", 0)
    kept = list(rows)
    while kept and json.loads(kept[-1]).get("training_iteration", 0) >= iteration:
        kept.pop()
    if len(kept) < len(rows):
        with open(replaced, "a") as handle:
            handle.writelines(row + "\n" for row in rows[len(kept):])
        with open(path + ".tmp", "w") as handle:
            handle.writelines(row + "\n" for row in kept)
        os.replace(path + ".tmp", path)
    return True
