"""A sweep whose embedded Ray has gone ends at once, instead of waiting on Ray's lost GCS.

A signal to the driver's whole process group (`timeout`, `kill -- -PGID`, a batch system's time
limit) reaches the embedded Ray's processes too: its GCS stops serving at once. Ray Tune still
stops cleanly and writes its snapshot, but then removes every trial's placement group and actor
through the GCS, and Ray's shutdown and Ray Tune's handler at exit ask it too. Each of those
blocked until Ray's core gave up on the GCS (`cluster.GCS_LOST_SECONDS`) and ended the process
with exit code 1, before hypersweep printed the outcome. With the GCS gone, the placement groups
and actors went with it, and Ray's processes end with the driver: hypersweep skips those calls
(and Ray's shutdown: ray_end.py).
Ray's core still ends the driver with exit code 1 when it sees its raylet gone, which can come
first; the SIGTERM handler prints the resume command at once for that case.
"""

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypersweep.replaced import replaced
from hypersweep.sigterm import SIGTERM_RECEIVED

# How long a sweep stopping on SIGTERM waits for a GCS that may have got the same signal to stop.
GCS_STOP_SECONDS = 1.0


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


class _LostRay:
    """Whether the embedded Ray is lost, asked where Tune would otherwise wait on its GCS. Only a
    SIGTERM can have gone to the GCS as well, so until one comes the answer is no, without asking
    the GCS (this is asked at every trial's end). The first question after it waits up to
    GCS_STOP_SECONDS for the GCS to stop; once lost, it stays lost."""

    def __init__(self) -> None:
        self.lost = False
        self.waited = False

    def __call__(self) -> bool:
        if not self.lost and SIGTERM_RECEIVED.is_set():
            self.lost = embedded_gcs_lost(wait=0.0 if self.waited else GCS_STOP_SECONDS)
            self.waited = True
        return self.lost


@contextmanager
def quick_end_without_ray() -> Iterator[None]:
    """Inside the block, Ray Tune removes no placement group and, at its end, no trial's actor,
    once the embedded Ray's GCS has stopped; its callbacks still end the experiment."""
    import ray.util
    from ray.air.execution.resources import placement_group as resources
    from ray.tune.execution.tune_controller import TuneController

    cleanup = TuneController.cleanup  # Ray 2.x; tests check it is still there
    remove = resources.remove_placement_group  # the same function under two names there
    lost = _LostRay()

    def cleanup_unless_ray_lost(controller: TuneController) -> None:
        if lost():
            controller.end_experiment_callbacks()
            # Its placement groups went with the GCS: forget them as Ray's own clear() ends, or
            # the manager's __del__ would ask the GCS to remove them after the block.
            manager = controller._actor_manager._resource_manager
            manager.__init__(update_interval_s=manager.update_interval_s)
        else:
            cleanup(controller)

    def remove_unless_ray_lost(group: Any) -> None:
        if not lost():
            remove(group)

    with (replaced(TuneController, "cleanup", cleanup_unless_ray_lost),
          replaced(resources, "remove_placement_group", remove_unless_ray_lost),
          replaced(ray.util, "remove_placement_group", remove_unless_ray_lost)):
        yield
