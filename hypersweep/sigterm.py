"""SIGTERM stops a sweep as Ctrl-C does, and says at once how to resume it; after either, the
resume command is hypersweep's, not the Python call that Ray Tune logs.

Python runs a signal handler in the main thread, between two bytecodes. When the signal went
to the embedded Ray's processes too (`timeout`, `kill -- -PGID`), the main thread can be inside
a call to Ray's lost GCS, where Ray's core ends the driver (exit code 1) before the handler
runs. So the resume command is written by a thread that CPython wakes from inside its C signal
handler (`signal.set_wakeup_fd`), whatever the main thread is doing.
"""

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Set as soon as a SIGTERM arrives; lost_ray then asks whether the GCS got it too.
SIGTERM_RECEIVED = threading.Event()


@contextmanager
def stopping_on_sigterm(resume: str) -> Iterator[None]:
    """Inside the block, a SIGTERM writes `resume` as the way to resume, then stops the sweep as
    Ctrl-C does: Ray Tune stops gracefully and saves its state on SIGINT. Enter it in the main
    thread, after ray.init (which installs a SIGTERM handler of its own that just exits)."""
    message = f"SIGTERM: stopping; the state is saved as the sweep ends. Resume with: {resume}\n"
    woken, wake = os.pipe()
    os.set_blocking(wake, False)  # CPython requires it: a full pipe must not block a handler
    # Every signal with a Python handler writes its number here, Ctrl-C's too.
    earlier_wake = signal.set_wakeup_fd(wake, warn_on_full_buffer=False)
    speaker = threading.Thread(target=_say_on_sigterm, args=(woken, message.encode()), daemon=True,
                               name="hypersweep-sigterm")
    speaker.start()
    earlier_handler = signal.signal(signal.SIGTERM, _stop_as_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, earlier_handler)
        signal.set_wakeup_fd(earlier_wake)
        os.close(wake)  # the speaker reads the end of the pipe and returns
        speaker.join()
        os.close(woken)


@contextmanager
def without_ray_resume_hint() -> Iterator[None]:
    """Inside the block, Ray Tune's log line on an interrupted sweep, which tells the user to
    resume it with `Tuner.restore(...)`, is dropped: the resume command is hypersweep's own."""
    ray_tune_log = logging.getLogger("ray.tune.tune")
    hint = _DropRayResumeHint()
    ray_tune_log.addFilter(hint)
    try:
        yield
    finally:
        ray_tune_log.removeFilter(hint)


class _DropRayResumeHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


def _say_on_sigterm(woken: int, message: bytes) -> None:
    """Wait for a SIGTERM's number on the wake-up pipe, then write `message` to stdout; return
    when the pipe closes."""
    while signums := os.read(woken, 64):
        if signal.SIGTERM in signums:
            SIGTERM_RECEIVED.set()
            # os.write: a print() here could interleave with one of the main thread's, or raise.
            os.write(sys.stdout.fileno(), message)
            return


def _stop_as_ctrl_c(signum: int, frame: object) -> None:
    """The main thread's SIGTERM handler: the same clean stop as Ctrl-C."""
    SIGTERM_RECEIVED.set()
    os.kill(os.getpid(), signal.SIGINT)
