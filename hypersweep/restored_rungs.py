"""A resumed sweep's ASHA holds at its rungs what the trials reported before the resume.

Ray Tune's snapshot saves no scheduler state: a resumed sweep's ASHA started with empty rungs. The
first trial to reach a rung after the resume always went on, the next ones were measured only
against the trials that came after the resume, and a trial that went on from a checkpoint past a
rung was measured there against nothing: the resumed sweep trained on trials that the sweep
before would have stopped. hypersweep plays each restored trial's earlier reports (its
result.json) through ASHA's own rung bookkeeping, in the order they came, so each rung holds what
it held when the driver stopped.
"""

import json
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypersweep.replaced import replaced
from hypersweep.result_log import RESULT_FILE


def stored_reports(trial: Any) -> list[dict]:
    """The reports `trial` made, oldest first, as its result.json in the experiment holds them
    (in a bucket, as last uploaded)."""
    storage = trial.storage
    path = posixpath.join(storage.experiment_fs_path, storage.trial_dir_name, RESULT_FILE)
    try:
        with storage.storage_filesystem.open_input_stream(path) as stream:
            text = stream.readall().decode()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def replay_reports(scheduler: Any, trial: Any, reports: list[dict]) -> int:
    """Record `reports` (oldest first) at the rungs of the ASHA bracket `scheduler` gave `trial`,
    as ASHA recorded them when they came; how many it recorded."""
    from ray.tune.utils import flatten_dict

    bracket = scheduler._trial_info.get(trial.trial_id)  # Ray 2.x; tests check it is still there
    if bracket is None:
        return 0
    time_attr, metric = scheduler._time_attr, scheduler._metric
    before = sum(len(entries) for _, entries in bracket._rungs)
    for report in map(flatten_dict, reports):  # as Ray passes them to its scheduler
        value = report.get(metric)
        if time_attr in report and isinstance(value, int | float):
            bracket.on_result(trial, report[time_attr], scheduler._metric_op * value)
    return sum(len(entries) for _, entries in bracket._rungs) - before


@contextmanager
def asha_rungs_restored() -> Iterator[None]:
    """Inside the block, Ray Tune's resume of an experiment ends with the restored trials' reports
    played through its ASHA scheduler (replay_reports), and says how many it recorded."""
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.schedulers import AsyncHyperBandScheduler

    resume = TuneController.resume  # Ray 2.x; tests check it is still there

    def resume_and_replay(controller: TuneController, resume_config: Any) -> None:
        resume(controller, resume_config)
        scheduler = controller._scheduler_alg
        if not isinstance(scheduler, AsyncHyperBandScheduler):
            return
        counts = [replay_reports(scheduler, trial, stored_reports(trial))
                  for trial in controller.get_trials()]
        print(f"ASHA's rungs hold {sum(counts)} results of {sum(1 for n in counts if n)} trials "
              f"from before the resume", flush=True)

    with replaced(TuneController, "resume", resume_and_replay):
        yield
