"""A resumed sweep's search counts the trials its snapshot holds, not those it once suggested.

Ray Tune's snapshot of an experiment is several files: the trials' states (`experiment_state-*`),
the search algorithm's count of the trials it created (`search_gen_state-*`) and the searcher's
own state (hyperopt's, `searcher-state-*`). Tune writes them in a staging folder, then copies
them into the experiment, several files at once. A driver killed during that copy can leave the
newer search state beside the older trials' state. Resumed from those, the search counted trials
that no snapshot held as created: they were never run, the search was "finished" with fewer trials
than `num_samples`, and every resume ended again as interrupted. The other way round (newer
trials, older search) it would have created more trials than `num_samples`. On a directory the
files of one upload now appear together (`whole_files.uploads_appear_whole`); a bucket's objects
appear one by one.

After Ray's resume, hypersweep makes the search agree with the trials restored. TPE: the count is
set to them, and hyperopt is told that the trials it suggested and the snapshot lost ended in
error, so that it suggests others in their place and no concurrency limit waits for them. Random
search: as many new samples as it lost. Grid search cannot draw a lost point alone; its sweep
ends with them missing, as an interrupted one. Every search is told of the trials restored as
ended that it still holds as running (ended_trials.py restores trials that ended after the
snapshot): hyperopt learns from their results, and no concurrency limit waits for them.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypersweep.replaced import replaced


def live_suggestions(search: Any) -> set[str]:
    """The trial ids that `search` (or a searcher it wraps) holds as created and not ended."""
    live: set[str] = set()
    while search is not None:
        live |= set(getattr(search, "_live_trial_mapping", {}))  # hyperopt's
        live |= set(getattr(search, "live_trials", set()))  # ConcurrencyLimiter's
        live |= set(getattr(search, "_live_trials", set()))  # random and grid search's
        search = getattr(search, "searcher", None)
    return live


def tell_ended(search: Any, trials: list[Any]) -> None:
    """Tell `search` that those of `trials` that are restored as ended have ended, as Ray tells it
    when a trial ends: failed ones as errors, the others with their last result."""
    from ray.tune.experiment import Trial
    from ray.tune.utils import flatten_dict

    for trial in trials:
        if trial.status == Trial.TERMINATED:
            search.on_trial_complete(trial.trial_id, result=flatten_dict(trial.last_result))
        elif trial.status == Trial.ERROR:
            search.on_trial_complete(trial.trial_id, error=True)


def recount(search: Any, restored_trials: list[Any]) -> int:
    """Make a restored search algorithm agree with the trials restored, so that it creates new
    trials in place of lost ones and none beyond `num_samples`. Returns how many trials it had
    created beyond those restored (negative: fewer)."""
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.search_generator import SearchGenerator

    restored = len(restored_trials)
    live = live_suggestions(search)
    # Created after the last snapshot of the trials, which does not hold them at all.
    lost = live - {trial.trial_id for trial in restored_trials}
    tell_ended(search, [trial for trial in restored_trials if trial.trial_id in live])
    if isinstance(search, SearchGenerator):
        ahead = search._counter - restored  # Ray 2.x; tests check it is still there
        search._counter = restored
        for trial_id in sorted(lost):
            search.searcher.on_trial_complete(trial_id, error=True)
        return ahead
    if isinstance(search, BasicVariantGenerator) and _samples_one_trial_each(search):
        iterator = search._iterators[-1]  # Ray 2.x; tests check it is still there
        ahead = sum(it.num_samples - it.num_samples_left for it in search._iterators) - restored
        iterator.num_samples_left += ahead  # draws again as many samples as were lost
        iterator.counter = max(iterator.counter, restored)  # new trial ids, never a restored one's
        search._live_trials -= lost
        search._finished = False
        return ahead
    return 0


def _samples_one_trial_each(search: Any) -> bool:
    """Whether each sample of a random search is one trial: without a grid, whose one sample is
    every point of it (a lost grid point cannot be drawn again alone; such a sweep ends with it
    missing, as an interrupted one)."""
    from ray.tune.search.variant_generator import _count_spec_samples

    return all(_count_spec_samples(it.unresolved_spec, num_samples=1) == 1 for it in search._iterators)


@contextmanager
def search_counts_restored_trials() -> Iterator[None]:
    """Inside the block, Ray Tune's resume of an experiment ends with `recount`, and says how many
    trials the snapshot had lost."""
    from ray.tune.execution.tune_controller import TuneController

    resume = TuneController.resume  # Ray 2.x; tests check it is still there

    def resume_and_recount(controller: TuneController, resume_config: Any) -> None:
        resume(controller, resume_config)
        trials = controller.get_trials()
        restored, lost = len(trials), recount(controller._search_alg, trials)
        if lost > 0:
            print(f"the saved state holds {restored} trials where the search had created "
                  f"{restored + lost} (the driver stopped while saving it): {lost} new trials take "
                  f"the place of those lost", flush=True)

    with replaced(TuneController, "resume", resume_and_recount):
        yield
