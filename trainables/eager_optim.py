"""Optimizer steps that leave torch's compiler unloaded.

torch.optim imports `torch._dynamo`, the compiler, the first time an optimizer is used, though
eager training never calls it: `Optimizer.step` is wrapped to mark graph breaks for the
compiler, and the optimizers' other methods and Adam's and RMSprop's update functions are wrapped
to turn it off around them. The import (sympy with it) cost each trial process 1.1-1.4 CPU-s and
70 MiB before its first step. Here those wrappers are stepped around; the arithmetic is torch's
own, so training is bit-for-bit the same (tests/test_eager_optim.py checks both).

If a later torch wraps its optimizers differently, nothing breaks: the compiler is imported
again, which that test reports.
"""

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import Optimizer

# torch's `_disable_dynamo` imports the compiler to build a function's compiler-off version, unless
# the function already carries one under this name (torch caches it there on the first call).
_DISABLED_VERSION = "__dynamo_disable"
_COMPILER_OFF_METHODS = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")
_COMPILER_OFF_UPDATES = (("torch.optim.adam", "adam"), ("torch.optim.rmsprop", "rmsprop"))


def _innermost(function: Callable) -> Callable:
    """The function under all its `functools.wraps` wrappers."""
    while hasattr(function, "__wrapped__"):
        function = function.__wrapped__
    return function


def keep_compiler_unloaded() -> None:
    """Give the optimizers' compiler-off functions themselves as their compiler-off version.

    The compiler is off in eager training anyway, so each call runs just as before. Idempotent.
    """
    wrapped = [getattr(Optimizer, name) for name in _COMPILER_OFF_METHODS]
    wrapped += [getattr(importlib.import_module(module), name) for module, name in _COMPILER_OFF_UPDATES]
    for function in wrapped:
        raw = _innermost(function)
        setattr(raw, _DISABLED_VERSION, raw)


def eager_step(optimizer: Optimizer) -> Any:
    """`optimizer.step()` without its compiler and profiler wrappers, with gradients off as
    those wrappers turn them off. It skips step hooks: the learner registers none."""
    step = _innermost(type(optimizer).step)
    with torch.set_grad_enabled(optimizer.defaults.get("differentiable", False)):
        return step(optimizer)
