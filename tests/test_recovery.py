"""Which checkpoint a trial goes on from when the one Ray's snapshot names is gone."""

from pathlib import Path

from trainables.recovery import furthest_replacement


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
    found = furthest_replacement(str(tmp_path / "checkpoint_000001"), readable.get)
    assert found == (str(tmp_path / "checkpoint_000002"), {"iteration": 5, "time_total": 1.0})


def test_nothing_is_chosen_when_no_later_checkpoint_can_be_read(tmp_path):
    readable = _folders(tmp_path, {"checkpoint_000000": 1, "checkpoint_000002": None})
    assert furthest_replacement(str(tmp_path / "checkpoint_000001"), readable.get) is None
    assert furthest_replacement(str(tmp_path / "elsewhere" / "checkpoint_000001"), readable.get) is None
    assert furthest_replacement(str(tmp_path / "not_a_checkpoint"), readable.get) is None
