"""Search algorithms: hyperopt's TPE, random search and grid search, built from `search`."""

from typing import Any

from hypersweep.errors import ConfigError
from schedulers.space import Dimension, baseline_point, tuned_parents

SEARCHES = ("hyperopt", "random", "grid")


def search_module(name: str) -> str:
    """The module that holds the search algorithm `search.name` names; importing it imports Ray
    Tune, and hyperopt for TPE only."""
    return "schedulers.conditional" if name == "hyperopt" else "schedulers.active_variants"


def check_search(config: dict, dims: list[Dimension]) -> None:
    """Refuse search settings that cannot work with this space, before Ray starts."""
    name = config["search"].get("name")
    tuned = {dim.path: dim for dim in dims}
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
        for dim in dims:
            parents = [parent.path for parent in tuned_parents(dim, tuned)]
            if len(parents) > 1:
                raise ConfigError(f"space.{dim.path}.when: hyperopt draws a conditional value inside "
                                  f"one choice's branch, and this names {len(parents)} tuned "
                                  f"choices ({', '.join(parents)}); keep one")
    if name == "grid":
        continuous = [d.path for d in dims if not d.is_discrete]
        if continuous:
            raise ConfigError(f"space.{continuous[0]}: search=grid needs discrete dimensions; "
                              f"give it as {{type: choice, values: [...]}}")
        conditional = [d.path for d in dims if tuned_parents(d, tuned)]
        if conditional:
            raise ConfigError(f"space.{conditional[0]}.when: a grid would run the same trial once "
                              f"for each of its values where the condition fails; use "
                              f"search=random or search=hyperopt")
        repeats = config["num_samples"]
        if repeats > 1 and config["scheduler"]["name"] != "pbt":
            raise ConfigError(f"num_samples: search=grid runs every combination, and {repeats} repeats "
                              f"would train each the same way {repeats} times (a trial's seed follows "
                              f"from the sweep's seed and its values); set num_samples=1")


def build_search(config: dict, dims: list[Dimension]) -> Any:
    """The Ray Tune search algorithm; its first trial is the config's own defaults, and it runs at
    most `max_concurrent` trials at once (0: no limit).

    hyperopt gets its own space (the Tuner's param_space then holds no domains): see
    schedulers/conditional.py for why. The limit is set here, not through Ray's
    `max_concurrent_trials`, which ignores it for random and grid search.
    """
    baseline = baseline_point(config, dims)
    if config["search"]["name"] == "hyperopt":
        from ray.tune.search import ConcurrencyLimiter

        from schedulers.conditional import ConditionalHyperOptSearch, hyperopt_point, hyperopt_space
        from schedulers.searched_tags import SearchedValuesTags

        search = ConditionalHyperOptSearch(
            space=hyperopt_space(dims),
            metric=config["metric"],
            mode=config["mode"],
            points_to_evaluate=[hyperopt_point(dims, baseline)],
            n_initial_points=config["search"].get("n_initial_points", 8),
            random_state_seed=config["seed"],
        )
        if config["max_concurrent"]:
            search = ConcurrencyLimiter(search, config["max_concurrent"])
        return SearchedValuesTags(search)
    from schedulers.active_variants import ActiveOnlyVariants

    # Ray's point replaces one sample, grid included: the grid dimensions are left out of it (each
    # grid runs the defaults' value first), or it would take the place of a whole grid.
    sampled = [dim for dim in dims if not dim.is_grid(config["search"]["name"])]
    point = baseline_point(config, sampled)
    return ActiveOnlyVariants(points_to_evaluate=[point] if point else None, random_state=config["seed"],
                              max_concurrent=config["max_concurrent"])
