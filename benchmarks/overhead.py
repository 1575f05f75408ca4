"""Framework overhead: N trials of a trainable that does no work, hypersweep against raw Ray Tune
with actor reuse; then the cost of TensorBoard logging on a real (tiny) sweep, on against off.

    python benchmarks/overhead.py [--trials 1000] [--tb-trials 100] [--repeats 3] [overrides...]

Both trivial runs start their own embedded Ray (included in the time) and use 2 CPUs. The two
tools alternate, `--repeats` times each, and the medians are compared: single runs of the same
command vary by 30% on this machine. Extra arguments are hypersweep overrides for its runs.
"""

import argparse
import os
import statistics
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
    parser.add_argument("--repeats", type=int, default=3)
    args, overrides = parser.parse_known_args()
    launch = [sys.executable, str(ROOT / "launch.py")]
    raw, ours, on, off = [], [], [], []
    with tempfile.TemporaryDirectory() as storage:
        for repeat in range(args.repeats):
            raw.append(seconds([sys.executable, "-c", RAW_TUNE.format(
                root=str(ROOT), trials=args.trials, storage=f"{storage}/raw{repeat}")], storage))
            ours.append(seconds(launch + [
                "experiment=smoke", "trainable=benchmarks.trivial.Trivial", "search=random",
                "scheduler=fifo", f"num_samples={args.trials}", "train.max_epochs=1",
                f"name=trivial{repeat}", f"storage_path={storage}", *overrides], str(ROOT)))
            tiny = ["experiment=smoke", "search=random", "scheduler=fifo", "train.max_epochs=1",
                    f"num_samples={args.tb_trials}", f"storage_path={storage}", *overrides]
            on.append(seconds(launch + tiny + [f"name=tb_on{repeat}"], str(ROOT)))
            off.append(seconds(launch + tiny + [f"name=tb_off{repeat}", "tensorboard=false"], str(ROOT)))
            print(f"repeat {repeat}: raw {raw[-1]:.1f} s, hypersweep {ours[-1]:.1f} s; "
                  f"TensorBoard on {on[-1]:.1f} s, off {off[-1]:.1f} s", flush=True)
    raw_s, ours_s = statistics.median(raw), statistics.median(ours)
    print(f"{args.trials} trivial trials (medians): raw Ray Tune (reuse_actors) {raw_s:.1f} s = "
          f"{1000 * raw_s / args.trials:.1f} ms/trial; hypersweep {ours_s:.1f} s = "
          f"{1000 * ours_s / args.trials:.1f} ms/trial; ratio {ours_s / raw_s:.2f}")
    on_s, off_s = statistics.median(on), statistics.median(off)
    print(f"{args.tb_trials} one-epoch MLP trials (medians): TensorBoard on {on_s:.1f} s, off "
          f"{off_s:.1f} s; logging adds {100 * (on_s / off_s - 1):+.0f}%")


if __name__ == "__main__":
    main()
