"""Trial processes on the embedded Ray start as plain Ray workers, without a runtime environment.

Ray Tune gives every trial actor a runtime environment of environment variables: PL_DISABLE_FORK=1
(for PyTorch Lightning) and those of the driver's that Ray Train and S3 read. With any runtime
environment, Ray starts the worker through a shim, `setup_worker.py`: a Python process that
imports Ray (0.5 CPU-s here), then replaces itself with the worker, which imports Ray again. A
trial process started 0.3 s later for it on 2 cores.

The embedded Ray's processes inherit the environment the driver had when `ray.init` started them
(`embedded_ray_environment`). Where that already holds every variable Tune would set, at Tune's
value, the runtime environment changes nothing, and the trial actors go without it
(`trials_without_redundant_environment`). On a cluster, whose workers inherit their node's
environment, Tune's stays.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

from hypersweep.replaced import replaced

# What Ray Tune sets in every trial actor's environment (its class_cache.DEFAULT_ENV_VARS; a test
# checks they agree). The embedded Ray's processes get them from the driver instead.
TUNE_TRIAL_VARIABLES = {"PL_DISABLE_FORK": "1"}

_inherited: dict[str, str] | None = None  # what the embedded Ray's processes inherited, while it runs


@contextmanager
def embedded_ray_environment() -> Iterator[None]:
    """Around the embedded Ray's whole life, from before `ray.init(address="local")` to its
    shutdown: its processes inherit TUNE_TRIAL_VARIABLES (a value the user set stays), and the
    environment they inherit is noted for `trials_without_redundant_environment`."""
    global _inherited
    for name, value in TUNE_TRIAL_VARIABLES.items():
        os.environ.setdefault(name, value)
    _inherited = dict(os.environ)
    try:
        yield
    finally:
        _inherited = None


def repeats_inherited(runtime_env: Mapping[str, Any] | None) -> bool:
    """Whether a runtime environment only sets variables the embedded Ray's processes already
    have, at the same values: False when no embedded Ray is running."""
    if _inherited is None:
        return False
    runtime_env = runtime_env or {}
    variables = runtime_env.get("env_vars") or {}
    return set(runtime_env) <= {"env_vars"} and all(
        _inherited.get(name) == value for name, value in variables.items())


def trials_without_redundant_environment() -> Any:
    """A context manager: inside it, Ray Tune registers a trial actor class without the runtime
    environment it would give it, when that environment `repeats_inherited`."""
    from ray.tune.execution import class_cache, tune_controller

    if _inherited is None or "_ActorClassCache" not in vars(tune_controller):
        return nullcontext()

    class ActorClassCache(class_cache._ActorClassCache):
        """Tune's cache of trial actor classes, registered without a redundant runtime environment."""

        def get(self, trainable_cls: type) -> Any:
            """Tune's actor class for `trainable_cls`; one without a runtime environment when
            Tune's only repeats what the trial processes inherit."""
            import ray

            if trainable_cls not in self._cache:
                options = getattr(super().get(trainable_cls), "_default_options", None)
                if options is not None and repeats_inherited(options.get("runtime_env")):
                    self._cache[trainable_cls] = ray.remote(trainable_cls)
            return self._cache[trainable_cls]

    return replaced(tune_controller, "_ActorClassCache", ActorClassCache)
