"""The stand-in for Ray's dashboard agent: the ports it writes, and its life as the raylet's child."""

import ast
from pathlib import Path

from hypersweep import idle_agent
from tests.conftest import ends_within, start_under_a_short_lived_parent

NODE_ID = "ab" * 28


def test_it_writes_the_ports_that_rays_agent_writes():
    import ray
    import ray._raylet

    source = Path(ray.__file__).parent / "dashboard" / "agent.py"
    calls = [node for node in ast.walk(ast.parse(source.read_text()))
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "persist_port"]
    # persist_port(session_dir, node_id, PORT_NAME, port), PORT_NAME one of ray._raylet's names
    written = {getattr(ray._raylet, call.args[2].id) for call in calls}
    assert written == set(idle_agent.PORT_NAMES)


def test_it_writes_each_port_as_not_served_and_ends_after_its_parent(tmp_path):
    agent = start_under_a_short_lived_parent(idle_agent.__file__, [
        f"--node-id={NODE_ID}", f"--session-dir={tmp_path}", "--head", "--logging-filename="])
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == {
        f"{name}_{NODE_ID}": "-1" for name in idle_agent.PORT_NAMES}
    assert ends_within(agent, 3 * idle_agent.PARENT_CHECK_SECONDS)
