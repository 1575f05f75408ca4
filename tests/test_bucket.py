"""Experiments kept in a bucket (storage_path=s3://...), against a real S3 API (moto's server on
127.0.0.1), a real embedded Ray and real training.

Nothing of the experiment stays in the working directory, and a launch on a machine without the
driver's local copy picks the sweep up from the bucket alone.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hypersweep import report, storage
from hypersweep.paths import join, local_copy
from tests.conftest import ENDED_WITHOUT_FAILING, ROOT, run_launch
from tests.ray_cluster import LocalCluster
from tests.test_pbt import PBT, POPULATION
from tests.test_resume import _ended_trials, _read_until_progress, _start, _stop_session

pytestmark = pytest.mark.slow


def _stored(uri: str) -> dict[str, bytes]:
    """Every file of the experiment at `uri` but the checkpoints' contents (path -> bytes)."""
    from pyarrow.fs import FileSelector, FileType

    fs, root = storage.filesystem(uri)
    found = {}
    for info in fs.get_file_info(FileSelector(root, recursive=True)):
        if info.type == FileType.File:
            relpath = info.path[len(root) + 1:]
            found[relpath] = b"" if "/checkpoint_" in relpath else fs.open_input_stream(info.path).read()
    return found


def _rows(files: dict[str, bytes], trial_id: str) -> list[dict]:
    return [json.loads(line) for line in files[f"trial_{trial_id}/result.json"].decode().splitlines()]


@pytest.fixture(scope="module")
def swept(bucket, tmp_path_factory):
    """The smoke sweep with its experiment in the bucket: the launch, the experiment's URI and
    the working directory it ran in."""
    workdir = tmp_path_factory.mktemp("bucket-sweep")
    done = run_launch("experiment=smoke", f"storage_path='{bucket}'", cwd=workdir)
    return done, join(bucket, "smoke"), workdir


def test_a_sweep_keeps_results_checkpoints_and_tensorboard_in_the_bucket(swept, tmp_path):
    done, uri, workdir = swept
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not any(workdir.iterdir()), "the experiment (or Hydra's records) landed in the working dir"
    assert f"experiment: {uri}" in done.stdout
    files = _stored(uri)
    for name in ("sweep.json", "versions.json", "groups.json", "summary.json"):
        assert name in files, sorted(files)
    assert any(name.startswith("experiment_state-") for name in files)
    assert any(name.startswith("hydra/") and name.endswith(".hydra/config.yaml") for name in files)
    trials = json.loads(files["summary.json"])["trials"]
    assert len(trials) == 6
    for trial in trials:
        epochs = [row["epoch"] for row in _rows(files, trial["trial_id"])]
        assert epochs == list(range(1, trial["epochs"] + 1)), (trial["trial_id"], epochs)
        assert any(name.startswith(f"trial_{trial['trial_id']}/checkpoint_") for name in files)
        # The trial's TensorBoard run, uploaded from the worker, read with TensorBoard's reader.
        run = tmp_path / trial["trial_id"]
        run.mkdir()
        for name, content in files.items():
            if name.startswith(f"tensorboard/{trial['trial_id']}/events"):
                (run / Path(name).name).write_bytes(content)
        board = EventAccumulator(str(run))
        board.Reload()
        assert [event.step for event in board.Scalars("val_acc")] == list(range(1, trial["epochs"] + 1))


def test_the_same_launch_on_another_machine_resumes_from_the_bucket_and_reruns_nothing(swept):
    first, uri, workdir = swept
    assert first.returncode == 0
    before = _stored(uri)
    shutil.rmtree(local_copy(uri))  # another machine: only the bucket has the experiment
    again = run_launch("experiment=smoke", f"storage_path='{join(uri, '..')}'".replace("/smoke/..", ""),
                       cwd=workdir)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"resuming the sweep in {uri}" in again.stdout
    assert not _ended_trials(again.stdout), "a finished trial ran again"
    after = _stored(uri)
    for trial in json.loads(before["summary.json"])["trials"]:
        assert _rows(after, trial["trial_id"]) == _rows(before, trial["trial_id"])


def test_the_report_of_an_experiment_in_a_bucket_is_written_to_the_bucket(swept, tmp_path, capsys):
    _, uri, _ = swept
    assert report.main([uri, "--conf-dir", str(tmp_path / "experiment")]) == 0
    assert f"report: {join(uri, 'report.md')}" in capsys.readouterr().out
    files = _stored(uri)
    assert "## " in files["report.md"].decode()
    assert json.loads(files["report.json"])["metric"] == "val_acc"
    assert any(name.startswith("report/") and name.endswith(".png") for name in files)
    assert (tmp_path / "experiment" / "smoke_best.yaml").exists()


