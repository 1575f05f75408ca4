"""Which checkpoint a trial goes on from when the one Ray's snapshot names is gone."""

from pathlib import Path

from pyarrow.fs import LocalFileSystem

from trainables.recovery import furthest_replacement

LOCAL = LocalFileSystem()


def _folders(trial: Path, progress: dict[str, int | None]) -> dict[str, dict | None]:
    readable = {}
    for name, iteration in progress.items():
        (trial / name).mkdir(parents=True)
        readable[str(trial / name)] = None if iteration is None else {"iteration": iteration,
                                                                      "time_total": 1.0}
    return readable


def test_the_furthest_readable_checkpoint_after_the_missing_one_is_chosen(tmp_path):
    # 000004 is half-written; 000003 was renumbered over by a resumed run and holds less progress
    # than 000002; 000000 comes before the missing one.
    readable = _folders(tmp_path, {"checkpoint_000000": 9, "checkpoint_000002": 5,
                                   "checkpoint_000003": 4, "checkpoint_000004": None})
    found = furthest_replacement(LOCAL, str(tmp_path / "checkpoint_000001"), readable.get)
    assert found == (str(tmp_path / "checkpoint_000002"), {"iteration": 5, "time_total": 1.0})


def test_nothing_is_chosen_when_no_later_checkpoint_can_be_read(tmp_path):
    readable = _folders(tmp_path, {"checkpoint_000000": 1, "checkpoint_000002": None})
    assert furthest_replacement(LOCAL, str(tmp_path / "checkpoint_000001"), readable.get) is None
    elsewhere = tmp_path / "elsewhere" / "checkpoint_000001"
    assert furthest_replacement(LOCAL, str(elsewhere), readable.get) is None
    assert furthest_replacement(LOCAL, str(tmp_path / "not_a_checkpoint"), readable.get) is None


def test_a_checkpoint_beyond_the_recorded_results_counts_only_when_nothing_else_is_there(tmp_path):
    # On a bucket the results went up to iteration 5 when the driver died; checkpoint 000003
    # (iteration 6) was uploaded, but going on from it would leave report 6 missing.
    readable = _folders(tmp_path, {"checkpoint_000002": 5, "checkpoint_000003": 6})
    missing = str(tmp_path / "checkpoint_000001")
    assert furthest_replacement(LOCAL, missing, readable.get, recorded=5)[0] == str(
        tmp_path / "checkpoint_000002")
    assert furthest_replacement(LOCAL, missing, readable.get, recorded=6)[0] == str(
        tmp_path / "checkpoint_000003")
    assert furthest_replacement(LOCAL, missing, readable.get, recorded=4)[0] == str(
        tmp_path / "checkpoint_000002"), "the least far: the fewest reports missing"
