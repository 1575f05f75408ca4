"""Where one sweep's time goes: a timeline from the command to its exit, across its processes.

    python benchmarks/timeline.py [overrides...]      # default: the default sweep

Runs `launch.py OVERRIDES` with a `sitecustomize` on the path of every Python process it starts
(the driver, Ray's own processes, the trial processes): timeline_probe.py notes when each started
and times ray.init, the driver's imports and data, Tuner.fit, each trial's setup, steps and
checkpoints, and ray.shutdown. Prints the phases in seconds from the command, and how the trial
processes spent the time between their first and their last step.
"""

import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.timeline_probe import RECORD_ENV  # noqa: E402

SITECUSTOMIZE = "from benchmarks.timeline_probe import install\ninstall()\n"


def run(overrides: list[str], workdir: Path) -> tuple[float, float, int, list[tuple]]:
    """Run the sweep with the probes; its start and end (wall clock), pid and records."""
    (workdir / "sitecustomize.py").write_text(SITECUSTOMIZE)
    records = workdir / "timeline.tsv"
    env = {**os.environ, RECORD_ENV: str(records),
           "PYTHONPATH": os.pathsep.join([str(workdir), str(ROOT)])}
    command = [sys.executable, str(ROOT / "launch.py"), "name=timeline",
               f"storage_path={workdir / 'runs'}", *overrides]
    with open(workdir / "output.txt", "w") as output:
        start = time.time()
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
        code = process.wait()
        end = time.time()
    if code != 0:
        raise SystemExit(f"the sweep failed ({code}):\n{(workdir / 'output.txt').read_text()[-3000:]}")
    rows = []
    for line in records.read_text().splitlines():
        pid, what, begin, finish = line.split("\t")
        rows.append((int(pid), what, float(begin), float(finish)))
    return start, end, process.pid, rows


def report(start: float, end: float, driver: int, rows: list[tuple]) -> None:
    """Print the phases of the run, in seconds from the command."""
    def at(moment: float) -> str:
        return f"{moment - start:6.2f}"

    def span(what: str) -> tuple[float, float] | None:
        """When the driver first started and last ended `what`; None if it never ran it."""
        found = [(b, e) for p, w, b, e in rows if w == what and p == driver]
        return (min(b for b, _ in found), max(e for _, e in found)) if found else None

    started_at = {pid: begin for pid, what, begin, _ in rows if what.startswith("process ")}
    by_trial_process: dict[int, list[tuple]] = defaultdict(list)
    for pid, what, begin, finish in rows:
        if what.startswith(("trial ", "actor ")):
            by_trial_process[pid].append((what, begin, finish))
    ray_own = [pid for pid in started_at if pid != driver and pid not in by_trial_process]

    print(f"Timeline of `launch.py {' '.join(sys.argv[1:])}` (seconds from the command, "
          f"{os.cpu_count()} CPUs):")
    init, fit, shutdown = span("ray.init"), span("Tuner.fit"), span("ray.shutdown")
    prepare = span("driver imports and data")
    if init:
        print(f"  {at(start)} -{at(init[0])}  Python, Hydra, the config, importing Ray")
        print(f"  {at(init[0])} -{at(init[1])}  ray.init: the embedded Ray starts "
              f"({len(ray_own)} Python processes of its own)")
    if prepare:
        print(f"  {at(prepare[0])} -{at(prepare[1])}  meanwhile, in a thread of lower priority: "
              "importing Ray Tune, the trainable and the search; loading the data set")
    if fit:
        print(f"  {at(fit[0])} -{at(fit[1])}  Tuner.fit")
    steps = [(pid, what, b, e) for pid, calls in by_trial_process.items() for what, b, e in calls]
    if by_trial_process:
        started = sorted(started_at[pid] for pid in by_trial_process if pid in started_at)
        setups = sorted((b, e) for _, what, b, e in steps if what == "trial setup")
        firsts = sorted(b for _, what, b, _ in steps if what == "actor train")
        last = max(e for _, what, _, e in steps if what == "actor train")
        print(f"  {at(started[0])}          {len(by_trial_process)} trial processes start "
              f"(at {', '.join(at(s).strip() for s in started)})")
        if setups:
            print(f"  {at(setups[0][0])} -{at(setups[0][1])}  the first trial's setup (torch, model, "
                  "optimizer; its process has imported the trainable and Ray Tune before)")
        print(f"  {at(firsts[0])}          the first step (epoch) starts")
        print(f"  {at(firsts[0])} -{at(last)}  steady state: the trial processes between their "
              "first step and their last")
        _steady_state(by_trial_process)
        if fit:
            print(f"  {at(last)} -{at(fit[1])}  after the last step: Tune ends the experiment")
    if shutdown:
        print(f"  {at(shutdown[0])} -{at(shutdown[1])}  ray.shutdown")
    print(f"  {at(end)}          the command has exited")


def _steady_state(by_trial_process: dict[int, list[tuple]]) -> None:
    """How the trial processes spent their time between their own first and last step."""
    spent: dict[str, float] = defaultdict(float)
    window = 0.0
    for calls in by_trial_process.values():
        trains = [(b, e) for what, b, e in calls if what == "actor train"]
        if not trains:
            continue
        first, last = min(b for b, _ in trains), max(e for _, e in trains)
        window += last - first
        for what, b, e in calls:
            if what in ("actor train", "actor save", "trial reset_config") and first <= b <= last:
                spent[what] += e - b
    steps = sum(1 for calls in by_trial_process.values() for what, *_ in calls
                if what == "actor train")
    busy = sum(spent.values())
    print(f"             {steps} steps; of the trial processes' time: "
          f"{spent['actor train'] / window:.0%} in steps, {spent['actor save'] / window:.0%} in "
          f"checkpoints, {spent['trial reset_config'] / window:.0%} switching trials, "
          f"{1 - busy / window:.0%} waiting for Tune's next call")


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        start, end, driver, rows = run(sys.argv[1:], Path(workdir))
    report(start, end, driver, rows)


if __name__ == "__main__":
    main()
