"""The default sweep against its peers: hypersweep, a plain Ray Tune script written the way Ray's
docs show (function trainable, a fresh process per trial), and Optuna (TPE + Hyperband pruner,
2 workers in one process). Each runs as a command of its own, timed from start to exit. Same
data split (the seed's: hypersweep splits the data with its `seed`), model, 7-dimensional space,
seed and epoch budget (rungs at 2, 6 and 18 epochs, at most 20: hypersweep's default sweep has
Hyperband's three brackets and their shares of the trials, as Optuna's pruner has; the docs
script uses Ray's ASHA as it comes, with one). Tools alternate within a seed.

    pip install -e '.[bench]'     # Optuna
    python benchmarks/peers.py --trials 32 --seeds 0 1 2 [--tools hypersweep optuna]

Prints per tool: wall time (median), best validation accuracy (mean; a trial counts with its
last report), epochs trained (mean), utilization (training time summed over trials / (wall time
x CPUs)) and ratios to hypersweep. Then each peer against hypersweep seed by seed: the mean
difference in best val_acc and the geometric mean of the time ratios, each with its 95%
interval over the seeds (Student's t), which says whether a difference is more than the noise.
"""

import argparse
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CPUS = os.cpu_count() or 2
MAX_EPOCHS, GRACE, FACTOR = 20, 2, 3
# Ray's workers import the trainable by module path: they need the repository on their path.
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SPACE = {  # the default sweep's space (conf/config.yaml + conf/model/mlp.yaml)
    "lr": ("loguniform", 1e-4, 1e-1), "optimizer": ("choice", ["adam", "sgd", "rmsprop"]),
    "batch_size": ("choice", [16, 32, 64, 128]), "hidden_layers": ("choice", [1, 2, 3, 4]),
    "hidden_units": ("choice", [64, 128, 256, 512]), "dropout": ("choice", [0.0, 0.2, 0.3, 0.5]),
    "activation": ("choice", ["relu", "gelu", "tanh"]),
}


def train_epochs(params: dict, data, report) -> float:
    """Train the MLP of `params`, calling report(epoch, val_acc) after each epoch (it may stop
    the trial by returning True); returns the seconds spent training."""
    import torch
    import torch.nn.functional as F

    from trainables.models import MLP
    from trainables.optim import build_optimizer

    started = time.perf_counter()
    model = MLP(data.input_shape, data.num_classes, params["hidden_layers"], params["hidden_units"],
                params["dropout"], params["activation"])
    optimizer = build_optimizer({"name": params["optimizer"], "lr": params["lr"]}, model.parameters())
    x, y = torch.tensor(data.x_train), torch.tensor(data.y_train)
    xv, yv = torch.tensor(data.x_val), torch.tensor(data.y_val)
    for epoch in range(1, MAX_EPOCHS + 1):
        model.train()
        order = torch.randperm(len(y))
        for start in range(0, len(y), params["batch_size"]):
            batch = order[start:start + params["batch_size"]]
            optimizer.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(xv).argmax(1) == yv).float().mean().item()
        if report(epoch, accuracy if accuracy == accuracy else 0.0):
            break
    return time.perf_counter() - started


def run_hypersweep(trials: int, seed: int, storage: str, overrides: Sequence[str] = ()) -> dict:
    """The default sweep (with Hydra `overrides`) as a command: its wall time, best val_acc,
    training time summed over trials and epochs."""
    # Imported here: Optuna's timed process imports this module, and must not pay for it.
    from hypersweep.records import trial_rows

    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "launch.py"), f"num_samples={trials}", f"seed={seed}",
                    "name=peers", f"storage_path={storage}", "tensorboard=false", *overrides],
                   env=ENV, check=True, capture_output=True)
    wall = time.perf_counter() - started
    summary = json.loads((Path(storage) / "peers" / "summary.json").read_text())
    busy = 0.0
    for trial in summary["trials"]:
        rows = trial_rows(trial["path"])
        busy += rows[-1]["time_total_s"] if rows else 0.0
    return {"wall": wall, "best": summary["best"]["metric"], "busy": busy,
            "epochs": sum(t["epochs"] for t in summary["trials"])}


RAY_SCRIPT = """
import json, sys, time
sys.path.insert(0, {root!r})
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.hyperopt import HyperOptSearch
from benchmarks.peers import MAX_EPOCHS, GRACE, FACTOR, SPACE, train_epochs

def objective(config):
    import torch
    from trainables.data import load_digits
    torch.set_num_threads(1)
    data = load_digits(seed={seed})
    busy = train_epochs(config, data, lambda epoch, acc: tune.report({{"val_acc": acc, "epoch": epoch}}))

space = {{name: (tune.loguniform(*spec[1:]) if spec[0] == "loguniform" else tune.choice(spec[1]))
          for name, spec in SPACE.items()}}
ray.init(address="local", num_cpus={cpus}, include_dashboard=False, log_to_driver=False)
started = time.perf_counter()
grid = tune.Tuner(objective, param_space=space, tune_config=tune.TuneConfig(
    metric="val_acc", mode="max", num_samples={trials},
    search_alg=HyperOptSearch(random_state_seed={seed}),
    scheduler=ASHAScheduler(max_t=MAX_EPOCHS, grace_period=GRACE, reduction_factor=FACTOR)),
    run_config=tune.RunConfig(storage_path={storage!r}, name="ray_plain", verbose=0)).fit()
wall = time.perf_counter() - started
frame = grid.get_dataframe()
print(json.dumps({{"wall": wall, "best": float(frame["val_acc"].max()),
                   "busy": float(frame["time_total_s"].sum()),
                   "epochs": int(frame["training_iteration"].sum())}}))
ray.shutdown()
"""


