"""Resume and fault tolerance with real processes and real signals."""

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hypersweep.records import trial_rows
from tests.conftest import ENDED_WITHOUT_FAILING, ROOT, run_launch

SWEEP = ("experiment=smoke", "num_samples=10", "train.max_epochs=6", "seed=3")
PROGRESS = re.compile(r"^\[ *(\d+)/(\d+)\] (\w+) (\S+)\s+(?:val_acc (\S+))?", re.M)


def _summary(experiment: Path) -> dict:
    return json.loads((experiment / "summary.json").read_text())


def _iterations(experiment: Path, trial_id: str) -> list[int]:
    return [row["training_iteration"] for row in trial_rows(str(experiment / f"trial_{trial_id}"))]


def _session_pids(driver_pid: int) -> list[int]:
    """Processes of the Ray session this driver started (its name ends with the driver's pid)."""
    marker = re.compile(rf"session_[\d_-]+_{driver_pid}\b".encode())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.search((entry / "cmdline").read_bytes()):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _stop_session(driver_pid: int, timeout: float = 30) -> None:
    """After a driver was killed, end what is left of the Ray session it started: its processes
    by session name, then whatever is left in the driver's process group (Ray's agents rename
    themselves, and one left holding its fixed port breaks the next cluster's job agent)."""
    deadline = time.monotonic() + timeout
    while _session_pids(driver_pid) and time.monotonic() < deadline:
        time.sleep(1)
    for pid in _session_pids(driver_pid):
        os.kill(pid, signal.SIGKILL)
    try:
        os.killpg(driver_pid, signal.SIGKILL)  # _start made the driver lead its own group
    except ProcessLookupError:
        pass


