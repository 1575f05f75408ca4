"""The progress lines of a resumed sweep: the best and the pace count what ended before it."""

import re
from types import SimpleNamespace

from hypersweep.progress import TrialLines

CONFIG = {"metric": "val_acc", "mode": "max", "train": {"max_epochs": 4}}


def _trial(trial_id: str, status: str, **result: object) -> SimpleNamespace:
    """A trial as Ray's callbacks see it, with only what the progress lines read."""
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result, config={})


def test_a_resumed_run_shows_the_best_from_before_it_and_paces_by_its_own_trials(capsys):
    restored = [_trial("a", "TERMINATED", val_acc=0.95, epoch=4),
                _trial("b", "TERMINATED", val_acc=0.99, epoch=2, diverged=True),
                _trial("c", "ERROR", val_acc=0.98, epoch=1),
                _trial("d", "TERMINATED", val_acc=0.90, epoch=2)]
    resumed = _trial("e", "PENDING")
    lines = TrialLines(CONFIG, total=10)
    lines.setup()
    lines.on_step_begin(iteration=1, trials=[*restored, resumed])
    lines.started -= 12  # the run's first trial ends 12 s in
    resumed.status, resumed.last_result = "TERMINATED", {"val_acc": 0.93, "epoch": 2}
    lines.on_trial_complete(iteration=2, trials=[*restored, resumed], trial=resumed)

    line = capsys.readouterr().out.strip()
    assert line.startswith("[ 5/10] e stopped@2"), "the count as wide as the total, for the columns"
    assert "| best 0.9500 |" in line, "the best before the resume; a diverged or failed trial never counts"
    # 12 s for the one trial this run ended, 5 to go: a minute, not the 12 s that pacing by the
    # 5 ended trials would give.
    assert re.search(r"\| 1[23]s, ~6[0-5]s left$", line), line


def test_the_columns_line_up_as_the_count_gains_a_digit(capsys):
    trials = [_trial(f"t{number:02}", "TERMINATED", val_acc=0.5, epoch=4) for number in range(12)]
    lines = TrialLines(CONFIG, total=12)
    lines.setup()
    for ended, trial in enumerate(trials, start=1):
        lines.on_trial_complete(iteration=ended, trials=trials[:ended], trial=trial)

    progress = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert len(progress) == 12
    assert len({line.index(" | ") for line in progress}) == 1, progress
