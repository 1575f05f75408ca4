"""Trial ends saved as they come, and a resumed search told of the trials restored as ended.

The resume itself, with a real sweep whose last snapshot predates its trials' ends, is in
test_resume.py (test_trials_that_ended_after_the_last_snapshot_do_not_run_again).
"""

import json

from hypersweep.ended_trials import read_trial_ends
from hypersweep.restored_search import recount


def test_a_half_written_last_line_is_skipped_and_a_later_end_wins_for_the_trials_asked(tmp_path):
    path = tmp_path / "ended_trials.jsonl"
    lines = [json.dumps({"trial_id": "a", "state": "old", "metadata": "m1"}),
             json.dumps({"trial_id": "b", "state": "sb", "metadata": "mb"}),
             json.dumps({"trial_id": "a", "state": "new", "metadata": "m2"})]
    path.write_text("\n".join(lines) + "\n" + lines[1][:25])  # killed while writing
    assert read_trial_ends(str(path), {"a", "b", "c"}) == {"a": ["new", "m2"], "b": ["sb", "mb"]}
    assert read_trial_ends(str(path), {"b"}) == {"b": ["sb", "mb"]}, "only the trials asked for"
    assert read_trial_ends(str(tmp_path / "missing.jsonl"), {"a"}) == {}


def test_a_trial_restored_as_ended_frees_its_place_under_the_concurrency_limit():
    # The search's state comes from the snapshot, in which the trial still ran: with one trial at
    # a time, the limit would wait for it forever, and hyperopt would never learn its result.
    from ray import tune
    from ray.tune.experiment import Trial
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch
    from ray.tune.search.search_generator import SearchGenerator

    hyperopt = HyperOptSearch({"lr": tune.loguniform(1e-4, 1e-1)}, metric="val_acc", mode="max",
                              random_state_seed=0)
    search = SearchGenerator(ConcurrencyLimiter(hyperopt, max_concurrent=1))
    config = search.searcher.suggest("first")
    assert search.searcher.suggest("second") is None, "one trial at a time"
    search._counter = 1
    ended = Trial("trainable", config=config, trial_id="first", stub=True)
    ended.update_last_result({"val_acc": 0.75, "training_iteration": 3})
    ended.set_status(Trial.TERMINATED)

    assert recount(search, [ended]) == 0
    assert search.searcher.suggest("second") is not None
    losses = [trial["result"].get("loss") for trial in hyperopt._hpopt_trials.trials]
    assert losses[0] == -0.75, "hyperopt learnt the ended trial's result"
