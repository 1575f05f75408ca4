"""Trial processes on the embedded Ray start without a runtime environment, which would only
repeat what they inherit (hypersweep/trial_environment.py), and still get Tune's variables."""

import json
import os

from ray.tune.execution import class_cache, tune_controller

from hypersweep import trial_environment
from hypersweep.arrow_memory import POOL_VARIABLE
from hypersweep.trial_environment import embedded_ray_environment, trials_without_redundant_environment
from tests.conftest import run_launch


class Trainable:
    pass


def _registered_runtime_env() -> dict:
    """The runtime environment Ray Tune's controller would register a trial actor class with."""
    return tune_controller._ActorClassCache().get(Trainable)._default_options.get("runtime_env", {})


def test_the_variables_set_are_those_ray_tune_sets_for_trials():
    assert trial_environment.TUNE_TRIAL_VARIABLES == class_cache.DEFAULT_ENV_VARS
    assert isinstance(vars(tune_controller)["_ActorClassCache"](), class_cache._ActorClassCache)


def test_the_runtime_environment_is_left_out_only_while_it_repeats_what_the_embedded_ray_inherited(
        monkeypatch):
    monkeypatch.delenv("PL_DISABLE_FORK", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "before")
    tunes = {"env_vars": {"PL_DISABLE_FORK": "1", "AWS_ACCESS_KEY_ID": "before"}}
    changed = {"env_vars": {"PL_DISABLE_FORK": "1", "AWS_ACCESS_KEY_ID": "after"}}
    with trials_without_redundant_environment():  # no embedded Ray: a cluster's workers
        assert _registered_runtime_env() == tunes
    with embedded_ray_environment():
        assert os.environ["PL_DISABLE_FORK"] == "1", "the embedded Ray's processes inherit it"
        with trials_without_redundant_environment():
            assert _registered_runtime_env() == {}
            # Set after ray.init, the trial processes would not inherit it: Tune's environment stays.
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "after")
            assert _registered_runtime_env() == changed
        assert tune_controller._ActorClassCache is class_cache._ActorClassCache, "Ray's own again"
    with trials_without_redundant_environment():  # that Ray has shut down
        assert _registered_runtime_env() == changed


def test_a_value_the_user_set_stays_and_tunes_own_then_reaches_the_trials(monkeypatch):
    monkeypatch.setenv("PL_DISABLE_FORK", "0")
    with embedded_ray_environment(), trials_without_redundant_environment():
        assert os.environ["PL_DISABLE_FORK"] == "0"
        assert _registered_runtime_env() == {"env_vars": {"PL_DISABLE_FORK": "1"}}


def test_trials_on_the_embedded_ray_run_without_a_runtime_environment_and_inherit_tunes_variables(
        tmp_path, monkeypatch):
    monkeypatch.delenv("PL_DISABLE_FORK", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-driver")
    monkeypatch.delenv(POOL_VARIABLE, raising=False)
    done = run_launch("experiment=smoke", "trainable=tests.environment_probe.EnvironmentProbe",
                      "search=random", "scheduler=fifo", "num_samples=2", "name=probe", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(path.read_text().splitlines()[-1])
            for path in (tmp_path / "runs" / "probe").glob("trial_*/result.json")]
    assert len(rows) == 2
    for row in rows:
        # With any runtime environment, Ray starts the process through its setup_worker.py shim.
        assert json.loads(row["runtime_env"]) == {}
        assert (row["PL_DISABLE_FORK"], row["AWS_ACCESS_KEY_ID"]) == ("1", "from-the-driver")
        assert row["arrow_pool"] == "system", "as the driver's (hypersweep/arrow_memory.py)"
