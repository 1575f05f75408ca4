"""Free TCP ports for the servers tests start, picked where no other socket is handed one unasked.

A port the kernel picks (bind to port 0) lies in its ephemeral range, from which every outgoing
connection on the machine also takes its local port. Between the probe and the server's own bind,
one of the many connections a starting Ray node opens can take it, and the node dies with "Failed to
bind" (it happened in CI). Ports below that range are only ever taken on request; Ray's worker
processes request theirs from 10002-19999, so the tests' servers take theirs from 20000 upwards.
"""

import random
import socket
from pathlib import Path

_ABOVE_RAY_WORKER_PORTS = 20000
_handed_out: set[int] = set()


def _ephemeral_ports() -> range:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing holds now, outside the kernel's ephemeral range, never the same
    one twice in a test session."""
    ephemeral = _ephemeral_ports()
    candidates = [port for port in range(_ABOVE_RAY_WORKER_PORTS, 65536)
                  if port not in ephemeral and port not in _handed_out]
    for port in random.sample(candidates, min(200, len(candidates))):
        if _bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port on 127.0.0.1 from {_ABOVE_RAY_WORKER_PORTS} outside the ephemeral "
                       f"range {ephemeral.start}-{ephemeral.stop - 1}")
