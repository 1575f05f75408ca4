"""Finished trials leave the driver's memory: their final state waits on disk for the snapshots.

Ray Tune holds every trial of a sweep until the sweep ends: the Trial object (its config, last
result, metric summaries and checkpoints, about 14 KB once finished_trials.py has trimmed it) and
its state encoded as JSON for the snapshot (13 KB). The driver grew by 0.031 MiB a trial: 62 MiB
for 2,000 trials, 3 GiB for 100,000. Once a trial has finished, nothing of Ray's needs it again
but the snapshot, which writes every trial's state each time, and the end of `tune.run`, whose
analysis of every trial hypersweep does not use (its records come from the snapshot).

So after each step of Ray's loop, every trial that has finished (TERMINATED, its actor released)
has its final state appended to a temporary file, and Ray forgets it. Each snapshot writes the
states from that file, then those of the trials Ray still holds: the same document Ray writes. A
failed trial stays in memory, as Ray keeps it: a resume may retry it, and failures are few.
"""

import itertools
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypersweep.replaced import replaced


class FinishedTrialStates:
    """The snapshot states ([state JSON, run metadata JSON], as Ray encodes them) of the trials
    that finished, one line each in a temporary file that goes when the driver ends."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile("a+", encoding="utf-8")
        self.count = 0

    def add(self, state: tuple[str, str]) -> None:
        """Keep one finished trial's snapshot state."""
        self._file.write(json.dumps(list(state)) + "\n")
        self.count += 1

    def encoded(self) -> Iterator[str]:
        """Each kept state as a JSON array, in the order they were added."""
        self._file.seek(0)
        for line in self._file:
            yield line.rstrip("\n")

    def close(self) -> None:
        self._file.close()


# The store of the sweep running in this process (one at a time: a Hydra multirun runs its jobs
# one after another); None outside a sweep.
_current: FinishedTrialStates | None = None


def finished_on_disk() -> int:
    """How many of the running sweep's trials have finished and left the driver's memory."""
    return _current.count if _current is not None else 0


def forget_finished(controller: Any, store: FinishedTrialStates) -> None:
    """Move each trial of Ray Tune's `controller` that has finished, and whose actor Ray has
    released, from the controller's memory to `store`."""
    from ray.tune.experiment import Trial

    finished = [trial for trial in controller._stopped_trials
                if trial.status == Trial.TERMINATED and trial not in controller._trial_to_actor]
    if not finished:
        return
    for trial in finished:
        store.add(trial.get_json_state())
        controller._stopped_trials.discard(trial)
        controller._trials_to_cache.discard(trial)
        controller._trial_metadata.pop(trial.trial_id, None)
    leaving = set(finished)
    controller._trials[:] = [trial for trial in controller._trials if trial not in leaving]


def save_snapshot(controller: Any, store: FinishedTrialStates) -> None:
    """Ray Tune's TuneController.save_to_dir, with the finished trials' states read from `store`:
    the same document, written one trial at a time."""
    from ray.tune.utils.serialization import TuneFunctionEncoder

    staging = controller._storage.experiment_driver_staging_path
    os.makedirs(staging, exist_ok=True)
    held = (json.dumps(list(state)) for state in controller._get_trial_checkpoints().values())
    with open(Path(staging, controller.experiment_state_file_name), "w") as handle:
        handle.write('{"trial_data": [')
        for index, trial_state in enumerate(itertools.chain(store.encoded(), held)):
            handle.write(", " + trial_state if index else trial_state)
        handle.write('], "runner_data": ')
        json.dump(controller.__getstate__(), handle, cls=TuneFunctionEncoder)
        handle.write(', "stats": ')
        json.dump({"start_time": controller._start_time}, handle)
        handle.write("}")
    controller._search_alg.save_to_dir(staging, session_str=controller._session_str)
    controller._callbacks.save_to_dir(staging, session_str=controller._session_str)


@contextmanager
def finished_trials_on_disk() -> Iterator[FinishedTrialStates]:
    """Inside the block, Ray Tune keeps the trials that finished on disk instead of in memory
    (see the module's docstring); the store goes at the end of the block."""
    from ray.tune.execution.tune_controller import TuneController

    global _current
    store = FinishedTrialStates()
    step = TuneController.step  # Ray 2.x, as is save_to_dir, which save_snapshot replaces whole

    def step_then_forget(controller: TuneController) -> None:
        step(controller)
        forget_finished(controller, store)

    def save_with_finished(controller: TuneController) -> None:
        save_snapshot(controller, store)

    _current = store
    try:
        with replaced(TuneController, "step", step_then_forget), \
                replaced(TuneController, "save_to_dir", save_with_finished):
            yield store
    finally:
        _current = None
        store.close()
