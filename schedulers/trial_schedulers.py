"""Trial schedulers: ASHA (early stopping), PBT (schedules) and FIFO, built from `scheduler`.

With `keep_baseline`, ASHA never stops the trial that runs the config's defaults early: the gain
a sweep reports is measured against the defaults trained in full, not cut short at a rung. Its
results still count at every rung, as any other trial's.
"""

import math
import random
from typing import Any

from hypersweep.errors import ConfigError
from schedulers.pbt import build_pbt, check_pbt
from schedulers.space import Dimension, tuned_values

SCHEDULERS = ("asha", "pbt", "fifo")


def max_iterations(config: dict) -> int:
    """Reports (Tune iterations) of a trial that trains to train.max_epochs."""
    return math.ceil(config["train"]["max_epochs"] / config["train"]["epochs_per_step"])


def asha_rungs(max_t: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The iterations at which ASHA compares trials, as Ray's ASHA computes them."""
    count = int(math.log(max_t / grace_period) / math.log(reduction_factor) + 1 + 1e-9)
    return [int(grace_period * reduction_factor**k) for k in range(count)]


def asha_brackets(config: dict) -> int:
    """The brackets ASHA runs: scheduler.brackets, at most one per rung (a bracket starts at a
    rung), so that fewer epochs leave a sweep fewer brackets rather than an error. A sweep saved
    before the setting existed has none, and ran with one."""
    settings = config["scheduler"]
    rungs = asha_rungs(max_iterations(config), settings["grace_period"], settings["reduction_factor"])
    return min(settings.get("brackets", 1), len(rungs))


SHARE_RULES = ("hyperband", "ray")
# The rule of a sweep saved before `scheduler.bracket_shares` existed: it ran with Ray's.
SAVED_BEFORE_SHARES = "ray"


def bracket_shares(brackets: int, reduction_factor: float, rule: str) -> list[float]:
    """The share of trials each ASHA bracket gets, most aggressive (first rung earliest) first.

    hyperband: Hyperband's budget rule, as Optuna's pruner takes it: bracket i of B (0 has the
    most rungs) gets ceil(B * eta^(B-1-i) / (B-i)) parts (9:5:3 for three brackets at eta 3),
    so that each bracket costs about the same epochs. ray: Ray's ASHA weighs bracket i by
    e^-i (67%, 24%, 9% for three): its patient brackets get fewer trials and fewer epochs.
    """
    if rule == "ray":
        weights = [math.exp(-i) for i in range(brackets)]
    else:
        weights = [math.ceil(brackets * reduction_factor ** (brackets - 1 - i) / (brackets - i))
                   for i in range(brackets)]
    return [weight / sum(weights) for weight in weights]


def config_bracket_shares(config: dict) -> list[float]:
    """bracket_shares for the sweep's ASHA."""
    settings = config["scheduler"]
    return bracket_shares(asha_brackets(config), settings["reduction_factor"],
                          settings.get("bracket_shares", SAVED_BEFORE_SHARES))


def check_scheduler(config: dict, dims: list[Dimension],
                    live_settings: tuple[str, ...] | None = None) -> None:
    """Refuse scheduler settings that cannot work, before Ray starts.

    `live_settings`: what the trainable can change mid-training (for PBT); None if undeclared.
    """
    settings = config["scheduler"]
    name = settings.get("name")
    if name not in SCHEDULERS:
        raise ConfigError(f"scheduler.name: unknown scheduler {name!r}; use scheduler=asha, "
                          f"scheduler=pbt or scheduler=fifo")
    if name == "pbt":
        check_pbt(config, dims, live_settings, max_iterations(config))
    if name == "asha":
        max_t = max_iterations(config)
        grace, factor = settings.get("grace_period"), settings.get("reduction_factor")
        if not isinstance(grace, int) or not 1 <= grace <= max_t:
            raise ConfigError(f"scheduler.grace_period: needs a whole number from 1 to {max_t} "
                              f"(the reports a trial makes), got {grace!r}")
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 1:
            raise ConfigError(f"scheduler.reduction_factor: needs a number > 1, got {factor!r}")
        brackets = settings.get("brackets", 1)
        if isinstance(brackets, bool) or not isinstance(brackets, int) or brackets < 1:
            raise ConfigError(f"scheduler.brackets: needs a whole number >= 1 (1: plain ASHA), "
                              f"got {brackets!r}")
        if settings.get("bracket_shares", SAVED_BEFORE_SHARES) not in SHARE_RULES:
            raise ConfigError(f"scheduler.bracket_shares: unknown rule "
                              f"{settings.get('bracket_shares')!r}; use hyperband or ray")
        if not isinstance(settings.get("keep_baseline"), bool):
            raise ConfigError(f"scheduler.keep_baseline: needs true or false, "
                              f"got {settings.get('keep_baseline')!r}")


def build_scheduler(config: dict, dims: list[Dimension]) -> Any:
    """The Ray Tune trial scheduler for this experiment."""
    from ray.tune.schedulers import FIFOScheduler

    settings = config["scheduler"]
    if settings["name"] == "pbt":
        return build_pbt(config, dims)
    if settings["name"] == "asha":
        return build_asha(config)
    return FIFOScheduler()


def _diverged_cutoffs_quiet() -> Any:
    """Numpy's warnings off while ASHA computes a rung's cutoff.

    A diverged trial reports the worst metric, -inf for max; a cutoff that falls between two of
    them is -inf + (-inf - -inf) * t, nan, and numpy printed two lines of RuntimeWarning on the
    sweep's console for each. The decision is the same as at -inf: no result is below either.
    """
    import numpy as np

    return np.errstate(invalid="ignore")


def build_asha(config: dict) -> Any:
    """Ray's ASHA, which with `keep_baseline` lets the defaults' trial train to the end."""
    # Subclassed here, so that the config checks never import Ray (as PBT's scheduler is).
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    class BaselineASHA(ASHAScheduler):
        """ASHA that never stops the baseline trial (the config's defaults) at a rung, and draws
        each trial's bracket from the sweep's seed."""

        def __init__(self, defaults: dict | None, seed: int, shares: list[float], **kwargs: Any):
            super().__init__(**kwargs)
            self.defaults = defaults
            self.shares = shares
            self.baseline: str | None = None
            self.bracket_random = random.Random(seed)

        def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
            super().on_trial_add(tune_controller, trial)
            if len(self._brackets) > 1:
                # Ray draws from numpy's global random state: the same sweep would stop other
                # trials each time. Drawn in the order trials are added, as a resume adds them.
                bracket = self.bracket_random.choices(self._brackets, weights=self.shares)[0]
                self._trial_info[trial.trial_id] = bracket
            # The first trial at the defaults is the one the sweep compares against. A resumed
            # sweep adds its trials again, in their order, and finds the same one.
            if self.baseline is None and self.defaults is not None \
                    and tuned_values(trial.config) == self.defaults:
                self.baseline = trial.trial_id

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            with _diverged_cutoffs_quiet():
                decision = super().on_trial_result(tune_controller, trial, result)  # records the rung
            if trial.trial_id == self.baseline and decision == TrialScheduler.STOP \
                    and result.get(self._time_attr, 0) < self._max_t:
                self._num_stopped -= 1
                return TrialScheduler.CONTINUE
            return decision

        def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
            with _diverged_cutoffs_quiet():
                super().on_trial_complete(tune_controller, trial, result)

    settings = config["scheduler"]
    return BaselineASHA(
        defaults=tuned_values(config) if settings["keep_baseline"] else None,
        time_attr="training_iteration",
        max_t=max_iterations(config),
        grace_period=settings["grace_period"],
        reduction_factor=settings["reduction_factor"],
        brackets=asha_brackets(config),
        seed=config["seed"],
        shares=config_bracket_shares(config),
    )


def describe_scheduler(config: dict) -> str:
    """One line: the scheduler and, for ASHA, its rungs in reports and epochs."""
    settings = config["scheduler"]
    if settings["name"] == "pbt":
        per_step = config["train"]["epochs_per_step"]
        return (f"pbt (population {config['num_samples']}; every "
                f"{settings['perturbation_interval'] * per_step} epochs the bottom "
                f"{settings['quantile_fraction']:.0%} copy the top and perturb "
                f"{', '.join(settings['mutable'])}; {config['train']['max_epochs']} epochs a trial)")
    if settings["name"] != "asha":
        return f"fifo (no early stopping; every trial trains {config['train']['max_epochs']} epochs)"
    per_step = config["train"]["epochs_per_step"]
    rungs = asha_rungs(max_iterations(config), settings["grace_period"],
                       settings["reduction_factor"])
    epochs = ", ".join(str(r * per_step) for r in rungs)
    brackets = asha_brackets(config)
    if brackets > 1:
        firsts = ", ".join(f"{rungs[s] * per_step} for {share:.0%}"
                           for s, share in enumerate(config_bracket_shares(config)))
        epochs += f"; {brackets} brackets (a trial's first rung: epoch {firsts} of the trials)"
    baseline = "; the defaults' trial trains in full" if settings["keep_baseline"] else ""
    return (f"asha (reduction factor {settings['reduction_factor']}; rungs at epochs {epochs}; "
            f"at most {config['train']['max_epochs']} epochs{baseline})")


def expected_trials_per_rung(config: dict, trials: int) -> list[tuple[int, float]]:
    """(epochs, trials expected to train that far) for each ASHA rung, then for the maximum.

    ASHA keeps the best 1/reduction_factor of the trials at each rung of their bracket (bracket
    s has the rungs from the s-th on); a trial stopped at a rung trained exactly that far.
    """
    settings, per_step = config["scheduler"], config["train"]["epochs_per_step"]
    if settings["name"] != "asha":
        return [(config["train"]["max_epochs"], float(trials))]
    max_t, factor = max_iterations(config), settings["reduction_factor"]
    rungs = [rung for rung in asha_rungs(max_t, settings["grace_period"], factor) if rung < max_t]
    shares = config_bracket_shares(config)

    def reaching(stop: int) -> float:  # trials passed every rung of their bracket before `stop`
        return sum(share * trials / factor ** sum(rung < stop for rung in rungs[s:])
                   for s, share in enumerate(shares))

    return [(min(stop * per_step, config["train"]["max_epochs"]), reaching(stop))
            for stop in [*rungs, max_t]]


def estimated_epochs(config: dict, trials: int) -> float:
    """The epochs a sweep of `trials` trials is expected to train in total."""
    settings = config["scheduler"]
    if settings["name"] == "asha" and settings["keep_baseline"] and trials > 0:
        # The baseline is never stopped early: it trains every epoch, the others go by rungs.
        return config["train"]["max_epochs"] + _epochs_by_rungs(config, trials - 1)
    return _epochs_by_rungs(config, trials)


def _epochs_by_rungs(config: dict, trials: int) -> float:
    total, previous = 0.0, 0
    for epochs, reaching in expected_trials_per_rung(config, trials):
        total += (epochs - previous) * reaching
        previous = epochs
    return total
