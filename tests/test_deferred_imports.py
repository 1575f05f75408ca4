"""Ray Tune imports pandas and Ray Data, hyperopt its adaptive TPE, TensorBoard boto3: their code
runs only when used (deferred_imports.py)."""

import contextlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import textwrap

from hypersweep import deferred_imports
from hypersweep.deferred_imports import snapshots_skip_unused_datasets
from tests.conftest import ROOT


def _fresh_process(code: str) -> dict:
    """What `code`, run in a new interpreter after defer_unused_imports(), prints as JSON."""
    prelude = "import json, sys\nfrom hypersweep.deferred_imports import defer_unused_imports, is_deferred\n"
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_ray_tune_and_its_tpe_search_import_without_running_the_deferred_modules():
    seen = _fresh_process("""
        defer_unused_imports()
        defer_unused_imports()  # a second call adds nothing
        import ray.tune
        from ray.tune.analysis import experiment_analysis
        from ray.tune.search.hyperopt import HyperOptSearch
        from tensorboard.compat.tensorflow_stub.io import gfile
        from hypersweep.deferred_imports import DEFERRED_MODULES
        print(json.dumps({"deferred": {name: is_deferred(sys.modules[name]) for name in DEFERRED_MODULES},
                          "finders": sum(type(f).__name__ == "_DeferringFinder" for f in sys.meta_path),
                          "s3": gfile.S3_ENABLED,
                          "unloaded": [name for name in ("pyarrow.compute", "scipy.stats", "s3transfer")
                                       if name not in sys.modules]}))
    """)
    assert seen == {"deferred": {"pandas": True, "ray.data": True, "hyperopt.atpe": True, "boto3": True},
                    "finders": 1, "s3": True, "unloaded": ["pyarrow.compute", "scipy.stats", "s3transfer"]}


def test_deferred_modules_run_when_used_and_ray_tunes_tables_are_made_as_before():
    seen = _fresh_process("""
        defer_unused_imports()
        import ray.tune
        from ray.tune.analysis import experiment_analysis
        from ray.tune.result_grid import ResultGrid
        table = experiment_analysis.pd.json_normalize([{"a": {"b": 1}}], sep="/")
        empty = experiment_analysis.DataFrame()
        import pandas
        import ray.data
        import hyperopt
        import boto3
        print(json.dumps({"columns": list(table.columns), "empty": type(empty) is pandas.DataFrame,
                          "frame": pandas.DataFrame({"x": [1, 2]}).shape,
                          "dataset": ray.data.Dataset.__name__,
                          "annotation": ResultGrid.get_dataframe.__annotations__["return"],
                          "atpe": hyperopt.atpe.suggest.__name__,
                          "client": boto3.client.__name__,
                          "deferred": [is_deferred(m) for m in (pandas, ray.data, hyperopt.atpe, boto3)]}))
    """)
    assert seen == {"columns": ["a/b"], "empty": True, "frame": [2, 1], "dataset": "Dataset",
                    "annotation": "pd.DataFrame", "atpe": "suggest", "client": "client",
                    "deferred": [False, False, False, False]}


def test_the_ray_tune_modules_it_imports_its_own_way_are_still_in_the_installed_ray():
    for name, loader in deferred_imports._LOADERS.items():
        spec = importlib.util.find_spec(name)
        assert isinstance(spec.loader, importlib.machinery.SourceFileLoader), name
        assert issubclass(loader, importlib.machinery.SourceFileLoader)
    source = inspect.getsource(importlib.import_module("ray.tune.analysis.experiment_analysis"))
    # Ray's fallback for a missing pandas, which _WithoutPandasLoader takes.
    assert "    from pandas import DataFrame\nexcept ImportError:" in source


def test_snapshots_register_the_dataset_rule_only_once_a_dataset_can_exist(monkeypatch):
    from ray.tune.execution import experiment_state

    registered = []

    @contextlib.contextmanager
    def rays_rule():  # stands in for Ray's, which needs a connected Ray
        registered.append("Dataset")
        yield

    monkeypatch.setattr(experiment_state, "out_of_band_serialize_dataset", rays_rule)
    monkeypatch.delitem(sys.modules, deferred_imports.DATASET_MODULE, raising=False)
    with snapshots_skip_unused_datasets():
        with experiment_state.out_of_band_serialize_dataset():
            pass
        assert registered == []
        monkeypatch.setitem(sys.modules, deferred_imports.DATASET_MODULE, object())
        with experiment_state.out_of_band_serialize_dataset():
            pass
        assert registered == ["Dataset"]
    assert experiment_state.out_of_band_serialize_dataset is rays_rule


def test_a_submodule_imported_first_runs_its_deferred_package_once(tmp_path):
    # As pandas: its __init__ sets its options, and pandas.core.frame reads them as it is imported,
    # which unpickling a DataFrame (how Ray client mode hands back a sweep's results) does first.
    package = tmp_path / "package"
    (package / "sub").mkdir(parents=True)
    (package / "options.py").write_text("state = {'ready': False}\n")
    (package / "__init__.py").write_text("from package.options import state\nstate['ready'] = True\n"
                                         "import package.sub.leaf\n")
    (package / "sub" / "__init__.py").write_text("import builtins\n"
                                                "builtins.runs = getattr(builtins, 'runs', 0) + 1\n")
    (package / "sub" / "leaf.py").write_text("from package.options import state\nREADY = state['ready']\n")
    seen = _fresh_process(f"""
        import builtins
        sys.path.insert(0, {str(tmp_path)!r})
        from hypersweep import deferred_imports
        deferred_imports.DEFERRED_MODULES += ("package",)
        defer_unused_imports()
        import package
        deferred = is_deferred(package)
        import package.sub.leaf
        print(json.dumps({{"deferred": deferred, "after": is_deferred(package),
                          "options set first": package.sub.leaf.READY, "sub ran": builtins.runs,
                          "one sub": sys.modules["package.sub"] is package.sub}}))
    """)
    assert seen == {"deferred": True, "after": False, "options set first": True, "sub ran": 1,
                    "one sub": True}
