"""Stands in for Ray's dashboard agent on an embedded Ray whose dashboard is off.

The raylet starts a dashboard agent and registers its node only once the agent has written its
ports into the session folder. The agent serves the dashboard (node statistics, logs, job
submission, metrics), which a sweep without the dashboard never asks for, yet it took 1 CPU-s and
about a second of ray.init here: it imports Ray and loads all its modules before it writes its
ports. This process writes them as Ray's minimal agent does, -1 for "not served", and lives as
long as the raylet, its parent, which ends when one of its agents ends. It imports nothing but
what Python imports at start.

    python idle_agent.py --node-id=HEX --session-dir=DIR [Ray's other agent options]
"""

import os
import sys
import time

# The port files the raylet waits for (`ray._raylet.*_PORT_NAME`; a test checks the names).
PORT_NAMES = ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port")
NOT_SERVED = -1
PARENT_CHECK_SECONDS = 1.0


def options(argv: list[str]) -> dict[str, str]:
    """Ray's `--name=value` agent options as a dict."""
    return dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)


def write_ports(session_dir: str, node_id: str) -> None:
    """Write each port file as "not served"; whole, so the raylet never reads half of one."""
    for name in PORT_NAMES:
        path = os.path.join(session_dir, f"{name}_{node_id}")
        with open(path + ".tmp", "w") as file:
            file.write(str(NOT_SERVED))
        os.replace(path + ".tmp", path)


def main(argv: list[str]) -> None:
    given = options(argv)
    raylet = os.getppid()
    write_ports(given["session-dir"], given["node-id"])
    while os.getppid() == raylet:  # the raylet's end hands this process to another parent
        time.sleep(PARENT_CHECK_SECONDS)


if __name__ == "__main__":
    main(sys.argv[1:])
