"""What the driver keeps per trial: Python's heap traced between two points of one sweep.

Runs a sweep of trivial trials (one report each, random search, FIFO) on the embedded Ray, in
this process, with tracemalloc on. At the `--first`th and the `--second`th ended trial it takes a
snapshot of the heap; it prints the growth between them per trial, the allocation sites that grew
most (by traceback) and the lines that grew most. A flat driver prints a growth near zero.

    python benchmarks/driver_memory.py [--trials 1400 --first 300 --second 1300] [--top 10]

tracemalloc slows the driver several times over: 1,400 trials take about 10 minutes on 2 cores.
"""

import argparse
import gc
import os
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SWEEP = ["experiment=smoke", "search=random", "scheduler=fifo", "train.max_epochs=1",
         "trainable=benchmarks.trivial.Trivial", "name=driver_memory"]


def report_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, trials: int,
                  top: int) -> None:
    """Print what grew from `before` to `after`, per trial of the `trials` that ended between."""
    by_traceback = after.compare_to(before, "traceback")
    total = sum(stat.size_diff for stat in by_traceback)
    print(f"\ngrowth over {trials} trials: {total / trials / 1024:.1f} KB a trial", flush=True)
    for stat in by_traceback[:top]:
        print(f"\n{stat.size_diff / trials:8.0f} B a trial, {stat.count_diff / trials:5.1f} blocks")
        frames = [line.strip() for line in stat.traceback.format() if line.strip().startswith("File")]
        for frame in frames[-6:]:
            print(f"    {frame[-140:]}")
    print("\nby line:")
    for stat in after.compare_to(before, "lineno")[:top]:
        print(f"{stat.size_diff / trials:8.0f} B a trial  {stat.traceback.format()[0].strip()[-120:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1400)
    parser.add_argument("--first", type=int, default=300, help="ended trials at the first snapshot")
    parser.add_argument("--second", type=int, default=1300, help="ended trials at the second one")
    parser.add_argument("--top", type=int, default=10, help="allocation sites and lines to print")
    args = parser.parse_args()
    if not 0 < args.first < args.second <= args.trials:
        parser.error("needs 0 < --first < --second <= --trials")

    tracemalloc.start(12)
    sys.path.insert(0, str(ROOT))
    # The trial processes import the trivial trainable from the benchmarks package.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    from ray.tune import Callback

    import hypersweep.experiment as experiment

    class HeapAtTwoPoints(Callback):
        """Takes the heap's snapshot as the `first`th and the `second`th trial end."""

        def __init__(self) -> None:
            self.ended = 0
            self.before: tracemalloc.Snapshot | None = None

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.ended += 1
            if self.ended not in (args.first, args.second):
                return
            gc.collect()
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)])
            if self.before is None:
                self.before = snapshot
            else:
                report_growth(self.before, snapshot, args.second - args.first, args.top)

    callbacks = experiment._callbacks
    experiment._callbacks = lambda config, dims: [*callbacks(config, dims), HeapAtTwoPoints()]
    import launch

    with tempfile.TemporaryDirectory() as cwd:
        os.chdir(cwd)
        sys.argv = ["launch.py", *SWEEP, f"num_samples={args.trials}"]
        launch.run()


if __name__ == "__main__":
    main()