def timed_script(script: str, cwd: str) -> dict:
    """Run `python -c SCRIPT`, which prints its figures as JSON last; they come back with the
    wall time from the command to its exit (Python's start, imports and Ray's start count)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=ENV, check=True,
                          capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - started
    return result


def run_ray_plain(trials: int, seed: int, storage: str) -> dict:
    return timed_script(RAY_SCRIPT.format(root=str(ROOT), cpus=CPUS, trials=trials, seed=seed,
                                          storage=storage), cwd=storage)


def optuna_sweep(trials: int, seed: int) -> dict:
    """The sweep in Optuna, in this process: imports, data, study; its figures but the wall time
    (timed_script measures it from the command)."""
    import optuna
    import torch

    from trainables.data import load_digits

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_digits(seed=seed)  # the split hypersweep's `seed` makes
    busy, epochs = [], []

    def objective(trial: "optuna.Trial") -> float:
        params = {name: (trial.suggest_float(name, *spec[1:], log=True) if spec[0] == "loguniform"
                         else trial.suggest_categorical(name, spec[1]))
                  for name, spec in SPACE.items()}
        last = [0.0, 0]  # the accuracy and epoch of the trial's last report

        def report(epoch: int, accuracy: float) -> bool:
            last[0], last[1] = accuracy, epoch
            trial.report(accuracy, epoch)
            return trial.should_prune()

        busy.append(train_epochs(params, data, report))
        epochs.append(last[1])
        # A trial's value is its accuracy when it stopped, as for the Ray tools (their searchers
        # learn from a trial's last result, and their best is the best last result), not the
        # best of its epochs, which no checkpoint keeps.
        return last[0]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.HyperbandPruner(
                                    min_resource=GRACE, max_resource=MAX_EPOCHS,
                                    reduction_factor=FACTOR))
    study.optimize(objective, n_trials=trials, n_jobs=CPUS)
    return {"best": study.best_value, "busy": sum(busy), "epochs": sum(epochs)}


def run_optuna(trials: int, seed: int, storage: str) -> dict:
    # A process of its own, as the others: its Python start and its imports of torch and Optuna
    # count, as Ray's start counts for the Ray tools.
    return timed_script("import json; from benchmarks.peers import optuna_sweep; "
                        f"print(json.dumps(optuna_sweep({trials}, {seed})))", cwd=storage)


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """The mean of `values` and its 95% interval (Student's t); the interval is the mean itself
    for a single value."""
    from scipy.stats import t  # scipy comes with hyperopt

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = float(t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def paired_comparison(ours: list[dict], theirs: list[dict], reference: str = "hypersweep") -> str:
    """A peer's runs against the reference's (`ours`), seed by seed: its best val_acc minus the
    reference's, and its wall time over the reference's (a geometric mean, as ratios multiply),
    with 95% intervals."""
    pairs = list(zip(ours, theirs, strict=True))
    accuracy = mean_interval([t["best"] - o["best"] for o, t in pairs])
    ratios = [t["wall"] / o["wall"] for o, t in pairs]
    time_ratio = [math.exp(x) for x in mean_interval([math.log(r) for r in ratios])]
    return (f"best val_acc {accuracy[0]:+.4f} (95% interval {accuracy[1]:+.4f} to {accuracy[2]:+.4f}); "
            f"wall time {time_ratio[0]:.2f}x {reference}'s (95% interval {time_ratio[1]:.2f}-"
            f"{time_ratio[2]:.2f}x; seeds {min(ratios):.2f}-{max(ratios):.2f}x)")


def run_figures(result: dict) -> str:
    """One run's figures: wall time, best val_acc and epochs."""
    return f"{result['wall']:.1f} s, best {result['best']:.4f}, {result['epochs']} epochs"


def mean_figures(results: list[dict]) -> str:
    """Best val_acc and epochs, each the mean over a tool's runs."""
    return (f"best val_acc {statistics.mean(r['best'] for r in results):.4f}  epochs "
            f"{statistics.mean(r['epochs'] for r in results):.0f}")


TOOLS = {"hypersweep": run_hypersweep, "ray tune (docs)": run_ray_plain, "optuna": run_optuna}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[32])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tools", nargs="+", choices=list(TOOLS), default=list(TOOLS),
                        help="a subset (hypersweep first: the ratios are to it)")
    args = parser.parse_args()
    if "optuna" in args.tools and importlib.util.find_spec("optuna") is None:
        parser.error("--tools optuna: optuna is not installed; pip install -e '.[bench]', or leave it out")
    for trials in args.trials:
        runs: dict[str, list[dict]] = {tool: [] for tool in args.tools}
        for seed in args.seeds:
            for tool in args.tools:
                run = TOOLS[tool]
                with tempfile.TemporaryDirectory() as storage:
                    result = run(trials, seed, storage)
                runs[tool].append(result)
                print(f"{trials} trials, seed {seed}, {tool}: {run_figures(result)}", flush=True)
        ours = statistics.median(r["wall"] for r in runs["hypersweep"])
        print(f"\n{trials} trials, seeds {args.seeds}, {CPUS} CPUs:")
        for tool, results in runs.items():
            wall = statistics.median(r["wall"] for r in results)
            print(f"  {tool:16s} wall {wall:6.1f} s ({wall / ours:.2f}x hypersweep)  "
                  f"{mean_figures(results)}  utilization "
                  f"{statistics.mean(r['busy'] / (r['wall'] * CPUS) for r in results):.2f}")
        for tool, results in runs.items():
            if tool != "hypersweep":
                print(f"  {tool} against hypersweep, seed by seed: "
                      f"{paired_comparison(runs['hypersweep'], results)}")


if __name__ == "__main__":
    main()
