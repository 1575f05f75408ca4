"""The result log's own rules, driven as Ray's controller drives a callback."""

import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow.fs
from ray.train._internal.storage import StorageContext

from hypersweep.result_log import REPLACED_FILE, RESULT_FILE, ResultLog


def _trial(tmp_path: Path) -> SimpleNamespace:
    """A trial of an experiment in tmp_path/exp, with Ray's own storage context."""
    return SimpleNamespace(trial_id="t", storage=StorageContext(str(tmp_path), "exp",
                                                                trial_dir_name="trial_t"))


def _rows(path: Path) -> list[tuple[int, int]]:
    return [(r["training_iteration"], r["epoch"]) for r in map(json.loads, path.read_text().splitlines())]


def _report(log: ResultLog, trial, iteration: int, epoch: int, done: bool = False) -> None:
    log.on_trial_result(0, [trial], trial, {"training_iteration": iteration, "epoch": epoch,
                                            "done": done})


def test_a_report_repeated_after_a_resume_replaces_the_lost_one(tmp_path):
    trial = _trial(tmp_path)
    log = ResultLog()
    log.setup()
    for iteration in (1, 2, 3):
        _report(log, trial, iteration, iteration)
    log.setup()  # the driver was killed after report 3, before checkpoint 3: resumed from 2
    _report(log, trial, 3, 3)
    _report(log, trial, 4, 4)
    assert _rows(tmp_path / "exp" / "trial_t" / RESULT_FILE) == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert _rows(tmp_path / "exp" / "trial_t" / REPLACED_FILE) == [(3, 3)]


def test_an_end_reported_again_after_a_resume_is_not_repeated(tmp_path):
    trial = _trial(tmp_path)
    log = ResultLog()
    log.setup()
    _report(log, trial, 1, 1)
    _report(log, trial, 2, 2, done=True)
    log.setup()
    _report(log, trial, 3, 2, done=True)  # restored from its end checkpoint: the same end
    assert _rows(tmp_path / "exp" / "trial_t" / RESULT_FILE) == [(1, 1), (2, 2)]


def test_pbt_going_back_to_a_donors_epoch_keeps_every_report(tmp_path):
    trial = _trial(tmp_path)
    log = ResultLog()
    log.setup()
    for iteration in (1, 2, 3, 4):
        _report(log, trial, iteration, iteration)
    _report(log, trial, 3, 3)  # copied a donor at epoch 2, in the same driver run
    assert _rows(tmp_path / "exp" / "trial_t" / RESULT_FILE) == [(1, 1), (2, 2), (3, 3), (4, 4), (3, 3)]


def test_on_a_bucket_a_resumed_run_uploads_the_earlier_rows_with_its_own(tmp_path):
    """Ray uploads its staging folder with each snapshot, and a resumed run stages in a new one:
    the log must start that file from what the bucket holds, or the upload would drop rows."""
    bucket = pyarrow.fs._MockFileSystem()  # pyarrow's in-memory filesystem, as an object store

    def staged_in(session: str) -> SimpleNamespace:
        storage = SimpleNamespace(storage_filesystem=bucket, experiment_fs_path="bucket/exp",
                                  experiment_driver_staging_path=str(tmp_path / session),
                                  trial_dir_name="trial_t")
        return SimpleNamespace(trial_id="t", storage=storage)

    def upload(session: str) -> None:  # what Ray's snapshot does with the staging folder
        pyarrow.fs.copy_files(str(tmp_path / session), "bucket/exp", destination_filesystem=bucket)

    log = ResultLog()
    log.setup()
    first = staged_in("first")
    for iteration in (1, 2, 3):
        _report(log, first, iteration, iteration)
    upload("first")
    log.setup()  # resumed from checkpoint 2, staging in a new folder
    second = staged_in("second")
    _report(log, second, 3, 3)
    _report(log, second, 4, 4)
    upload("second")
    with bucket.open_input_stream("bucket/exp/trial_t/" + RESULT_FILE) as stored:
        rows = [json.loads(line) for line in stored.read().decode().splitlines()]
    assert [(r["training_iteration"], r["epoch"]) for r in rows] == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert _rows(tmp_path / "second" / "trial_t" / REPLACED_FILE) == [(3, 3)]
