"""Framework overhead: N trials of a trainable that does no work, hypersweep against raw Ray Tune
with actor reuse; then the cost of TensorBoard logging on a real (tiny) sweep, on against off.

    python benchmarks/overhead.py [--trials 1000] [--tb-trials 100]

Both trivial runs start their own embedded Ray (included in the time) and use 2 CPUs.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RAW_TUNE = textwrap.dedent("""
    import sys, ray
    from ray import tune
    sys.path.insert(0, {root!r})
    from benchmarks.trivial import Trivial
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    tune.Tuner(Trivial, param_space={{"x": tune.uniform(0, 1)}},
               tune_config=tune.TuneConfig(num_samples={trials}, reuse_actors=True,
                                           metric="val_acc", mode="max"),
               run_config=tune.RunConfig(storage_path={storage!r}, name="raw", verbose=0)).fit()
    ray.shutdown()
""")


# Ray's workers import the trainable by module path: they need the repository on their path.
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def seconds(command: list[str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--tb-trials", type=int, default=100)
    args = parser.parse_args()
    launch = [sys.executable, str(ROOT / "launch.py")]
    with tempfile.TemporaryDirectory() as storage:
        raw = seconds([sys.executable, "-c", RAW_TUNE.format(root=str(ROOT), trials=args.trials,
                                                           storage=storage)], storage)
        ours = seconds(launch + ["experiment=smoke", "trainable=benchmarks.trivial.Trivial",
                                 "search=random", "scheduler=fifo", f"num_samples={args.trials}",
                                 "train.max_epochs=1", "name=trivial", f"storage_path={storage}"],
                       str(ROOT))
        print(f"{args.trials} trivial trials: raw Ray Tune (reuse_actors) {raw:.1f} s = "
              f"{1000 * raw / args.trials:.1f} ms/trial; hypersweep {ours:.1f} s = "
              f"{1000 * ours / args.trials:.1f} ms/trial; ratio {ours / raw:.2f}", flush=True)
        tiny = ["experiment=smoke", "search=random", "scheduler=fifo", "train.max_epochs=1",
                f"num_samples={args.tb_trials}", f"storage_path={storage}"]
        with_board = seconds(launch + tiny + ["name=tb_on"], str(ROOT))
        without = seconds(launch + tiny + ["name=tb_off", "tensorboard=false"], str(ROOT))
        print(f"{args.tb_trials} one-epoch MLP trials: TensorBoard on {with_board:.1f} s, off "
              f"{without:.1f} s; logging adds {100 * (with_board / without - 1):+.0f}%")


if __name__ == "__main__":
    main()
