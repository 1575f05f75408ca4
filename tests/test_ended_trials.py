"""Trial ends saved as they come, and a resumed search told of the trials restored as ended.

The resume itself, with a real sweep whose last snapshot predates its trials' ends, is in
test_resume.py (test_trials_that_ended_after_the_last_snapshot_do_not_run_again).
"""

import json
import math

import pytest

from hypersweep.ended_trials import read_trial_ends
from hypersweep.restored_search import creation_number, recount


def test_a_half_written_last_line_is_skipped_and_a_later_end_wins(tmp_path):
    path = tmp_path / "ended_trials.jsonl"
    lines = [json.dumps({"trial_id": "a", "state": "old", "metadata": "m1"}),
             json.dumps({"trial_id": "b", "state": "sb", "metadata": "mb"}),
             json.dumps({"trial_id": "a", "state": "new", "metadata": "m2"})]
    path.write_text("\n".join(lines) + "\n" + lines[1][:25])  # killed while writing
    assert read_trial_ends(str(path)) == {"a": ["new", "m2"], "b": ["sb", "mb"]}
    assert read_trial_ends(str(tmp_path / "missing.jsonl")) == {}


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


@pytest.mark.parametrize(("tag", "number"), [("3_lr=0.01", 3), ("12", 12), ("0@perturbed[lr=0.02]", 0),
                                           ("7_lr=0.01@perturbed[lr=0.02]", 7), ("custom", None)])
def test_a_trials_creation_number_is_read_from_the_start_of_its_tag(tag, number):
    from ray.tune.experiment import Trial

    assert creation_number(Trial("trainable", experiment_tag=tag, stub=True)) == number


@pytest.fixture(scope="module")
def trainable():
    from ray.tune.registry import register_trainable

    register_trainable("trainable", lambda config: None)
    return "trainable"


def _experiment(trainable, config):
    from ray.tune.experiment import Experiment

    return Experiment("sweep", trainable, config=config, num_samples=4)


def _tpe(trainable):
    from hyperopt import hp
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    from schedulers.searched_tags import SearchedValuesTags

    hyperopt = HyperOptSearch({"lr": hp.loguniform("lr", math.log(1e-4), math.log(1e-1))}, metric="val_acc",
                              mode="max", random_state_seed=0, n_initial_points=8)
    search = SearchedValuesTags(ConcurrencyLimiter(hyperopt, max_concurrent=2))
    search.add_configurations([_experiment(trainable, {})])
    return search


def _random(trainable):
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    search = BasicVariantGenerator(points_to_evaluate=[{"lr": 0.01}], random_state=0)
    search.add_configurations([_experiment(trainable, {"lr": tune.loguniform(1e-4, 1e-1)})])
    return search


def _ended(trial, val_acc):
    from ray.tune.experiment import Trial

    trial.update_last_result({"val_acc": val_acc, "training_iteration": 3})
    trial.set_status(Trial.TERMINATED)
    return trial


@pytest.mark.parametrize("make_search", [_tpe, _random])
def test_a_trial_created_and_ended_after_the_search_was_saved_is_not_drawn_again(tmp_path, trainable,
                                                                              make_search):
    # The sweep: trials 1 and 2 run; the search is saved; 1 ends, 3 starts and ends, 4 starts;
    # the driver is killed. The resume restores 1 and 3 as ended (ended_trials.jsonl), 2 from the
    # snapshot, and knows nothing of 4. The search, restored from its save, would have drawn 3's
    # values again for its next trial.
    search = make_search(trainable)
    first, second = search.next_trial(), search.next_trial()
    search.save_to_dir(str(tmp_path), session_str="saved")
    search.on_trial_complete(first.trial_id, result={"val_acc": 0.5})
    third = search.next_trial()
    search.on_trial_complete(third.trial_id, result={"val_acc": 0.75})
    fourth = search.next_trial()
    assert len({str(trial.config) for trial in (first, second, third, fourth)}) == 4

    restored = make_search(trainable)
    restored.restore_from_dir(str(tmp_path))
    recount(restored, [_ended(first, 0.5), second, _ended(third, 0.75)])
    new = restored.next_trial()
    assert new.config == fourth.config, "the next trial drew what the lost one had drawn"
    assert restored.next_trial() is None, "4 trials in all: 1, 2, 3 restored and the new one"
    if make_search is _tpe:
        hyperopt = restored.searcher.searcher
        losses = {trial["tid"]: trial["result"].get("loss") for trial in hyperopt._hpopt_trials.trials}
        assert sorted(loss for loss in losses.values() if loss is not None) == [-0.75, -0.5], \
            "hyperopt learnt both ended trials' results"
