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

A trial created after the search's snapshot is unknown to the restored search, whose random state
would draw its values again for the next new trial. So the suggestions made after the snapshot
are made again, in their order, up to the last trial restored (`replay_suggestions` for TPE,
`replay_variants` for random and grid search): the restored trials' suggestions are theirs again
where the values come out the same (always for random search, and while TPE draws at random), and
the new trials draw what the lost ones would have drawn next.
"""

import re
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


def creation_number(trial: Any) -> int | None:
    """The number the search gave `trial` as it created it, or None for a tag without one: Ray's
    trial tags start with it (`3_lr=0.01`, `3`, and after a PBT exploit `3_lr=0.01@perturbed[...]`)."""
    number = re.match(r"\d+", trial.experiment_tag)
    return int(number.group()) if number else None


def innermost_searcher(search: Any) -> Any:
    """The searcher that `search` wraps (hyperopt's), below Ray's wrappers such as the
    ConcurrencyLimiter."""
    searcher = search.searcher
    while getattr(searcher, "searcher", None) is not None:
        searcher = searcher.searcher
    return searcher


def replay_suggestions(search: Any, restored_trials: list[Any]) -> int:
    """Have the searcher of a restored SearchGenerator (TPE) suggest again, in their order, the
    trials it suggested after its snapshot, up to the last of `restored_trials`; returns how many.

    Each replayed suggestion uses the same draw of the searcher's random state as the original, so
    that no new trial draws a restored one's values again. A restored trial that ended, and whose
    values come out the same, is learnt from; any other suggestion is closed as an error, which
    TPE learns nothing from: a trial that is gone, one that still runs (from a snapshot of the
    trials newer than the search's), or one whose values TPE would now draw differently.
    """
    from ray.tune.experiment import Trial
    from ray.tune.utils import flatten_dict

    made = search._counter  # Ray 2.x; tests check it is still there
    later = {number: trial for trial in restored_trials if (number := creation_number(trial) or 0) > made}
    if not later:
        return 0
    searcher = innermost_searcher(search)
    last = max(later)
    for number in range(made + 1, last + 1):
        trial = later.get(number)
        trial_id = trial.trial_id if trial is not None else f"replayed_{number}"
        suggested = searcher.suggest(trial_id)
        if suggested is None:
            continue
        if (trial is not None and trial.status == Trial.TERMINATED
                and flatten_dict(suggested) == trial.evaluated_params):
            searcher.on_trial_complete(trial_id, result=flatten_dict(trial.last_result))
        else:
            searcher.on_trial_complete(trial_id, error=True)
    return last - made


def replay_variants(search: Any, restored_trials: list[Any]) -> None:
    """Have a restored random or grid search (a BasicVariantGenerator) create again, and drop, the
    trials it created after its snapshot, up to the last of `restored_trials`.

    It draws exactly what it drew then (trial ids and values alike), so that its next new trial
    is the one it would have created next; the restored trials stay as restored.
    """
    iterator = search._iterators[-1]  # Ray 2.x; tests check it is still there
    later = [number for number in map(creation_number, restored_trials)
             if number is not None and number >= iterator.counter]  # numbered from 0
    while later and iterator.counter <= max(later):
        try:
            next(iterator)
        except StopIteration:
            break


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
        ahead = search._counter + replay_suggestions(search, restored_trials) - restored
        search._counter = restored
        for trial_id in sorted(lost):
            search.searcher.on_trial_complete(trial_id, error=True)
        return ahead
    if not isinstance(search, BasicVariantGenerator):
        return 0
    replay_variants(search, restored_trials)
    if not _samples_one_trial_each(search):
        return 0
    iterator = search._iterators[-1]  # Ray 2.x; tests check it is still there
    ahead = sum(it.num_samples - it.num_samples_left for it in search._iterators) - restored
    iterator.num_samples_left += ahead  # draws again as many samples as were lost
    iterator.counter = max(iterator.counter, restored)  # new trial ids, never a restored one's
    search._live_trials -= lost
    search._finished = False
    return ahead


def grow(search: Any, planned: int) -> None:
    """Let a restored search create trials up to `planned`, where the sweep's num_samples has
    grown since its state was saved (resume.py allows that for TPE and random search). TPE goes
    on from everything it has learnt; random search draws on from its saved random state, so no
    new trial repeats a restored one's values."""
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.search_generator import SearchGenerator

    more = planned - search.total_samples
    if more <= 0:
        return
    if isinstance(search, SearchGenerator):
        search._total_samples = planned  # Ray 2.x; tests check it is still there
    elif isinstance(search, BasicVariantGenerator):
        from ray.tune.search.variant_generator import _count_spec_samples

        iterator = search._iterators[-1]
        # A sample of a random search with grid dimensions runs every point of the grid.
        samples = more // _count_spec_samples(iterator.unresolved_spec, num_samples=1)
        iterator.num_samples += samples
        iterator.num_samples_left += samples
        search._total_samples = planned
        search._finished = False


def _samples_one_trial_each(search: Any) -> bool:
    """Whether each sample of a random search is one trial: without a grid, whose one sample is
    every point of it (a lost grid point cannot be drawn again alone; such a sweep ends with it
    missing, as an interrupted one)."""
    from ray.tune.search.variant_generator import _count_spec_samples

    return all(_count_spec_samples(it.unresolved_spec, num_samples=1) == 1 for it in search._iterators)


@contextmanager
def search_counts_restored_trials(planned: int) -> Iterator[None]:
    """Inside the block, Ray Tune's resume of an experiment ends with `recount`, and says how many
    trials the snapshot had lost; then the search may create up to `planned` trials (`grow`)."""
    from ray.tune.execution.tune_controller import TuneController

    resume = TuneController.resume  # Ray 2.x; tests check it is still there

    def resume_and_recount(controller: TuneController, resume_config: Any) -> None:
        resume(controller, resume_config)
        trials = controller.get_trials()
        restored, lost = len(trials), recount(controller._search_alg, trials)
        if lost > 0:
            print(f"the saved state holds {restored} trials where the search had created "
                  f"{restored + lost}: {lost} new trials take the place of those lost", flush=True)
        grow(controller._search_alg, planned)

    with replaced(TuneController, "resume", resume_and_recount):
        yield
