"""Start-up: `launch.py --help`, a config error, and the time from the command to the first trial
running on the embedded Ray (its TensorBoard run appears when its model is built).

    python benchmarks/startup.py [--repeats 3]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = [sys.executable, str(ROOT / "launch.py")]


def timed(args: list[str], cwd: str) -> float:
    """Seconds one `launch.py ARGS` takes to exit."""
    started = time.perf_counter()
    subprocess.run(LAUNCH + args, cwd=cwd, capture_output=True)
    return time.perf_counter() - started


def to_first_trial(cwd: str, name: str) -> float:
    """Seconds from the command to the first trial's TensorBoard run existing; then stop it."""
    boards = Path(cwd) / "runs" / name / "tensorboard"
    started = time.perf_counter()
    process = subprocess.Popen(LAUNCH + ["experiment=smoke", f"name={name}"], cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (boards.is_dir() and any(boards.iterdir())):
        if process.poll() is not None:
            raise RuntimeError("the sweep ended before a trial started")
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    process.wait()  # a smoke sweep takes seconds; let it end cleanly rather than kill Ray
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cwd:
        figures = {
            "--help": [timed(["--help"], cwd) for _ in range(args.repeats)],
            "config error": [timed(["space.optim.lr.low=1"], cwd) for _ in range(args.repeats)],
            "command to first trial running": [to_first_trial(cwd, f"startup{i}")
                                               for i in range(args.repeats)],
        }
    for what, seconds in figures.items():
        print(f"{what:32s} median {statistics.median(seconds):5.2f} s  "
              f"(min {min(seconds):.2f}, max {max(seconds):.2f})")


if __name__ == "__main__":
    main()
