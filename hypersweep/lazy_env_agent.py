"""Stands in for Ray's runtime-environment agent on an embedded Ray, until the raylet first calls it.

The raylet registers its node only once its runtime-environment agent has written its port into
the session folder, and Ray's agent imports Ray, aiohttp and its plugins before it does: 0.5 CPU-s
and 0.5 s of ray.init, on 2 cores busy starting the sweep. The raylet calls the agent only to
start a task or actor that has a runtime environment, and the embedded Ray's trial processes have
none (trial_environment.py). So this process listens on the port and writes it at once, then
sleeps. When a call comes, it closes the port and becomes Ray's agent on the same port (exec: the
same process to the raylet, which ends when one of its agents ends). The raylet retries a refused
call every second for 30 s, so only that first call waits, about a second more. Like Ray's agent,
it ends when the raylet ends.

    python lazy_env_agent.py --node-id=HEX --session-dir=DIR --node-ip-address=IP
        --runtime-env-agent-port=PORT [Ray's other agent options]
"""

import os
import select
import socket
import sys

PORT_NAME = "runtime_env_agent_port"  # ray._raylet.RUNTIME_ENV_AGENT_PORT_NAME (a test checks it)
PORT_OPTION = "runtime-env-agent-port"
PARENT_CHECK_SECONDS = 1.0


def options(argv: list[str]) -> dict[str, str]:
    """Ray's `--name=value` agent options as a dict."""
    return dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)


def ray_agent_script() -> str:
    """The path of Ray's own runtime-environment agent (imports Ray: call it only when needed)."""
    import ray

    return os.path.join(os.path.dirname(ray.__file__), "_private", "runtime_env", "agent", "main.py")


def listen(address: str, port: int) -> socket.socket:
    """A socket listening on (address, port), bound as Ray's agent binds it; port 0: any free one."""
    family, kind, proto, _, where = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(where)
    sock.listen()
    return sock


def write_port(session_dir: str, node_id: str, port: int) -> None:
    """Write the port file the raylet waits for; whole, so that it never reads half of one."""
    path = os.path.join(session_dir, f"{PORT_NAME}_{node_id}")
    with open(path + ".tmp", "w") as file:
        file.write(str(port))
    os.replace(path + ".tmp", path)


def called(sock: socket.socket, parent: int) -> bool:
    """Sleep until a call waits on `sock` (True) or the process `parent` has ended (False)."""
    while os.getppid() == parent:  # the parent's end hands this process to another
        if select.select([sock], [], [], PARENT_CHECK_SECONDS)[0]:
            return True
    return False


def ray_agent_command(argv: list[str], port: int) -> list[str]:
    """The command that runs Ray's agent with this process's options, on `port`."""
    given = [arg for arg in argv if not arg.startswith(f"--{PORT_OPTION}=")]
    return [sys.executable, "-u", ray_agent_script(), f"--{PORT_OPTION}={port}", *given]


def main(argv: list[str]) -> None:
    given = options(argv)
    raylet = os.getppid()
    sock = listen(given.get("node-ip-address", "127.0.0.1"), int(given.get(PORT_OPTION) or 0))
    port = sock.getsockname()[1]
    write_port(given["session-dir"], given["node-id"], port)
    if called(sock, raylet):
        sock.close()  # refuses the waiting call: the raylet calls again once Ray's agent listens
        command = ray_agent_command(argv, port)
        os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