def test_a_sweep_in_a_bucket_grows_and_resumes_grown_from_another_machine(bucket, tmp_path):
    sweep = ("experiment=smoke", "name=grown", "train.max_epochs=2", f"storage_path='{bucket}'")
    uri = join(bucket, "grown")
    assert run_launch(*sweep, "num_samples=2", cwd=tmp_path).returncode == 0
    shutil.rmtree(local_copy(uri))
    grown = run_launch(*sweep, "num_samples=4", cwd=tmp_path)
    assert grown.returncode == 0, grown.stdout[-3000:] + grown.stderr[-3000:]
    assert "num_samples 2 -> 4: the sweep runs 2 trials more" in grown.stdout
    files = _stored(uri)
    assert json.loads(files["sweep.json"])["num_samples"] == 4
    assert len(json.loads(files["summary.json"])["trials"]) == 4

    shutil.rmtree(local_copy(uri))  # another machine: the bucket's sweep.json says 4
    again = run_launch(*sweep, "num_samples=4", cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"resuming the sweep in {uri}" in again.stdout and not _ended_trials(again.stdout)


def test_a_driver_killed_mid_sweep_resumes_from_the_bucket_losing_nothing(bucket, tmp_path):
    sweep = ("experiment=smoke", "name=killed", "num_samples=8", "train.max_epochs=6",
             f"storage_path='{bucket}'")
    process = _start(tmp_path, *sweep)
    output = "".join(_read_until_progress(process, 2))
    process.kill()
    process.wait()
    _stop_session(process.pid)
    ended_before = _ended_trials(output)
    assert ended_before, output[-3000:]
    uri = join(bucket, "killed")
    shutil.rmtree(local_copy(uri))

    done = run_launch(*sweep, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "resuming the sweep" in done.stdout
    files = _stored(uri)
    trials = json.loads(files["summary.json"])["trials"]
    assert len(trials) == 8
    assert {trial["status"] for trial in trials} <= ENDED_WITHOUT_FAILING, trials
    for trial in trials:
        iterations = [row["training_iteration"] for row in _rows(files, trial["trial_id"])]
        # One row per iteration, in order: the rows from before the kill came back from the
        # bucket, and a report made again replaced the lost one.
        assert iterations == list(range(1, trial["epochs"] + 1)), (trial["trial_id"], iterations)
    for trial_id in ended_before:
        # Ray uploads its snapshot in the background, so one taken just before the kill may still
        # show such a trial running: it restores from its end checkpoint and reports that end
        # again, training nothing (a step trained again would have replaced a row).
        assert f"trial_{trial_id}/replaced.json" not in files, f"{trial_id} trained again"


def test_trials_on_two_nodes_keep_their_results_checkpoints_and_runs_in_the_bucket(bucket, tmp_path):
    # Started while the bucket's credentials are in the environment: every node's trials get them.
    cluster = LocalCluster(workers=1, cpus=2)
    try:
        # A process per trial and every trial queued at once, so that both nodes get trials.
        done = subprocess.run(
            [sys.executable, str(ROOT / "launch.py"), "cluster=remote", f"cluster.address={cluster.address}",
             "experiment=smoke", "name=two_nodes", "num_samples=6", "search=random", "scheduler=fifo",
             "reuse_actors=false", f"storage_path='{bucket}'"],
            cwd=tmp_path, env={**cluster.env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
            timeout=600)
    finally:
        cluster.stop()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not any(tmp_path.iterdir())
    files = _stored(join(bucket, "two_nodes"))
    trials = json.loads(files["summary.json"])["trials"]
    assert len(trials) == 6
    nodes = set()
    for trial in trials:
        rows = _rows(files, trial["trial_id"])
        assert [row["epoch"] for row in rows] == list(range(1, trial["epochs"] + 1))
        nodes.add(rows[0]["node_id"])
        assert any(name.startswith(f"trial_{trial['trial_id']}/checkpoint_") for name in files)
        assert any(name.startswith(f"tensorboard/{trial['trial_id']}/events") for name in files)
    assert len(nodes) == 2, "trials ran on both nodes, and each node wrote to the bucket"


def test_a_pbt_sweep_keeps_its_lineage_in_the_bucket(bucket, tmp_path):
    done = run_launch(*PBT, "name=pbt", f"storage_path='{bucket}'", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = _stored(join(bucket, "pbt"))["pbt_lineage.jsonl"].decode().splitlines()
    events = [json.loads(line)["event"] for line in lines]
    assert events.count("start") == POPULATION and "exploit" in events, events
    assert f"pbt: {events.count('exploit')} exploits" in done.stdout
