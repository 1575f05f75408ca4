"""Ray Tune, hyperopt and TensorBoard without the modules they import but a sweep never calls.

Start-up is CPU-bound, and imports are much of it. `import ray.tune` took about 1.2 s of CPU here,
and pandas and Ray Data were 0.5 s of it: Ray Tune imports them at the top of modules whose
functions use them (result tables, datasets handed to trials), and a sweep calls none of those
functions; the driver and every trial process import Ray Tune on the path to the first trial.
`import hyperopt` took 0.95 s, 0.83 s of it for `hyperopt.atpe` (adaptive TPE, which imports
scipy.stats), which Ray's TPE search never calls; the driver imports it before the first trial.
TensorBoard's file layer imports boto3 (0.1 s of every trial process's start) for S3 paths, and
a trial's TensorBoard run is written to a local directory (trainables/tensorboard.py).

After `defer_unused_imports()`, importing any of DEFERRED_MODULES binds a module whose code runs
the first time one of its attributes is read or one of its submodules imported, as with
`importlib.util.LazyLoader` (whose modules Python 3.11 runs at the second `import` statement,
which reads their `__spec__`, and which runs a submodule twice where it is imported first).
Three of Ray Tune's modules read such an attribute as they are imported, and are imported here
with Ray's own code compiled from its source with annotations postponed (PEP 563): the annotation
`ray.data.Dataset` (`out_of_band_serialize_dataset`), `pd.DataFrame` (`result_grid`), and
`experiment_analysis`, which also imports `from pandas import DataFrame` (_WithoutPandasLoader).
Ray Tune's experiment snapshots read `ray.data.Dataset` to register a pickling rule for it; while
a sweep runs (`snapshots_skip_unused_datasets`) they skip it until a Dataset can exist.
"""

import __future__

import builtins
import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections.abc import Iterator, Sequence
from typing import Any

from hypersweep.replaced import replaced

DEFERRED_MODULES = ("pandas", "ray.data", "hyperopt.atpe", "boto3")
# A Dataset object can exist only once the module that defines its class has been imported.
DATASET_MODULE = "ray.data.dataset"

_loading = threading.RLock()


class DeferredModule(types.ModuleType):
    """A module whose code has not run yet: reading any attribute it does not have yet runs it,
    and so does importing one of its submodules (_DeferringFinder).

    Its `__spec__`, `__path__`, `__name__` and `__file__` are set as for any module, so the import
    system can check it without running its code."""

    def __getattr__(self, name: str) -> Any:
        _run(self)
        return getattr(self, name)


def _run(module: types.ModuleType) -> None:
    """Run a DeferredModule's code, once, whichever thread asks first."""
    with _loading:
        if type(module) is DeferredModule:  # no other thread ran it meanwhile
            # A plain module from here, with its real loader, while its code runs.
            module.__class__ = types.ModuleType
            module.__spec__.loader = module.__loader__ = module.__spec__.loader_state
            module.__spec__.loader.exec_module(module)


class _AlreadyRun(importlib.abc.Loader):
    """Hands the import system a module that is already in sys.modules, without running it again,
    then gives its spec its own loader back."""

    def __init__(self, module: types.ModuleType):
        self.module, self.loader = module, module.__spec__.loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__.loader = self.loader


class _DeferringLoader(importlib.abc.Loader):
    """Gives the import system a DeferredModule; the module's real loader waits in its spec."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module, with the spec's attributes

    def exec_module(self, module: types.ModuleType) -> None:
        module.__class__ = DeferredModule


class _PostponedAnnotationsLoader(importlib.machinery.SourceFileLoader):
    """Ray's source file, compiled as if it began with `from __future__ import annotations`
    (from the source each time: its cached bytecode evaluates the annotations)."""

    def get_code(self, fullname: str) -> types.CodeType:
        return compile(self.get_data(self.path), self.path, "exec",
                       flags=__future__.annotations.compiler_flag, dont_inherit=True)


class _WithoutPandasLoader(_PostponedAnnotationsLoader):
    """`ray.tune.analysis.experiment_analysis`, whose `from pandas import DataFrame` would run
    pandas' code: imported as where pandas is not installed (Ray's own fallback), then given the
    deferred pandas as `pd` and, as `DataFrame`, a function that makes a pandas DataFrame (the
    module only calls it): its tables are made as before, pandas' code running at the first."""

    def exec_module(self, module: types.ModuleType) -> None:
        importing = True

        def import_refusing_pandas(name: str, *args: Any, **kwargs: Any) -> types.ModuleType:
            if name == "pandas" and importing:
                raise ImportError("pandas is imported when used (hypersweep/deferred_imports.py)")
            return builtins.__import__(name, *args, **kwargs)

        module.__builtins__ = {**vars(builtins), "__import__": import_refusing_pandas}
        try:
            super().exec_module(module)
        finally:
            importing = False
        module.pd = importlib.import_module("pandas")
        module.DataFrame = _new_data_frame


