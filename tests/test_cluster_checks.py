"""The cluster checks' logic and messages, and the shipped deployment files."""

import os
import shlex
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from hypersweep import lean_start
from hypersweep.cluster import _init_options, connect, is_loopback
from hypersweep.config import validate
from hypersweep.errors import ClusterError
from hypersweep.lean_start import DASHBOARD_PROCESSES, UNUSED_HEAD_PROCESSES
from hypersweep.preflight import check_resources, check_storage, filesystem_type, trial_request
from tests.conftest import ROOT, process_running

NODE = {"ip": "10.0.0.1", "CPU": 8.0, "GPU": 1.0, "memory": 32 * 1024**3}
GPU_LESS = {"ip": "10.0.0.2", "CPU": 16.0, "memory": 64 * 1024**3}


@pytest.mark.parametrize(
    ("resources", "nodes", "message"),
    [
        ({"cpu": 1, "gpu": 0.5}, [GPU_LESS],
         "resources.gpu: a trial asks for 0.5 GPU but the cluster has no GPU; set resources.gpu=0"),
        ({"cpu": 12, "gpu": 1}, [NODE, GPU_LESS],
         "resources: a trial asks for 12 CPU, 1 GPU but no node has that much (the most one node has: "
         "16 CPU, 1 GPU)"),
        ({"cpu": 2, "gpu": 0, "memory_gb": 100}, [NODE, GPU_LESS],
         "resources: a trial asks for 2 CPU, 0 GPU, 100.0 GiB memory but no node has that much "
         "(the most one node has: 16 CPU, 1 GPU, 64.0 GiB memory)"),
    ],
)
def test_a_trial_that_fits_no_node_is_refused_with_the_numbers(resources, nodes, message):
    with pytest.raises(ClusterError) as raised:
        check_resources(trial_request(resources), nodes)
    assert str(raised.value).startswith(message)


def test_a_trial_that_fits_one_node_passes():
    check_resources(trial_request({"cpu": 12, "gpu": 0}), [NODE, GPU_LESS])
    check_resources(trial_request({"cpu": 4, "gpu": 0.25}), [NODE, GPU_LESS])


def test_local_disk_storage_is_refused_for_a_multi_machine_cluster():
    with pytest.raises(ClusterError) as raised:
        check_storage("/home/me/runs", [NODE, GPU_LESS], "10.0.0.1", "ext4")
    assert str(raised.value) == (
        "storage_path: /home/me/runs is on this machine's local disk (ext4) but the cluster spans 2 "
        "machines, whose trials could not save or restore checkpoints there; use a shared path "
        "(NFS, or a bucket mounted with gcsfuse or s3fs)")


@pytest.mark.parametrize(
    ("path", "nodes", "fs_type"),
    [
        ("/mnt/nfs/runs", [NODE, GPU_LESS], "nfs4"),
        ("/mnt/bucket/runs", [NODE, GPU_LESS], "fuse.gcsfuse"),
        ("/home/me/runs", [NODE, {**GPU_LESS, "ip": "10.0.0.1"}], "ext4"),  # one machine, 2 nodes
        ("s3://sweeps/runs", [NODE, GPU_LESS], None),
        ("gs://sweeps/runs", [NODE, GPU_LESS], None),
    ],
)
def test_shared_storage_and_single_machine_clusters_pass(path, nodes, fs_type):
    check_storage(path, nodes, "10.0.0.1", fs_type)


def test_filesystem_type_reads_the_longest_matching_mount(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/vda / ext4 rw 0 0\nserver:/export /mnt/nfs nfs4 rw 0 0\n")
    assert filesystem_type("/mnt/nfs/runs/x", str(mounts)) == "nfs4"
    assert filesystem_type("/mnt/nfsother", str(mounts)) == "ext4"


def test_the_embedded_dashboard_stays_on_loopback_unless_exposed(capsys):
    local = {"address": "local", "dashboard": True}
    assert _init_options(local)["dashboard_host"] == "127.0.0.1"
    assert capsys.readouterr().err == ""
    exposed = _init_options({**local, "expose_dashboard": True})
    assert exposed["dashboard_host"] == "0.0.0.0"
    assert "warning: cluster.expose_dashboard=true" in capsys.readouterr().err


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1:6379", True), ("localhost:6379", True), ("ray://127.0.0.1:10001", True),
    ("10.0.0.5:6379", False), ("ray://head.example.com:10001", False)])
def test_loopback_addresses(address, loopback):
    assert is_loopback(address) is loopback


def _launch_overrides(command: str) -> list[str]:
    words = shlex.split(command)
    return words[words.index("launch.py") + 1:]


