"""Models that fail on purpose, for the fault-tolerance tests (imported by Ray workers too)."""

import os

import torch

from trainables.models import MLP


class BrokenForSomeConfigs(MLP):
    """An MLP with a bug: any config with `hidden_units == broken_units` raises when built."""

    def __init__(self, *args, broken_units: int = 64, **kwargs):
        if kwargs.get("hidden_units") == broken_units:
            raise RuntimeError(f"simulated bug: hidden_units={broken_units} is not supported")
        super().__init__(*args, **kwargs)


class CrashesOnce(MLP):
    """An MLP whose process dies once, after `crash_after` forward passes, then never again.

    The marker file makes the retry (a new actor, from the last checkpoint) run cleanly.
    """

    def __init__(self, *args, marker: str = "", crash_after: int = 100, **kwargs):
        super().__init__(*args, **kwargs)
        self.marker, self.crash_after, self.calls = marker, crash_after, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls >= self.crash_after and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise MemoryError("simulated out-of-memory in the middle of an epoch")
        return super().forward(x)
