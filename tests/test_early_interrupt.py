"""Ctrl-C while a launch still prepares (Ray starting, the data set loading) ends it in one line."""

import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT


def test_ctrl_c_while_the_launch_prepares_ends_it_at_once_in_one_line(tmp_path):
    marker = tmp_path / "loading"
    command = [sys.executable, str(ROOT / "launch.py"), "experiment=smoke",
               "data._target_=tests.slow_data.load_digits_slowly", f"+data.marker={marker}"]
    process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the launch loads its data set"
    process.send_signal(signal.SIGINT)
    output, errors = process.communicate(timeout=30)  # the loader would take 60 s more
    assert process.returncode == 130
    assert output.splitlines()[-1] == "interrupted before the sweep started; the same command starts it"
    assert "Traceback" not in errors, errors[-3000:]
    assert not (tmp_path / "runs" / "smoke" / "sweep.json").exists(), "no sweep was started"
