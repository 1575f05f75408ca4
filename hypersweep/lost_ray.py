"""A sweep whose embedded Ray has gone ends at once, with its outcome and the resume command.

A signal to the driver's whole process group (`timeout`, `kill -- -PGID`, a batch system's time
limit) reaches the embedded Ray's processes too: its GCS stops serving at once. Ray Tune still
stops cleanly: it writes its snapshot, then removes every trial's actor and placement group.
Those removals ask the GCS and block until Ray's core gives up on it (`cluster.GCS_LOST_SECONDS`)
and ends the process with exit code 1, before hypersweep has printed the outcome and how to
resume. With the GCS gone, the trials' actors and placement groups went with it: nothing is left
to remove, so hypersweep skips that part of Tune's end.
"""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# How long a sweep stopping on SIGTERM waits for a GCS that may have got the same signal to stop.
GCS_STOP_SECONDS = 1.0
# Set by the driver's SIGTERM handler. Ctrl-C reaches the GCS too, but Ray's processes ignore it.
SIGTERM_RECEIVED = threading.Event()


def refuses_connections(address: str, wait: float = 0.0) -> bool:
    """Whether nothing listens at `address` (HOST:PORT), or stops listening within `wait` s."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + wait
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1.0).close()
        except OSError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def embedded_gcs_lost(wait: float = 0.0) -> bool:
    """Whether this driver started Ray's GCS itself (the embedded Ray) and it no longer serves,
    waiting up to `wait` seconds for it to stop. False when connected to a cluster."""
    from ray._private import worker

    node = worker._global_node  # Ray 2.x; tests check it is still there
    return node is not None and node.head and refuses_connections(node.gcs_address, wait)


@contextmanager
def quick_end_without_ray() -> Iterator[None]:
    """Inside the block, Ray Tune's end of an experiment skips removing the trials' actors when
    the embedded Ray's GCS has stopped; its callbacks still end the experiment."""
    from ray.tune.execution.tune_controller import TuneController

    cleanup = TuneController.cleanup  # Ray 2.x; tests check it is still there

    def cleanup_unless_ray_lost(controller: TuneController) -> None:
        # Only a SIGTERM can have gone to the GCS as well: only then is its stop worth waiting for.
        if embedded_gcs_lost(wait=GCS_STOP_SECONDS if SIGTERM_RECEIVED.is_set() else 0.0):
            controller.end_experiment_callbacks()
            # Its placement groups went with the GCS: forget them as Ray's own clear() ends, or
            # the manager's __del__ would ask the GCS to remove them.
            manager = controller._actor_manager._resource_manager
            manager.__init__(update_interval_s=manager.update_interval_s)
        else:
            cleanup(controller)

    TuneController.cleanup = cleanup_unless_ray_lost
    try:
        yield
    finally:
        TuneController.cleanup = cleanup