def test_the_kuberay_job_runs_a_valid_sweep(compose_config):
    manifest = yaml.safe_load((ROOT / "deploy" / "rayjob.yaml").read_text())
    assert manifest["kind"] == "RayJob"
    head = manifest["spec"]["rayClusterSpec"]["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "127.0.0.1"
    overrides = _launch_overrides(manifest["spec"]["entrypoint"])
    validate(compose_config(*overrides))


def test_the_cluster_launcher_config_runs_a_valid_sweep(compose_config):
    launcher = yaml.safe_load((ROOT / "deploy" / "ray-cluster.yaml").read_text())
    assert launcher["head_node_type"] in launcher["available_node_types"]
    starts = [c for c in launcher["head_start_ray_commands"] if "--head" in c]
    assert starts and all("--dashboard-host=127.0.0.1" in c for c in starts)
    header = (ROOT / "deploy" / "ray-cluster.yaml").read_text().splitlines()
    command = next(line for line in header if "launch.py" in line).split('"')[1]
    validate(compose_config(*_launch_overrides(command)))


def test_readme_documents_the_job_submission_command():
    readme = " ".join((ROOT / "README.md").read_text().replace("\\\n", " ").split())
    assert "ray job submit --address http://127.0.0.1:8265 --working-dir . -- python launch.py" in readme
    assert "cluster=remote cluster.address=auto" in readme
    assert Path(ROOT / "deploy" / "rayjob.yaml").name in readme


@pytest.mark.parametrize(("request_", "max_concurrent", "expected"), [
    ({"CPU": 1.0, "GPU": 0.0}, 0, 24),        # 8 + 16 CPUs
    ({"CPU": 1.0, "GPU": 0.25}, 0, 4),        # one GPU node, four trials per GPU
    ({"CPU": 4.0, "GPU": 0.0}, 3, 3),         # capped by max_concurrent
])
def test_trials_at_once_on_a_cluster(request_, max_concurrent, expected):
    from hypersweep.preflight import concurrent_trials

    assert concurrent_trials(request_, [NODE, GPU_LESS], max_concurrent) == expected


REMOTE = ("cluster=remote", "cluster.address=auto")


@pytest.mark.parametrize(("overrides", "expected"), [
    (("search=random",), 24),                   # the embedded Ray never grows
    (("search=random", *REMOTE), None),         # Ray's 200, so that an autoscaler sees them
    (("search=grid", *REMOTE), None),
    (("search=hyperopt", *REMOTE), 24),         # Ray's 1 ran TPE one trial at a time
])
def test_trials_made_ahead_of_a_free_slot(compose_config, overrides, expected):
    from hypersweep.experiment import pending_trials

    assert pending_trials(compose_config("experiment=smoke", *overrides), slots=24) == expected


def _descendants(pid: int) -> set[int]:
    """The processes below `pid`, from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _workers(pids: set[int]) -> list[int]:
    """Those of `pids` that are Ray worker processes: `python .../default_worker.py`, which
    renames itself ray::IDLE once started."""
    found = []
    for pid in pids:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args[0] == b"ray::IDLE" or len(args) > 1 and args[1].endswith(b"default_worker.py"):
            found.append(pid)
    return found


def _ray_scripts(pids: set[int]) -> set[str]:
    """The file names of the Python scripts that `pids` run (Ray's own processes)."""
    scripts = set()
    for pid in pids:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        scripts |= {Path(arg.decode()).name for arg in args if arg.endswith(b".py")}
    return scripts


def test_the_embedded_ray_starts_no_idle_workers_no_unused_process_and_leaves_no_process():
    import inspect

    import ray._private.services as ray_services
    import ray._private.utils as ray_utils
    from ray._private.node import Node

    # Ray's internals that hypersweep turns off are still there (else Ray would start them again).
    assert all(name in Node.__dict__ for name in UNUSED_HEAD_PROCESSES + DASHBOARD_PROCESSES)
    ray_check, ray_get_node = ray_utils.get_dashboard_dependency_error, ray_services.get_node
    ray_start_process = ray_services.start_ray_process
    assert "ray._private.services.get_node(" in inspect.getsource(Node.__init__)
    originals = {name: Node.__dict__[name] for name in UNUSED_HEAD_PROCESSES + DASHBOARD_PROCESSES}
    before = _descendants(os.getpid())
    with connect({"address": "local", "num_cpus": 2}):
        scripts = _ray_scripts(_descendants(os.getpid()) - before)
        assert {"monitor.py", "log_monitor.py", "dashboard.py"}.isdisjoint(scripts)
        assert "idle_agent.py" in scripts  # in the dashboard agent's place
        assert "lazy_env_agent.py" in scripts  # in the runtime-environment agent's, uncalled
        assert {name: Node.__dict__[name] for name in originals} == originals  # Ray's own again
        assert ray_utils.get_dashboard_dependency_error is ray_check
        assert ray_services.get_node is ray_get_node
        assert ray_services.start_ray_process is ray_start_process
        # Ray would start one idle worker per CPU within a second or two; Tune's actors never use them.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert _workers(_descendants(os.getpid()) - before) == []
            time.sleep(0.2)
        started = _descendants(os.getpid()) - before
    deadline = time.monotonic() + 10
    while any(map(process_running, started)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(started) >= 4 and not [pid for pid in started if process_running(pid)]


def _printed_by(probe: str) -> str:
    """What the Python code `probe` prints, run in a process of its own; it must succeed."""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _raylet_log_times(logs: str, *messages: str) -> list[datetime]:
    """When the raylet first logged each of `messages` (raylet.out lines start [YYYY-MM-DD HH:MM:SS,mmm)."""
    lines = Path(logs, "raylet.out").read_text().splitlines()
    return [datetime.strptime(next(line for line in lines if message in line)[1:24], "%Y-%m-%d %H:%M:%S,%f")
            for message in messages]


def test_the_embedded_ray_retries_its_sockets_every_50_ms_as_patiently_as_ray():
    # A process of its own: Ray's config, once read, stays for the life of the process.
    probe = ("from hypersweep.cluster import connect\n"
             "from ray._raylet import Config\n"
             "with connect({'address': 'local', 'num_cpus': 1}) as logs:\n"
             "    print(Config.raylet_client_connect_timeout_milliseconds(),\n"
             "          Config.raylet_client_num_connect_attempts(), logs)")
    interval_ms, attempts, logs = _printed_by(probe).split()[-3:]
    assert int(interval_ms) == 50
    assert int(interval_ms) * int(attempts) >= 10_000  # Ray's own patience: 10 tries a second apart
    # The raylet connected to its store without Ray's 1-s wait between two tries.
    store_started, objects_served = _raylet_log_times(logs, "create_and_mmap_buffer",
                                                      "ObjectManager server started")
    assert (objects_served - store_started).total_seconds() < 0.9


def test_the_driver_starts_the_embedded_ray_without_importing_the_dashboards_packages():
    # Ray imports them all (0.5 s) only to learn whether they are installed.
    probe = ("import sys; from hypersweep.cluster import connect\n"
             "with connect({'address': 'local', 'num_cpus': 1}):\n"
             "    packages = ('aiohttp', 'grpc', 'prometheus_client', 'pydantic')\n"
             "    print(sorted(name for name in packages if name in sys.modules))")
    assert _printed_by(probe).strip().splitlines()[-1] == "[]"


def test_the_dashboard_packages_are_those_ray_checks_and_a_missing_one_is_named(monkeypatch):
    import ast

    import ray._private.utils
    import ray.dashboard

    source = (Path(ray.dashboard.__file__).parent / "optional_deps.py").read_text()
    imported = {alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} == {
        name.split(".")[0] for name in lean_start.DASHBOARD_PACKAGES}
    assert (lean_start.dashboard_dependency_error() is None) == (
        ray._private.utils.get_dashboard_dependency_error() is None)
    monkeypatch.setattr(lean_start, "DASHBOARD_PACKAGES", ("aiohttp", "no_such_package", "no_such.module"))
    assert str(lean_start.dashboard_dependency_error()) == "not installed: no_such_package, no_such.module"


def test_the_wait_for_the_raylet_asks_the_gcs_until_the_node_is_listed(monkeypatch):
    import ray

    with connect({"address": "local", "num_cpus": 1}):
        context = ray.get_runtime_context()
        assert lean_start.wait_for_registration(context.gcs_address, context.get_node_id())
        monkeypatch.setattr(lean_start, "REGISTRATION_TIMEOUT_SECONDS", 0.3)
        assert not lean_start.wait_for_registration(context.gcs_address, "ff" * 28)


def test_the_embedded_ray_starts_its_dashboard_when_asked():
    before = _descendants(os.getpid())
    with connect({"address": "local", "num_cpus": 1, "dashboard": True}):
        scripts = _ray_scripts(_descendants(os.getpid()) - before)
    assert "dashboard.py" in scripts
    # Ray's own agent, which serves the dashboard its node's figures
    assert {"monitor.py", "log_monitor.py", "idle_agent.py", "lazy_env_agent.py"}.isdisjoint(scripts)
