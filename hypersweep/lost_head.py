"""A sweep on a cluster whose head node stops answering says so at once, with its resume command.

When the head's GCS goes, Ray's core waits for it (`gcs_rpc_server_reconnect_timeout_s`, 60 s,
so that a head restarted with GCS fault tolerance finds its drivers still there), then ends the
driver with exit code 1 and a line of its own about a GCS that was terminated: for that minute
the console said nothing, and then nothing about the sweep. A thread now asks the GCS every
second whether it still listens; once it has not for a few seconds in a row, it says what
happened, how long Ray waits, and the command that resumes the sweep. Ray still decides the end:
a head that comes back in time keeps the sweep going.
"""

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from hypersweep.lost_ray import refuses_connections

PROBE_SECONDS = 1.0
# Probes in a row that find no GCS before the head counts as lost: one lost connection is not.
LOST_AFTER_PROBES = 3
RAY_RECONNECT_ENV = "RAY_gcs_rpc_server_reconnect_timeout_s"
RAY_RECONNECT_DEFAULT_SECONDS = 60


def ray_waits_seconds() -> int:
    """How long Ray's core in this process waits for a lost GCS before it ends the process."""
    try:
        return int(os.environ.get(RAY_RECONNECT_ENV, RAY_RECONNECT_DEFAULT_SECONDS))
    except ValueError:
        return RAY_RECONNECT_DEFAULT_SECONDS


@contextmanager
def telling_when_the_head_is_lost(resume: str) -> Iterator[None]:
    """Inside the block, say at once when the connected cluster's head node stops answering, with
    `resume` as the way to resume. Nothing to watch for the embedded Ray (its GCS is this
    process's child: lost_ray.py) or in Ray client mode (the client's own connection fails)."""
    from ray._private import worker

    node = worker._global_node  # Ray 2.x; tests check it is still there
    if node is None or node.head:
        yield
        return
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(node.gcs_address, resume, stop), daemon=True,
                               name="hypersweep-head-watch")
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


def _say(text: str) -> None:
    # os.write: a print() here could interleave with one of the main thread's.
    os.write(sys.stderr.fileno(), (text + "\n").encode())


def _watch(gcs_address: str, resume: str, stop: threading.Event) -> None:
    """Probe the GCS every PROBE_SECONDS until `stop`; say when it is lost, and when it is back."""
    missed, lost = 0, False
    while not stop.wait(PROBE_SECONDS):
        if not refuses_connections(gcs_address):
            if lost:
                _say(f"warning: the cluster's head node (GCS {gcs_address}) answers again; the sweep goes on")
            missed, lost = 0, False
            continue
        missed += 1
        if missed == LOST_AFTER_PROBES and not lost:
            lost = True
            since = time.strftime("%H:%M:%S", time.localtime(time.time() - missed * PROBE_SECONDS))
            _say(f"warning: the cluster's head node (GCS {gcs_address}) stopped answering at {since}; "
                 f"Ray ends this sweep unless it is back within {ray_waits_seconds()} s. The sweep "
                 f"is saved: once the cluster is up, resume with: {resume}")
