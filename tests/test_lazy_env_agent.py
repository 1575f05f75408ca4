"""The stand-in for Ray's runtime-environment agent: the port it serves, its life as the raylet's
child, and how it becomes Ray's agent when the raylet first calls it."""

import os
import socket
from pathlib import Path

from hypersweep import lazy_env_agent
from hypersweep.cluster import connect
from tests.conftest import ends_within, process_running, start_under_a_short_lived_parent

NODE_ID = "cd" * 28


def _process_args(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_it_writes_the_port_file_and_takes_the_options_of_rays_agent():
    import ray._raylet

    assert lazy_env_agent.PORT_NAME == ray._raylet.RUNTIME_ENV_AGENT_PORT_NAME
    # The options it reads and rewrites are Ray's agent's.
    source = Path(lazy_env_agent.ray_agent_script()).read_text()
    for name in ("node-id", "session-dir", "node-ip-address", lazy_env_agent.PORT_OPTION):
        assert f'"--{name}"' in source


def test_uncalled_it_writes_its_port_and_ends_after_its_parent(tmp_path):
    agent = start_under_a_short_lived_parent(lazy_env_agent.__file__, [
        f"--node-id={NODE_ID}", f"--session-dir={tmp_path}", "--node-ip-address=127.0.0.1",
        "--runtime-env-agent-port=0", "--log-dir=/nowhere"])
    assert [path.name for path in tmp_path.iterdir()] == [f"{lazy_env_agent.PORT_NAME}_{NODE_ID}"]
    port = int((tmp_path / f"{lazy_env_agent.PORT_NAME}_{NODE_ID}").read_text())
    assert port > 0
    # Uncalled all along, it never became Ray's agent, and the port went with it.
    assert ends_within(agent, 3 * lazy_env_agent.PARENT_CHECK_SECONDS)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_raylets_first_call_makes_it_rays_agent_in_the_same_process():
    import ray
    from ray._private import ray_constants

    with connect({"address": "local", "num_cpus": 1}):
        head = ray._private.worker._global_node
        raylet = head.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
        children = [int(pid) for pid in Path(f"/proc/{raylet}/task/{raylet}/children").read_text().split()]
        stand_in = [pid for pid in children if lazy_env_agent.__file__ in _process_args(pid)]
        assert len(stand_in) == 1

        @ray.remote(runtime_env={"env_vars": {"HYPERSWEEP_PROBE": "set by the runtime env"}})
        def probe() -> str:
            return os.environ["HYPERSWEEP_PROBE"]

        assert ray.get(probe.remote(), timeout=60) == "set by the runtime env"
        assert process_running(stand_in[0])
        assert _process_args(stand_in[0])[0] == "ray::RuntimeEnvAgent"  # Ray's agent, same pid
