"""The statistics benchmarks/peers.py and variants.py print: whether a difference between tools
(or variants of the sweep) is more than the noise between seeds."""

import math

import pytest

from benchmarks.peers import mean_figures, mean_interval, paired_comparison, run_figures
from benchmarks.variants import run_order


def test_mean_interval_is_students_t_over_the_values():
    mean, low, high = mean_interval([1.0, 2.0, 3.0])
    # Standard deviation 1 over 3 values; t(0.975, 2 degrees of freedom) = 4.3027.
    half = 4.3027 * 1.0 / math.sqrt(3)
    assert mean == 2.0
    assert low == pytest.approx(2.0 - half, abs=1e-4)
    assert high == pytest.approx(2.0 + half, abs=1e-4)


def test_a_single_value_has_no_interval():
    assert mean_interval([0.5]) == (0.5, 0.5, 0.5)


def test_paired_comparison_is_seed_by_seed():
    ours = [{"best": 0.97, "wall": 10.0}, {"best": 0.98, "wall": 20.0}]
    # Twice as slow on every seed, and 0.01 more accurate on every seed: no spread at all.
    theirs = [{"best": 0.98, "wall": 20.0}, {"best": 0.99, "wall": 40.0}]
    assert paired_comparison(ours, theirs) == (
        "best val_acc +0.0100 (95% interval +0.0100 to +0.0100); wall time 2.00x hypersweep's "
        "(95% interval 2.00-2.00x; seeds 2.00-2.00x)")


def test_paired_comparison_needs_the_same_seeds():
    with pytest.raises(ValueError):
        paired_comparison([{"best": 0.9, "wall": 1.0}], [])


def test_a_comparison_names_its_reference():
    base = [{"best": 0.97, "wall": 10.0}]
    assert paired_comparison(base, [{"best": 0.98, "wall": 5.0}], reference="base").endswith(
        "wall time 0.50x base's (95% interval 0.50-0.50x; seeds 0.50-0.50x)")


def test_variants_alternate_which_runs_first():
    names = ["base", "tenth", "per-lr"]
    assert [run_order(names, index)[0] for index in range(4)] == ["base", "per-lr", "base", "per-lr"]
    assert sorted(run_order(names, 1)) == sorted(names)


def test_the_figures_printed_per_run_and_per_tool():
    runs = [{"wall": 20.04, "best": 0.975, "epochs": 320}, {"wall": 18.0, "best": 0.98, "epochs": 331}]
    assert run_figures(runs[0]) == "20.0 s, best 0.9750, 320 epochs"
    assert mean_figures(runs) == "best val_acc 0.9775  epochs 326"


def test_same_config_compares_only_configs_both_loops_learned():
    from benchmarks.same_config import differences

    plain, learner = [0.95, 0.10, 0.97, 0.90], [0.96, 0.93, 0.09, 0.88]
    assert differences(plain, learner) == pytest.approx([0.01, -0.02])


def test_same_config_draws_configs_of_the_space_by_seed():
    from benchmarks.peers import SPACE
    from benchmarks.same_config import draw_configs

    configs = draw_configs(20, seed=3)
    assert configs == draw_configs(20, seed=3) != draw_configs(20, seed=4)
    for config in configs:
        assert 1e-4 <= config["lr"] <= 1e-1
        assert all(config[name] in spec[1] for name, spec in SPACE.items() if spec[0] == "choice")


def test_both_loops_train_from_the_same_weights():
    """At a learning rate of 0 nothing trains: the two loops end where they start, so equal
    accuracies mean the same initial weights for the same seed (and other weights for another)."""
    import torch

    from benchmarks.same_config import learner_loop, plain_loop
    from trainables.data import load_digits
    from trainables.learner import to_tensors

    data = load_digits(seed=0)
    tensors = to_tensors(data, torch.device("cpu"))
    params = {"lr": 0.0, "optimizer": "sgd", "batch_size": 128, "hidden_layers": 1,
              "hidden_units": 64, "dropout": 0.0, "activation": "relu"}
    untrained = learner_loop(params, tensors, seed=5)
    assert plain_loop(params, data, seed=5) == untrained
    assert learner_loop(params, tensors, seed=6) != untrained
