"""The `hypersweep` command's own arguments: its version, and a first word that is no command."""

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = Path(sys.executable).parent / "hypersweep"


@pytest.mark.parametrize("command", [[str(SCRIPT), "--version"],
                                     [sys.executable, str(ROOT / "launch.py"), "-V"]])
def test_version_names_hypersweep_and_what_its_sweeps_depend_on(tmp_path: Path, command):
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"hypersweep {version('hypersweep')} (Ray {version('ray')}, torch {version('torch')}, "
        f"Hydra {version('hydra-core')}, Python {sys.version.split()[0]})")
    assert not any(tmp_path.iterdir()), "it runs nothing"


@pytest.mark.parametrize(("word", "hint"), [("reprot", "did you mean: hypersweep report ...? "),
                                           ("train", "")])
def test_a_first_word_that_is_no_command_is_one_line_and_exit_code_2(tmp_path: Path, word, hint):
    done = subprocess.run([str(SCRIPT), word, "runs/x"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr == (f"error: {word}: not a command nor a KEY=VALUE override; {hint}hypersweep "
                           f"KEY=VALUE ... runs a sweep, hypersweep report runs/NAME writes its report\n")
    assert not any(tmp_path.iterdir())
