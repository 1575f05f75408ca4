"""Wall time and best accuracy of the default sweep, over a few seeds, as a user runs it.

    python benchmarks/default_sweep.py --seeds 0 1 2 [extra overrides...]
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


def run_once(seed: int, overrides: list[str], storage: Path) -> tuple[float, dict]:
    """Run launch.py once; return its wall time (s) and summary.json."""
    name = f"bench_seed{seed}"
    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "launch.py"), f"seed={seed}", f"name={name}",
                    f"storage_path={storage}", *overrides], check=True, capture_output=True)
    wall = time.perf_counter() - started
    return wall, json.loads((storage / name / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args, overrides = parser.parse_known_args()
    walls, bests, tests, gains = [], [], [], []
    with tempfile.TemporaryDirectory() as storage:
        for seed in args.seeds:
            wall, summary = run_once(seed, overrides, Path(storage))
            best, baseline = summary["best"], summary["baseline"]
            walls.append(wall)
            bests.append(best["metric"])
            tests.append(best["test_acc"])
            gains.append(best["metric"] - baseline["metric"])
            print(f"seed {seed}: {wall:5.1f} s  trials {len(summary['trials'])}  best val_acc "
                  f"{best['metric']:.4f}  test_acc {best['test_acc']:.4f}  baseline "
                  f"{baseline['metric']:.4f}", flush=True)
    print(f"median wall {statistics.median(walls):.1f} s; mean best val_acc "
          f"{statistics.mean(bests):.4f} (min {min(bests):.4f}); mean test_acc "
          f"{statistics.mean(tests):.4f}; mean gain over defaults {statistics.mean(gains):+.4f}")


if __name__ == "__main__":
    main()
