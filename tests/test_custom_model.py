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
