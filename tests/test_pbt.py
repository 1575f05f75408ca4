"""Population Based Training end to end: real Ray, real torch, real exploits."""

import json
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hypersweep.report import write_report
from schedulers.pbt import KeepInBounds, mutations, read_lineage, schedule_of
from schedulers.space import parse_space
from tests.conftest import run_launch
from tests.pbt_probe import PROBE_FILE
from tests.test_resume import _start, _stop_session

POPULATION, EPOCHS = 4, 8
PBT = ("experiment=digits_mlp_pbt", f"num_samples={POPULATION}", f"train.max_epochs={EPOCHS}",
       "scheduler.perturbation_interval=1", "scheduler.quantile_fraction=0.5", "seed=1")


def _rows(trial_path: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_path / "result.json").read_text().splitlines()]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module", params=[True, False], ids=["synch", "async"])
def pbt_run(tmp_path_factory, request) -> Path:
    """The PBT sweep, synchronous (the default: the population is ranked at each perturbation
    together) and not (Ray's default: each trial is ranked when it gets there)."""
    cwd = tmp_path_factory.mktemp("pbt")
    done = run_launch(*PBT, f"scheduler.synch={str(request.param).lower()}",
                      "trainable=tests.pbt_probe.ProbeTrainable", cwd=cwd)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "pbt: " in done.stdout and "the best trial's schedule: epoch 0:" in done.stdout
    return cwd / "runs" / "digits_mlp_pbt"


@pytest.fixture(scope="module")
def exploits(pbt_run) -> list[dict]:
    found = [e for e in read_lineage(str(pbt_run)) if e["event"] == "exploit"]
    assert found, "a population of 4 with half in the bottom quantile must exploit"
    return found


def test_the_population_finishes_with_every_report_kept(pbt_run):
    summary = json.loads((pbt_run / "summary.json").read_text())
    assert len(summary["trials"]) == POPULATION
    assert {t["status"] for t in summary["trials"]} == {"finished"}
    for trial in summary["trials"]:
        epochs = [row["epoch"] for row in _rows(Path(trial["path"]))]
        assert epochs[-1] == EPOCHS
        # After an exploit a trial goes on from the donor's epoch: one more than that, never a gap.
        assert all(b <= a + 1 for a, b in zip(epochs, epochs[1:], strict=False))


def test_an_exploit_copies_the_donor_state_and_keeps_the_explored_learning_rate(pbt_run, exploits):
    probe = _jsonl(pbt_run / PROBE_FILE)
    saved = {(e["trial_id"], e["epoch"], e["digest"]) for e in probe if e["event"] == "save"}
    loads = [e for e in probe if e["event"] == "load"]
    for exploit in exploits:
        matching = [load for load in loads if load["trial_id"] == exploit["trial_id"]
                    and load["epoch"] == exploit["donor_epoch"]
                    and (exploit["donor"], exploit["donor_epoch"], load["digest"]) in saved
                    and load["lr"] == exploit["after"]["optim.lr"]]
        assert matching, f"no load of the donor's state with the explored lr for {exploit}"
        assert all(load["lr"] == load["config_lr"] for load in loads)


def test_every_save_has_a_checkpoint_folder_of_its_own(pbt_run):
    # PBT keeps every checkpoint: a folder written twice lost the first state saved in it.
    saves = Counter(e["trial_id"] for e in _jsonl(pbt_run / PROBE_FILE) if e["event"] == "save")
    folders = {trial: len(list((pbt_run / f"trial_{trial}").glob("checkpoint_*"))) for trial in saves}
    assert len(saves) == POPULATION and folders == dict(saves)


def test_the_reported_learning_rate_is_always_the_trials_current_value(pbt_run):
    for trial_path in pbt_run.glob("trial_*"):
        for row in _rows(trial_path):
            assert row["lr"] == row["config"]["optim"]["lr"]


def test_every_checkpoint_pbt_copied_is_still_there(exploits):
    assert all(Path(e["checkpoint"]).is_dir() for e in exploits)


