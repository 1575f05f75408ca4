"""What hypersweep changes in how Ray Tune runs a sweep, on a real local Ray."""

import pytest
import ray
from ray import tune
from ray.tune import ExperimentAnalysis
from ray.tune.execution.tune_controller import TuneController as RayTuneController

from benchmarks.trivial import Trivial
from hypersweep.actor_reuse import starting_actors_kept
from hypersweep.experiment import _without_result_tables
from tests.slow_start import SlowToStart

SLOTS = 4
TRIALS = 60


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=SLOTS, include_dashboard=False, log_to_driver=False)
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


def test_actor_reuse_never_throws_away_a_process_being_started(local_ray, tmp_path):
    # The k-th trial process takes k/2 seconds to set up and trials take 0.1 s: Ray's own
    # controller gave the first free actor to a trial whose process was starting and threw that
    # process away, again and again, running the sweep on fewer processes than slots.
    claims = tmp_path / "claims"
    claims.mkdir()
    with starting_actors_kept() as kept:
        results = tune.Tuner(
            SlowToStart, param_space={"claims": str(claims), "x": tune.grid_search(list(range(TRIALS)))},
            tune_config=tune.TuneConfig(reuse_actors=True),
            run_config=tune.RunConfig(name="reuse", storage_path=str(tmp_path), verbose=0),
        ).fit()
    assert kept, "this Ray's Tune takes hypersweep's controller"
    assert tune.tune.TuneController is RayTuneController, "Ray's own controller is back"
    assert len(results) == TRIALS and not results.errors
    processes_that_ran_trials = {result.metrics["pid"] for result in results}
    assert len(processes_that_ran_trials) == SLOTS, "every slot ran trials"
    assert len(list(claims.iterdir())) == SLOTS, "no process was started and thrown away"
