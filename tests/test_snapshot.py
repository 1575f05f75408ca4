"""Reading Ray's experiment snapshot one trial at a time: the same trials, in bounded memory."""

import json
import tracemalloc
from pathlib import Path

import pytest

from hypersweep.snapshot import snapshot_trials


def _trial(number: int, padding: int = 200) -> tuple[dict, dict]:
    """A trial's state and metadata with what JSON escapes (quotes, backslashes, newlines, é),
    padded with `padding` characters."""
    state = {"trial_id": f"t{number:05d}", "status": "TERMINATED",
             "config": {"optim": {"lr": 10.0 ** -number, "name": 'a "quoted" \\ name\n é'}},
             "note": "x" * padding}
    metadata = {"last_result": {"val_acc": number / 1000, "epoch": number % 7}, "num_failures": 0}
    return state, metadata


def _write_snapshot(path: Path, trials: list[tuple[dict, dict]], trials_first: bool = True) -> None:
    """A snapshot as Ray writes it: each trial's state and metadata as indented JSON strings."""
    trial_data = [(json.dumps(state, indent=2), json.dumps(metadata, indent=2))
                  for state, metadata in trials]
    rest = {"runner_data": {"_iteration": 3}, "stats": {"start_time": 1.5}}
    snapshot = {"trial_data": trial_data, **rest} if trials_first else {**rest, "trial_data": trial_data}
    path.write_text(json.dumps(snapshot))


@pytest.mark.parametrize("chunk_chars", [32, 333, 4096, 1 << 20])
def test_every_trial_is_read_whatever_the_chunk(tmp_path, chunk_chars):
    trials = [_trial(number) for number in range(40)]
    _write_snapshot(tmp_path / "state.json", trials)
    assert list(snapshot_trials(str(tmp_path / "state.json"), chunk_chars)) == trials


def test_a_snapshot_laid_out_otherwise_is_still_read(tmp_path):
    trials = [_trial(number) for number in range(5)]
    _write_snapshot(tmp_path / "state.json", trials, trials_first=False)
    assert list(snapshot_trials(str(tmp_path / "state.json"), chunk_chars=64)) == trials


def test_an_empty_experiment_has_no_trials(tmp_path):
    _write_snapshot(tmp_path / "state.json", [])
    assert list(snapshot_trials(str(tmp_path / "state.json"))) == []


def test_a_cut_off_snapshot_is_an_error(tmp_path):
    _write_snapshot(tmp_path / "state.json", [_trial(number) for number in range(5)])
    text = (tmp_path / "state.json").read_text()
    (tmp_path / "state.json").write_text(text[: len(text) // 2])
    with pytest.raises(json.JSONDecodeError):
        list(snapshot_trials(str(tmp_path / "state.json"), chunk_chars=256))


def _peak_reading(path: Path, chunk_chars: int) -> tuple[int, int]:
    """How many trials reading the snapshot at `path` gives, and the most memory it held."""
    tracemalloc.start()
    try:
        read = sum(1 for _ in snapshot_trials(str(path), chunk_chars))
        return read, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_however_many_trials(tmp_path):
    chunk = 256 * 1024
    peaks = {}
    for count in (100, 800):
        path = tmp_path / f"state-{count}.json"
        _write_snapshot(path, [_trial(number, padding=20_000) for number in range(count)])  # 20 KB
        read, peaks[count] = _peak_reading(path, chunk)
        assert read == count
    assert path.stat().st_size > 15 * 2**20
    # A few chunks of text and one trial's strings and dicts, however many trials; decoding the
    # file whole held more than twice its size.
    assert peaks[800] < 1.2 * peaks[100]
    assert peaks[800] < 12 * chunk
