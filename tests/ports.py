"""Free TCP ports for the servers tests start, picked where no other socket is handed one unasked.

A port the kernel picks (bind to port 0) lies in its ephemeral range, from which every outgoing
connection on the machine also takes its local port; and a starting Ray node picks its own
services' ports at random between such a port and 65535. Between the probe and the server's own
bind, either can take it, and the node dies with "Failed to bind" (it happened in CI). Ports
below the ephemeral range are only ever taken on request; Ray's worker processes request theirs
from 10002-19999, so the tests' servers take theirs from 20000 up to the ephemeral range.
"""

import random
import socket
from pathlib import Path

_ABOVE_RAY_WORKER_PORTS = 20000
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing holds now, below the kernel's ephemeral range, never the
    same one twice in a test session."""
    candidates = [port for port in range(_ABOVE_RAY_WORKER_PORTS, _ephemeral_start())
                  if port not in _handed_out]
    for port in random.sample(candidates, min(200, len(candidates))):
        if _bindable(port):
            _handed_out.add(port)
            return port
    with socket.socket() as probe:  # no free port below the ephemeral range: the kernel's pick
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
