"""Records when the parts of a sweep run, in every Python process of it (benchmarks/timeline.py).

Imported at start-up by the `sitecustomize` that timeline.py puts on the path of the command it
times, so that Ray's own processes and the trial processes it starts load it too. When the
environment names a record file, it notes the process's start, and wraps a few functions (as
their modules are imported) to append `pid, what, start, end` lines to that file.
"""

import functools
import importlib.abc
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

RECORD_ENV = "HYPERSWEEP_TIMELINE"


def record(what: str, start: float, end: float) -> None:
    """Append one interval (wall-clock seconds) to the record file; one write, so lines from
    concurrent processes never interleave."""
    line = f"{os.getpid()}\t{what}\t{start:.6f}\t{end:.6f}\n"
    with open(os.environ[RECORD_ENV], "a") as handle:
        handle.write(line)


def _timed(owner: Any, name: str, what: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.time()
        try:
            return original(*args, **kwargs)
        finally:
            record(what, start, time.time())

    setattr(owner, name, timed)


def _trainable(module: ModuleType) -> None:
    for name in ("setup", "step", "save_checkpoint", "reset_config"):
        _timed(module.TorchTrainable, name, f"trial {name}")


def _ray_trainable(module: ModuleType) -> None:
    for name in ("train", "save"):  # what Tune calls on a trial's actor
        _timed(module.Trainable, name, f"actor {name}")


PROBES: dict[str, Callable[[ModuleType], None]] = {
    "ray": lambda module: (_timed(module, "init", "ray.init"),
                           _timed(module, "shutdown", "ray.shutdown")),
    "ray.tune.tuner": lambda module: _timed(module.Tuner, "fit", "Tuner.fit"),
    "ray.tune.trainable.trainable": _ray_trainable,
    "hypersweep.sweep": lambda module: _timed(module, "_prepare", "driver imports and data"),
    "trainables.trainable": _trainable,
}


class _ProbeLoader(importlib.abc.Loader):
    """Runs a module as its own loader would, then wraps the functions PROBES names."""

    def __init__(self, loader: importlib.abc.Loader, probe: Callable[[ModuleType], None]):
        self.loader, self.probe = loader, probe

    def create_module(self, spec: Any) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        self.probe(module)


class _ProbeFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in PROBES:
            return None
        sys.meta_path.remove(self)  # find the module the usual way, once
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None:
            spec.loader = _ProbeLoader(spec.loader, PROBES[name])
        return spec


def _process_start() -> float:
    """When this process started (wall clock), from /proc: its start tick and the uptime."""
    with open("/proc/self/stat") as handle:
        ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as handle:
        uptime = float(handle.read().split()[0])
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def _command() -> str:
    with open("/proc/self/cmdline", "rb") as handle:
        return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()


def install() -> None:
    """Note this process and put the probes in place, if a record file is named."""
    if not os.environ.get(RECORD_ENV):
        return
    command = _command().replace("\t", " ")
    record(f"process {command}", _process_start(), time.time())
    sys.meta_path.insert(0, _ProbeFinder())
