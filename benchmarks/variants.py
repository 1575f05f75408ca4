"""The default sweep under several sets of overrides, alternated seed by seed: whether a change to
the search or the scheduler gains accuracy or time beyond the noise between seeds.

    python benchmarks/variants.py --trials 32 --seeds 0 1 2 3 4 5 \\
        --variant base --variant one-bracket scheduler.brackets=1

Each variant is a name and its Hydra overrides (none: the default sweep). The variants run in turn
on each seed, their order reversed every other seed, each timed as a command from start to exit.
Prints each run, then per variant: wall time (median), best val_acc (mean; a trial counts with
its last report) and epochs (mean); then each variant against the first, seed by seed, with 95%
intervals (Student's t, as benchmarks/peers.py).
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peers import mean_figures, paired_comparison, run_figures, run_hypersweep  # noqa: E402


def run_order(names: list[str], seed_index: int) -> list[str]:
    """The variants' order on the seed_index-th seed: reversed every other seed, so that none
    always runs first (or after the same one) on a VM whose speed drifts."""
    return names if seed_index % 2 == 0 else names[::-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variant", nargs="+", action="append", required=True,
                        metavar=("NAME", "OVERRIDE"), help="a name and its Hydra overrides; repeat")
    args = parser.parse_args()
    variants = {name: overrides for name, *overrides in args.variant}
    if len(variants) != len(args.variant):
        parser.error("--variant: each needs a name of its own")
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for index, seed in enumerate(args.seeds):
        results = {}
        for name in run_order(list(variants), index):
            with tempfile.TemporaryDirectory() as storage:
                results[name] = run_hypersweep(args.trials, seed, storage, variants[name])
            print(f"seed {seed}, {name}: {run_figures(results[name])}", flush=True)
        for name in variants:  # each list in seed order, whatever order they ran in
            runs[name].append(results[name])
    print(f"\n{args.trials} trials, seeds {args.seeds}:")
    for name, results in runs.items():
        overrides = " ".join(variants[name]) or "the default sweep"
        print(f"  {name:16s} wall {statistics.median(r['wall'] for r in results):6.1f} s  "
              f"{mean_figures(results)}  ({overrides})")
    first, *others = runs
    for name in others:
        print(f"  {name} against {first}, seed by seed: "
              f"{paired_comparison(runs[first], runs[name], reference=first)}")


if __name__ == "__main__":
    main()
