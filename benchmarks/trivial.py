"""A trainable that does no work: one report, then done. What is left is framework overhead."""

import os
import time

from hypersweep.deferred_imports import defer_unused_imports

# As in hypersweep's own trainables package: the trial processes import this module before Ray
# Tune, and need the code of neither pandas nor Ray Data, which Ray Tune imports.
defer_unused_imports()

from ray import tune  # noqa: E402


class Trivial(tune.Trainable):
    """Reports one metric at once and ends; checkpoints are a few bytes."""

    def setup(self, config: dict, data=None):
        self.value = float(config.get("x", 0.5))

    def reset_config(self, new_config: dict) -> bool:
        self.value = float(new_config.get("x", 0.5))
        return True

    def step(self) -> dict:
        return {"val_acc": self.value, "epoch": 1, "done": True}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "value"), "w") as handle:
            handle.write(str(self.value))

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "value")) as handle:
            self.value = float(handle.read())


class Busy(Trivial):
    """One second of real CPU work (a busy loop), then one report: a CPU-bound trial of known size."""

    SECONDS = 1.0

    def step(self) -> dict:
        started = time.process_time()
        while time.process_time() - started < self.SECONDS:
            pass
        return {"val_acc": self.value, "epoch": 1, "done": True, "busy_s": self.SECONDS}


class Sleeper(Trivial):
    """One second of sleep, then one report: a trial that takes a slot but not a real CPU, so a
    simulated cluster can declare more CPUs than the machine has."""

    SECONDS = 1.0

    def step(self) -> dict:
        time.sleep(self.SECONDS)
        return {"val_acc": self.value, "epoch": 1, "done": True, "busy_s": self.SECONDS}
