"""What hypersweep changes in how Ray Tune runs a sweep, on a real local Ray."""

import pytest
import ray
from ray import tune
from ray.tune import ExperimentAnalysis

from benchmarks.trivial import Trivial
from hypersweep.experiment import _without_result_tables


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _fit(tmp_path, name: str) -> tune.ResultGrid:
    tuner = tune.Tuner(Trivial, param_space={"x": tune.grid_search([0.25, 0.75])},
                       run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0))
    return tuner.fit()


def test_the_end_of_a_sweep_reads_no_result_tables(local_ray, tmp_path):
    fetch = ExperimentAnalysis._fetch_trial_dataframes
    with _without_result_tables():
        skipped = _fit(tmp_path, "skipped")
    assert ExperimentAnalysis._fetch_trial_dataframes is fetch, "Ray's own method is back"
    assert [r.metrics_dataframe for r in skipped] == [None, None]
    assert sorted(r.metrics["val_acc"] for r in skipped) == [0.25, 0.75], "the last results are there"
    # Without it, Ray reads every report of every trial into a table.
    read = _fit(tmp_path, "read")
    assert [list(r.metrics_dataframe["val_acc"]) for r in read] in ([[0.25], [0.75]], [[0.75], [0.25]])