def _start(cwd: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(ROOT / "launch.py"), *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _read_until_progress(process: subprocess.Popen, lines_wanted: int) -> list[str]:
    """Read the driver's output until it printed `lines_wanted` progress lines (or ended)."""
    seen = []
    for line in process.stdout:
        seen.append(line)
        if sum(bool(PROGRESS.match(x)) for x in seen) >= lines_wanted:
            break
    return seen


def _ended_trials(output: str) -> dict[str, str]:
    return {m.group(3): m.group(4) for m in PROGRESS.finditer(output)}


def test_sigkill_of_the_driver_three_times_loses_nothing_and_runs_nothing_twice(tmp_path):
    rng = random.Random(7)
    ended_before_kill: dict[str, str] = {}
    metrics_before_kill: dict[str, float] = {}
    experiment = tmp_path / "runs" / "smoke"
    for wanted in (1, 2, 2):
        process = _start(tmp_path, *SWEEP)
        output = "".join(_read_until_progress(process, wanted))
        # Past the snapshot period (1 s for 10 trials), with other trials mid-run; a trial that
        # both started and ended within it (smoke trials that ASHA stops at its first rung are
        # that short) is in no snapshot, and is restored from ended_trials.jsonl.
        time.sleep(rng.uniform(2.0, 3.0))
        process.kill()
        process.wait()
        _stop_session(process.pid)
        ended_before_kill.update(_ended_trials(output))
        for m in PROGRESS.finditer(output):
            if m.group(5):
                metrics_before_kill[m.group(3)] = float(m.group(5))
    assert ended_before_kill, "trials ended before the kills"

    done = run_launch(*SWEEP, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "resuming the sweep" in done.stdout
    summary = _summary(experiment)
    trials = {t["trial_id"]: t for t in summary["trials"]}
    assert len(summary["trials"]) == 10 and len(trials) == 10, "exactly the requested trials, once each"
    # A kill between Ray deleting a checkpoint (num_to_keep) and snapshotting its successor used
    # to fail the trial on resume: none may fail.
    assert {t["status"] for t in summary["trials"]} <= ENDED_WITHOUT_FAILING, summary["trials"]
    configs = [json.dumps(t["tuned"], sort_keys=True) for t in summary["trials"]]
    assert len(set(configs)) == 10, "hyperopt continued from its state instead of re-suggesting"
    rerun = _ended_trials(done.stdout)
    for trial_id, metric in metrics_before_kill.items():
        assert trial_id not in rerun, f"{trial_id} ended before a kill and ran again"
        assert round(trials[trial_id]["metric"], 4) == metric
    for trial_id in trials:
        iterations = _iterations(experiment, trial_id)
        assert iterations[-1] == trials[trial_id]["epochs"]
        # One row per iteration, in order: a trial running at a kill went on from its last
        # checkpoint (never from zero), and the report it repeated replaced the lost one.
        assert iterations == list(range(1, iterations[-1] + 1)), f"{trial_id}: {iterations}"
        replaced = experiment / f"trial_{trial_id}" / "replaced.json"
        if replaced.exists():
            # The reports a trial running at a kill made after its last checkpoint: one per kill
            # at most, and each made again with the same value (training is deterministic).
            rows = [json.loads(row) for row in replaced.read_text().splitlines()]
            assert len(rows) <= 3
            final = {row["training_iteration"]: row
                     for row in trial_rows(str(experiment / f"trial_{trial_id}"))}
            for row in rows:
                assert row["val_acc"] == final[row["training_iteration"]]["val_acc"]


def _snapshot_while_running(experiment: Path, process: subprocess.Popen, trials: int,
                            max_epochs: int) -> dict[str, bytes]:
    """Ray's snapshot files (the trials' state and the search's), copied as soon as a snapshot
    holds `trials` trials that have all reported and none has ended."""
    while process.poll() is None:
        for state_file in experiment.glob("experiment_state-*.json"):
            try:
                state = json.loads(state_file.read_bytes())
            except (OSError, ValueError):
                continue  # replaced meanwhile
            iterations = [json.loads(meta)["last_result"].get("training_iteration", 0)
                          for _, meta in state["trial_data"]]
            if len(iterations) == trials and all(0 < it < max_epochs - 5 for it in iterations):
                return {path.name: path.read_bytes() for path in experiment.iterdir()
                        if path.suffix in (".json", ".pkl") and "state" in path.name}
        time.sleep(0.02)
    raise AssertionError("the sweep ended before a snapshot held every trial running")


@pytest.mark.parametrize("search", ["hyperopt", "random"])
def test_trials_that_ended_after_the_last_snapshot_do_not_run_again(tmp_path, search):
    # The driver killed right after every trial ended, with its last snapshot from when the first
    # two ran: played back by putting that snapshot in place of the one the finished sweep wrote.
    # The third trial, created once one of them ended (two at a time), is in no snapshot: the
    # restored search would have drawn its values again for a new trial.
    args = ("experiment=smoke", "name=ends", "trainable=tests.steady.SteadySteps", f"search={search}",
            "scheduler=fifo", "num_samples=3", "max_concurrent=2", "train.max_epochs=30",
            "snapshot_seconds=0.2", "checkpoint.num_to_keep=100")
    experiment = tmp_path / "runs" / "ends"
    process = _start(tmp_path, *args)
    old_snapshot = _snapshot_while_running(experiment, process, trials=2, max_epochs=30)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output[-3000:]
    ended = _summary(experiment)["trials"]
    rows = {trial["trial_id"]: _iterations(experiment, trial["trial_id"]) for trial in ended}
    for name, content in old_snapshot.items():
        (experiment / name).write_bytes(content)

    done = run_launch(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "resuming the sweep" in done.stdout
    assert "3 trials had ended after the last snapshot: saved as ended, not run again" in done.stdout
    assert not PROGRESS.search(done.stdout), "a trial ran again"
    assert len(ended) == 3 and _summary(experiment)["trials"] == ended
    for trial_id, iterations in rows.items():
        assert iterations == list(range(1, 31))
        assert _iterations(experiment, trial_id) == iterations
        assert not (experiment / f"trial_{trial_id}" / "replaced.json").exists()


def _interrupt_then_resume(tmp_path: Path, signum: int) -> None:
    process = _start(tmp_path, *SWEEP)
    output = "".join(_read_until_progress(process, 2))
    process.send_signal(signum)
    rest, _ = process.communicate(timeout=120)
    output += rest
    assert process.returncode == 130, output[-3000:]
    assert "interrupted; the state is saved. Resume with: python launch.py experiment=smoke " \
           "num_samples=10 train.max_epochs=6 seed=3" in output
    assert "Tuner.restore" not in output, "Ray Tune's own resume hint, for its Python API"
    _stop_session(process.pid)
    ended = _ended_trials(output)
    experiment = tmp_path / "runs" / "smoke"
    assert len(_summary(experiment)["trials"]) >= len(ended)
    saved = _own_files(experiment)
    # The resumed ASHA holds each earlier report that reached a rung (1, 2 and 4 epochs here).
    reached = [sum(rung <= max(_iterations(experiment, folder.name[len("trial_"):]))
                   for rung in (1, 2, 4))
               for folder in experiment.glob("trial_*") if (folder / "result.json").exists()]

    done = run_launch(*SWEEP, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not set(ended) & set(_ended_trials(done.stdout)), "an ended trial ran again"
    counts = [(int(m.group(1)), int(m.group(2))) for m in PROGRESS.finditer(done.stdout)]
    assert counts[-1] == (10, 10), "the resumed run counts the trials that ended before it"
    best_before = re.findall(r"\| best (0\.\d+) \|", output)
    if best_before:  # else the trials that ended before the signal had all diverged
        first_best = re.search(r"\| (best 0\.\d+|no best yet) \|", done.stdout).group(1)
        assert first_best != "no best yet" and float(first_best[5:]) >= float(best_before[-1]), \
            "the resumed run's best counts the trials that ended before it"
    assert f"ASHA's rungs hold {sum(reached)} results of {sum(map(bool, reached))} trials from " \
           f"before the resume" in done.stdout
    assert len(_summary(experiment)["trials"]) == 10
    # Ray Tune copied them back in place at each snapshot of a resumed run; a kill during a
    # copy left an empty sweep.json.
    assert _own_files(experiment) == saved, "the resumed run rewrote the sweep's own files"


def _own_files(experiment: Path) -> dict[str, tuple[int, str]]:
    """The files a sweep writes once, at its start: each one's modification time and content."""
    return {name: ((experiment / name).stat().st_mtime_ns, (experiment / name).read_text())
            for name in ("sweep.json", "groups.json", "versions.json")}


def test_ctrl_c_saves_the_state_prints_the_resume_command_and_resumes(tmp_path):
    _interrupt_then_resume(tmp_path, signal.SIGINT)


def test_sigterm_stops_as_cleanly_as_ctrl_c(tmp_path):
    _interrupt_then_resume(tmp_path, signal.SIGTERM)


def test_sigterm_to_the_whole_process_group_ends_within_seconds_and_resumes(tmp_path):
    # `timeout`, `kill -- -PGID`, a batch system's time limit: Ray's own processes get the signal
    # too and their GCS stops serving at once. The driver still writes Ray's snapshot, then used
    # to wait Ray's default 60 s for the lost GCS, and later Ray's core ended it (exit code 1)
    # before it printed the outcome and how to resume.
    process = _start(tmp_path, *SWEEP)
    output = "".join(_read_until_progress(process, 2))
    os.killpg(process.pid, signal.SIGTERM)
    signalled = time.monotonic()
    rest, _ = process.communicate(timeout=120)
    stopped_after = time.monotonic() - signalled
    _stop_session(process.pid)
    assert stopped_after < 30, f"the driver took {stopped_after:.0f} s to end"
    # At once, in case Ray's core, seeing its raylet gone, ends the driver before its outcome.
    assert f"SIGTERM: stopping; the state is saved as the sweep ends. Resume with: python launch.py " \
           f"{' '.join(SWEEP)}" in rest
    if process.returncode == 130:  # else 1, from Ray's core
        assert f"interrupted; the state is saved. Resume with: python launch.py {' '.join(SWEEP)}" in rest
    else:
        assert process.returncode == 1, rest[-3000:]
    ended = _ended_trials(output + rest)
    experiment = tmp_path / "runs" / "smoke"

    done = run_launch(*SWEEP, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "resuming the sweep" in done.stdout
    assert not set(ended) & set(_ended_trials(done.stdout)), "an ended trial ran again"
    summary = _summary(experiment)
    assert len({t["trial_id"] for t in summary["trials"]}) == 10
    assert {t["status"] for t in summary["trials"]} <= ENDED_WITHOUT_FAILING


@pytest.mark.parametrize("search", ["hyperopt", "random"])
def test_a_snapshot_whose_search_is_newer_than_its_trials_resumes_every_trial(tmp_path, search):
    # A driver killed while Ray copied its snapshot into the experiment left the search state
    # that counted 4 trials beside the trials' state that held 2 (seen in CI: the resume ended
    # with 7 of 10 trials, exit code 130, and so did every resume after it).
    args = ("experiment=smoke", "name=torn", "num_samples=4", "train.max_epochs=1", f"search={search}")
    assert run_launch(*args, cwd=tmp_path).returncode == 0
    experiment = tmp_path / "runs" / "torn"
    (state_file,) = experiment.glob("experiment_state-*.json")
    state = json.loads(state_file.read_text())
    kept = [json.loads(trial)["trial_id"] for trial, _ in state["trial_data"][:2]]
    lost = [json.loads(trial)["trial_id"] for trial, _ in state["trial_data"][2:]]
    state["trial_data"] = state["trial_data"][:2]
    state_file.write_text(json.dumps(state))
    # Lost: running at the kill, so their ends were never saved (an ended one would be restored).
    ends = (experiment / "ended_trials.jsonl").read_text().splitlines()
    (experiment / "ended_trials.jsonl").write_text(
        "".join(line + "\n" for line in ends if json.loads(line)["trial_id"] not in lost))
    rows_before = {trial_id: _iterations(experiment, trial_id) for trial_id in kept}

    done = run_launch(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "resuming the sweep" in done.stdout
    assert "the saved state holds 2 trials where the search had created 4" in done.stdout
    trials = {t["trial_id"]: t for t in _summary(experiment)["trials"]}
    assert len(trials) == 4
    assert set(kept) <= set(trials) and not set(lost) & set(trials), "new trials took the lost ones' place"
    assert {t["status"] for t in trials.values()} <= ENDED_WITHOUT_FAILING
    for trial_id in kept:
        assert _iterations(experiment, trial_id) == rows_before[trial_id], "a kept trial ran again"


@pytest.mark.parametrize("search", ["hyperopt", "random"])
def test_a_snapshot_whose_trials_are_newer_than_its_search_runs_no_trial_beyond_num_samples(tmp_path, search):
    # The other tear: the trials' state holds all 4 trials beside the search state that had
    # created 2. The resumed search would have created 2 more (random search under trial ids
    # that the restored trials hold).
    from ray import cloudpickle

    args = ("experiment=smoke", "name=behind", "num_samples=4", "train.max_epochs=1", f"search={search}")
    assert run_launch(*args, cwd=tmp_path).returncode == 0
    experiment = tmp_path / "runs" / "behind"
    (state_file,) = experiment.glob("search_gen_state-*.json" if search == "hyperopt"
                                    else "basic-variant-state-*.json")
    state = cloudpickle.loads(state_file.read_bytes())
    if search == "hyperopt":
        state["counter"] = 2
    else:
        iterator = state["_iterators"][0]
        iterator.num_samples_left, iterator.counter, state["_finished"] = 2, 2, False
    state_file.write_bytes(cloudpickle.dumps(state))

    done = run_launch(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(_summary(experiment)["trials"]) == 4
    assert len(list(experiment.glob("trial_*"))) == 4, "a trial beyond num_samples ran"


def test_a_second_launch_of_a_running_sweep_is_refused_and_the_first_runs_on(tmp_path):
    first = _start(tmp_path, *SWEEP)
    _read_until_progress(first, 1)
    second = run_launch(*SWEEP, cwd=tmp_path)
    assert second.returncode == 2
    (error,) = second.stderr.strip().splitlines()
    assert re.fullmatch(rf"error: name: {tmp_path}/runs/smoke is in use by the launch of pid "
                        rf"{first.pid} on \S+ \(since [\d: -]+\); wait for it to end or stop it, or "
                        r"choose a new name=\.\.\.", error), error
    output, _ = first.communicate(timeout=300)
    assert first.returncode == 0, output[-3000:]
    experiment = tmp_path / "runs" / "smoke"
    assert len(_summary(experiment)["trials"]) == 10
    assert not list(experiment.glob("trial_*/replaced.json")), "a trial trained twice"


def test_resume_never_and_overwrite(tmp_path):
    args = ("experiment=smoke", "num_samples=2", "train.max_epochs=2")
    assert run_launch(*args, cwd=tmp_path).returncode == 0
    experiment = tmp_path / "runs" / "smoke"
    refused = run_launch(*args, "resume=never", cwd=tmp_path)
    assert refused.returncode == 2
    assert "already holds a sweep and resume=never" in refused.stderr
    first = _summary(experiment)

    replaced = run_launch(*args, "num_samples=3", "resume=overwrite", cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    (aside,) = experiment.glob("replaced-*")
    assert _summary(aside) == first, "the previous sweep was moved aside, not lost"
    # The lock stayed in place: one moved aside would let another launch take a new one meanwhile.
    assert (experiment / ".launch.lock").exists() and not (aside / ".launch.lock").exists()
    assert len(_summary(experiment)["trials"]) == 3


def test_a_refused_resume_offers_the_overrides_that_resume_it(tmp_path):
    args = ("experiment=smoke", "num_samples=2", "train.max_epochs=2")
    assert run_launch(*args, cwd=tmp_path).returncode == 0
    experiment = tmp_path / "runs" / "smoke"
    saved = json.loads((experiment / "sweep.json").read_text())
    del saved["checkpoint"]["seconds"]  # as in a sweep started before hypersweep had the setting
    (experiment / "sweep.json").write_text(json.dumps(saved))

    changed = ("checkpoint.seconds=5", "num_samples=3")
    refused = run_launch(*args, *changed, cwd=tmp_path)
    assert refused.returncode == 2
    assert ("(checkpoint.seconds: 0 -> 5, num_samples: 2 -> 3); resume it with checkpoint.seconds=0 "
            "num_samples=2, choose a new name=...") in refused.stderr
    resumed = run_launch(*args, *changed, "checkpoint.seconds=0", "num_samples=2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming the sweep in" in resumed.stdout
    assert len(_summary(experiment)["trials"]) == 2

    # A changed config group is named as the group, not as the dozen keys it sets.
    regrouped = run_launch(*args, "search=random", cwd=tmp_path)
    assert regrouped.returncode == 2
    assert "(search: 'hyperopt' -> 'random'); resume it with search=hyperopt," in regrouped.stderr


@pytest.mark.parametrize("search", ["hyperopt", "random"])
def test_a_larger_num_samples_grows_a_sweep_into_the_one_it_would_have_been(tmp_path, search):
    args = ("experiment=smoke", f"search={search}", "train.max_epochs=2")
    assert run_launch(*args, "num_samples=3", cwd=tmp_path).returncode == 0
    experiment = tmp_path / "runs" / "smoke"
    before = _summary(experiment)["trials"]

    grown = run_launch(*args, "num_samples=5", cwd=tmp_path)
    assert grown.returncode == 0, grown.stderr[-3000:]
    assert "num_samples 3 -> 5: the sweep runs 2 trials more" in grown.stdout
    assert [(m.group(1), m.group(2)) for m in PROGRESS.finditer(grown.stdout)] == [("4", "5"), ("5", "5")]
    after = _summary(experiment)["trials"]
    assert len(after) == 5 and all(trial in after for trial in before), "none ran again or changed"
    assert json.loads((experiment / "sweep.json").read_text())["num_samples"] == 5

    # The search went on from its saved state: the 5 trials are those a sweep of 5 tries (TPE
    # draws at random up to its n_initial_points).
    fresh = run_launch(*args, "num_samples=5", "name=fresh", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    tried = sorted(json.dumps(trial["tuned"], sort_keys=True) for trial in after)
    assert tried == sorted(json.dumps(trial["tuned"], sort_keys=True)
                           for trial in _summary(tmp_path / "runs" / "fresh")["trials"])

    # From now on the sweep is one of 5: fewer is refused, as is any change beside num_samples.
    shrunk = run_launch(*args, "num_samples=3", cwd=tmp_path)
    assert shrunk.returncode == 2
    assert "(num_samples: 5 -> 3); resume it with num_samples=5," in shrunk.stderr
    other = run_launch(*args, "num_samples=6", "seed=1", cwd=tmp_path)
    assert other.returncode == 2
    assert "(num_samples: 5 -> 6, seed: 0 -> 1); resume it with num_samples=5 seed=0," in other.stderr


@pytest.mark.parametrize(("overrides", "message"), [
    (("experiment=digits_mlp_pbt",), "num_samples: a PBT population cannot grow once it trains (8 -> 9); "),
])
def test_a_sweep_whose_search_cannot_take_more_trials_refuses_to_grow(compose_config, tmp_path, overrides,
                                                                     message):
    from hypersweep.errors import ExperimentError
    from hypersweep.resume import should_resume

    saved = compose_config(*overrides, "num_samples=8", f"storage_path={tmp_path}")
    (tmp_path / saved["name"]).mkdir()
    (tmp_path / saved["name"] / "sweep.json").write_text(json.dumps(saved))
    with pytest.raises(ExperimentError) as refused:
        should_resume({**saved, "num_samples": 9}, {})
    assert str(refused.value) == message + "resume it with num_samples=8, or start a new sweep with name=..."
    assert json.loads((tmp_path / saved["name"] / "sweep.json").read_text())["num_samples"] == 8


def test_a_data_setting_added_to_its_yaml_at_the_loaders_default_still_resumes_an_older_sweep(
        compose_config, tmp_path):
    from hypersweep.errors import ExperimentError
    from hypersweep.resume import should_resume

    saved = compose_config("experiment=digits_cnn", f"storage_path={tmp_path}")
    del saved["data"]["image_size"]  # as a sweep started before data/digits_images.yaml had it
    (tmp_path / saved["name"]).mkdir()
    (tmp_path / saved["name"] / "sweep.json").write_text(json.dumps(saved))
    launched = compose_config("experiment=digits_cnn", f"storage_path={tmp_path}")
    # The same sweep: what stops this resume is only that the test saved no Ray Tune state.
    with pytest.raises(ExperimentError, match="has sweep.json but no Ray Tune state to resume"):
        should_resume(launched, {})
    with pytest.raises(ExperimentError, match=r"other settings \(data.image_size: 8 -> 16\); resume it "
                                              r"with data.image_size=8,"):
        should_resume({**launched, "data": {**launched["data"], "image_size": 16}}, {})


def test_a_resume_under_another_ray_version_is_refused(tmp_path):
    args = ("experiment=smoke", "num_samples=2", "train.max_epochs=2")
    assert run_launch(*args, cwd=tmp_path).returncode == 0
    versions_file = tmp_path / "runs" / "smoke" / "versions.json"
    versions = json.loads(versions_file.read_text())
    versions["ray"] = "2.1.0"
    versions_file.write_text(json.dumps(versions))
    refused = run_launch(*args, cwd=tmp_path)
    assert refused.returncode == 2
    assert "was started under ray 2.1.0" in refused.stderr and "allow_version_change=true" in refused.stderr
    forced = run_launch(*args, "allow_version_change=true", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr[-3000:]


def test_an_unreadable_saved_config_is_a_one_line_error_that_keeps_the_experiment(tmp_path):
    experiment = tmp_path / "runs" / "smoke"
    experiment.mkdir(parents=True)
    (experiment / "sweep.json").write_text("")  # as a copy cut short by a kill would leave it
    refused = run_launch("experiment=smoke", cwd=tmp_path)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line == (f"error: resume: {experiment / 'sweep.json'} cannot be read (Expecting value: "
                    f"line 1 column 1 (char 0)); repair it, or resume=overwrite to move the experiment "
                    f"aside and start again")
    assert (experiment / "sweep.json").read_text() == "" and not list(experiment.glob("trial_*"))


def test_failing_and_diverging_trials_are_retried_recorded_and_never_best(tmp_path):
    # One epoch more than the chance patience: a model collapsed to chance ends before its last
    # epoch, so ending that way is told apart from finishing.
    patience = 3
    done = run_launch(
        "experiment=smoke", "num_samples=8", f"train.max_epochs={patience + 1}",
        f"train.chance_patience={patience}", "max_failures=1",
        "model._target_=tests.faulty.BrokenForSomeConfigs", "+model.broken_units=256",
        "optim.name=sgd", "~space.optim.name", "~space.optim.lr",
        "+space.optim.lr={type:choice,values:[0.05,100000.0]}", "optim.lr=0.05",
        "scheduler=fifo", "seed=1", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    experiment = tmp_path / "runs" / "smoke"
    summary = _summary(experiment)
    by_status: dict[str, list] = {}
    for trial in summary["trials"]:
        by_status.setdefault(trial["status"], []).append(trial)
    assert {"failed", "diverged", "finished"} <= set(by_status), by_status.keys()
    for trial in by_status["failed"]:
        assert trial["tuned"]["model.hidden_units"] == 256
        assert "simulated bug: hidden_units=256 is not supported" in trial["error"]
        assert trial["failures"] == 2, "tried once, retried max_failures=1 time"
        assert (Path(trial["path"]) / "error.txt").is_file()
        assert f"failed {trial['trial_id']}: " in done.stdout
    for trial in by_status["diverged"]:
        assert trial["tuned"]["optim.lr"] == 100000.0
        rows = trial_rows(trial["path"])
        assert [row["training_iteration"] for row in rows] == list(range(1, len(rows) + 1)), \
            "not retried"
        assert [row["diverged"] for row in rows] == [False] * (len(rows) - 1) + [True]
        # The step overflows the loss, which ends the trial at that report, or (tanh keeps the
        # outputs finite) collapses the model to a uniform guess, which ends it after `patience`.
        finite = [math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"]) for row in rows]
        assert all(finite[:-1]) and (not finite[-1] or len(rows) == patience), rows
        assert rows[-1]["val_acc"] == float("-inf"), "the search saw the worst value"
    assert summary["best"]["status"] == "finished"
    assert summary["best"]["tuned"]["optim.lr"] == 0.05
    counts = re.search(r"trials: 8 = (\d+) finished, (\d+) stopped early, (\d+) diverged, (\d+) failed",
                       done.stdout)
    assert counts and int(counts.group(3)) == len(by_status["diverged"])
    assert int(counts.group(4)) == len(by_status["failed"])


def test_a_trial_that_crashes_is_retried_from_its_last_checkpoint(tmp_path):
    marker = tmp_path / "crashed"
    done = run_launch(
        "experiment=smoke", "num_samples=1", "train.max_epochs=6", "scheduler=fifo",
        "model._target_=tests.faulty.CrashesOnce", f"+model.marker={marker}",
        "+model.crash_after=60", "train.batch_size=64", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert marker.exists(), "the trial did crash once"
    (trial,) = _summary(tmp_path / "runs" / "smoke")["trials"]
    assert trial["status"] == "finished" and trial["epochs"] == 6 and trial["failures"] == 1
    # 60 forward passes = 3 epochs of 17 batches + 3 evaluations: the crash came in epoch 4,
    # and the retry went on from the checkpoint of epoch 3 rather than from zero.
    assert _iterations(tmp_path / "runs" / "smoke", trial["trial_id"]) == [1, 2, 3, 4, 5, 6]


def test_resume_failed_retry_runs_a_failed_trial_again_from_its_checkpoint(tmp_path):
    marker = tmp_path / "crashed"
    args = ("experiment=smoke", "num_samples=1", "train.max_epochs=6", "scheduler=fifo",
            "model._target_=tests.faulty.CrashesOnce", f"+model.marker={marker}",
            "+model.crash_after=60", "train.batch_size=64", "max_failures=0")
    first = run_launch(*args, cwd=tmp_path)
    experiment = tmp_path / "runs" / "smoke"
    (failed,) = _summary(experiment)["trials"]
    assert failed["status"] == "failed" and "simulated out-of-memory" in failed["error"]
    assert first.returncode == 1, "no trial succeeded"

    skipped = run_launch(*args, cwd=tmp_path)
    assert _summary(experiment)["trials"][0]["status"] == "failed", "by default a resume skips it"
    assert skipped.returncode == 1

    retried = run_launch(*args, "resume_failed=retry", cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr[-3000:]
    (trial,) = _summary(experiment)["trials"]
    assert trial["trial_id"] == failed["trial_id"] and trial["status"] == "finished"
    assert _iterations(experiment, trial["trial_id"]) == [1, 2, 3, 4, 5, 6], "went on from epoch 3"


def test_checkpoints_by_training_time_come_every_so_many_seconds_and_at_the_end(tmp_path):
    # Steps of 0.1 s; a checkpoint once 0.25 s of training have passed since the last: after
    # steps 3, 6 and 9, and at the end (10). Every checkpoint is kept, to be counted.
    done = run_launch("experiment=smoke", "trainable=tests.steady.SteadySteps", "search=random",
                      "scheduler=fifo", "num_samples=1", "train.max_epochs=10",
                      "checkpoint.frequency=0", "checkpoint.seconds=0.25",
                      "checkpoint.num_to_keep=100", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (trial,) = (tmp_path / "runs" / "smoke").glob("trial_*")
    taken = sorted(int((folder / "iteration").read_text()) for folder in trial.glob("checkpoint_*"))
    assert taken == [3, 6, 9, 10]


def test_a_new_sweep_decides_not_to_resume_without_importing_ray_tune(compose_config, tmp_path):
    # The decision comes before ray.init on the driver's main thread: importing Ray Tune there
    # (about a second) would hold back the start of the embedded Ray.
    config = compose_config("experiment=smoke", f"storage_path={tmp_path}")
    script = ("import json, sys\n"
              "from hypersweep.resume import should_resume\n"
              "print(should_resume(json.loads(sys.argv[1]), {}), 'ray.tune' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(config)], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_snapshots_come_every_second_per_hundred_trials(compose_config):
    from hypersweep.config import validate
    from hypersweep.experiment import snapshot_period

    def period(*overrides: str) -> float:
        config = compose_config(*overrides)
        return snapshot_period(config, validate(config))

    assert period() == 1.0  # 32 trials: what a killed driver can lose stays one second
    assert period("num_samples=1000") == 10.0
    assert period("num_samples=1000", "snapshot_seconds=0.5") == 5.0
    # A grid counts every point it runs: 10 samples, each with 4 x 4 units-by-layers.
    assert period("search=random", "num_samples=10", "~space.optim", "~space.train",
                  "~space.model.dropout", "~space.model.activation", "space.model.hidden_units.type=grid",
                  "space.model.hidden_layers.type=grid") == 1.6
