"""The watch on a cluster's head node: a GCS that stops listening is said once, and its return."""

import socket
import threading
import time

from hypersweep import lost_head
from tests.ports import free_port


def _listen(port: int) -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    return server


def _wait_for(capfd, text: str, seen: list[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(capfd.readouterr().err)
        if text in "".join(seen):
            return
        time.sleep(0.2)
    raise AssertionError(f"never said {text!r}: {''.join(seen)!r}")


def test_a_head_that_stops_answering_is_said_once_and_so_is_its_return(capfd, monkeypatch):
    monkeypatch.setenv(lost_head.RAY_RECONNECT_ENV, "42")
    port = free_port()
    server = _listen(port)
    stop = threading.Event()
    address = f"127.0.0.1:{port}"
    watcher = threading.Thread(target=lost_head._watch, args=(address, "python launch.py x=1", stop))
    watcher.start()
    seen: list[str] = []
    try:
        time.sleep(3 * lost_head.PROBE_SECONDS)
        assert capfd.readouterr().err == "", "a head that answers is not mentioned"
        server.close()
        _wait_for(capfd, "stopped answering", seen)
        server = _listen(port)
        _wait_for(capfd, "answers again", seen)
    finally:
        stop.set()
        watcher.join()
        server.close()
    lines = "".join(seen).splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"warning: the cluster's head node (GCS {address}) stopped answering at ")
    assert lines[0].endswith("Ray ends this sweep unless it is back within 42 s. The sweep is saved: once "
                             "the cluster is up, resume with: python launch.py x=1")
    assert lines[1] == f"warning: the cluster's head node (GCS {address}) answers again; the sweep goes on"
