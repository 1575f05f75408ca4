"""Ctrl-C before a sweep starts its experiment ends the command at once, in one line.

Until Ray Tune takes SIGINT over for its clean stop, a Ctrl-C raised KeyboardInterrupt wherever
the command was: in Hydra, in ray.init, or waiting for the data set, where leaving the wait
imported Ray Tune in two threads at once and failed on a circular import: a page of tracebacks
and exit code 1. Before the experiment starts there is nothing of the sweep's to save (the
embedded Ray's processes end with this one: ray_end.py), so the command just ends, with the
exit code of a Ctrl-C.
"""

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_INTERRUPTED = 130  # what shells report for a command ended by Ctrl-C
MESSAGE = b"\ninterrupted before the sweep started; the same command starts it\n"


def _end_at_once(signum: int, frame: FrameType | None) -> None:
    try:
        sys.stdout.flush()
    except (OSError, RuntimeError, ValueError):  # a print the signal cut short
        pass
    # On stdout, as the resume line of a sweep interrupted later: ray.init captures fd 2.
    os.write(sys.stdout.fileno(), MESSAGE)
    os._exit(EXIT_INTERRUPTED)


@contextmanager
def ending_at_once_on_ctrl_c() -> Iterator[None]:
    """Inside the block, until `hand_ctrl_c_to_the_sweep`, a Ctrl-C ends the process at once
    with MESSAGE and EXIT_INTERRUPTED. Enter it in the main thread."""
    previous = signal.signal(signal.SIGINT, _end_at_once)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is _end_at_once:
            signal.signal(signal.SIGINT, previous)


def hand_ctrl_c_to_the_sweep() -> None:
    """From here a Ctrl-C raises KeyboardInterrupt again, which Ray Tune's clean stop (that
    saves the state) takes over. Call it just before the experiment starts."""
    in_main_thread = threading.current_thread() is threading.main_thread()  # only it sets handlers
    if in_main_thread and signal.getsignal(signal.SIGINT) is _end_at_once:
        signal.signal(signal.SIGINT, signal.default_int_handler)
