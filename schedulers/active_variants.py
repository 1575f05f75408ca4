"""Random and grid search with conditional dimensions: Ray's variant generator, then the defaults.

Random search draws every dimension independently, so drawing a conditional one only where its
condition holds is the same as drawing it always and putting the default back elsewhere, which
`ActiveOnlyVariants` does before the trial is created: the trial's config is what it trains with.
Kept apart from conditional.py (TPE), so that a random or grid sweep never imports hyperopt
(0.7 s of the driver's start-up).
"""

from typing import Any

from ray.tune.search.basic_variant import BasicVariantGenerator

from schedulers.space import with_inactive_defaults


class ActiveOnlyVariants(BasicVariantGenerator):
    """Ray's random (and grid) search, with inactive conditional values back at their defaults."""

    def next_trial(self) -> Any:
        trial = super().next_trial()
        if trial is not None:
            trial.set_config(with_inactive_defaults(trial.config))
        return trial
