"""The search space: YAML specs under `space` -> validated dimensions -> Ray Tune domains.

`space` mirrors the config tree. A dict with a `type` key is a spec for the value at the same
path without the `space.` prefix:

    space.optim.lr: {type: loguniform, low: 1e-4, high: 0.1}   tunes optim.lr

Types: uniform and loguniform (low, high), int (low, high inclusive, optional log), choice and
grid (values). Any spec may carry `kind` (training, architecture, regularization, data).

A spec may be conditional: `when: {optim.name: sgd}` (or a list of values) makes it matter only
for trials where every condition holds. Elsewhere the trial trains with the config's default
for it, and it is left out of the trial's tuned values (records, TensorBoard, sensitivity).
"""

import math
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass, replace
from typing import Any

from hypersweep.dotted import get_path, has_path, nested, set_path
from hypersweep.errors import ConfigError

KINDS = ("training", "architecture", "regularization", "data")
_KEYS = {
    "uniform": {"low", "high"},
    "loguniform": {"low", "high"},
    "int": {"low", "high", "log"},
    "choice": {"values"},
    "grid": {"values"},
}


@dataclass(frozen=True)
class Dimension:
    """One tuned hyperparameter: where it lives in the config and which values it may take."""

    path: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    values: tuple = ()
    kind: str | None = None
    when: tuple = ()  # ((path, allowed values), ...): conditions for the dimension to matter

    @property
    def is_discrete(self) -> bool:
        return self.type in ("int", "choice", "grid")

    @property
    def size(self) -> int | None:
        """Number of distinct values, or None for a continuous dimension."""
        if self.type in ("choice", "grid"):
            return len(self.values)
        if self.type == "int":
            return int(self.high) - int(self.low) + 1
        return None

    def contains(self, value: Any) -> bool:
        """Whether `value` is one this dimension can produce."""
        if self.type in ("choice", "grid"):
            return value in self.values
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.type == "int" and int(value) != value:
            return False
        return self.low <= value <= self.high

    def is_grid(self, search: str) -> bool:
        """Whether Ray runs every value of this dimension in each sample (under `search`)."""
        return self.type == "grid" or (search == "grid" and self.type in ("choice", "int"))

    def grid_values(self) -> list:
        """Every value of a discrete dimension, in order."""
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1))
        return list(self.values)

    def to_tune(self, as_grid: bool = False, default: Any = None) -> Any:
        """The Ray Tune domain for this dimension (`as_grid` turns choices into a grid). A grid
        runs `default` first: the sweep's first trial is then the baseline (the defaults)."""
        from ray import tune

        if self.type == "grid" or (as_grid and self.type in ("choice", "int")):
            return tune.grid_search(sorted(self.grid_values(), key=lambda value: value != default))
        if self.type == "choice":
            return tune.choice(list(self.values))
        if self.type == "uniform":
            return tune.uniform(self.low, self.high)
        if self.type == "loguniform":
            return tune.loguniform(self.low, self.high)
        # Ray's integer ranges exclude the upper bound; ours include it, as users write them.
        if self.log:
            return tune.lograndint(int(self.low), int(self.high) + 1)
        return tune.randint(int(self.low), int(self.high) + 1)

    def describe(self) -> str:
        """A short human form: `loguniform 0.0001..0.1`, `choice [relu, gelu]`."""
        if self.type in ("choice", "grid"):
            return f"{self.type} [{', '.join(map(str, self.values))}]"
        scale = " (log)" if self.log and self.type == "int" else ""
        return f"{self.type} {self.low:g}..{self.high:g}{scale}"


