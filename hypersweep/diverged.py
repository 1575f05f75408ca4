"""Where a sweep's diverged trials lie: their values beside those of the trials that trained.

A learning rate too high for the optimizer turns the loss into NaN, or leaves the model at
chance; the report shows the region of the space where that happened, so that the next sweep
can leave it out.
"""

from collections import Counter

from hypersweep.records import RANKED, TrialRecord
from schedulers.space import Dimension


def _shown(value: object) -> str:
    return f"{value:.2g}" if isinstance(value, float) else str(value)


def _spread(dim: Dimension, values: list) -> str:
    """A range for numbers, each value with its count for choices."""
    if not values:
        return ""
    if dim.type in ("choice", "grid"):
        return ", ".join(f"{_shown(value)} ({count})" for value, count in Counter(values).most_common())
    return f"{_shown(min(values))} .. {_shown(max(values))}"


def _apart(dim: Dimension, diverged: list, trained: list) -> bool:
    """Whether no trial that trained had a value among the diverged trials' (their range, for
    numbers)."""
    if not diverged or not trained:
        return False
    if dim.type in ("choice", "grid"):
        return not set(diverged) & set(trained)
    return max(diverged) < min(trained) or min(diverged) > max(trained)


def diverged_values(records: list[TrialRecord], dims: list[Dimension]) -> list[dict]:
    """Per tuned hyperparameter: the diverged trials' values, those of the trials that trained,
    and whether the two lie apart; [] when no trial diverged.

    A trial's values are those it ended with: under PBT, those it diverged with.
    """
    diverged = [r for r in records if r.status == "diverged"]
    if not diverged:
        return []
    trained = [r for r in records if r.status in RANKED]
    rows = []
    for dim in dims:
        bad = [r.tuned[dim.path] for r in diverged if dim.path in r.tuned]
        good = [r.tuned[dim.path] for r in trained if dim.path in r.tuned]
        rows.append({"name": dim.path, "diverged": _spread(dim, bad), "trained": _spread(dim, good),
                     "apart": _apart(dim, bad, good)})
    return rows
