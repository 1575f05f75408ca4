"""Trial schedulers: ASHA (early stopping), PBT (schedules) and FIFO, built from `scheduler`."""

import math
from typing import Any

from hypersweep.errors import ConfigError
from schedulers.pbt import build_pbt, check_pbt
from schedulers.space import Dimension

SCHEDULERS = ("asha", "pbt", "fifo")


def max_iterations(config: dict) -> int:
    """Reports (Tune iterations) of a trial that trains to train.max_epochs."""
    return math.ceil(config["train"]["max_epochs"] / config["train"]["epochs_per_step"])


def asha_rungs(max_t: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The iterations at which ASHA compares trials, as Ray's ASHA computes them."""
    count = int(math.log(max_t / grace_period) / math.log(reduction_factor) + 1 + 1e-9)
    return [int(grace_period * reduction_factor**k) for k in range(count)]


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


def build_scheduler(config: dict, dims: list[Dimension]) -> Any:
    """The Ray Tune trial scheduler for this experiment."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    settings = config["scheduler"]
    if settings["name"] == "pbt":
        return build_pbt(config, dims)
    if settings["name"] == "asha":
        return ASHAScheduler(
            time_attr="training_iteration",
            max_t=max_iterations(config),
            grace_period=settings["grace_period"],
            reduction_factor=settings["reduction_factor"],
        )
    return FIFOScheduler()


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
    return (f"asha (reduction factor {settings['reduction_factor']}; rungs at epochs {epochs}; "
            f"at most {config['train']['max_epochs']} epochs)")


def expected_trials_per_rung(config: dict, trials: int) -> list[tuple[int, float]]:
    """(epochs, trials expected to train that far) for each ASHA rung, then for the maximum.

    ASHA keeps the best 1/reduction_factor of the trials at each rung; a trial stopped at a
    rung trained exactly that far.
    """
    settings, per_step = config["scheduler"], config["train"]["epochs_per_step"]
    if settings["name"] != "asha":
        return [(config["train"]["max_epochs"], float(trials))]
    rungs = asha_rungs(max_iterations(config), settings["grace_period"], settings["reduction_factor"])
    stops = [rung for rung in rungs if rung < max_iterations(config)] + [max_iterations(config)]
    return [(min(rung * per_step, config["train"]["max_epochs"]),
             trials / settings["reduction_factor"] ** k) for k, rung in enumerate(stops)]


def estimated_epochs(config: dict, trials: int) -> float:
    """The epochs a sweep of `trials` trials is expected to train in total."""
    total, previous = 0.0, 0
    for epochs, reaching in expected_trials_per_rung(config, trials):
        total += (epochs - previous) * reaching
        previous = epochs
    return total
