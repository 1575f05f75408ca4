"""TorchTrainable that logs a digest of its state at every save and load (imported by Ray workers).

The PBT test matches a receiving trial's state right after it loaded a checkpoint against the
donor's state when that checkpoint was saved.
"""

import hashlib
import json
import os
import time

import torch

from hypersweep.paths import experiment_dir
from trainables.trainable import TorchTrainable

PROBE_FILE = "probe.jsonl"
# A save that takes a while, as a large model's does: in every run, synchronous PBT then perturbs
# while trials are still saving to pause (the race schedulers/pbt.py closes for top and bottom).
SAVE_SECONDS = 0.5


def state_digest(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> str:
    """A hash of the weights and of the optimizer's per-parameter state (Adam moments...)."""
    digest = hashlib.sha256()
    tensors = list(model.state_dict().values())
    for state in optimizer.state_dict()["state"].values():
        tensors += [value for _, value in sorted(state.items()) if isinstance(value, torch.Tensor)]
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class ProbeTrainable(TorchTrainable):
    def _log(self, event: str) -> None:
        line = {"event": event, "trial_id": self.trial_id, "epoch": self.epoch,
                "digest": state_digest(self.learner.model, self.learner.optimizer),
                "lr": self.learner.optimizer.param_groups[0]["lr"], "config_lr": self.settings["optim"]["lr"]}
        with open(os.path.join(experiment_dir(self.settings), PROBE_FILE), "a") as handle:
            handle.write(json.dumps(line) + "\n")

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        time.sleep(SAVE_SECONDS)
        super().save_checkpoint(checkpoint_dir)
        self._log("save")

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        super().load_checkpoint(checkpoint_dir)
        self._log("load")
