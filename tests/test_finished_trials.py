"""Sharing the parts of a finished trial's config that every trial has alike."""

import copy
import math

from hypersweep.finished_trials import identical, share_equal_parts


def test_parts_identical_to_the_reference_become_the_reference():
    reference = {"model": {"layers": 2, "act": "relu"}, "optim": {"lr": 0.1, "betas": [0.9, 0.99]}}
    config = {"model": {"layers": 2, "act": "relu"}, "optim": {"lr": 0.01, "betas": [0.9, 0.99]}}
    shared = share_equal_parts(config, reference)
    assert shared is config, "a config that differs stays its own dict"
    assert config["model"] is reference["model"]
    assert config["optim"] is not reference["optim"] and config["optim"]["lr"] == 0.01
    assert share_equal_parts(copy.deepcopy(reference), reference) is reference, "all of it alike"


def test_values_equal_only_across_types_or_orders_are_not_shared():
    # 1 == 1.0 == True in Python: sharing those would change a value's type in the trial's config.
    for mine, theirs in (({"n": 1}, {"n": True}), ({"n": 1}, {"n": 1.0}),
                         ({"a": 1, "b": 2}, {"b": 2, "a": 1}), ({"l": [1, 2]}, {"l": (1, 2)})):
        config, reference = {"part": mine}, {"part": theirs}
        assert not identical(mine, theirs)
        share_equal_parts(config, reference)
        assert config["part"] is mine


def test_nan_is_never_shared_and_nothing_is_lost():
    config = {"part": {"x": float("nan")}, "other": {"y": 1}}
    share_equal_parts(config, {"part": {"x": float("nan")}})
    assert set(config) == {"part", "other"} and config["other"] == {"y": 1}
    assert math.isnan(config["part"]["x"])
