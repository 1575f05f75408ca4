"""Learning-rate schedules as a pure function of training progress (in epochs, fractional).

The trainable multiplies the base `optim.lr` by `lr_factor(...)` for every optimizer step, with
the progress at that step's end (so the first step of a warmup is small but not zero), so
a schedule survives checkpoints, PBT copies and a base learning rate that PBT changes mid-run:
the factor depends only on how far training is, and the base on the trial's current config.

    optim.schedule: none | step | cosine | onecycle
    optim.warmup_epochs: linear warmup from ~0 to the base rate (step, cosine and none); for
        onecycle, the rising phase (default 30% of train.max_epochs)
    optim.step_epochs, optim.step_gamma: step multiplies the rate by gamma every step_epochs
"""

import math

SCHEDULES = ("none", "step", "cosine", "onecycle")
ONECYCLE_START = 1 / 25  # torch's OneCycleLR defaults: start at base/25 ...
ONECYCLE_END = ONECYCLE_START / 1e4  # ... and end at base/25/1e4
ONECYCLE_RISE = 0.3  # share of the run spent rising when warmup_epochs is 0


def _cosine(start: float, end: float, progress: float) -> float:
    """From `start` to `end` along half a cosine, progress in [0, 1]."""
    return end + (start - end) * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0))) / 2


def lr_factor(optim: dict, epoch: float, max_epochs: int) -> float:
    """The multiplier of the base learning rate after `epoch` epochs of a `max_epochs` run."""
    name = optim.get("schedule", "none")
    warmup = float(optim.get("warmup_epochs", 0) or 0)
    if name == "onecycle":
        rise = warmup or ONECYCLE_RISE * max_epochs
        if epoch < rise:
            return _cosine(ONECYCLE_START, 1.0, epoch / rise)
        return _cosine(1.0, ONECYCLE_END, (epoch - rise) / (max_epochs - rise))
    if epoch < warmup:
        return epoch / warmup
    after = epoch - warmup
    if name == "step":
        return optim.get("step_gamma", 0.5) ** math.floor(after / optim.get("step_epochs", 5))
    if name == "cosine":
        return _cosine(1.0, 0.0, after / max(max_epochs - warmup, 1e-9))
    return 1.0
