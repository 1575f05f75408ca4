"""Trial processes start as plain Ray workers, without the runtime environment Ray Tune gives them.

Ray Tune gives every trial actor a runtime environment of environment variables: PL_DISABLE_FORK=1
(for PyTorch Lightning) and those of the driver's that Ray Train and S3 read. With any runtime
environment, Ray starts the worker through a shim, `setup_worker.py`: a Python process that
imports Ray (0.5 CPU-s here), then replaces itself with the worker, which imports Ray again. A
trial process started 0.3 s later for it on 2 cores.

Tune's variables reach the trial processes another way wherever they can
(`trials_without_redundant_environment`):
- the embedded Ray's processes inherit the environment the driver had when `ray.init` started
  them (`embedded_ray_environment`), so a variable there at Tune's value needs nothing more;
- Lightning reads PL_DISABLE_FORK only when it runs (to count GPUs and start processes), which a
  trial does after its actor is made: a trial process sets it itself as its actor is made, on a
  cluster too;
- the others (S3 credentials, Ray Train's settings) may be read as the actor's arguments arrive
  (the experiment's storage), before any of its code runs: where a trial process would not
  inherit them (a cluster's workers inherit their node's environment), Tune's runtime
  environment stays.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

from hypersweep.replaced import replaced

# What Ray Tune sets in every trial actor's environment (its class_cache.DEFAULT_ENV_VARS; a test
# checks they agree): the variables a trial process can set itself as its actor is made.
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


def variables_to_set(runtime_env: Mapping[str, Any] | None) -> dict[str, str] | None:
    """What a trial process must set itself for Tune's `runtime_env` to be redundant: its
    variables that the process does not inherit at the same value. None where the runtime
    environment must stay (it holds more than variables, or a variable that must be there from
    the process's start)."""
    runtime_env = runtime_env or {}
    if not set(runtime_env) <= {"env_vars"}:
        return None
    inherited = _inherited or {}
    missing = {name: value for name, value in (runtime_env.get("env_vars") or {}).items()
               if inherited.get(name) != value}
    return missing if set(missing) <= set(TUNE_TRIAL_VARIABLES) else None


def setting_variables(trainable_cls: type, variables: Mapping[str, str]) -> type:
    """`trainable_cls`, or a subclass of the same name whose instances first set `variables` in
    their process's environment."""
    if not variables:
        return trainable_cls
    variables = dict(variables)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        os.environ.update(variables)
        trainable_cls.__init__(self, *args, **kwargs)

    # Defined here, it is pickled by value for the trial processes, `variables` with it.
    return type(trainable_cls.__name__, (trainable_cls,), {"__init__": __init__})


def trials_without_redundant_environment() -> Any:
    """A context manager: inside it, Ray Tune registers a trial actor class without the runtime
    environment it would give it wherever the trial processes get its variables another way
    (`variables_to_set`)."""
    from ray.tune.execution import class_cache, tune_controller

    if "_ActorClassCache" not in vars(tune_controller):
        return nullcontext()

    class ActorClassCache(class_cache._ActorClassCache):
        """Tune's cache of trial actor classes, registered without a redundant runtime environment."""

        def get(self, trainable_cls: type) -> Any:
            """Tune's actor class for `trainable_cls`; one without a runtime environment where
            Tune's is redundant."""
            import ray

            if trainable_cls not in self._cache:
                options = getattr(super().get(trainable_cls), "_default_options", None)
                variables = None if options is None else variables_to_set(options.get("runtime_env"))
                if variables is not None:
                    self._cache[trainable_cls] = ray.remote(setting_variables(trainable_cls, variables))
            return self._cache[trainable_cls]

    return replaced(tune_controller, "_ActorClassCache", ActorClassCache)
