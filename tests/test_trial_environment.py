"""Trial processes start without the runtime environment Ray Tune gives them wherever they get its
variables another way (hypersweep/trial_environment.py), and still get them: on the embedded Ray
and on a cluster of `ray start` nodes."""

import json
import os
import subprocess
import sys
from pathlib import Path

from ray.tune.execution import class_cache, tune_controller

from hypersweep import trial_environment
from hypersweep.arrow_memory import POOL_VARIABLE
from hypersweep.trial_environment import embedded_ray_environment, trials_without_redundant_environment
from tests.conftest import ROOT, run_launch
from tests.ray_cluster import LocalCluster


class Trainable:
    pass


PROBE = ("experiment=smoke", "trainable=tests.environment_probe.EnvironmentProbe", "search=random",
         "scheduler=fifo", "num_samples=2")


def _probed(experiment: Path) -> list[dict]:
    """What each trial of an EnvironmentProbe sweep reported."""
    return [json.loads(path.read_text().splitlines()[-1]) for path in experiment.glob("trial_*/result.json")]


def _registered() -> tuple[dict, dict]:
    """The runtime environment Ray Tune's controller would register a trial actor class with, and
    the variables an instance of that class sets in its process as it is made."""
    actor_class = tune_controller._ActorClassCache().get(Trainable)
    made = actor_class.__ray_metadata__.modified_class
    saved = dict(os.environ)
    try:
        os.environ.clear()
        made.__init__(made.__new__(made))
        set_by_instance = dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return actor_class._default_options.get("runtime_env", {}), set_by_instance


def test_the_variables_set_are_those_ray_tune_sets_for_trials():
    assert trial_environment.TUNE_TRIAL_VARIABLES == class_cache.DEFAULT_ENV_VARS
    assert isinstance(vars(tune_controller)["_ActorClassCache"](), class_cache._ActorClassCache)


def test_tunes_runtime_environment_stays_only_for_variables_a_trial_process_would_lack_at_its_start(
        monkeypatch):
    monkeypatch.delenv("PL_DISABLE_FORK", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "before")
    tunes = {"env_vars": {"PL_DISABLE_FORK": "1", "AWS_ACCESS_KEY_ID": "before"}}
    changed = {"env_vars": {"PL_DISABLE_FORK": "1", "AWS_ACCESS_KEY_ID": "after"}}
    # No embedded Ray: a cluster's workers inherit their node's environment, without the driver's
    # credentials, which S3 may read before the trial's code runs.
    with trials_without_redundant_environment():
        assert _registered() == (tunes, {})
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        assert _registered() == ({}, {"PL_DISABLE_FORK": "1"}), "the trial process sets it"
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "before")
    with embedded_ray_environment():
        assert os.environ["PL_DISABLE_FORK"] == "1", "the embedded Ray's processes inherit it"
        with trials_without_redundant_environment():
            assert _registered() == ({}, {})
            # Set after ray.init, the trial processes would not inherit it: Tune's environment stays.
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "after")
            assert _registered() == (changed, {})
        assert tune_controller._ActorClassCache is class_cache._ActorClassCache, "Ray's own again"
    with trials_without_redundant_environment():  # that Ray has shut down
        assert _registered() == (changed, {})


def test_a_value_the_user_set_stays_in_the_driver_and_tunes_reaches_the_trials(monkeypatch):
    monkeypatch.setenv("PL_DISABLE_FORK", "0")
    with embedded_ray_environment(), trials_without_redundant_environment():
        assert os.environ["PL_DISABLE_FORK"] == "0"
        assert _registered() == ({}, {"PL_DISABLE_FORK": "1"})


def test_trials_on_the_embedded_ray_run_without_a_runtime_environment_and_inherit_tunes_variables(
        tmp_path, monkeypatch):
    monkeypatch.delenv("PL_DISABLE_FORK", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-driver")
    monkeypatch.delenv(POOL_VARIABLE, raising=False)
    done = run_launch(*PROBE, "name=probe", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _probed(tmp_path / "runs" / "probe")
    assert len(rows) == 2
    for row in rows:
        # With any runtime environment, Ray starts the process through its setup_worker.py shim.
        assert json.loads(row["runtime_env"]) == {}
        assert (row["PL_DISABLE_FORK"], row["AWS_ACCESS_KEY_ID"]) == ("1", "from-the-driver")
        assert row["arrow_pool"] == "system", "as the driver's (hypersweep/arrow_memory.py)"


def test_trials_on_a_cluster_set_tunes_variable_themselves_and_keep_its_environment_for_credentials(
        tmp_path, monkeypatch):
    # The node's processes inherit this environment: neither Tune's variable nor credentials.
    for name in ("PL_DISABLE_FORK", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    cluster = LocalCluster(workers=0, cpus=2)
    try:
        for name, driver_env in (("plain", {}), ("credentials", {"AWS_ACCESS_KEY_ID": "from-the-driver"})):
            done = subprocess.run(
                [sys.executable, str(ROOT / "launch.py"), "cluster=remote",
                 f"cluster.address={cluster.address}", *PROBE, f"name={name}"],
                cwd=tmp_path, env={**cluster.env, **driver_env, "PYTHONPATH": str(ROOT)},
                capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            rows = _probed(tmp_path / "runs" / name)
            assert len(rows) == 2
            for row in rows:
                assert row["PL_DISABLE_FORK"] == "1"
                assert row["AWS_ACCESS_KEY_ID"] == driver_env.get("AWS_ACCESS_KEY_ID")
                # Credentials may be read before the trial's code runs: Tune's environment stays.
                expected = {"env_vars": {"PL_DISABLE_FORK": "1", **driver_env}} if driver_env else {}
                assert json.loads(row["runtime_env"]) == expected
    finally:
        cluster.stop()
