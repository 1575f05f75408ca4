"""Each trial's reports, appended to `trial_<id>/result.json` in the experiment directory.

Ray's JsonLoggerCallback writes to a staging copy and, whenever a trial restarts from a
checkpoint (a pause, a PBT exploit, a retry), copies the experiment's older file back over it:
the reports since the last sync are lost. This log appends straight to the experiment's file
and never reads it back, so every report a trial made is there, in order.
"""

import json
import os
from typing import Any

from ray.tune import Callback

RESULT_FILE = "result.json"


class ResultLog(Callback):
    """Appends every result of every trial as one JSON line to its result.json."""

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        os.makedirs(trial.path, exist_ok=True)
        line = json.dumps(result, default=str)
        with open(os.path.join(trial.path, RESULT_FILE), "a") as handle:
            handle.write(line + "\n")
