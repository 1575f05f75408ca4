"""Population Based Training: checks, mutations from the `space`, and a lineage record.

PBT trains a population (num_samples trials) and, every `perturbation_interval` reports, lets a
trial in the bottom quantile copy a top trial (exploit: weights, optimizer state, epoch) and
perturb the copied values (explore). Only the dimensions listed in `scheduler.mutable` change
during training; every other dimension is fixed per trial (architecture cannot change mid-run).

Every start and every exploit goes to `<experiment>/pbt_lineage.jsonl`, one JSON object a line,
so the report can say who copied whom and replay the best trial's schedule.

With `keep_baseline`, the trial that starts at the config's defaults never copies another nor is
perturbed (it may still be copied): a control that shows what PBT gained over the defaults.
"""

import json
import os
from collections.abc import Iterable
from typing import Any

from hypersweep.dotted import get_path, nested, set_path
from hypersweep.errors import ConfigError
from hypersweep.storage import live_file
from schedulers.space import Dimension, planned_trials, tuned_values

LINEAGE_FILE = "pbt_lineage.jsonl"


def check_pbt(config: dict, dims: list[Dimension], live_settings: Iterable[str] | None,
              max_reports: int) -> None:
    """Refuse PBT settings that cannot work, before Ray starts.

    `live_settings` are the paths the trainable can change mid-training (None: not declared).
    """
    settings = config["scheduler"]
    if config["search"]["name"] == "hyperopt":
        raise ConfigError("search: PBT picks new values itself (exploit/explore) and Ray cannot "
                          "combine it with a search algorithm; use search=random (the population "
                          "starts from random samples)")
    interval = settings.get("perturbation_interval")
    if isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval < max_reports:
        raise ConfigError(f"scheduler.perturbation_interval: needs a whole number from 1 to "
                          f"{max_reports - 1} (reports between two perturbations, fewer than a "
                          f"trial makes), got {interval!r}")
    burn_in = settings.get("burn_in")
    if isinstance(burn_in, bool) or not isinstance(burn_in, int) or not 0 <= burn_in < max_reports:
        raise ConfigError(f"scheduler.burn_in: needs a whole number from 0 to {max_reports - 1} "
                          f"(reports before the first perturbation), got {burn_in!r}")
    for key, low, high in (("quantile_fraction", 0.0, 0.5), ("resample_probability", 0.0, 1.0)):
        value = settings.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ConfigError(f"scheduler.{key}: needs a number from {low:g} to {high:g}, "
                              f"got {value!r}")
    if settings["quantile_fraction"] == 0:
        raise ConfigError("scheduler.quantile_fraction: 0 means no trial ever exploits; use a "
                          "fraction such as 0.25")
    if not isinstance(settings.get("synch"), bool):
        raise ConfigError(f"scheduler.synch: needs true or false, got {settings.get('synch')!r}")
    if not isinstance(settings.get("keep_baseline"), bool):
        raise ConfigError(f"scheduler.keep_baseline: needs true or false, "
                          f"got {settings.get('keep_baseline')!r}")
    population = planned_trials(config, dims)
    if population < 2:
        raise ConfigError(f"num_samples: PBT needs a population of at least 2 trials, got {population}")
    mutable = settings.get("mutable")
    if not isinstance(mutable, list) or not mutable:
        raise ConfigError(f"scheduler.mutable: needs the list of hyperparameters PBT may change "
                          f"during training, e.g. [optim.lr], got {mutable!r}")
    tuned = {dim.path for dim in dims}
    for path in mutable:
        if path not in tuned:
            raise ConfigError(f"scheduler.mutable: {path} is not in the search space; add "
                              f"space.{path} or remove it from the list")
        if live_settings is not None and path not in live_settings:
            raise ConfigError(f"scheduler.mutable: {path} cannot change during training (the "
                              f"trainable can change {', '.join(live_settings)}); remove it, "
                              f"and it stays fixed per trial")