def test_mutations_stay_in_the_space_and_fixed_values_never_change(pbt_run, exploits):
    config = json.loads((pbt_run / "sweep.json").read_text())
    dims = parse_space(config)
    mutable = set(config["scheduler"]["mutable"])
    starts = [e for e in read_lineage(str(pbt_run)) if e["event"] == "start"]
    fixed_sets = [{k: v for k, v in s["tuned"].items() if k not in mutable} for s in starts]
    for trial_path in pbt_run.glob("trial_*"):
        for row in _rows(trial_path):
            for dim in dims:
                value = row["config"]
                for part in dim.path.split("."):
                    value = value[part]
                assert dim.contains(value), f"{dim.path}={value} outside {dim.describe()}"
            fixed = {d.path: row["config"][d.path.split(".")[0]][d.path.split(".")[1]]
                     for d in dims if d.path not in mutable}
            assert fixed in fixed_sets, "fixed values only ever come from some trial's start"
    explored = [e for e in exploits if e["after"] != e["donor_values"]]
    assert explored, "explore changed at least one copied value"


def test_the_control_trial_keeps_the_defaults(pbt_run, exploits):
    control = next(e["trial_id"] for e in read_lineage(str(pbt_run))
                   if e["event"] == "start" and e["control"])
    assert control not in {e["trial_id"] for e in exploits}
    assert {row["lr"] for row in _rows(pbt_run / f"trial_{control}")} == {0.001}


def test_tensorboard_shows_the_schedule_as_a_curve(pbt_run, exploits):
    changed = next(e for e in exploits if e["after"]["optim.lr"] != e["before"]["optim.lr"])
    board = EventAccumulator(str(pbt_run / "tensorboard" / changed["trial_id"]))
    board.Reload()
    values = {event.value for event in board.Scalars("hparam/optim.lr")}
    assert len(values) >= 2
    assert any(abs(v - changed["after"]["optim.lr"]) < 1e-6 * changed["after"]["optim.lr"] for v in values)


