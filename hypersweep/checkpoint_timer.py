"""Checkpoints by training time: a trial checkpoints once `checkpoint.seconds` of its training
have passed since its last checkpoint, however short or long its steps.

Ray counts checkpoints in reports (`checkpoint.frequency`), and snapshots the whole experiment
every `num_to_keep` checkpoints of a trial. With epochs of 50 ms, a checkpoint per epoch made the
driver snapshot 128 trials hundreds of times (a tenth of its time) and the trial processes spend
5% of theirs saving, to bound what a resume loses to one 50-ms epoch.
"""

from typing import Any

from ray.tune import Callback
from ray.tune.result import SHOULD_CHECKPOINT, TIME_THIS_ITER_S, TIME_TOTAL_S


class CheckpointTimer(Callback):
    """Asks Ray for a checkpoint of a trial once it has trained `seconds` since its last one."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.checkpointed_at: dict[str, float] = {}  # trial id -> its training time then

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        trained = result.get(TIME_TOTAL_S, 0.0)
        # A trial not seen yet in this run (a new one, or one resumed from its checkpoint)
        # counts from the start of this report's step.
        since = self.checkpointed_at.setdefault(trial.trial_id,
                                                trained - result.get(TIME_THIS_ITER_S, 0.0))
        if trained - since >= self.seconds:
            result[SHOULD_CHECKPOINT] = True  # Ray reads it after the callbacks have run

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any,
                      **info: Any) -> None:
        self.checkpointed_at[trial.trial_id] = trial.last_result.get(TIME_TOTAL_S, 0.0)