def mutations(dims: list[Dimension], mutable: list[str]) -> dict:
    """PBT's hyperparam_mutations: choices move to a neighbour, ranges are scaled or resampled."""
    chosen = {}
    for dim in dims:
        if dim.path in mutable:
            chosen[dim.path] = list(dim.values) if dim.values else dim.to_tune()
    return nested(chosen)


class KeepInBounds:
    """PBT's explore step multiplies by 0.8 or 1.2 without looking at the range: clip it back.

    A callable object, not a closure, so that it pickles with the experiment for resuming.
    """

    def __init__(self, dims: list[Dimension], mutable: list[str]):
        self.ranges = [dim for dim in dims if dim.path in mutable and not dim.values]

    def __call__(self, config: dict) -> dict:
        for dim in self.ranges:
            value = min(max(get_path(config, dim.path), dim.low), dim.high)
            set_path(config, dim.path, int(round(value)) if dim.type == "int" else value)
        return config


def build_pbt(config: dict, dims: list[Dimension]) -> Any:
    """Ray's PopulationBasedTraining that also writes the lineage file."""
    # Imported and subclassed here, so that the config checks above never import Ray. The
    # experiment pickles the scheduler with cloudpickle, which handles a class made in a function.
    from ray.tune.schedulers import PopulationBasedTraining

    class LineagePBT(PopulationBasedTraining):
        """PBT that records each trial's start and each exploit in pbt_lineage.jsonl.

        `_checkpoint_or_exploit` and `_exploit` are Ray's own (private) steps, overridden with
        their Ray 2.x signatures; tests/test_pbt.py checks them on the installed Ray.
        """

        def __init__(self, mutable: list[str], defaults: dict | None, **kwargs: Any):
            super().__init__(**kwargs)
            self.mutable, self.defaults = mutable, defaults
            self.lineage = ""  # the file, from the run's storage when the first trial comes
            self.control: str | None = None

        def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
            super().on_trial_add(tune_controller, trial)
            if not self.lineage:
                self.lineage = live_file(trial.storage, LINEAGE_FILE)
            tuned = tuned_values(trial.config)
            if self.control is None and tuned == self.defaults:
                self.control = trial.trial_id
            if trial.last_result.get("training_iteration", 0) == 0:  # not a resumed trial
                _append(self.lineage, {
                    "event": "start", "trial_id": trial.trial_id,
                    "values": _values(trial.config, self.mutable), "tuned": tuned,
                    "control": trial.trial_id == self.control})

        def choose_trial_to_run(self, tune_controller: Any) -> Any:
            trial = super().choose_trial_to_run(tune_controller)
            if trial is None and self._synch:
                times = [self._trial_state[t].last_train_time
                         for t in tune_controller.get_live_trials() if t in self._trial_state]
                if times and min(times) >= self._next_perturbation_sync:
                    # Synchronous PBT runs only trials behind the next sync point, which Ray sets
                    # to max(last + interval, the latest time reached). A resumed sweep starts
                    # from a fresh scheduler (sync point 1) with trials already further on, so
                    # every trial can be at that point: none would run again. Move it past them.
                    self._next_perturbation_sync = max(times) + self._perturbation_interval
                    trial = super().choose_trial_to_run(tune_controller)
            return trial

        def _checkpoint_or_exploit(self, trial: Any, tune_controller: Any, upper_quantile: list,
                                   lower_quantile: list) -> None:
            saving = trial.temporary_state.saving_to
            if trial in upper_quantile and trial.status != trial.PAUSED and saving is not None:
                # A top trial still saving to pause (synchronous PBT) holds the state of the
                # result PBT acts on: copy that save. Ray would ask for a second one, and the
                # pause that follows the first save to come back drops the other's result: Ray
                # then numbers the trial's next checkpoint into a folder already written, over
                # the checkpoint a bottom trial was told to copy.
                self._trial_state[trial].last_checkpoint = saving
                self._num_checkpoints += 1
                return
            super()._checkpoint_or_exploit(trial, tune_controller, upper_quantile, lower_quantile)

        def _exploit(self, tune_controller: Any, trial: Any, trial_to_clone: Any) -> None:
            if trial.trial_id == self.control:
                return  # the baseline trains with the defaults throughout
            before = _values(trial.config, self.mutable)
            donor = self._trial_state[trial_to_clone]
            # PBT's own copy of the result that brought the trial here (Ray's trial.last_result
            # is updated only after this call).
            now = self._trial_state[trial].last_result
            step = now.get("epoch", now.get("training_iteration", 0))
            if trial.status != trial.PAUSED and trial.temporary_state.saving_to is not None:
                # A bottom trial still saving to pause: Ray's pause below drops that save's
                # result, while the save goes on and writes its folder. Count the folder, as
                # Ray would have, so that the trial's next checkpoint gets one of its own; and
                # let the pause be immediate, not deferred to a save whose result never comes.
                trial.storage._update_checkpoint_index({})
                trial.temporary_state.saving_to = None
            super()._exploit(tune_controller, trial, trial_to_clone)
            checkpoint = donor.last_checkpoint
            _append(self.lineage, {
                "event": "exploit", "trial_id": trial.trial_id, "epoch": step,
                "donor": trial_to_clone.trial_id,
                "donor_epoch": donor.last_result.get("epoch",
                                                     donor.last_result.get("training_iteration")),
                "checkpoint": getattr(checkpoint, "path", None),
                "before": before,
                "donor_values": _values(trial_to_clone.config, self.mutable),
                "after": _values(trial.config, self.mutable)})

    settings = config["scheduler"]
    mutable = list(settings["mutable"])
    # The baseline's tuned values as a trial reports them (conditional ones only if active).
    defaults = tuned_values(config) if settings["keep_baseline"] else None
    return LineagePBT(
        mutable=mutable,
        defaults=defaults,
        time_attr="training_iteration",
        perturbation_interval=settings["perturbation_interval"],
        burn_in_period=settings["burn_in"],
        synch=settings["synch"],
        quantile_fraction=settings["quantile_fraction"],
        resample_probability=settings["resample_probability"],
        hyperparam_mutations=mutations(dims, mutable),
        custom_explore_fn=KeepInBounds(dims, mutable),
    )


