"""Stratified splits in numpy alone: the very indices of scikit-learn's `train_test_split`.

Importing scikit-learn costs the driver 1.4-1.9 s of CPU before the first trial can start (its
package imports scipy), and splitting a data set was one of the two things it was imported for.
`stratified_split` makes the same draws from the same generator as `train_test_split` with
`stratify` and an integer `random_state`, so saved sweeps keep their splits (tests/test_split.py
compares the two).
"""

import math

import numpy as np

from hypersweep.errors import ConfigError


def _class_shares(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of `draws` samples each class gets: its proportional share rounded down, then
    one more for the classes with the largest remainders, ties broken at random."""
    exact = counts / counts.sum() * draws
    shares = np.floor(exact)
    missing = int(draws - shares.sum())
    remainders = exact - shares
    for remainder in np.sort(np.unique(remainders))[::-1]:
        if missing <= 0:
            break
        tied = np.flatnonzero(remainders == remainder)
        chosen = rng.choice(tied, size=min(len(tied), missing), replace=False)
        shares[chosen] += 1
        missing -= len(chosen)
    return shares.astype(int)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the rest and of a test part of `test_fraction` of the samples, each class in
    the proportion it has in `labels`; both shuffled."""
    n_test = math.ceil(test_fraction * len(labels))
    n_rest = len(labels) - n_test
    classes, label_index, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise ConfigError(f"data: class {classes[counts.argmin()]} has a single sample; a "
                         f"stratified split needs at least 2 of each class")
    if min(n_rest, n_test) < len(classes):
        raise ConfigError(f"data: a part of {min(n_rest, n_test)} samples cannot hold each of the "
                         f"{len(classes)} classes; choose data.val_fraction and data.test_fraction "
                         f"so that each part has at least {len(classes)} samples")
    by_class = np.split(np.argsort(label_index, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    rest_shares = _class_shares(counts, n_rest, rng)
    test_shares = _class_shares(counts - rest_shares, n_test, rng)
    rest: list[int] = []
    test: list[int] = []
    for members, to_rest, to_test in zip(by_class, rest_shares, test_shares, strict=True):
        shuffled = members[rng.permutation(len(members))]
        rest.extend(shuffled[:to_rest])
        test.extend(shuffled[to_rest:to_rest + to_test])
    return rng.permutation(rest), rng.permutation(test)
