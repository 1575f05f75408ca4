"""The test process ends as launch.py's does (conftest.py): with the session's exit status, after
the exit handlers, and without the interpreter's teardown."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = '''
import atexit
import os


class TornDown:
    def __del__(self, write=os.write):  # the module's names are gone by then
        write(1, b"module teardown ran\\n")


KEPT = TornDown()
atexit.register(lambda: os.write(1, b"exit handler ran\\n"))


def test_probe():
    assert os.environ["PROBE_PASSES"] == "1"
'''


@pytest.mark.parametrize("passes, status", [("1", 0), ("0", 1)])
def test_the_session_status_is_the_exit_status_and_no_teardown_follows(tmp_path, passes, status):
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROBE_PASSES": passes}
    for plugins, teardown in ((["-p", "tests.conftest"], False), ([], True)):
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins,
                               "test_probe.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == status, done.stdout[-2000:]
        assert "exit handler ran" in done.stdout
        assert ("module teardown ran" in done.stdout) == teardown, done.stdout[-2000:]