def _values(config: dict, paths: list[str]) -> dict[str, Any]:
    return {path: get_path(config, path, None) for path in paths}


def _append(path: str, event: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(event) + "\n")


def read_lineage(experiment: str) -> list[dict]:
    """The lineage events of a PBT experiment, oldest first; [] for other experiments."""
    path = os.path.join(experiment, LINEAGE_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def schedule_of(trial_id: str, events: list[dict]) -> list[dict]:
    """The values one trial trained with, as [{"epoch": E, "values": {...}}, ...] from epoch 0.

    A trial's history is its donor's history up to the checkpoint it copied, then its own
    values; following the exploits back to a trial that never copied gives the whole schedule.
    A donor's checkpoint is always newer than the donor's own last exploit (PBT only copies a
    trial that saved as a top trial since), so "the last exploit into the donor before this
    one" is the one that shaped the copied weights.
    """
    starts = {e["trial_id"]: e["values"] for e in events if e["event"] == "start"}

    def history(trial: str, before: int) -> list[dict]:
        into = [i for i in range(before) if events[i]["event"] == "exploit"
                and events[i]["trial_id"] == trial]
        if not into:
            return [{"epoch": 0, "values": starts.get(trial, {})}]
        last = events[into[-1]]
        return history(last["donor"], into[-1]) + [{"epoch": last["donor_epoch"],
                                                    "values": last["after"]}]

    schedule: list[dict] = []
    for entry in history(trial_id, len(events)):
        if schedule and schedule[-1]["epoch"] == entry["epoch"]:
            schedule[-1] = entry
        elif not schedule or schedule[-1]["values"] != entry["values"]:
            schedule.append(entry)
    return schedule
