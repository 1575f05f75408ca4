"""The embedded Ray at a sweep's end: shut down, or, where the process ends right after its sweep
(the command line), left to end with the driver; either way no process of it outlives the driver."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, ends_within, run_launch

# The embedded Ray around one task, as a sweep uses it, with or without the dashboard; then the
# process ends as launch.py's does. Prints whether Ray is still up after the block, and the pids of
# the GCS, the raylet and the raylet's children (its two agents and the task's worker).
SCRIPT = """
import os, sys
from pathlib import Path
import ray
from ray._private import worker
from hypersweep.cluster import connect
from hypersweep.ray_end import end_embedded_ray_with_process

if sys.argv[1] == "ends":
    end_embedded_ray_with_process()
with connect({"address": "local", "num_cpus": 1, "dashboard": sys.argv[2] == "dashboard"}):
    ray.get(ray.remote(lambda: None).remote())
    processes = worker._global_node.all_processes
    gcs, raylet = (processes[kind][0].process.pid for kind in ("gcs_server", "raylet"))
    children = Path(f"/proc/{raylet}/task/{raylet}/children").read_text().split()
print("ray still up:", ray.is_initialized())
print("pids:", gcs, raylet, *children, flush=True)
os._exit(0)
"""


def _run(mode: str, dashboard: str = "no dashboard") -> tuple[str, list[int]]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode, dashboard], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    pids = [int(pid) for pid in re.search(r"^pids: (.*)$", done.stdout, flags=re.M).group(1).split()]
    return done.stdout, pids


def test_a_process_that_ends_after_its_sweep_leaves_the_embedded_ray_to_end_with_it():
    out, pids = _run("ends")
    assert "ray still up: True" in out, "Ray was shut down, which costs the command 0.3 s"
    assert len(pids) >= 5, f"the GCS, the raylet, its two agents and a worker: {pids}"
    for pid in pids:
        assert ends_within(pid, 10), f"process {pid} of the embedded Ray outlived the driver"


@pytest.mark.parametrize("mode, dashboard", [("shuts down", "no dashboard"), ("ends", "dashboard")])
def test_any_other_process_or_ray_with_its_own_agents_is_shut_down(mode, dashboard):
    # Ray's own agents (with the dashboard) outlive a killed raylet: Ray's shutdown stops them.
    out, pids = _run(mode, dashboard)
    assert "ray still up: False" in out
    for pid in pids:
        assert ends_within(pid, 10), f"process {pid} of the embedded Ray outlived its shutdown"


def _log_pids(logs: Path) -> dict[str, list[int]]:
    """The pids of the GCS, the raylet and the workers of a Ray session, from its log files."""
    def first_pid(name: str) -> int:  # Ray's log lines begin "[date time level PID TID]"
        return int((logs / name).read_text().split()[3])

    workers = [int(path.stem.rsplit("_", 1)[1]) for path in logs.glob("python-core-worker-*.log")]
    return {"gcs": [first_pid("gcs_server.out")], "raylet": [first_pid("raylet.out")], "workers": workers}


@pytest.mark.parametrize("multirun", [False, True])
def test_no_process_of_the_commands_embedded_ray_outlives_it(tmp_path, multirun):
    # One job leaves its Ray to end with the process; a multirun's jobs each shut theirs down.
    done = run_launch(*(["-m"] if multirun else []), "experiment=smoke", "num_samples=2",
                      "train.max_epochs=1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sessions = re.findall(r"^ray logs: (\S+)$", done.stdout, flags=re.M)
    assert len(sessions) == 1
    pids = _log_pids(Path(sessions[0]))
    assert pids["workers"], "the trials ran in worker processes"
    for kind, of_kind in pids.items():
        for pid in of_kind:
            assert ends_within(pid, 10), f"{kind} process {pid} outlived the command"
