"""Utilization at scale, and the driver's memory.

1. `--local`: N trials of 1 s of real CPU work on the embedded Ray with this machine's CPUs.
2. `--cluster`: M trials that sleep 1 s on a simulated cluster: `ray start` nodes on 127.0.0.1
   that declare more CPUs than the machine has (in the spirit of Ray's bookkeeping-overhead
   release test: 10,000 one-second trials within 800 s against a 625 s ideal). The driver's peak
   RSS (Linux VmHWM) is sampled over the run, and its RSS (VmRSS) against the trials ended so far:
   its growth per trial between the 20th and the 95th percent of them says whether it is flat.

Utilization = work seconds / (wall seconds x slots), the wall time being the whole command's,
start-up included.

    python benchmarks/utilization.py [--trials 200] [--cluster-trials 2000] [--nodes 2 --cpus 8]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ray_cluster import LocalCluster  # noqa: E402  (the tests' real multi-node cluster)

SWEEP = ["experiment=smoke", "search=random", "scheduler=fifo", "train.max_epochs=1"]
ENDED = re.compile(r"^\[ *(\d+)/", re.MULTILINE)  # a progress line: [ended/planned] ...


def memory_mib(pid: int) -> dict[str, float]:
    """The process's memory figures from /proc in MiB (VmHWM: peak resident, VmRSS: resident now),
    read at once; none once it has gone or exited unreaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {name: int(value.split()[0]) / 1024 for name, _, value in
            (line.partition(":") for line in status.splitlines()) if name in ("VmHWM", "VmRSS")}


def sweep(args: list[str], cwd: str, env: dict) -> tuple[float, float, list[tuple[int, float]]]:
    """Run one `launch.py` sweep; its wall seconds, the driver's peak RSS in MiB, and its RSS
    sampled as (trials ended, MiB)."""
    # The output goes to a file: a pipe nobody reads fills up and blocks the driver.
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, str(ROOT / "launch.py"), *SWEEP, *args],
                                   cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)}, stdout=output,
                                   stderr=subprocess.STDOUT, text=True)
        peak, ended, rss_by_ended, read = 0.0, 0, [], 0
        while process.poll() is None:
            memory = memory_mib(process.pid)
            peak = max(peak, memory.get("VmHWM", 0.0))
            output.seek(read)
            new = output.read()
            read = output.tell()
            ended = max([ended, *(int(count) for count in ENDED.findall(new))])
            if "VmRSS" in memory:
                rss_by_ended.append((ended, memory["VmRSS"]))
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        if process.returncode != 0:
            output.seek(0)
            raise RuntimeError(f"the sweep failed:\n{output.read()[-3000:]}")
    return elapsed, peak, rss_by_ended


def rss_growth(rss_by_ended: list[tuple[int, float]], trials: int) -> str:
    """The driver's RSS at the 20th and the 95th percent of the trials ended (medians of the
    samples within 3% of each), and its growth per trial between them."""
    def rss_at(ended: int) -> float:
        near = sorted(rss for count, rss in rss_by_ended if abs(count - ended) <= 0.03 * trials)
        return near[len(near) // 2] if near else float("nan")

    first, last = int(0.2 * trials), int(0.95 * trials)
    low, high = rss_at(first), rss_at(last)
    return (f"driver RSS {low:.0f} MiB at {first} trials ended, {high:.0f} MiB at {last}: "
            f"{(high - low) * 1024 / (last - first):.1f} KiB a trial")


def report(what: str, trials: int, slots: int, seconds: float, peak: float) -> None:
    ideal = trials / slots  # one-second trials
    print(f"{what}: {trials} x 1 s trials on {slots} slots: {seconds:.1f} s against an ideal "
          f"{ideal:.1f} s; utilization {ideal / seconds:.2f}; driver peak RSS {peak:.0f} MiB",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="CPU-bound trials on this machine")
    parser.add_argument("--cluster-trials", type=int, default=2000, help="sleeping trials")
    parser.add_argument("--nodes", type=int, default=2, help="simulated nodes (head included)")
    parser.add_argument("--cpus", type=int, default=8, help="CPUs each simulated node declares")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cwd:
        if not args.skip_local:
            cpus = os.cpu_count() or 1
            seconds, peak, _ = sweep(["trainable=benchmarks.trivial.Busy", f"num_samples={args.trials}",
                                      "name=busy"], cwd, dict(os.environ))
            report("embedded Ray, real CPU work", args.trials, cpus, seconds, peak)
        if not args.skip_cluster:
            cluster = LocalCluster(workers=args.nodes - 1, cpus=args.cpus)
            try:
                seconds, peak, rss_by_ended = sweep(
                    ["trainable=benchmarks.trivial.Sleeper", "cluster=remote",
                     f"cluster.address={cluster.address}", "name=sleepers",
                     f"num_samples={args.cluster_trials}"], cwd, cluster.env)
            finally:
                cluster.stop()
            report(f"simulated cluster of {args.nodes} nodes", args.cluster_trials,
                   args.nodes * args.cpus, seconds, peak)
            print(rss_growth(rss_by_ended, args.cluster_trials), flush=True)


if __name__ == "__main__":
    main()
