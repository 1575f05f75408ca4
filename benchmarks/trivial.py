"""A trainable that does no work: one report, then done. What is left is framework overhead."""

import os

from ray import tune


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
