"""Which hyperparameters mattered: a random-forest permutation importance over the trials.

Method: each trial is a point (its tuned values; log-scale dimensions as log10, choices one-hot)
with an outcome (the best value of the metric it reported). A random forest learns outcome from
point; a hyperparameter's importance is how much worse the forest predicts when that
hyperparameter's columns are shuffled across trials (averaged over shuffles), normalized so the
scores sum to 1. Diverged trials count with the worst outcome seen, since "this region diverges"
is exactly what the learning rate's importance should show.

Caveats: a sweep has few points (tens), so scores are noisy; early-stopped trials' outcomes are
lower partly because they trained less; a search that concentrated on one region (TPE) tells less
about the rest of the space than random search does; correlated hyperparameters share credit.
"""

import math

import numpy as np

from hypersweep.records import RANKED, TrialRecord
from schedulers.space import Dimension

MIN_TRIALS = 6
SHUFFLES = 30


def _columns(dim: Dimension, values: list) -> np.ndarray:
    if dim.type in ("choice", "grid"):
        return np.array([[float(v == choice) for choice in dim.values] for v in values])
    numbers = np.array(values, dtype=float)
    return (np.log10(numbers) if dim.log else numbers)[:, None]


def _outcomes(records: list[TrialRecord], mode: str) -> tuple[list[TrialRecord], np.ndarray]:
    scored = [r for r in records if r.status in RANKED and r.best_metric is not None
              and math.isfinite(r.best_metric)]
    if not scored:
        return [], np.array([])
    values = [r.best_metric for r in scored]
    worst = min(values) if mode == "max" else max(values)
    diverged = [r for r in records if r.status == "diverged"]
    return scored + diverged, np.array(values + [worst] * len(diverged))


def importance(records: list[TrialRecord], dims: list[Dimension], mode: str,
               seed: int = 0) -> list[dict]:
    """Each hyperparameter's importance (sums to 1), most important first; [] if too few trials."""
    from sklearn.ensemble import RandomForestRegressor

    trials, outcome = _outcomes(records, mode)
    usable = [d for d in dims if all(d.path in t.tuned for t in trials)]
    if len(trials) < MIN_TRIALS or not usable:
        return []
    blocks = [_columns(dim, [t.tuned[dim.path] for t in trials]) for dim in usable]
    features = np.hstack(blocks)
    forest = RandomForestRegressor(n_estimators=300, min_samples_leaf=2, random_state=seed)
    forest.fit(features, outcome)
    baseline_error = np.mean((forest.predict(features) - outcome) ** 2)
    rng = np.random.default_rng(seed)
    scores, start = [], 0
    for block in blocks:
        stop = start + block.shape[1]
        errors = []
        for _ in range(SHUFFLES):
            shuffled = features.copy()
            shuffled[:, start:stop] = block[rng.permutation(len(block))]
            errors.append(np.mean((forest.predict(shuffled) - outcome) ** 2))
        scores.append(max(0.0, float(np.mean(errors) - baseline_error)))
        start = stop
    total = sum(scores) or 1.0
    ranking = [{"name": dim.path, "kind": dim.kind or "unspecified", "score": score / total}
               for dim, score in zip(usable, scores, strict=True)]
    return sorted(ranking, key=lambda entry: entry["score"], reverse=True)
