"""Actor reuse that never throws away a trial process Ray is already starting.

With `reuse_actors`, Ray Tune requests a new actor for every trial it stages and, when a running
trial's actor becomes free, hands that actor to the first staged trial, removing the actor that
trial had requested. If Ray has already granted that request, its process is being started, and
removing it wastes the start. When starting a process takes longer than a trial (short trials, a
busy node), this repeats without end: on a simulated 16-CPU cluster of 1-s trials only 8 actors
ever started, and Ray started and threw away about one process every ten trials (Ray's own PR
#42951 describes the race, and turned reuse off by default for it).

hypersweep hands a free actor to a staged trial still waiting for resources instead, so the
process being started lives on and runs its own trial. When no trial waits for resources (near
the end of a sweep), Ray's choice stands: the free actor runs the trial at once rather than idle
until the new process is up.
"""

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

from ray.tune.execution import tune_controller

from hypersweep.replaced import replaced

if TYPE_CHECKING:
    from ray.air.execution._internal.tracked_actor import TrackedActor
    from ray.tune.execution.placement_groups import PlacementGroupFactory
    from ray.tune.experiment import Trial

_RayTuneController = tune_controller.TuneController


class TuneController(_RayTuneController):
    """Ray Tune's controller, with free actors given first to trials still waiting for resources."""

    def _maybe_reuse_cached_actor(self, trial: "Trial") -> bool:
        """Ray's reuse, except that a trial whose own process is starting keeps it, and a trial
        still waiting for resources takes the free actor; False then (`trial` did not take it)."""
        own_actor = self._trial_to_actor.get(trial)
        if own_actor is not None and self._is_starting(own_actor):
            waiting = self._staged_trial_waiting_for_resources(trial.placement_group_factory)
            if waiting is not None:
                # `trial` keeps the process being started for it; `waiting` takes the free actor
                # and its request for resources is cancelled.
                super()._maybe_reuse_cached_actor(waiting)
                return False
        return super()._maybe_reuse_cached_actor(trial)

    def _is_starting(self, actor: "TrackedActor") -> bool:
        """Whether Ray granted the actor's resources and is starting its process."""
        # Ray's actor manager calls an actor "started" once it has its resources and was created.
        return self._actor_manager.is_actor_started(actor) and actor not in self._started_actors

    def _staged_trial_waiting_for_resources(self, resources: "PlacementGroupFactory") -> "Trial | None":
        """A staged trial of these resources whose actor is only requested, if there is one."""
        for trial in self._staged_trials:
            actor = self._trial_to_actor.get(trial)
            if (actor is not None and trial.placement_group_factory == resources
                    and trial not in self._resetting_trials
                    and not self._actor_manager.is_actor_started(actor)):
                return trial
        return None


@contextmanager
def starting_actors_kept() -> Iterator[bool]:
    """Run Ray Tune with this controller inside the block; yields whether it is in use.

    Ray's own controller runs where its Tune is built otherwise (other internals).
    """
    from ray.tune import tune

    usable = tune.TuneController is _RayTuneController and hasattr(
        _RayTuneController, "_maybe_reuse_cached_actor")
    with replaced(tune, "TuneController", TuneController) if usable else nullcontext():
        yield usable
