"""One launch at a time per experiment.

A second launch of the same command while the first still ran resumed the same experiment beside
it: both drivers restored Ray's snapshot, ran trials and overwrote each other's snapshots, and a
trial ran twice. Each launch now holds a lock on its experiment folder (on a URI, on its local
copy, so two launches on one machine) until it ends; another launch is refused with one line that
names the holder. The kernel releases the lock when the process ends however it ends, so a killed
driver leaves nothing stale to clean up.
"""

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from hypersweep.errors import ExperimentError
from hypersweep.paths import LAUNCH_LOCK


@contextmanager
def held_by_this_launch(path: str, location: str) -> Iterator[None]:
    """Hold the experiment whose local folder is `path` (named `location` to the user) for the
    block; raise ExperimentError when another launch holds it."""
    os.makedirs(path, exist_ok=True)
    # Opened without O_TRUNC: the holder's line must stay readable to the launch it refuses.
    lock = os.open(os.path.join(path, LAUNCH_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(lock, 200, 0).decode(errors="replace").strip() or "another launch"
            raise ExperimentError(f"name: {location} is in use by {holder}; wait for it to end or stop "
                                  f"it, or choose a new name=...") from None
        os.ftruncate(lock, 0)
        os.pwrite(lock, f"the launch of pid {os.getpid()} on {socket.gethostname()} (since "
                        f"{time.strftime('%Y-%m-%d %H:%M:%S')})".encode(), 0)
        yield
    finally:
        os.close(lock)  # releases the lock
