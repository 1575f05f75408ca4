"""A trainable whose steps take a known time (a sleep), for testing checkpoints by time."""

import os
import time

from ray import tune

STEP_SECONDS = 0.1


class SteadySteps(tune.Trainable):
    """Reports after each STEP_SECONDS of sleep, until train.max_epochs; a checkpoint holds the
    iteration it was taken at."""

    def setup(self, config: dict, data=None):
        self.max_epochs = config["train"]["max_epochs"]

    def reset_config(self, new_config: dict) -> bool:
        self.setup(new_config)
        return True  # its process goes on to the next trial (hypersweep reuses trial actors)

    def step(self) -> dict:
        time.sleep(STEP_SECONDS)
        return {"val_acc": 0.5, "epoch": self.iteration + 1,
                "done": self.iteration + 1 >= self.max_epochs}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "iteration"), "w") as handle:
            handle.write(str(self.iteration))

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        pass


class CountsWaitingPlacementGroups(SteadySteps):
    """Reports, with each step, how many placement groups wait for resources in Ray: one for each
    trial Ray Tune has made ahead of a free slot."""

    def step(self) -> dict:
        from ray.util import placement_group_table

        waiting = sum(group["state"] == "PENDING" for group in placement_group_table().values())
        return {**super().step(), "waiting_placement_groups": waiting}
