"""End to end through launch.py as a subprocess: a real embedded Ray, real torch, real files."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from tests.conftest import ENDED_WITHOUT_FAILING, run_launch

SMOKE = ("experiment=smoke",)
TUNED = {"optim.lr", "optim.name", "train.batch_size", "model.hidden_layers", "model.hidden_units",
         "model.dropout", "model.activation"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke sweep, shared by the tests that inspect what it printed and wrote."""
    workdir = tmp_path_factory.mktemp("smoke")
    done = run_launch(*SMOKE, cwd=workdir)
    return done, workdir / "runs" / "smoke"


def _summary(experiment: Path) -> dict:
    return json.loads((experiment / "summary.json").read_text())


def test_the_sweep_succeeds_and_prints_its_plan_and_outcome(smoke):
    done, experiment = smoke
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "trials:    6; the first runs the config's own defaults" in out
    assert "discrete part 2,304 combinations; 1 continuous (optim.lr)" in out
    assert "search:    hyperopt TPE" in out
    assert "scheduler: asha (reduction factor 2; rungs at epochs 1, 2, 4" in out
    assert re.search(r"best trial \w+: val_acc 0\.\d{4} after \d epochs", out)
    assert re.search(r"baseline \(defaults\) trial \w+: val_acc 0\.\d{4}; tuning gained [+-]0\.\d{4}", out)
    assert re.search(r"test accuracy 0\.\d{4} \(held-out split", out)
    assert re.search(r"trials: 6 = \d finished, \d stopped early, \d diverged, 0 failed", out)
    assert f"tensorboard --logdir {experiment}/tensorboard" in out
    assert re.search(r"^ray logs: /\S+/session_[^/]+/logs$", out, flags=re.M)
    assert len(re.findall(r"^\[\d/6\] ", out, flags=re.M)) == 6, "one progress line per trial"
    # The plan, then the progress lines: no console output of Ray Tune's in between (its box named
    # its own classes, such as "Scheduler  BaselineASHA").
    before_progress = out[:out.index("[1/6] ")].splitlines()
    assert [line for line in before_progress if not line.startswith(("hypersweep: ", "  "))] == []
    # The embedded Ray's token authentication is chosen, not Ray's default that warns about itself.
    assert "Token authentication" not in done.stderr
    assert re.search(r"^\[6/6\] \w+ .* \| best 0\.\d{4} \| 0 running, 0 to go \| \d+s, ~0s left$", out,
                     flags=re.M)
    assert re.search(r"^    new best: model\.hidden_layers=\d", out, flags=re.M)


def test_the_summary_has_every_trial_the_baseline_and_a_best_inside_the_space(smoke, compose_config):
    _, experiment = smoke
    summary = _summary(experiment)
    trials = summary["trials"]
    assert len(trials) == 6 and len({t["trial_id"] for t in trials}) == 6
    assert {t["status"] for t in trials} <= ENDED_WITHOUT_FAILING
    assert all(t["metric"] is None for t in trials if t["status"] == "diverged")
    config = compose_config(*SMOKE)
    defaults = {"optim.lr": 0.001, "optim.name": "adam", "train.batch_size": 64,
                "model.hidden_layers": 2, "model.hidden_units": 128, "model.dropout": 0.2,
                "model.activation": "relu"}
    assert summary["baseline"]["tuned"] == defaults
    assert (summary["baseline"]["status"], summary["baseline"]["epochs"]) == ("finished", 4), \
        "ASHA keeps the baseline to the end"
    best = summary["best"]
    assert best["metric"] == max(t["metric"] for t in trials if t["metric"] is not None)
    assert best["metric"] >= summary["baseline"]["metric"]
    space = config["space"]
    assert space["optim"]["lr"]["low"] <= best["tuned"]["optim.lr"] <= space["optim"]["lr"]["high"]
    assert best["tuned"]["model.activation"] in space["model"]["activation"]["values"]
    assert best["tuned"]["train.batch_size"] in space["train"]["batch_size"]["values"]
    assert 0.0 < best["test_acc"] <= 1.0