def iter_specs(space: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (config path, spec) for every spec in a `space` tree; non-spec leaves too."""
    for key, value in space.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and "type" not in value:
            yield from iter_specs(value, path + ".")
        else:
            yield path, value


def parse_space(config: dict) -> list[Dimension]:
    """Validate `config["space"]` against the config and return its dimensions.

    Raises ConfigError naming the first bad spec, before anything expensive runs.
    """
    space = config.get("space") or {}
    if not isinstance(space, dict):
        raise ConfigError(f"space: needs a tree of config paths and their specs, got {space!r}; "
                          f"change one dimension at a time, e.g. "
                          f"'space.optim.lr={{type:loguniform,low:1e-4,high:0.1}}'")
    dims = [_parse_spec(path, spec, config) for path, spec in iter_specs(space)]
    if not dims:
        raise ConfigError("space: no hyperparameter to tune; add one, e.g. "
                          "'+space.optim.lr={type:loguniform,low:1e-4,high:0.1}'")
    _check_conditions(dims, config)
    return dims


def _check_conditions(dims: list[Dimension], config: dict) -> None:
    """A condition names a tuned choice (and some of its values) or a fixed setting that holds;
    conditions never go round in a circle."""
    tuned = {dim.path: dim for dim in dims}
    for dim in dims:
        for other, allowed in dim.when:
            key = f"space.{dim.path}.when.{other}"
            parent = tuned.get(other)
            if parent is None:
                if get_path(config, other) not in allowed:
                    raise ConfigError(f"{key}: {other} is fixed at {get_path(config, other)!r}, so "
                                      f"{dim.path} would never matter; tune {other} or remove "
                                      f"space.{dim.path}")
            elif parent.type not in ("choice", "grid"):
                raise ConfigError(f"{key}: a condition needs a choice to depend on, and {other} is "
                                  f"{parent.describe()}; make it a choice or drop the condition")
            elif any(value not in parent.values for value in allowed):
                raise ConfigError(f"{key}: {list(allowed)} are not all values of {other} "
                                  f"({parent.describe()}); name values it can take")
    for dim in dims:
        seen, current = [dim.path], dim
        while (parent := parent_of(current, tuned)) is not None:
            if parent.path in seen:
                raise ConfigError(f"space.{dim.path}.when: the conditions go round in a circle "
                                  f"({' -> '.join(seen + [parent.path])}); break the circle")
            seen.append(parent.path)
            current = parent


def tuned_parents(dim: Dimension, tuned: dict[str, Dimension]) -> list[Dimension]:
    """The tuned dimensions `dim` depends on (conditions on fixed settings always hold)."""
    return [tuned[other] for other, _ in dim.when if other in tuned]


def parent_of(dim: Dimension, tuned: dict[str, Dimension]) -> Dimension | None:
    """The first tuned dimension `dim` depends on."""
    return next(iter(tuned_parents(dim, tuned)), None)


def _parse_spec(path: str, spec: Any, config: dict) -> Dimension:
    key = f"space.{path}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{key}: expected a spec such as {{type: choice, values: [...]}}, "
                          f"got {spec!r}")
    if path.split(".")[0] == "space" or not has_path(config, path):
        raise ConfigError(f"{key}: '{path}' is not in the config; fix the path or add the "
                          f"value first (+{path}=VALUE)")
    kind = spec.get("type")
    if kind not in _KEYS:
        raise ConfigError(f"{key}.type: unknown type {kind!r}; use one of {', '.join(_KEYS)}")
    unknown = set(spec) - _KEYS[kind] - {"type", "kind", "when", "default"}
    if unknown:
        raise ConfigError(f"{key}: unknown field(s) {', '.join(sorted(unknown))} for type "
                          f"{kind}; allowed: {', '.join(sorted(_KEYS[kind]))}")
    category = spec.get("kind")
    if category is not None and category not in KINDS:
        raise ConfigError(f"{key}.kind: {category!r} is not a kind; use one of {', '.join(KINDS)}")
    if kind in ("choice", "grid"):
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{key}.values: needs a non-empty list, got {values!r}")
        dim = Dimension(path, kind, values=tuple(values), kind=category)
    else:
        dim = _parse_range(key, path, kind, spec, category)
    dim = replace(dim, when=_parse_when(key, path, spec.get("when"), config))
    default = get_path(config, path)
    if not dim.contains(default):
        raise ConfigError(f"{key}: the default {path}={default!r} is outside {dim.describe()}; "
                          f"the first trial runs the defaults, so widen the space or set "
                          f"{path} inside it")
    return dim


def _parse_when(key: str, path: str, when: Any, config: dict) -> tuple:
    if when is None:
        return ()
    if not isinstance(when, dict) or not when:
        raise ConfigError(f"{key}.when: needs conditions such as {{optim.name: sgd}}, got {when!r}")
    conditions = []
    for other, allowed in when.items():
        if other == path or not has_path(config, other):
            raise ConfigError(f"{key}.when: '{other}' is not another value in the config; "
                              f"name the setting this one depends on, e.g. optim.name")
        conditions.append((other, tuple(allowed) if isinstance(allowed, list) else (allowed,)))
    return tuple(conditions)


def is_active(spec: dict, config: dict) -> bool:
    """Whether a (possibly conditional) spec's conditions hold in a trial's config."""
    return all(get_path(config, other, None) in
               (allowed if isinstance(allowed, list | tuple) else [allowed])
               for other, allowed in (spec.get("when") or {}).items())


def with_inactive_defaults(config: dict) -> dict:
    """A trial's config where every conditional hyperparameter whose condition fails is back at
    the config's default (param_space stores it in the spec as `default`)."""
    specs = [(path, spec) for path, spec in iter_specs(config.get("space") or {})
             if isinstance(spec, dict) and "when" in spec and "default" in spec]
    copied = False
    # Until nothing changes: putting a choice back at its default can switch off what depends on it.
    while stale := [(path, spec) for path, spec in specs
                    if not is_active(spec, config) and get_path(config, path) != spec["default"]]:
        if not copied:
            config, copied = deepcopy(config), True
        for path, spec in stale:
            set_path(config, path, spec["default"])
    return config


def _parse_range(key: str, path: str, kind: str, spec: dict, category: str | None) -> Dimension:
    low, high = spec.get("low"), spec.get("high")
    for name, bound in (("low", low), ("high", high)):
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound):
            raise ConfigError(f"{key}.{name}: needs a finite number, got {bound!r}")
        if kind == "int" and int(bound) != bound:
            raise ConfigError(f"{key}.{name}: an int range needs whole numbers, got {bound!r}")
    if low >= high:
        raise ConfigError(f"{key}: low ({low:g}) must be below high ({high:g}); swap or fix them")
    log = kind == "loguniform" or bool(spec.get("log", False))
    if log and low <= 0:
        raise ConfigError(f"{key}.low: a log scale needs low > 0, got {low:g}; use a positive "
                          f"low or type: uniform")
    return Dimension(path, kind, low=low, high=high, log=log, kind=category)


