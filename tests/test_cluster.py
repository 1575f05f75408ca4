"""Sweeps on a real two-node Ray cluster of `ray start` processes on 127.0.0.1, token auth on."""

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.ports import free_port
from tests.ray_cluster import LocalCluster


@pytest.fixture(scope="module")
def gpu_cluster():
    """Two nodes of 2 CPUs and 2 declared GPUs each (no real GPU needed: Ray only counts them)."""
    cluster = LocalCluster(workers=1, cpus=2, gpus=2, dashboard=True)
    yield cluster
    cluster.stop()


def _launch(cluster: LocalCluster, cwd: Path, *args: str, env: dict | None = None,
            address: str | None = None, timeout: float = 600):
    return subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), "cluster=remote",
         f"cluster.address={address or cluster.address}", *args], cwd=cwd,
        env={**(env or cluster.env), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=timeout)


def _rows(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def test_fractional_gpus_pack_four_trials_per_node_on_both_nodes(gpu_cluster, tmp_path):
    # Random search queues every trial at once (hyperopt keeps one pending), and a process per
    # trial: with actor reuse, trials ending on the head would take the queued ones before the
    # worker node's processes are up, and the test would depend on timing.
    done = _launch(gpu_cluster, tmp_path, "experiment=smoke", "num_samples=10", "train.max_epochs=15",
                   "search=random", "scheduler=fifo", "resources.gpu=0.5", "resources.cpu=0.5",
                   "reuse_actors=false")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    experiment = tmp_path / "runs" / "smoke"
    per_node: dict[str, list[tuple[float, float]]] = {}
    for trial_dir in experiment.glob("trial_*"):
        rows = _rows(trial_dir)
        first, last = rows[0], rows[-1]
        assert first["gpu_ids"] in ("0", "1"), "one GPU, shared: each trial gets one device id"
        assert first["cuda_visible_devices"] == first["gpu_ids"], "torch sees exactly Ray's GPU"
        started = first["timestamp"] - first["time_this_iter_s"]
        per_node.setdefault(first["node_id"], []).append((started, last["timestamp"]))
    assert len(per_node) == 2, "trials ran on both nodes"
    for intervals in per_node.values():
        # Timestamps are whole seconds, so overlap can only be overcounted, never missed.
        assert _most_at_once(intervals) <= 4 + 1


def test_no_token_leaks_into_configs_logs_or_the_experiment(gpu_cluster, tmp_path):
    done = _launch(gpu_cluster, tmp_path, "experiment=smoke", "num_samples=2", "train.max_epochs=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert gpu_cluster.token not in done.stdout + done.stderr
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert gpu_cluster.token.encode() not in path.read_bytes(), path


def _without_auth_settings() -> dict:
    """This process's environment as a user's shell has it: no RAY_AUTH_* variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}


def test_the_token_in_the_home_directory_is_all_a_user_needs(gpu_cluster, tmp_path):
    # As the README says: the head's token in ~/.ray/auth_token, and no RAY_AUTH_MODE. Ray reads
    # the mode when it is imported, before hypersweep has chosen it.
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(gpu_cluster.token)
    (home / ".ray" / "auth_token").chmod(0o600)
    done = _launch(gpu_cluster, tmp_path, "experiment=smoke", "num_samples=2", "train.max_epochs=2",
                   env={**_without_auth_settings(), "HOME": str(home)})
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "runs" / "smoke" / "summary.json").read_text())
    assert len(summary["trials"]) == 2 and summary["best"] is not None


def test_a_missing_token_is_one_line_saying_how_to_get_it(gpu_cluster, tmp_path):
    env = {**_without_auth_settings(), "HOME": str(tmp_path)}  # no ~/.ray/auth_token here
    done = _launch(gpu_cluster, tmp_path, "experiment=smoke", env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"error: cluster.auth: {gpu_cluster.address} needs Ray's authentication token")
    assert "ray get-auth-token" in done.stderr


def test_a_wrong_token_is_refused_in_one_line(gpu_cluster, tmp_path):
    env = {**_without_auth_settings(), "HOME": str(tmp_path), "RAY_AUTH_TOKEN": "0" * 64}
    done = _launch(gpu_cluster, tmp_path, "experiment=smoke", env=env)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cluster.address: {gpu_cluster.address} refused this machine's "
                           f"authentication token"), done.stderr[-2000:]
    assert "InvalidAuthToken" not in done.stderr, "one line, not Ray's wall of retries"


def _wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_an_address_where_no_ray_cluster_answers_is_refused_at_once(gpu_cluster, tmp_path):
    # Ray retries such an address for about 14 minutes (30 s a try in client mode); the timeout
    # fails this test long before that.
    gcs, client = gpu_cluster.address, gpu_cluster.client_address.removeprefix("ray://")
    # A web server where a user may point by mistake, as Ray's dashboard on every interface.
    web_port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "http.server", str(web_port)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    _wait_for_port(web_port)
    cases = [
        (f"127.0.0.1:{free_port()}", "(nothing listens at "),
        (f"127.0.0.1:{web_port}", " does not speak gRPC: a web server, the dashboard?)"),
        (client, f"what answers at {client} is not a Ray cluster's GCS; give the head's GCS port"),
        (f"ray://{gcs}", f"ray://{gcs} is a Ray cluster's GCS port, not Ray client mode's"),
        ("nohost.invalid:6379", "(no host is named nohost.invalid)"),
    ]
    try:
        for address, error in cases:
            done = _launch(gpu_cluster, tmp_path, "experiment=smoke", address=address, timeout=60)
            assert done.returncode == 2, (address, done.stderr[-2000:])
            last = done.stderr.strip().splitlines()[-1]
            assert last.startswith("error: cluster.address: ") and error in last, (address, last)
    finally:
        web.kill()
        web.wait()
    assert not (tmp_path / "runs" / "smoke" / "sweep.json").exists()


@pytest.mark.parametrize("dry_run", ["false", "true"])
def test_a_trial_too_big_for_every_node_is_refused_with_the_numbers(gpu_cluster, tmp_path, dry_run):
    done = _launch(gpu_cluster, tmp_path, "experiment=smoke", "resources.cpu=3", "resources.gpu=1",
                   f"dry_run={dry_run}")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: resources: a trial asks for 3 CPU, 1 GPU but no node has that much (the most one "
        "node has: 2 CPU, 2 GPU); lower resources.* or add a larger node")


def test_a_dry_run_counts_the_trials_the_cluster_runs_at_once(gpu_cluster, tmp_path):
    done = _launch(gpu_cluster, tmp_path, "experiment=smoke", "resources.gpu=0.5", "dry_run=true")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "at once:   4 trials on this cluster (2 nodes)" in done.stdout  # 2 CPUs a node, 1 a trial
    assert not list(tmp_path.rglob("sweep.json"))


def test_a_sweep_submitted_as_a_ray_job(gpu_cluster, tmp_path):
    storage = tmp_path / "runs"
    submit = [str(Path(sys.executable).parent / "ray"), "job", "submit",
              f"--address={gpu_cluster.dashboard_url}", f"--working-dir={ROOT}", "--",
              sys.executable, "launch.py", "experiment=smoke", "num_samples=2", "train.max_epochs=2",
              "cluster=remote", "cluster.address=auto", f"storage_path={storage}"]
    done = subprocess.run(submit, env=gpu_cluster.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in done.stdout
    summary = json.loads((storage / "smoke" / "summary.json").read_text())
    assert len(summary["trials"]) == 2 and summary["best"] is not None
    # Each node unpacked the job's files in its own directory, as separate machines do: none
    # deleted the directory the driver ran from (which failed the driver's imports at random).
    setup_logs = gpu_cluster.root.glob("t*/session_*/logs/runtime_env_setup-*.log")
    removals = [line for log in setup_logs for line in log.read_text().splitlines() if "Removing" in line]
    assert removals == []


def test_a_sweep_through_ray_client_mode(tmp_path):
    cluster = LocalCluster(workers=0, cpus=2)
    # The token as a user may give it: its path, and no RAY_AUTH_MODE.
    env = {**_without_auth_settings(), "RAY_AUTH_TOKEN_PATH": cluster.env["RAY_AUTH_TOKEN_PATH"],
           "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, str(ROOT / "launch.py"), "cluster=remote",
             f"cluster.address={cluster.client_address}", "experiment=smoke", "num_samples=2",
             "train.max_epochs=2"], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=600)
    finally:
        cluster.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "runs" / "smoke" / "summary.json").read_text())
    assert len(summary["trials"]) == 2 and summary["best"] is not None


def test_a_lost_worker_node_s_trials_finish_on_the_head_from_their_checkpoints(tmp_path):
    cluster = LocalCluster(workers=1, cpus=1, gpus=0)
    try:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "launch.py"), "cluster=remote", f"cluster.address={cluster.address}",
             "experiment=smoke", "num_samples=3", "train.max_epochs=30", "scheduler=fifo",
             "model.hidden_units=512", "~space.model.hidden_units", "train.batch_size=16",
             "~space.train.batch_size"],
            cwd=tmp_path, env={**cluster.env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        experiment = tmp_path / "runs" / "smoke"
        head_node = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until both nodes run a trial past epoch 3
            nodes = {}
            for trial_dir in experiment.glob("trial_*"):
                if (trial_dir / "result.json").exists() and (rows := _rows(trial_dir)):
                    nodes[rows[-1]["node_id"]] = max(nodes.get(rows[-1]["node_id"], 0), len(rows))
            if len(nodes) == 2 and min(nodes.values()) >= 3:
                break
            time.sleep(0.5)
        cluster.kill_node(1)
        output, _ = process.communicate(timeout=400)
        assert process.returncode == 0, output[-4000:]
        moved = []
        for trial_dir in experiment.glob("trial_*"):
            rows = _rows(trial_dir)
            node_ids = [row["node_id"] for row in rows]
            assert rows[-1]["epoch"] == 30, f"{trial_dir.name} finished all its epochs"
            if len(set(node_ids)) > 1:
                moved.append(trial_dir.name)
                switch = next(i for i, node in enumerate(node_ids) if node != node_ids[0])
                assert rows[switch]["training_iteration"] > 1, "went on from its checkpoint, not from 0"
                head_node = node_ids[-1]
        assert moved, "a trial of the lost node finished on the node left"
        assert all(_rows(d)[-1]["node_id"] == head_node for d in experiment.glob("trial_*")
                   if d.name in moved)
    finally:
        cluster.stop()


def test_a_lost_head_node_is_said_at_once_with_the_command_that_resumes_the_sweep(tmp_path):
    args = ["experiment=smoke", "num_samples=3", "train.max_epochs=60", "scheduler=fifo",
            "model.hidden_units=512", "~space.model.hidden_units"]
    cluster = LocalCluster(workers=0, cpus=2)
    try:
        # Ray's own wait for a lost GCS, shortened from 60 s as a user may set it.
        env = {**cluster.env, "PYTHONPATH": str(ROOT), "RAY_gcs_rpc_server_reconnect_timeout_s": "10"}
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "launch.py"), "cluster=remote", f"cluster.address={cluster.address}",
             *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        experiment = tmp_path / "runs" / "smoke"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
                (d / "result.json").exists() and _rows(d) for d in experiment.glob("trial_*")):
            time.sleep(0.2)
        cluster.kill_node(0)
        _, errors = process.communicate(timeout=120)
    finally:
        cluster.stop()
    assert process.returncode != 0, "Ray ends a driver whose GCS is gone"
    said = [line for line in errors.splitlines() if "stopped answering" in line]
    assert len(said) == 1, errors[-3000:]
    assert said[0].startswith("warning: the cluster's head node (GCS ")
    assert "Ray ends this sweep unless it is back within 10 s" in said[0]
    assert said[0].endswith(f"resume with: python launch.py cluster=remote "
                            f"cluster.address={cluster.address} {shlex.join(args)}")
    # Resumed on a new cluster: every trial trains to its last epoch, none twice over.
    cluster = LocalCluster(workers=0, cpus=2)
    try:
        done = _launch(cluster, tmp_path, *args)
    finally:
        cluster.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming the sweep in" in done.stdout
    summary = json.loads((experiment / "summary.json").read_text())
    assert len(summary["trials"]) == 3
    for trial_dir in experiment.glob("trial_*"):
        epochs = [row["epoch"] for row in _rows(trial_dir)]
        assert epochs == list(range(1, 61)), trial_dir.name