def _new_data_frame(*args: Any, **kwargs: Any) -> Any:
    """`pandas.DataFrame(*args, **kwargs)`."""
    import pandas

    return pandas.DataFrame(*args, **kwargs)


_LOADERS = {
    "ray.tune.impl.out_of_band_serialize_dataset": _PostponedAnnotationsLoader,
    "ray.tune.result_grid": _PostponedAnnotationsLoader,
    "ray.tune.analysis.experiment_analysis": _WithoutPandasLoader,
}


class _DeferringFinder(importlib.abc.MetaPathFinder):
    """Finds DEFERRED_MODULES and the Ray Tune modules that read them as they are imported
    through the other finders, then hands the import system a spec with a loader that defers
    them or keeps those modules from reading them."""

    def find_spec(self, name: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        package = sys.modules.get(name.rpartition(".")[0])
        if is_deferred(package):
            # Its submodules count on its code (pandas.core.frame on the options pandas/__init__
            # sets; unpickling a DataFrame imports it first), so that runs first. If it imported
            # `name`, the import system would run `name` again into a new module, losing the
            # submodules set on the first (as under importlib.util.LazyLoader): it gets that one.
            _run(package)
            if name in sys.modules:
                spec = sys.modules[name].__spec__
                spec.loader = _AlreadyRun(sys.modules[name])
                return spec
        if name not in DEFERRED_MODULES and name not in _LOADERS:
            return None
        spec = _found_by_the_others(self, name, path, target)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        if name in DEFERRED_MODULES:
            spec.loader_state = spec.loader
            spec.loader = _DeferringLoader()
        elif isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            spec.loader = _LOADERS[name](spec.loader.name, spec.loader.path)
        return spec


def _found_by_the_others(finder: object, name: str, path: Sequence[str] | None,
                         target: types.ModuleType | None) -> importlib.machinery.ModuleSpec | None:
    for other in sys.meta_path:
        if other is not finder and hasattr(other, "find_spec"):
            spec = other.find_spec(name, path, target)
            if spec is not None:
                return spec
    return None


def defer_unused_imports() -> None:
    """From now on in this process, run the code of DEFERRED_MODULES only when it is used. Call
    it before Ray Tune, hyperopt and TensorBoard are imported (the trainables package and the
    driver do); calling it again changes nothing."""
    if not any(isinstance(finder, _DeferringFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _DeferringFinder())


def is_deferred(module: types.ModuleType | None) -> bool:
    """Whether `module`'s code is still waiting to run."""
    return type(module) is DeferredModule


@contextlib.contextmanager
def snapshots_skip_unused_datasets() -> Iterator[None]:
    """Inside the block, Ray Tune's experiment snapshots register their pickling rule for Ray
    Data's Dataset only once a Dataset can exist: reading `ray.data.Dataset` to register it would
    run Ray Data's code (and pandas') at the first snapshot."""
    from ray.tune.execution import experiment_state

    serialize_dataset = experiment_state.out_of_band_serialize_dataset

    @contextlib.contextmanager
    def serialize_dataset_if_any() -> Iterator[None]:
        if DATASET_MODULE not in sys.modules:
            yield
        else:
            with serialize_dataset():
                yield

    with replaced(experiment_state, "out_of_band_serialize_dataset", serialize_dataset_if_any):
        yield
