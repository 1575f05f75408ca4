"""A trainable whose processes start ever more slowly and whose trials are short: the case where
Ray Tune's actor reuse threw away processes it was starting."""

import os
import time
from pathlib import Path

from ray import tune

TRIAL_SECONDS = 0.1
START_SECONDS = 0.5  # the k-th process to start takes k times this to set up


class SlowToStart(tune.Trainable):
    """Each process claims the next number in a directory when it is set up, so the claims count
    the processes started; each trial sleeps briefly and reports its pid. The directory is
    config["claims"], or in a hypersweep sweep `claims` beside the experiment."""

    def setup(self, config: dict, data=None):
        claims = Path(config.get("claims") or Path(config["storage_path"]) / config["name"] / "claims")
        claims.mkdir(parents=True, exist_ok=True)
        order = 0
        while True:
            try:
                os.close(os.open(claims / str(order), os.O_CREAT | os.O_EXCL))
                break
            except FileExistsError:
                order += 1
        time.sleep(order * START_SECONDS)

    def reset_config(self, new_config: dict) -> bool:
        return True

    def step(self) -> dict:
        time.sleep(TRIAL_SECONDS)
        return {"pid": os.getpid(), "val_acc": 0.5, "epoch": 1, "done": True}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        pass

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        pass
