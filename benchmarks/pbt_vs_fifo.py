"""Does PBT beat its own starting population? PBT against the same population without exploit.

For each seed, runs a PBT preset, then the same preset with scheduler=fifo: the same initial
configs (random search, same seed), the same epochs per trial, no copying and no perturbing.
Prints both bests per seed and the means.

    python benchmarks/pbt_vs_fifo.py --seeds 0 1 2 [--experiment digits_cnn_pbt] [overrides...]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(experiment: str, seed: int, scheduler: str, overrides: list[str], storage: Path) -> dict:
    """One sweep; returns its summary.json with the wall time added."""
    name = f"{experiment}_{scheduler}_{seed}"
    if scheduler != "pbt":  # PBT's own settings mean nothing to the FIFO run
        overrides = [o for o in overrides if not o.startswith("scheduler.")]
    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "launch.py"), f"experiment={experiment}",
                    f"seed={seed}", f"name={name}", f"storage_path={storage}",
                    *([] if scheduler == "pbt" else [f"scheduler={scheduler}"]), *overrides],
                   check=True, capture_output=True)
    summary = json.loads((storage / name / "summary.json").read_text())
    summary["wall"] = time.perf_counter() - started
    summary["starts"] = _starting_configs(storage / name, summary)
    return summary


def _starting_configs(experiment: Path, summary: dict) -> list[str]:
    return sorted(json.dumps(trial["started_with"], sort_keys=True) for trial in summary["trials"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--experiment", default="digits_cnn_pbt")
    args, overrides = parser.parse_known_args()
    results: dict[str, list[dict]] = {"pbt": [], "fifo": []}
    with tempfile.TemporaryDirectory() as storage:
        for seed in args.seeds:
            for scheduler in ("pbt", "fifo"):
                results[scheduler].append(run(args.experiment, seed, scheduler, overrides,
                                              Path(storage)))
            pbt, fifo = results["pbt"][-1], results["fifo"][-1]
            same = "same" if pbt["starts"] == fifo["starts"] else "DIFFERENT"
            print(f"seed {seed}: pbt best val_acc {pbt['best']['metric']:.4f} (test "
                  f"{pbt['best']['test_acc']:.4f}, {pbt['wall']:.0f} s)  fifo best val_acc "
                  f"{fifo['best']['metric']:.4f} (test {fifo['best']['test_acc']:.4f}, "
                  f"{fifo['wall']:.0f} s)  starting population: {same}", flush=True)
    for scheduler, runs in results.items():
        print(f"{scheduler}: mean best val_acc {statistics.mean(r['best']['metric'] for r in runs):.4f}"
              f"  mean test_acc of the best {statistics.mean(r['best']['test_acc'] for r in runs):.4f}"
              f"  median wall {statistics.median(r['wall'] for r in runs):.0f} s")


if __name__ == "__main__":
    main()
