"""launch.run, the command line's entry: it ends the process itself once the sweep is done."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# A stand-in for the sweep: prints without a newline (left in the buffer of a piped stdout),
# registers an exit handler that writes a file, and exits as the sweep would.
SCRIPT = """
import atexit, sys
import launch

def sweep():
    print("outcome", end="")
    atexit.register(lambda: open(sys.argv[1], "w").write("handled"))
    sys.exit({exit_with})

launch.main = sweep
launch.run()
"""


@pytest.mark.parametrize("exit_with, code, stderr", [("None", 0, ""), ("130", 130, ""),
                                                     ("'error: bad key'", 1, "error: bad key\n")])
def test_the_command_runs_exit_handlers_flushes_output_and_keeps_the_exit_status(
        tmp_path: Path, exit_with: str, code: int, stderr: str):
    marker = tmp_path / "exit-handler-ran"
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(exit_with=exit_with), str(marker)],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == code
    assert done.stdout == "outcome"
    assert done.stderr == stderr
    assert marker.read_text() == "handled"
