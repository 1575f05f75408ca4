"""The result log's own rules, driven as Ray's controller drives a callback."""

import json
from pathlib import Path
from types import SimpleNamespace

from hypersweep.result_log import REPLACED_FILE, RESULT_FILE, ResultLog


def _rows(path: Path) -> list[tuple[int, int]]:
    return [(r["training_iteration"], r["epoch"]) for r in map(json.loads, path.read_text().splitlines())]


def _report(log: ResultLog, trial, iteration: int, epoch: int, done: bool = False) -> None:
    log.on_trial_result(0, [trial], trial, {"training_iteration": iteration, "epoch": epoch,
                                            "done": done})


def test_a_report_repeated_after_a_resume_replaces_the_lost_one(tmp_path):
    trial = SimpleNamespace(trial_id="t", path=str(tmp_path / "trial_t"))
    log = ResultLog()
    log.setup()
    for iteration in (1, 2, 3):
        _report(log, trial, iteration, iteration)
    log.setup()  # the driver was killed after report 3, before checkpoint 3: resumed from 2
    _report(log, trial, 3, 3)
    _report(log, trial, 4, 4)
    assert _rows(tmp_path / "trial_t" / RESULT_FILE) == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert _rows(tmp_path / "trial_t" / REPLACED_FILE) == [(3, 3)]


def test_an_end_reported_again_after_a_resume_is_not_repeated(tmp_path):
    trial = SimpleNamespace(trial_id="t", path=str(tmp_path / "trial_t"))
    log = ResultLog()
    log.setup()
    _report(log, trial, 1, 1)
    _report(log, trial, 2, 2, done=True)
    log.setup()
    _report(log, trial, 3, 2, done=True)  # restored from its end checkpoint: the same end
    assert _rows(tmp_path / "trial_t" / RESULT_FILE) == [(1, 1), (2, 2)]


def test_pbt_going_back_to_a_donors_epoch_keeps_every_report(tmp_path):
    trial = SimpleNamespace(trial_id="t", path=str(tmp_path / "trial_t"))
    log = ResultLog()
    log.setup()
    for iteration in (1, 2, 3, 4):
        _report(log, trial, iteration, iteration)
    _report(log, trial, 3, 3)  # copied a donor at epoch 2, in the same driver run
    assert _rows(tmp_path / "trial_t" / RESULT_FILE) == [(1, 1), (2, 2), (3, 3), (4, 4), (3, 3)]
