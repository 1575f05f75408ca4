"""Keep less of each finished trial on the driver: what Ray Tune holds only for a running one.

The driver holds every trial of a sweep until it ends, and Ray Tune's state of a finished trial
is about 88 KB (measured on the smoke experiment's trials), which made the driver grow by
0.078 MiB a trial. Most of it serves a trial only while it runs:
- the windows of its last 5 and 10 values of each metric (two deques per metric, 15 KB), which
  Ray keeps to update the averages as reports come;
- the whole config again inside its checkpoints' results (12 KB), which Ray copies from the
  trial's last report (the result log drops it from the reports themselves);
- a second copy of its config, kept to resolve placeholders again on a restart (12 KB);
- its config's unchanged parts, equal in every trial of the sweep (most of the 12 KB left).

Once a trial has ended, hypersweep drops the first two and shares the rest: the second config,
and every part of the config equal to that of the first trial to end, become one object. The
metric summaries, the last result and the checkpoints themselves stay, so the experiment's
snapshot, a resume and the report see the same trial (a test checks this).

Since then a finished trial leaves the driver's memory altogether once Ray is done with it
(trials_on_disk.py); trimmed first, its state in the snapshot and on disk is smaller (15.1 KB, not
21.7).
"""

from typing import Any

from ray.tune import Callback

# Trial.__init__ keeps the config before its placeholders are resolved under this (private) name.
UNRESOLVED_CONFIG = "_Trial__unresolved_config"


class TrimFinishedTrials(Callback):
    """Trims each trial that ends (finished or stopped early). A failed trial is left whole: a
    resume may retry it."""

    def __init__(self) -> None:
        self.reference: dict | None = None  # the first ended trial's config: the shared parts

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.reference is None:
            self.reference = trial.config
        trim(trial, self.reference)


def trim(trial: Any, reference: dict) -> None:
    """Drop what `trial` held only while running, and share its config's parts equal to
    `reference`'s. Attributes this Ray does not have are left alone."""
    metadata = trial.run_metadata
    metadata.metric_n_steps = {}
    # Ray's Trial.last_result puts the trial's own config back in, by reference.
    metadata.last_result.pop("config", None)
    manager = metadata.checkpoint_manager
    if manager is not None:
        kept = list(getattr(manager, "_checkpoint_results", []))
        kept.append(getattr(manager, "_latest_checkpoint_result", None))
        for result in kept:
            if result is not None and isinstance(result.metrics, dict):
                result.metrics.pop("config", None)
    metadata.invalidate_cache()  # its cached JSON, which the next snapshot writes
    # The trial's own cached JSON stays right: its config reads the same, only shared.
    trial.config = share_equal_parts(trial.config, reference)
    if identical(getattr(trial, UNRESOLVED_CONFIG, None), trial.config):
        setattr(trial, UNRESOLVED_CONFIG, trial.config)


def share_equal_parts(config: Any, reference: Any) -> Any:
    """`config` with every dict in it that is identical to the same part of `reference` replaced
    by that part.

    Values stay identical (types and key order too), so nothing reading the config sees a change;
    the parts are one object in memory. Nothing changes a finished trial's config in place (PBT
    explores from a copy).
    """
    if not (isinstance(config, dict) and isinstance(reference, dict)):
        return config
    if identical(config, reference):
        return reference
    for key, value in config.items():
        if key in reference:
            config[key] = share_equal_parts(value, reference[key])
    return config


def identical(a: Any, b: Any) -> bool:
    """Equal, and of the same types throughout (`1 == 1.0 == True` is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(identical(a[key], b[key]) for key in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(identical, a, b))
    return a == b
