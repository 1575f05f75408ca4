"""Shared fixtures: the real config tree composed with Hydra's compose API, and subprocess runs;
and the end of the test process, which skips the interpreter's teardown as launch.py does."""

import atexit
import faulthandler
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from hypersweep.config import to_plain
from tests.s3_bucket import CREDENTIALS, s3_bucket

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
# How a trial may end without failing. Diverged too: a trial stuck at chance ends so
# (train.chance_patience) when ASHA lets it reach its third report, which depends on the order in
# which trials end on the CPUs.
ENDED_WITHOUT_FAILING = {"finished", "stopped early", "diverged"}


@pytest.fixture
def compose_config() -> Callable[..., dict]:
    """Compose conf/ with overrides into a plain dict, as launch.py does; Hydra state is cleared."""

    def _compose(*overrides: str) -> dict:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return to_plain(compose(config_name="config", overrides=list(overrides)))

    yield _compose
    GlobalHydra.instance().clear()


def run_launch(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python launch.py ARGS` as a user would, in `cwd`, and capture its output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def start_under_a_short_lived_parent(script: str, options: list[str]) -> int:
    """Start `python SCRIPT OPTIONS` from a parent that ends 1.5 s later, as a raylet starts its
    agents and then ends; returns the child's pid."""
    parent = ("import subprocess, sys, time\n"
              f"child = subprocess.Popen([sys.executable, {script!r}, *{options!r}])\n"
              "print(child.pid, flush=True)\n"
              "time.sleep(1.5)\n")
    started = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=30)
    assert started.returncode == 0, started.stderr
    return int(started.stdout.split()[0])


def ends_within(pid: int, seconds: float) -> bool:
    """Whether the process `pid` has ended, waiting up to `seconds` for it."""
    deadline = time.monotonic() + seconds
    while process_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not process_running(pid)


def process_running(pid: int) -> bool:
    """Whether the process `pid` exists and has not ended (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def bucket():
    """A storage_path URI in a fresh bucket of a local S3 server; the credentials are in the
    environment meanwhile (subprocesses get them too)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        with s3_bucket() as uri:
            yield uri


# The exit status of the session that ran in this process; None until it has ended.
_session_status: int | None = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _session_status
    _session_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # pytest's fault handler is off by now; this one prints every thread's stack should the process
    # crash in what is left (threads joined, exit handlers). Its stderr, not pytest's capture of it.
    faulthandler.enable(file=sys.__stderr__, all_threads=True)


def _end_without_teardown() -> None:
    """End the test process once every exit handler has run, with the session's status, without the
    interpreter's teardown, as launch.py ends a sweep.

    The tests run Ray's core worker, torch and pyarrow in this process. Once in CI it crashed after
    its last test had passed (exit 139 after "326 passed"), failing a run whose tests all passed;
    which native part crashed, and whether in the teardown, is not known: not seen again in a full
    run and six runs of the modules that start Ray in-process. The teardown only frees memory
    that the ending process gives back anyway.
    """
    if _session_status is None:  # no session ended (pytest --help, a usage error)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_session_status)


# Exit handlers run last-registered first: registered as conftest loads, before Ray, pyarrow or
# torch register theirs, this one runs after them.
atexit.register(_end_without_teardown)
