"""What the console says: the plan before a sweep starts, and the outcome when it ends."""

from collections import Counter

from hypersweep.paths import experiment_dir, experiment_location, is_uri, join
from hypersweep.records import TrialRecord, gain, gain_text
from schedulers.pbt import read_lineage, schedule_of
from schedulers.space import Dimension, discrete_combinations, planned_trials
from schedulers.trial_schedulers import (
    describe_scheduler,
    estimated_epochs,
    expected_trials_per_rung,
)

STATUS_ORDER = ("finished", "stopped early", "diverged", "failed", "unfinished")


def _search_line(config: dict) -> str:
    search = config["search"]
    if search["name"] == "hyperopt":
        return (f"hyperopt TPE ({search.get('n_initial_points', 8)} random points first, "
                f"seed {config['seed']})")
    if search["name"] == "grid":
        return "grid (every combination of the discrete values)"
    return f"random (seed {config['seed']})"


def plan_text(config: dict, dims: list[Dimension]) -> str:
    """The lines printed before Ray starts: what the sweep is about to do."""
    continuous = [d for d in dims if not d.is_discrete]
    width = max(len(d.path) for d in dims)
    trials = f"{planned_trials(config, dims):,}"
    if any(dim.is_grid(config["search"]["name"]) for dim in dims):
        trials += " (the grid x num_samples)"
    lines = [
        f"hypersweep: experiment {config['name']} in {experiment_location(config)}",
        f"  trials:    {trials}; the first runs the config's own defaults (the baseline)",
        f"  metric:    {config['metric']} ({config['mode']}), up to "
        f"{config['train']['max_epochs']} epochs a trial",
        f"  space:     {len(dims)} dimensions; discrete part {discrete_combinations(dims):,} "
        f"combinations; {len(continuous)} continuous"
        + (f" ({', '.join(d.path for d in continuous)})" if continuous else ""),
    ]
    mutable = config["scheduler"].get("mutable", []) if config["scheduler"]["name"] == "pbt" else []
    for dim in dims:
        kind = f"  [{dim.kind}]" if dim.kind else ""
        changes = "  (PBT mutates it)" if dim.path in mutable else ""
        when = "".join(f"  only when {other} in [{', '.join(map(str, allowed))}]"
                       for other, allowed in dim.when)
        lines.append(f"    {dim.path:<{width}}  {dim.describe()}{kind}{changes}{when}")
    resources = config["resources"]
    lines += [
        f"  search:    {_search_line(config)}",
        f"  scheduler: {describe_scheduler(config)}",
        f"  resources: {resources['cpu']:g} CPU, {resources['gpu']:g} GPU per trial",
    ]
    return "\n".join(lines)


def tuned_text(tuned: dict) -> str:
    """`name=value` pairs on one line, floats to 4 significant digits."""
    return "  ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
                     for name, value in tuned.items())


def outcome_text(config: dict, records: list[TrialRecord], best: TrialRecord | None,
                 baseline: TrialRecord | None) -> str:
    """The lines printed when the sweep ends: the best trial against the baseline, and where."""
    metric = config["metric"]
    counts = Counter(record.status for record in records)
    count_text = ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if s != "unfinished" or counts[s])
    lines = [f"trials: {len(records)} = {count_text}"]
    if best is None:
        said = f"no trial produced a finite {metric}"
        if records and counts["diverged"] == len(records):
            said += ("; every trial diverged (its loss stopped being finite, or stayed at chance): "
                     "lower the learning rate's range first")
        lines.append(said)
    else:
        lines.append(f"best trial {best.trial_id}: {metric} {best.metric:.4f} after "
                     f"{best.epochs} epochs")
        if baseline is not None and baseline.metric is not None:
            gained = gain(best, baseline, config["mode"])
            lines.append(f"  baseline (defaults) trial {baseline.trial_id}: {metric} "
                         f"{baseline.metric:.4f}; {gain_text(gained, config['mode'], metric)}")
        else:
            state = baseline.status if baseline else "not run"
            lines.append(f"  baseline (defaults) trial: {state}")
        if best.test_acc is not None:
            lines.append(f"  test accuracy {best.test_acc:.4f} (held-out split: the number "
                         f"to quote)")
        lines.append(f"  config: {tuned_text(best.tuned)}")
    for record in records:
        if record.status == "failed":
            lines.append(f"  failed {record.trial_id}: {record.error} (see {record.path}/error.txt)")
    path = experiment_location(config)
    lines.append(f"experiment: {path}")
    if is_uri(path):  # TensorBoard reads local folders: copy the runs down first
        lines.append(f"tensorboard runs: {join(path, 'tensorboard')}")
    else:
        lines.append(f"tensorboard --logdir {join(path, 'tensorboard')}")
    return "\n".join(lines)


def pbt_text(config: dict, best: TrialRecord | None) -> str:
    """For a PBT sweep: how often trials copied each other, and the best trial's schedule."""
    events = read_lineage(experiment_dir(config))
    exploits = sum(event["event"] == "exploit" for event in events)
    lines = [f"pbt: {exploits} exploits (who copied whom: hypersweep report "
             f"{experiment_location(config)})"]
    if best is not None:
        schedule = "; ".join(f"epoch {entry['epoch']}: {tuned_text(entry['values'])}"
                             for entry in schedule_of(best.trial_id, events))
        lines.append(f"  the best trial's schedule: {schedule}")
    return "\n".join(lines)


def dry_run_text(config: dict, trials: int, at_once: int, nodes: int) -> str:
    """What a dry run adds to the plan: parallelism, epochs per rung and the total estimate."""
    rungs = ", ".join(f"{epochs} epochs: ~{reaching:.0f} trials"
                      for epochs, reaching in expected_trials_per_rung(config, trials))
    total = estimated_epochs(config, trials)
    everything = trials * config["train"]["max_epochs"]
    return "\n".join([
        f"  at once:   {at_once} trials on this cluster ({nodes} node{'s' if nodes != 1 else ''})",
        f"  training:  {rungs}",
        f"  estimate:  ~{total:,.0f} epochs in all ({everything:,} without early stopping)",
        "dry run: nothing was started.",
    ])
