"""hyperopt's TPE drawing a conditional dimension only for the trials where it matters.

hyperopt gets its own search space built from `space`. Ray's conversion makes a flat space,
where TPE draws `optim.momentum` for every trial and learns from values that Adam trials never
used. Here a dimension with `when: {optim.name: sgd}` lives inside
the `sgd` branch of `optim.name`'s choice: TPE draws it only for SGD trials and models it from
those alone. A dimension allowed in several branches gets one label per branch.

A branch is a dict: {"__value__": the choice's value, "<child path>": child expression, ...}.

Random and grid search need no such space: see active_variants.py.
"""

import math
from typing import Any

from hyperopt import hp
from hyperopt.pyll import scope
from ray.tune.search.hyperopt import HyperOptSearch

from hypersweep.dotted import get_path, nested

# Experiments saved while ActiveOnlyVariants lived here name it by this module in their pickled
# Tuner; resuming them unpickles it from here.
from schedulers.active_variants import ActiveOnlyVariants  # noqa: F401
from schedulers.space import Dimension, parent_of

_VALUE = "__value__"


def hyperopt_space(dims: list[Dimension]) -> dict[str, Any]:
    """{dotted path: hyperopt expression} for the dimensions that depend on no other."""
    tuned = {dim.path: dim for dim in dims}
    return {dim.path: _expression(dim, dims, tuned, "") for dim in dims
            if parent_of(dim, tuned) is None}


def _label(dim: Dimension, context: str) -> str:
    return dim.path.replace(".", "/") + context


def _active_under(dim: Dimension, value: Any, dims: list[Dimension],
                  tuned: dict[str, Dimension]) -> list[Dimension]:
    """The dimensions that depend on `dim` and matter when it takes `value`."""
    return [d for d in dims if (parent := parent_of(d, tuned)) is not None
            and parent.path == dim.path and value in dict(d.when)[dim.path]]


def _expression(dim: Dimension, dims: list[Dimension], tuned: dict[str, Dimension],
                context: str) -> Any:
    label = _label(dim, context)
    if dim.type in ("choice", "grid"):
        branches = [(value, _active_under(dim, value, dims, tuned)) for value in dim.values]
        if not any(children for _, children in branches):
            return hp.choice(label, list(dim.values))
        return hp.choice(label, [
            {_VALUE: value, **{child.path: _expression(child, dims, tuned,
                                                       f"{context}[{dim.path}={value}]")
                               for child in children}}
            for value, children in branches])
    if dim.type == "uniform":
        return hp.uniform(label, dim.low, dim.high)
    if dim.type == "loguniform":
        return hp.loguniform(label, math.log(dim.low), math.log(dim.high))
    if dim.log:
        return scope.int(hp.qloguniform(label, math.log(dim.low), math.log(dim.high), 1.0))
    return hp.uniformint(label, dim.low, dim.high)


def hyperopt_point(dims: list[Dimension], point: dict) -> dict[str, Any]:
    """A config's values as hyperopt stores a trial: labels, choices by index, and only the
    dimensions active in it."""
    tuned = {dim.path: dim for dim in dims}
    labels: dict[str, Any] = {}

    def visit(dim: Dimension, context: str) -> None:
        value = get_path(point, dim.path)
        labels[_label(dim, context)] = (dim.values.index(value) if dim.type in ("choice", "grid")
                                        else value)
        for child in _active_under(dim, value, dims, tuned):
            visit(child, f"{context}[{dim.path}={value}]")

    for dim in dims:
        if parent_of(dim, tuned) is None:
            visit(dim, "")
    return labels


def flatten_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """A drawn sample as {dotted path: value}, branches opened up."""
    flat: dict[str, Any] = {}
    for path, value in sample.items():
        if isinstance(value, dict) and _VALUE in value:
            flat[path] = value[_VALUE]
            flat.update(flatten_sample({k: v for k, v in value.items() if k != _VALUE}))
        else:
            flat[path] = value
    return flat


class ConditionalHyperOptSearch(HyperOptSearch):
    """HyperOptSearch over `hyperopt_space`: it suggests the nested config of the active values
    only, which Ray merges into the trial's config (the rest stay at their defaults)."""

    def _setup_hyperopt(self) -> None:
        super()._setup_hyperopt()
        # TPE expects every label in every trial, empty where inactive; the starting points
        # (the defaults) are made with only the labels they use.
        for trial in self._hpopt_trials.trials:
            for field in ("idxs", "vals"):
                for label in self.domain.params:
                    trial["misc"][field].setdefault(label, [])
        self._hpopt_trials.refresh()

    def suggest(self, trial_id: str) -> dict | None:
        sample = super().suggest(trial_id)
        return None if sample is None else nested(flatten_sample(sample))