def test_each_trials_tag_names_the_searched_values_only(smoke):
    # Ray's TPE wrapper tagged each trial with its whole config (1.3 KB), copied into every
    # report, checkpoint and snapshot of it.
    _, experiment = smoke
    (state,) = experiment.glob("experiment_state-*.json")
    trials = [json.loads(trial) for trial, _ in json.loads(state.read_text())["trial_data"]]
    assert sorted(int(t["experiment_tag"].split("_", 1)[0]) for t in trials) == [1, 2, 3, 4, 5, 6]
    for trial in trials:
        named = dict(pair.split("=") for pair in trial["experiment_tag"].split("_", 1)[1].split(","))
        assert set(named) == {path.rsplit(".", 1)[1] for path in TUNED}, trial["experiment_tag"]
        assert named["activation"] == trial["config"]["model"]["activation"]


def test_tensorboard_holds_every_trials_scalars_and_hparams(smoke):
    _, experiment = smoke
    runs = sorted((experiment / "tensorboard").iterdir())
    assert {run.name for run in runs} == {t["trial_id"] for t in _summary(experiment)["trials"]}
    for run in runs:
        events = EventAccumulator(str(run))
        events.Reload()
        assert {"train_loss", "val_loss", "val_acc", "lr"} <= set(events.Tags()["scalars"])
        content = events.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
        assert set(start.hparams) == TUNED
        assert start.hparams["optim.lr"].WhichOneof("kind") == "number_value"
        assert start.hparams["train.batch_size"].WhichOneof("kind") == "number_value"
        assert start.hparams["model.activation"].WhichOneof("kind") == "string_value"
        assert metadata.SESSION_END_INFO_TAG in content


def test_the_composed_hydra_config_is_saved_beside_the_experiment(smoke):
    _, experiment = smoke
    saved = list((experiment / "hydra").glob("*/.hydra/config.yaml"))
    assert len(saved) == 1 and "name: smoke" in saved[0].read_text()
    assert json.loads((experiment / "sweep.json").read_text())["num_samples"] == 6


