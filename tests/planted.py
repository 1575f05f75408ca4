"""A synthetic trainable with a planted structure, for testing the report's sensitivity ranking.

Its metric depends strongly on model.x, weakly on model.y and not at all on model.z, and rises
over epochs towards that value. Deterministic, so a retrained config gives the same metric.
"""

import json
import math
import os

from ray import tune


def planted_accuracy(x: float, y: float, epoch: int) -> float:
    """Strong in x (a peak at 0.7, range ~0.5), weak in y (range 0.05), nothing in z."""
    return (0.4 + 0.5 * (1 - (x - 0.7) ** 2 / 0.49) + 0.05 * y) * (1 - 0.5 ** epoch)


class PlantedTrainable(tune.Trainable):
    def setup(self, config: dict, data=None):
        self.reset_config(config)

    def reset_config(self, new_config: dict) -> bool:
        self.settings, self.epoch = new_config, 0
        return True

    def step(self) -> dict:
        self.epoch += 1
        model = self.settings["model"]
        if model["x"] > model.get("diverge_above", math.inf):  # a planted region where training blows up
            return {"val_acc": -math.inf, "val_loss": math.inf, "epoch": self.epoch, "diverged": True,
                    "done": True}
        accuracy = planted_accuracy(model["x"], model["y"], self.epoch)
        return {"val_acc": accuracy, "val_loss": 1 - accuracy, "epoch": self.epoch,
                "diverged": False, "done": self.epoch >= self.settings["train"]["max_epochs"]}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "epoch.json"), "w") as handle:
            json.dump({"epoch": self.epoch}, handle)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "epoch.json")) as handle:
            self.epoch = json.load(handle)["epoch"]
