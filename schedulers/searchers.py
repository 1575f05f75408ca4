"""Search algorithms: hyperopt's TPE, random search and grid search, built from `search`."""

from typing import Any

from hypersweep.dotted import get_path
from hypersweep.errors import ConfigError
from schedulers.space import Dimension, baseline_point

SEARCHES = ("hyperopt", "random", "grid")


def check_search(config: dict, dims: list[Dimension]) -> None:
    """Refuse search settings that cannot work with this space, before Ray starts."""
    name = config["search"].get("name")
    if name not in SEARCHES:
        raise ConfigError(f"search.name: unknown search {name!r}; use search=hyperopt, "
                          f"search=random or search=grid")
    if name == "hyperopt":
        grids = [d.path for d in dims if d.type == "grid"]
        if grids:
            raise ConfigError(f"space.{grids[0]}: type grid needs search=grid or search=random; "
                              f"with hyperopt use type: choice")
        n_initial = config["search"].get("n_initial_points", 8)
        if not isinstance(n_initial, int) or n_initial < 1:
            raise ConfigError(f"search.n_initial_points: needs a whole number >= 1, "
                              f"got {n_initial!r}")
    if name == "grid":
        continuous = [d.path for d in dims if not d.is_discrete]
        if continuous:
            raise ConfigError(f"space.{continuous[0]}: search=grid needs discrete dimensions; "
                              f"give it as {{type: choice, values: [...]}}")


def _hyperopt_point(dims: list[Dimension], point: dict) -> dict:
    """A point as hyperopt stores it: flat "model/activation" keys, choices by index.

    HyperOptSearch maps choice values to indices only for flat spaces; with our nested space it
    passes them through, and hyperopt then fails once TPE starts (KeyError / IndexError).
    """
    flat = {}
    for dim in dims:
        value = get_path(point, dim.path)
        flat[dim.path.replace(".", "/")] = (
            dim.values.index(value) if dim.type == "choice" else value)
    return flat


def build_search(config: dict, dims: list[Dimension]) -> Any:
    """The Ray Tune search algorithm; its first trial is the config's own defaults."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    baseline = baseline_point(config, dims)
    if config["search"]["name"] == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        return HyperOptSearch(
            metric=config["metric"],
            mode=config["mode"],
            points_to_evaluate=[_hyperopt_point(dims, baseline)],
            n_initial_points=config["search"].get("n_initial_points", 8),
            random_state_seed=config["seed"],
        )
    return BasicVariantGenerator(points_to_evaluate=[baseline], random_state=config["seed"])
