"""Trial tags that name the searched values only, as those of Ray's random search do.

Ray's wrapper of a Searcher (hyperopt's TPE) tags each trial with every value of its config: in
hypersweep's config, 1.3 KB of the same text in every trial, which Ray Tune copies into every
report, every checkpoint's result and each trial's state in every snapshot, and holds on the
driver for every trial until the sweep ends.
"""

from typing import Any

from ray.tune.search import SearchGenerator
from ray.tune.search.variant_generator import format_vars


class SearchedValuesTags(SearchGenerator):
    """Ray's SearchGenerator, whose trials are tagged `<n>_<name>=<value>,...` with only the
    values its searcher chose (each named by its last key, as Ray's random search names them)."""

    def create_trial_if_possible(self, experiment_spec: dict) -> Any:
        trial = super().create_trial_if_possible(experiment_spec)
        if trial is not None:
            # evaluated_params: the searcher's suggestion, flattened with "/" between keys.
            searched = {tuple(key.split("/")): value for key, value in trial.evaluated_params.items()}
            trial.set_experiment_tag(f"{self._counter}_{format_vars(searched)}")
        return trial