def test_the_report_shows_the_lineage_and_exports_a_replayable_schedule(pbt_run, exploits, tmp_path):
    report, _ = write_report(str(pbt_run), conf_dir=tmp_path / "conf" / "experiment")
    assert len(report["pbt"]["exploits"]) == len(exploits)
    markdown = (pbt_run / "report.md").read_text()
    assert "## PBT lineage" in markdown and exploits[0]["donor"] in markdown
    schedule = report["pbt"]["best_schedule"]
    assert schedule[0]["epoch"] == 0
    done = run_launch("experiment=digits_mlp_pbt_best", f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    replay = next((tmp_path / "runs" / "digits_mlp_pbt_best").glob("trial_*"))
    rates = {row["epoch"]: row["lr"] for row in _rows(replay)}
    for entry, following in zip(schedule, schedule[1:] + [None], strict=True):
        last = following["epoch"] if following else report["best"]["epochs"]
        for epoch in range(entry["epoch"] + 1, last + 1):
            assert rates[epoch] == entry["values"]["optim.lr"], (epoch, schedule)


def test_a_pbt_sweep_resumed_after_sigkill_keeps_its_population_and_finishes(tmp_path):
    process = _start(tmp_path, *PBT, "name=pbt_killed", "train.max_epochs=12")
    # Kill as soon as the population has exploited once: mid-run, with copies in flight.
    experiment = tmp_path / "runs" / "pbt_killed"
    lineage = experiment / "pbt_lineage.jsonl"
    while process.poll() is None and not (lineage.exists() and '"exploit"' in lineage.read_text()):
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the sweep was still running when killed"
    _stop_session(process.pid)
    assert not (experiment / "summary.json").exists()
    done = run_launch(*PBT, "name=pbt_killed", "train.max_epochs=12", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "resuming the sweep" in done.stdout
    summary = json.loads((experiment / "summary.json").read_text())
    assert len(summary["trials"]) == POPULATION
    assert {t["status"] for t in summary["trials"]} == {"finished"}
    assert all(t["epochs"] == 12 for t in summary["trials"])


class _Controller:
    """The three things PBT asks of Ray's TuneController, over plain Trial objects."""

    search_alg = None

    def __init__(self, trials: list):
        self.trials = trials
        self.saves: list = []  # the trials PBT asked to save

    def get_trials(self) -> list:
        return self.trials

    def get_live_trials(self) -> list:
        return [t for t in self.trials if not t.is_finished()]

    def pause_trial(self, trial, should_checkpoint: bool = True) -> None:
        trial.set_status(trial.PAUSED)

    def _schedule_trial_save(self, trial, result=None) -> object:
        self.saves.append(trial)
        return object()  # a checkpoint to copy


def _stub_population(tmp_path: Path, size: int) -> tuple:
    """Synchronous PBT over `size` stub trials of one tuned value, optim.lr: (pbt, trials)."""
    from ray.train._internal.storage import StorageContext
    from ray.tune.experiment import Trial

    from schedulers.pbt import build_pbt

    random.seed(0)  # PBT's own choices of donor and explore step
    config = {"optim": {"lr": 0.01},
              "space": {"optim": {"lr": {"type": "loguniform", "low": 1e-4, "high": 0.1}}},
              "scheduler": {"mutable": ["optim.lr"], "keep_baseline": False, "synch": True,
                            "perturbation_interval": 1, "burn_in": 0, "quantile_fraction": 0.5,
                            "resample_probability": 0.25}}
    pbt = build_pbt(config, parse_space(config))
    pbt.set_search_properties("val_acc", "max")
    pbt._log_config = False  # Ray's policy files need a trial's storage
    experiment = StorageContext(str(tmp_path), "pbt")  # where the lineage goes
    trials = [Trial("probe", config={"optim": {"lr": 0.01 * (i + 1)}}, stub=True, trial_id=f"t{i}",
                    storage=experiment) for i in range(size)]
    return pbt, trials


@pytest.mark.parametrize("resumed_at", [[3, 3, 3, 3], [2, 3, 3, 3], [2, 2, 2, 5], [1, 2, 3, 4]])
def test_synchronous_pbt_resumed_with_trials_part_way_runs_every_trial_to_the_end(resumed_at, tmp_path):
    # A resumed sweep gets a fresh scheduler and trials already part way. Where the driver was
    # killed decides their epochs, so the SIGKILL test above meets these cases only by chance;
    # stock Ray's synchronous PBT stops running trials in all of them (the resumed sweep hangs).
    from ray.tune.experiment import Trial

    pbt, trials = _stub_population(tmp_path, len(resumed_at))
    controller = _Controller(trials)
    epoch = {}
    for trial, at in zip(trials, resumed_at, strict=True):
        trial.run_metadata.last_result = {"training_iteration": at}
        trial.set_status(Trial.PENDING)
        pbt.on_trial_add(controller, trial)
        epoch[trial] = at
    for _ in range(200):
        trial = pbt.choose_trial_to_run(controller)
        if trial is None:
            break
        trial.set_status(Trial.RUNNING)
        configs = {t: repr(t.config) for t in trials}
        epoch[trial] += 1
        accuracy = 0.5 + trial.config["optim"]["lr"] + 0.01 * epoch[trial]
        pbt.on_trial_result(controller, trial, {"training_iteration": epoch[trial], "val_acc": accuracy})
        for other in trials:  # a trial that exploited goes on from the donor's epoch
            if repr(other.config) != configs[other]:
                epoch[other] = pbt._trial_state[other].last_train_time
        if epoch[trial] >= 12:
            trial.set_status(Trial.TERMINATED)
        elif trial.status == Trial.RUNNING:
            trial.set_status(Trial.PAUSED)
    assert {t.trial_id: epoch[t] for t in trials} == {t.trial_id: 12 for t in trials}


def _saved(folder: Path, metrics: dict) -> Any:
    """What a save of a trial comes back with: its checkpoint in `folder`, and its result."""
    from ray import tune
    from ray.train._internal.checkpoint_manager import _TrainingResult

    return _TrainingResult(tune.Checkpoint(str(folder)), metrics=metrics)


def _save_out(saved: Any) -> Any:
    """A save Ray has out (to pause a trial), as what it will come back with."""
    from ray.train._internal.session import _FutureTrainingResult

    class SaveOut(_FutureTrainingResult):
        def resolve(self, block: bool = True) -> Any:
            return saved

    return SaveOut(future=None)


# Synchronous PBT pauses each trial that reaches the sync point, and Ray pauses a trial by saving
# it first: the trial is still RUNNING while that save is out. When the last trial arrives then,
# Ray drops that save's result (the save itself goes on and writes its folder), and the driver's
# count of the trial's checkpoints falls one behind: its next checkpoint goes into a folder
# already written. Seen in CI, where it overwrote the checkpoint a bottom trial was to copy.

def test_a_top_trial_still_saving_to_pause_is_copied_from_that_save_without_a_second_one(tmp_path):
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler

    pbt, (top, bottom) = _stub_population(tmp_path, 2)
    controller = _Controller([top, bottom])
    for trial in (top, bottom):
        pbt.on_trial_add(controller, trial)
        trial.set_status(Trial.RUNNING)
    assert pbt.on_trial_result(controller, top, {"training_iteration": 1, "val_acc": 0.9}) == \
        TrialScheduler.PAUSE
    top.temporary_state.saving_to = _save_out(_saved(tmp_path / "t0" / "checkpoint_000000",
                                                     {"training_iteration": 1, "val_acc": 0.9}))

    pbt.on_trial_result(controller, bottom, {"training_iteration": 1, "val_acc": 0.1})
    # Stock Ray asks for a second save, and the pause after either drops the other's result.
    assert controller.saves == [], "a trial with a save out is never asked for another"
    assert bottom.checkpoint.path == str(tmp_path / "t0" / "checkpoint_000000")
    exploit = next(e for e in read_lineage(str(tmp_path / "pbt")) if e["event"] == "exploit")
    assert (exploit["trial_id"], exploit["donor"], exploit["checkpoint"]) == (
        "t1", "t0", str(tmp_path / "t0" / "checkpoint_000000"))


def test_a_bottom_trial_still_saving_to_pause_numbers_its_next_checkpoint_past_that_save(tmp_path):
    from ray.tune.experiment import Trial

    pbt, (top, bottom, last) = _stub_population(tmp_path, 3)
    controller = _Controller([top, bottom, last])
    for trial in (top, bottom, last):
        pbt.on_trial_add(controller, trial)
        trial.set_status(Trial.RUNNING)
    pbt.on_trial_result(controller, top, {"training_iteration": 1, "val_acc": 0.9})
    top.on_checkpoint(_saved(tmp_path / "t0" / "checkpoint_000000",
                             {"training_iteration": 1, "val_acc": 0.9}))
    top.set_status(Trial.PAUSED)
    pbt.on_trial_result(controller, bottom, {"training_iteration": 1, "val_acc": 0.1})
    out_folder = bottom.storage.current_checkpoint_index + 1  # the one the save out writes
    bottom.temporary_state.saving_to = _save_out(_saved(tmp_path / "t1" / "checkpoint_000000",
                                                        {"training_iteration": 1, "val_acc": 0.1}))

    pbt.on_trial_result(controller, last, {"training_iteration": 1, "val_acc": 0.5})
    assert [e["trial_id"] for e in read_lineage(str(tmp_path / "pbt")) if e["event"] == "exploit"] == ["t1"]
    # The trainable numbers its next folder one past the index Ray hands it.
    assert bottom.storage.current_checkpoint_index + 1 == out_folder + 1
    assert not bottom.is_saving, "the pause is not deferred to a save whose result never comes"


def test_explore_is_clipped_back_into_the_space():
    dims = parse_space({"optim": {"lr": 0.001}, "train": {"batch_size": 64}, "model": {"units": 8},
                        "space": {"optim": {"lr": {"type": "loguniform", "low": 1e-4, "high": 0.1}},
                                  "model": {"units": {"type": "int", "low": 4, "high": 16}},
                                  "train": {"batch_size": {"type": "choice", "values": [32, 64]}}}})
    clip = KeepInBounds(dims, ["optim.lr", "model.units", "train.batch_size"])
    assert clip({"optim": {"lr": 0.12}, "model": {"units": 19.2}, "train": {"batch_size": 64}}) == {
        "optim": {"lr": 0.1}, "model": {"units": 16}, "train": {"batch_size": 64}}
    assert clip({"optim": {"lr": 8e-5}, "model": {"units": 3.2}, "train": {"batch_size": 32}}) == {
        "optim": {"lr": 1e-4}, "model": {"units": 4}, "train": {"batch_size": 32}}
    assert mutations(dims, ["train.batch_size"]) == {"train": {"batch_size": [32, 64]}}


def test_the_schedule_follows_exploits_back_through_the_donors():
    events = [
        {"event": "start", "trial_id": "a", "values": {"lr": 1}},
        {"event": "start", "trial_id": "b", "values": {"lr": 2}},
        {"event": "exploit", "trial_id": "b", "donor": "a", "donor_epoch": 2, "after": {"lr": 3}},
        {"event": "exploit", "trial_id": "a", "donor": "b", "donor_epoch": 4, "after": {"lr": 4}},
        # b copies a's checkpoint at 6: a's weights then came from b (lr 1, then 3 from 2) then 4.
        {"event": "exploit", "trial_id": "b", "donor": "a", "donor_epoch": 6, "after": {"lr": 5}},
    ]
    assert schedule_of("b", events) == [
        {"epoch": 0, "values": {"lr": 1}}, {"epoch": 2, "values": {"lr": 3}},
        {"epoch": 4, "values": {"lr": 4}}, {"epoch": 6, "values": {"lr": 5}}]
    assert schedule_of("a", events[:2]) == [{"epoch": 0, "values": {"lr": 1}}]


def test_a_diverged_member_is_replaced_by_a_top_member_and_the_population_keeps_its_size(tmp_path):
    # A grid of 4: two members at a learning rate of 1e6 diverge at once. Before, each ended there
    # and PBT went on with 2; now each goes on, scoring the worst, to the perturbation at epoch 2,
    # where it copies a top member (its weights and its learning rate) and trains on from there.
    done = run_launch("experiment=digits_mlp_pbt", "search=grid", "~space.model", "~space.optim",
                      "~space.train", "+space.optim.lr={type:choice,values:[0.001,1000000.0]}",
                      "+space.model.dropout={type:choice,values:[0.0,0.2]}",
                      "scheduler.mutable=[model.dropout]", "num_samples=1", "optim.name=sgd",
                      "train.max_epochs=6", "scheduler.perturbation_interval=2",
                      "scheduler.quantile_fraction=0.5", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    experiment = tmp_path / "runs" / "digits_mlp_pbt"
    summary = json.loads((experiment / "summary.json").read_text())
    assert [t["status"] for t in summary["trials"]] == ["finished"] * 4
    exploited = {e["trial_id"] for e in read_lineage(str(experiment)) if e["event"] == "exploit"}
    blown = [t for t in summary["trials"] if t["started_with"]["optim.lr"] == 1e6]
    assert len(blown) == 2
    for trial in blown:
        rows = _rows(Path(trial["path"]))
        assert [row["diverged"] for row in rows] == [True, True, False, False, False, False]
        assert [row["epoch"] for row in rows] == [1, 2, 3, 4, 5, 6]
        assert trial["trial_id"] in exploited and trial["tuned"]["optim.lr"] == 0.001
        assert rows[-1]["val_acc"] > 0.1