def discrete_combinations(dims: list[Dimension]) -> int:
    """How many combinations the discrete dimensions make together."""
    return math.prod(d.size for d in dims if d.is_discrete)


def planned_trials(config: dict, dims: list[Dimension]) -> int:
    """How many trials the sweep runs: num_samples, each with every combination of the grid
    dimensions (all discrete ones under search=grid, those of type grid otherwise)."""
    search = config["search"]["name"]
    return config["num_samples"] * math.prod(d.size for d in dims if d.is_grid(search))


def param_space(config: dict, dims: list[Dimension], as_grid: bool = False,
                with_domains: bool = True) -> dict:
    """The whole config with a Ray Tune domain at each tuned path: Tuner's param_space.

    Without domains it is the config itself, for a search algorithm that has its own space.
    """
    space = deepcopy(config)
    for dim in dims:
        if with_domains:
            set_path(space, dim.path, dim.to_tune(as_grid, default=get_path(config, dim.path)))
        if dim.when:  # what a trial whose conditions fail trains with
            set_path(space, f"space.{dim.path}.default", get_path(config, dim.path))
    return space


def baseline_point(config: dict, dims: list[Dimension]) -> dict:
    """The config's own values of the tuned hyperparameters: the un-tuned baseline trial."""
    return nested({dim.path: get_path(config, dim.path) for dim in dims})


def tuned_values(config: dict) -> dict[str, Any]:
    """The tuned hyperparameters of a trial config, by dotted name; inactive conditional ones
    (their `when` fails) are left out."""
    return {path: get_path(config, path, None) for path, spec in iter_specs(config.get("space") or {})
            if not isinstance(spec, dict) or is_active(spec, config)}
