"""SIGTERM: the resume command is said at once, even while the main thread cannot run Python."""

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading

from hypersweep.sigterm import SIGTERM_RECEIVED, stopping_on_sigterm
from tests.conftest import ROOT

SAID = "SIGTERM: stopping; the state is saved as the sweep ends. Resume with: python launch.py seed=3"


def _child(main_thread: str) -> subprocess.Popen:
    """A Python process inside `stopping_on_sigterm` whose main thread then runs `main_thread`."""
    code = textwrap.dedent(f"""
        import signal, time
        from hypersweep.sigterm import stopping_on_sigterm
        with stopping_on_sigterm("python launch.py seed=3"):
            {main_thread}
    """)
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _line_within(process: subprocess.Popen, seconds: float) -> str:
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    return process.stdout.readline().strip() if ready else ""


def test_sigterm_says_how_to_resume_and_stops_as_ctrl_c_does():
    process = _child("print('ready', flush=True); time.sleep(60)")
    assert _line_within(process, 30) == "ready"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert out.strip() == SAID
    assert "KeyboardInterrupt" in err  # Ctrl-C's stop, which Ray Tune turns into a clean one


def test_the_resume_command_comes_while_the_main_thread_is_held_in_native_code():
    # As in a call to Ray's lost GCS: the main thread does not run Python, so Python's handler
    # waits, and Ray's core may end the process first. Blocking the signal in the main thread
    # holds the handler back the same way.
    process = _child("signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}); "
                     "print('ready', flush=True); time.sleep(60); print('woke', flush=True)")
    try:
        assert _line_within(process, 30) == "ready"
        process.send_signal(signal.SIGTERM)
        assert _line_within(process, 10) == SAID
        assert process.poll() is None, "the main thread ran its handler: the test proves nothing"
    finally:
        process.kill()
        process.wait()


def test_the_block_leaves_signal_handling_as_it_found_it():
    handler = signal.getsignal(signal.SIGTERM)
    threads = threading.active_count()
    with stopping_on_sigterm("python launch.py"):
        assert signal.getsignal(signal.SIGTERM) is not handler
        assert threading.active_count() == threads + 1
    assert signal.getsignal(signal.SIGTERM) is handler
    assert threading.active_count() == threads, "the thread that waits for SIGTERM still runs"
    assert signal.set_wakeup_fd(-1) == -1, "the wake-up pipe is still set"
    assert not SIGTERM_RECEIVED.is_set()
