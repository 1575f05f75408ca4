"""The README's own-model example (examples/custom_model) runs a real sweep, unedited."""

import json
import os
import shutil
import subprocess
import sys

from tests.conftest import ROOT


def test_a_users_model_and_space_plug_in_without_editing_the_package(tmp_path):
    example = tmp_path / "custom_model"
    shutil.copytree(ROOT / "examples" / "custom_model", example)
    done = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), "hydra.searchpath=[file://my_conf]", "model=tiny",
         "experiment=smoke", "num_samples=2", "train.max_epochs=2"],
        cwd=example, env={**os.environ, "PYTHONPATH": "."}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((example / "runs" / "smoke" / "summary.json").read_text())
    assert len(summary["trials"]) == 2
    assert summary["baseline"]["tuned"]["model.width"] == 32
    assert "model.hidden_layers" not in summary["best"]["tuned"], "the MLP's space went with the MLP"
    assert 8 <= summary["best"]["tuned"]["model.width"] <= 128


def test_a_setting_the_users_model_does_not_take_fails_in_one_line_before_any_trial(tmp_path):
    # Before, each trial failed on TinyNet's TypeError, after Ray had started: 800 lines in 40 s.
    example = tmp_path / "custom_model"
    shutil.copytree(ROOT / "examples" / "custom_model", example)
    done = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), "hydra.searchpath=[file://my_conf]", "model=tiny",
         "experiment=smoke", "+model.depth=3"],
        cwd=example, env={**os.environ, "PYTHONPATH": "."}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: model.depth: my_pkg.net.TinyNet takes no argument 'depth' (it takes width); remove the "
        "setting (~model.depth on the command line) or add the parameter")
    experiment = example / "runs" / "smoke"
    assert not (experiment / "sweep.json").exists()
    assert not list(experiment.glob("trial_*"))
