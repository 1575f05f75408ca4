"""The sweep report on real experiments: planted structure, best-config retraining, partial runs."""

import json
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hypersweep.report import main as report_main
from tests.conftest import ROOT, run_launch
from tests.planted import planted_accuracy
from tests.test_resume import _read_until_progress, _start, _stop_session

PLANTED = ("experiment=smoke", "trainable=tests.planted.PlantedTrainable", "search=random",
           "scheduler=fifo", "num_samples=40", "train.max_epochs=3", "~space.model", "~space.optim",
           "~space.train", "+model.x=0.5", "+model.y=0.5", "+model.z=0.5",
           "+space.model.x={type:uniform,low:0,high:1,kind:training}",
           "+space.model.y={type:uniform,low:0,high:1,kind:regularization}",
           "+space.model.z={type:uniform,low:0,high:1,kind:data}")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("planted")
    done = run_launch(*PLANTED, cwd=workdir)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return workdir


def test_the_report_ranks_a_planted_structure_strong_weak_none(planted, capsys):
    experiment = planted / "runs" / "smoke"
    conf = planted / "conf" / "experiment"
    assert report_main([str(experiment), "--conf-dir", str(conf)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((experiment / "report.json").read_text())
    ranking = [entry["name"] for entry in report["sensitivity"]]
    assert ranking == ["model.x", "model.y", "model.z"]
    assert report["sensitivity"][0]["score"] > 0.6
    assert [e["kind"] for e in report["sensitivity"]] == ["training", "regularization", "data"]
    assert report["counts"] == {"finished": 40}
    assert report["baseline"]["tuned"] == {"model.x": 0.5, "model.y": 0.5, "model.z": 0.5}
    assert report["gain"] == pytest.approx(report["best"]["metric"] - report["baseline"]["metric"])
    assert "mattered most: model.x" in printed and "retrain the best: python launch.py" in printed
    markdown = (experiment / "report.md").read_text()
    assert {k["kind"]: k["hyperparameters"] for k in report["kinds"]} == {
        "training": ["model.x"], "regularization": ["model.y"], "data": ["model.z"]}
    assert "## Hyperparameters by kind" in markdown and "| regularization | model.y |" in markdown
    for picture in ("best_so_far.png", "sensitivity.png", "top_hyperparameter.png", "best_trial.png"):
        assert (experiment / "report" / picture).read_bytes()[:4] == b"\x89PNG"
        assert f"(report/{picture})" in markdown
    assert "| model.x | training |" in markdown
    board = EventAccumulator(str(experiment / "tensorboard" / "report"))
    board.Reload()
    assert "sensitivity" in board.Tags()["images"]
    (text,) = board.Tensors("sensitivity/text_summary")
    assert b"| model.x | training |" in text.tensor_proto.string_val[0]
    (kinds,) = board.Tensors("kinds/text_summary")
    assert b"| training | model.x |" in kinds.tensor_proto.string_val[0]


def test_a_conf_dir_that_hydra_would_not_search_as_the_experiment_group_is_refused(planted, capsys):
    # The retrain command it printed before could not find the preset.
    experiment = planted / "runs" / "smoke"
    assert report_main([str(experiment), "--conf-dir", str(planted / "my_conf")]) == 2
    error = capsys.readouterr().err
    assert error == (f"error: --conf-dir: {planted / 'my_conf'} is not named experiment, so "
                     f"experiment=NAME_best would not find the preset written there; give "
                     f"{planted / 'my_conf' / 'experiment'}\n")
    assert not (planted / "my_conf").exists()


def test_the_best_config_file_retrains_to_the_best_metric(planted, monkeypatch):
    experiment = planted / "runs" / "smoke"
    monkeypatch.chdir(planted)
    report_main([str(experiment), "--conf-dir", "conf/experiment"])  # relative to here
    report = json.loads((experiment / "report.json").read_text())
    assert (planted / "conf" / "experiment" / "smoke_best.yaml").is_file()
    # The command the report prints, as it prints it, from another directory.
    command = shlex.split(report["retrain_command"])
    assert command[:2] == ["python", "launch.py"]
    elsewhere = planted / "elsewhere"
    elsewhere.mkdir()
    done = run_launch(*command[2:], cwd=elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    retrained = json.loads((elsewhere / "runs" / "smoke_best" / "summary.json").read_text())
    (trial,) = retrained["trials"]
    assert {k: trial["tuned"][k] for k in report["best"]["tuned"]} == report["best"]["tuned"]
    # Deterministic trainable: the retrained metric equals the sweep's best (tolerance: float noise).
    assert trial["metric"] == pytest.approx(report["best"]["metric"], abs=1e-9)
    tuned = report["best"]["tuned"]
    assert trial["metric"] == pytest.approx(planted_accuracy(tuned["model.x"], tuned["model.y"], 3))


def test_the_torch_best_config_retrains_to_the_same_metric_on_cpu(tmp_path):
    done = run_launch("experiment=smoke", "num_samples=4", "train.max_epochs=3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    conf = tmp_path / "conf" / "experiment"
    assert report_main([str(tmp_path / "runs" / "smoke"), "--conf-dir", str(conf)]) == 0
    best = json.loads((tmp_path / "runs" / "smoke" / "report.json").read_text())["best"]
    done = run_launch("experiment=smoke_best", f"hydra.searchpath=[file://{conf.parent}]", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (trial,) = json.loads((tmp_path / "runs" / "smoke_best" / "summary.json").read_text())["trials"]
    # Same seed, same values, same epochs on the CPU: the same curve. 1e-6 allows float noise.
    assert trial["metric"] == pytest.approx(best["metric"], abs=1e-6)


def test_the_report_of_an_interrupted_and_of_a_running_experiment(tmp_path):
    # Long enough (one trial at a time, 40 of them) to still be running after the first report.
    args = ("experiment=smoke", "num_samples=40", "train.max_epochs=10", "scheduler=fifo",
            "max_concurrent=1")
    process = _start(tmp_path, *args)
    _read_until_progress(process, 2)
    experiment = tmp_path / "runs" / "smoke"
    while_running = subprocess.run([sys.executable, "-m", "hypersweep.report", str(experiment),
                                    "--conf-dir", str(tmp_path / "conf" / "experiment")], cwd=ROOT,
                                   capture_output=True, text=True, timeout=120)
    assert while_running.returncode == 0, while_running.stderr[-3000:]
    running = json.loads((experiment / "report.json").read_text())
    assert running["counts"].get("finished", 0) >= 2
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    _stop_session(process.pid)
    assert report_main([str(experiment), "--conf-dir", str(tmp_path / "conf" / "experiment")]) == 0
    interrupted = json.loads((experiment / "report.json").read_text())
    assert interrupted["counts"].get("finished", 0) >= running["counts"].get("finished", 0)
    assert interrupted["trials"] < 40 or interrupted["counts"].get("unfinished", 0) > 0
    assert re.search(r"\d+ trials:", (experiment / "report.md").read_text())


def test_report_of_a_directory_without_a_sweep_is_one_line(tmp_path, capsys):
    assert report_main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: report: {tmp_path} holds no sweep (sweep.json is missing); give the experiment "
        f"directory, e.g. runs/digits_mlp")


def test_report_of_a_multirun_s_folder_names_its_experiments(tmp_path, capsys):
    for job in ("seed=0", "seed=1"):
        (tmp_path / job).mkdir()
        (tmp_path / job / "sweep.json").write_text("{}")
    assert report_main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: report: {tmp_path} holds the 2 experiments of a multirun, one per job; report each, "
        f"e.g. {tmp_path / 'seed=0'}")


def test_the_console_script_dispatches_report(planted):
    script = Path(sys.executable).parent / "hypersweep"
    done = subprocess.run([str(script), "report", str(planted / "runs" / "smoke"), "--conf-dir",
                           str(planted / "conf" / "experiment")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "smoke: 40 trials (40 finished)" in done.stdout


def test_a_sweep_that_minimizes_says_how_much_lower_the_best_ended(tmp_path, capsys):
    done = run_launch("experiment=smoke", "metric=val_loss", "mode=min", "num_samples=3",
                      "train.max_epochs=2", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    # The baseline trains in full and is ranked with the others, so the best is never higher.
    assert re.search(r"^  baseline \(defaults\) trial \w+: val_loss \d+\.\d{4}; tuning lowered val_loss "
                     r"by \d+\.\d{4}$", done.stdout, flags=re.M), done.stdout[-2000:]
    experiment = tmp_path / "runs" / "smoke"
    assert report_main([str(experiment), "--conf-dir", str(tmp_path / "conf" / "experiment")]) == 0
    report = json.loads((experiment / "report.json").read_text())
    assert report["gain"] >= 0
    assert report["gain"] == pytest.approx(report["baseline"]["metric"] - report["best"]["metric"])
    assert f"tuning lowered val_loss by {report['gain']:.4f}" in capsys.readouterr().out
    assert f"**Tuning lowered val_loss by {report['gain']:.4f}** over the defaults." in \
        (experiment / "report.md").read_text()


def test_the_report_shows_where_the_diverged_trials_lie(tmp_path, capsys):
    # The planted trainable diverges wherever model.x > 0.8: the report must find that region.
    done = run_launch(*PLANTED, "num_samples=16", "+model.diverge_above=0.8", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    experiment = tmp_path / "runs" / "smoke"
    assert report_main([str(experiment), "--conf-dir", str(tmp_path / "conf" / "experiment")]) == 0
    report = json.loads((experiment / "report.json").read_text())
    rows = {row["name"]: row for row in report["diverged"]}
    low, high = (float(end) for end in rows["model.x"]["diverged"].split(" .. "))
    trained_high = float(rows["model.x"]["trained"].split(" .. ")[1])
    assert 0.8 <= low <= high < 1 and trained_high <= 0.8
    assert rows["model.x"]["apart"] and not rows["model.z"]["apart"]
    assert report["counts"]["diverged"] >= 1
    printed = capsys.readouterr().out
    assert f"diverged apart from the trials that trained: model.x {low:.2g} .. {high:.2g}" in printed
    markdown = (experiment / "report.md").read_text()
    assert f"{report['counts']['diverged']} of 16 trials diverged" in markdown
    assert f"| **model.x** | {rows['model.x']['diverged']} | {rows['model.x']['trained']} |" in markdown
