"""The CNN sweep on a GPU: trials per minute and GPU utilization with 1, 2 and 4 trials per GPU.

    python benchmarks/gpu.py [overrides...] [--trials 32] [--per-gpu 1 2 4]

Runs `launch.py experiment=digits_cnn resources.gpu=1/K` for each K, every run timed as a command
from start to exit while `nvidia-smi` samples the GPUs every 0.2 s. Prints per K: wall time,
trials and epochs per minute, the best val_acc, how many trials Ray placed on a GPU, and the GPUs'
utilization (mean over the run, and over the samples in which any GPU was busy) and peak memory.
Without `nvidia-smi` (on a machine that only declares GPUs to Ray, `cluster.num_gpus=1`) the
utilization columns read n/a.
"""

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLE_SECONDS = 0.2

from hypersweep.records import trial_rows  # noqa: E402


@dataclass
class GpuSamples:
    """What `nvidia-smi` reported while a sweep ran: per sample, the busiest GPU's utilization (%)
    and the memory used on all GPUs together (MiB)."""

    utilization: list[float] = field(default_factory=list)
    memory_mib: list[float] = field(default_factory=list)


def sample_gpus(samples: GpuSamples, stop: threading.Event) -> None:
    """Fill `samples` from `nvidia-smi` until `stop` is set."""
    query = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
    while not stop.wait(SAMPLE_SECONDS):
        rows = subprocess.run(query, capture_output=True, text=True).stdout.strip().splitlines()
        # A GPU that cannot report (in MIG mode, say) reads "[N/A]": it is left out.
        values = [[float(value) for value in row.split(",")] for row in rows
                  if re.fullmatch(r"\s*[\d.]+\s*,\s*[\d.]+\s*", row)]
        if values:
            samples.utilization.append(max(utilization for utilization, _ in values))
            samples.memory_mib.append(sum(memory for _, memory in values))


def run_sweep(per_gpu: int, trials: int, storage: Path,
              overrides: list[str]) -> tuple[float, dict, GpuSamples]:
    """Run the CNN sweep with `per_gpu` trials sharing a GPU; its wall time, summary and samples."""
    name = f"gpu_{per_gpu}"
    samples, stop = GpuSamples(), threading.Event()
    sampler = threading.Thread(target=sample_gpus, args=(samples, stop), daemon=True)
    if shutil.which("nvidia-smi"):
        sampler.start()
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), "experiment=digits_cnn", f"name={name}",
         f"storage_path={storage}", f"num_samples={trials}", f"resources.gpu={1 / per_gpu:g}",
         "tensorboard=false", *overrides],
        capture_output=True, text=True)
    wall = time.perf_counter() - started
    stop.set()
    if sampler.is_alive():
        sampler.join()
    if process.returncode != 0:
        sys.exit(f"the sweep with {per_gpu} trials per GPU failed:\n{process.stdout[-3000:]}"
                 f"{process.stderr[-3000:]}")
    return wall, json.loads((storage / name / "summary.json").read_text()), samples


def placed_on_gpu(summary: dict) -> int:
    """How many trials Ray gave a GPU, from the placement each one reports."""
    return sum(bool(rows and rows[-1].get("gpu_ids"))
               for rows in (trial_rows(trial["path"]) for trial in summary["trials"]))


def describe(samples: GpuSamples) -> str:
    """The utilization and memory columns of one run."""
    if not samples.utilization:
        return "utilization n/a (no nvidia-smi)"
    busy = [value for value in samples.utilization if value > 0]
    return (f"utilization {statistics.mean(samples.utilization):4.1f}% mean, "
            f"{statistics.mean(busy) if busy else 0.0:4.1f}% while busy, "
            f"{max(samples.utilization):3.0f}% peak; memory {max(samples.memory_mib):6.0f} MiB peak")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--per-gpu", type=int, nargs="+", default=[1, 2, 4])
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as storage:
        for per_gpu in args.per_gpu:
            wall, summary, samples = run_sweep(per_gpu, args.trials, Path(storage), overrides)
            trials = summary["trials"]
            epochs = sum(trial["epochs"] for trial in trials)
            print(f"{per_gpu} per GPU: {wall:6.1f} s, {len(trials) * 60 / wall:5.1f} trials/min, "
                  f"{epochs * 60 / wall:6.0f} epochs/min, best val_acc {summary['best']['metric']:.4f}, "
                  f"{placed_on_gpu(summary)}/{len(trials)} trials on a GPU; {describe(samples)}",
                  flush=True)


if __name__ == "__main__":
    main()