def test_rerunning_a_finished_sweep_runs_nothing_and_prints_the_result(smoke):
    _, experiment = smoke
    before = _summary(experiment)
    own_files = {name: (experiment / name).stat().st_mtime_ns
                 for name in ("sweep.json", "groups.json", "versions.json")}
    (snapshot,) = experiment.glob("experiment_state-*.json")
    snapshot_inode = snapshot.stat().st_ino
    done = run_launch(*SMOKE, cwd=experiment.parent.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming the sweep in" in done.stdout
    assert not re.search(r"^\[\d/6\] ", done.stdout, flags=re.M), "no trial ran again"
    after = _summary(experiment)
    assert [t["trial_id"] for t in after["trials"]] == [t["trial_id"] for t in before["trials"]]
    assert after["best"] == before["best"]
    # Ray Tune's last snapshot used to copy them back in place, unchanged but not atomically.
    assert {name: (experiment / name).stat().st_mtime_ns for name in own_files} == own_files
    # Ray Tune wrote its snapshot again, as a new file renamed over the old (whole_files.py),
    # never in place, and left no temporary file.
    assert snapshot.stat().st_ino != snapshot_inode
    assert not list(experiment.rglob(".*.tmp"))


def test_a_different_sweep_never_overwrites_an_experiment(smoke):
    _, experiment = smoke
    saved = (experiment / "sweep.json").read_text()
    done = run_launch(*SMOKE, "num_samples=3", cwd=experiment.parent.parent)
    assert done.returncode == 2
    assert "holds a sweep with other settings (num_samples: 6 -> 3)" in done.stderr
    assert (experiment / "sweep.json").read_text() == saved


def test_multirun_makes_one_experiment_per_hydra_job(tmp_path):
    done = run_launch("-m", *SMOKE, "scheduler=asha,fifo", "num_samples=2", "train.max_epochs=2",
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = sorted((tmp_path / "runs" / "smoke").glob("*/summary.json"))
    assert [path.parent.name.split(",")[2] for path in summaries] == ["scheduler=asha", "scheduler=fifo"]
    for path in summaries:
        assert len(json.loads(path.read_text())["trials"]) == 2


def test_a_multirun_s_jobs_are_named_by_what_they_run_and_resume_where_and_however_launched(tmp_path):
    # A job's name leaves out where and how it runs: a storage_path (whose '/' made every such
    # multirun fail), and settings a resume may change.
    swept = ("-m", *SMOKE, "seed=0,1", "num_samples=2", "train.max_epochs=1", "search=random")
    done = run_launch(*swept, f"storage_path={tmp_path / 'out'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted(path.parent.name for path in (tmp_path / "out" / "smoke").glob("*/summary.json"))
    assert jobs == [f"experiment=smoke,num_samples=2,search=random,seed={seed},train.max_epochs=1"
                    for seed in (0, 1)]
    again = run_launch(*swept, f"storage_path={tmp_path / 'out'}", "resume_failed=retry", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("resuming the sweep in") == 2
    folders = sorted(path.name for path in (tmp_path / "out" / "smoke").iterdir())
    assert [name for name in folders if name != "hydra"] == jobs, "no new experiment"


def test_the_console_script_runs_launch(tmp_path):
    script = Path(sys.executable).parent / "hypersweep"
    assert script.exists(), "pip install -e . installs the hypersweep console script"
    done = subprocess.run([str(script), "--cfg", "job", *SMOKE], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert "name: smoke" in done.stdout


def test_a_sweep_runs_a_trial_in_every_process_ray_starts_and_wastes_none(tmp_path):
    # Processes that are ever slower to start, short trials: Ray Tune's own controller threw
    # away starting processes (tests/test_experiment.py); the sweep keeps them all.
    done = run_launch("experiment=smoke", "search=random", "scheduler=fifo", "num_samples=40",
                      "trainable=tests.slow_start.SlowToStart", "cluster.num_cpus=3", "name=slow",
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    experiment = tmp_path / "runs" / "slow"
    rows = [json.loads(line) for path in experiment.glob("trial_*/result.json")
            for line in path.read_text().splitlines()]
    assert len(rows) == 40
    assert len({row["pid"] for row in rows}) == 3, "each of the 3 slots ran trials"
    assert len(list((experiment / "claims").iterdir())) == 3, "no process was started and thrown away"


def test_random_search_on_the_embedded_ray_makes_trials_only_as_slots_free(tmp_path):
    # Ray Tune made all of a random search's trials (up to 200) at once, each with a placement
    # group waiting in Ray, before the first one ran: 10 of these 12 waited.
    done = run_launch("experiment=smoke", "search=random", "scheduler=fifo", "num_samples=12",
                      "train.max_epochs=2", "trainable=tests.steady.CountsWaitingPlacementGroups",
                      "cluster.num_cpus=2", "name=ahead", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for path in (tmp_path / "runs" / "ahead").glob("trial_*/result.json")
            for line in path.read_text().splitlines()]
    assert len(rows) == 24
    assert max(row["waiting_placement_groups"] for row in rows) <= 2, "at most one trial per slot waits"


@pytest.mark.parametrize("search", ["hyperopt", "random"])
def test_max_concurrent_caps_the_trials_running_at_once_for_every_search(tmp_path, search):
    # Ray's own `max_concurrent_trials` ignored the cap for random and grid search: on 2 CPUs two
    # trials ran at once.
    done = run_launch("experiment=smoke", f"search={search}", "scheduler=fifo", "num_samples=4",
                      "train.max_epochs=2", "max_concurrent=1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    # One line per ended trial, with how many others ran at that moment.
    running = [int(n) for n in re.findall(r"^\[\d/4\] .* \| (\d+) running, ", done.stdout, re.M)]
    assert running == [0, 0, 0, 0], done.stdout[-2000:]
    assert "max_concurrent_trials` will be ignored" not in done.stdout + done.stderr


@pytest.mark.parametrize(("search", "space", "trials"), [
    # Every combination of lr and dropout, once: the defaults (0.001, 0.2) are one of the four.
    ("grid", ("+space.optim.lr={type:choice,values:[0.01,0.001]}",
              "+space.model.dropout={type:choice,values:[0.0,0.2]}"), 4),
    # Two samples, each run with both optimizers (Ray draws lr anew for each point of the grid).
    ("random", ("+space.optim.lr={type:loguniform,low:1e-4,high:0.1}",
                "+space.optim.name={type:grid,values:[sgd,adam]}"), 4),
])
def test_a_grid_runs_every_combination_each_sample_with_the_defaults_first(tmp_path, search, space, trials):
    # Ray's baseline point replaces one sample: with its grid values in it, it took the place of a
    # whole grid (a grid of 4 with num_samples=1 ran the baseline alone and said "interrupted").
    samples = 1 if search == "grid" else 2
    done = run_launch("experiment=smoke", f"search={search}", "scheduler=fifo", "~space.model",
                      "~space.optim", "~space.train", *space, f"num_samples={samples}",
                      "train.max_epochs=1", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"trials:    {trials} (the grid x num_samples); the first runs the config's own defaults" \
        in done.stdout
    assert f"trials: {trials} = {trials} finished" in done.stdout and "interrupted" not in done.stdout
    summary = _summary(tmp_path / "runs" / "smoke")
    tried = [tuple(sorted(trial["tuned"].items())) for trial in summary["trials"]]
    assert len(set(tried)) == trials, "no combination twice"
    assert summary["baseline"]["trial_id"].endswith("_00000"), "the defaults' trial comes first"
    assert summary["baseline"]["tuned"]["optim.lr"] == 0.001


def test_a_random_search_with_a_grid_grows_by_whole_grids(tmp_path):
    # The search grew by none before: Ray's samples each run the grid, and it added trials as if
    # each sample were one.
    args = ("experiment=smoke", "search=random", "scheduler=fifo", "~space.model", "~space.optim",
            "~space.train", "+space.optim.lr={type:loguniform,low:1e-4,high:0.1}",
            "+space.optim.name={type:grid,values:[sgd,adam]}", "train.max_epochs=1")
    assert run_launch(*args, "num_samples=2", cwd=tmp_path).returncode == 0
    grown = run_launch(*args, "num_samples=3", cwd=tmp_path)
    assert grown.returncode == 0, grown.stdout[-2000:] + grown.stderr[-3000:]
    assert "num_samples 2 -> 3: the sweep runs 2 trials more" in grown.stdout
    summary = _summary(tmp_path / "runs" / "smoke")
    assert len({tuple(sorted(trial["tuned"].items())) for trial in summary["trials"]}) == 6
    assert sorted(trial["tuned"]["optim.name"] for trial in summary["trials"]) == ["adam"] * 3 + ["sgd"] * 3


def test_a_sweep_where_every_trial_diverges_says_what_to_change(tmp_path):
    # FIFO: ASHA could stop a trial at chance after two reports, before its third (chance_patience)
    # marked it diverged; which trial reached a rung first decided it.
    done = run_launch("experiment=smoke", "num_samples=2", "scheduler=fifo", "optim.name=sgd",
                      "~space.optim.name", "optim.lr=50", "space.optim.lr.low=10", "space.optim.lr.high=100",
                      cwd=tmp_path)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-3000:]
    assert "trials: 2 = 0 finished, 0 stopped early, 2 diverged, 0 failed" in done.stdout
    assert ("no trial produced a finite val_acc; every trial diverged (its loss stopped being finite, or "
            "stayed at chance): lower the learning rate's range first") in done.stdout
    assert "RuntimeWarning" not in done.stderr
