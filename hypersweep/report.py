"""The sweep report: what won, by how much over the defaults, what mattered, how to rerun it.

    hypersweep report runs/<name>            (or: python -m hypersweep.report runs/<name>)

Works on a finished, interrupted or still running experiment, from its JSON files alone: no Ray,
no unpickling. Writes report.md, report.json and report/*.png into the experiment directory, the
best config as conf/experiment/<name>_best.yaml, and the sensitivity ranking to TensorBoard.
"""

import argparse
import json
import os
import shlex
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import yaml

from hypersweep import storage
from hypersweep.diverged import diverged_values
from hypersweep.dotted import set_path
from hypersweep.errors import ExperimentError, HypersweepError
from hypersweep.paths import GROUPS_FILE, REPORT_FILE, SWEEP_FILE, is_uri, join
from hypersweep.records import (
    RANKED,
    TrialRecord,
    baseline_record,
    best_record,
    gain,
    gain_text,
    load_records,
)
from hypersweep.resume import write_json
from hypersweep.sensitivity import importance
from schedulers.pbt import read_lineage, schedule_of
from schedulers.space import Dimension, parse_space
from schedulers.trial_schedulers import asha_rungs, max_iterations

CONF_EXPERIMENTS = Path(__file__).resolve().parent.parent / "conf" / "experiment"
LEADERBOARD_SIZE = 10


def _load_config(experiment: str) -> dict:
    path = os.path.join(experiment, SWEEP_FILE)
    if not os.path.exists(path):
        jobs = sorted(str(sweep.parent) for sweep in Path(experiment).glob(f"*/{SWEEP_FILE}"))
        if jobs:  # a multirun's folder: one experiment per job
            raise ExperimentError(f"report: {experiment} holds the {len(jobs)} experiments of a multirun, "
                                  f"one per job; report each, e.g. {shlex.quote(jobs[0])}")
        raise ExperimentError(f"report: {experiment} holds no sweep ({SWEEP_FILE} is missing); give "
                              f"the experiment directory, e.g. runs/digits_mlp")
    with open(path) as handle:
        return json.load(handle)


def _rung_counts(config: dict, records: list[TrialRecord]) -> list[dict]:
    scheduler = config["scheduler"]
    if scheduler["name"] != "asha":
        return []
    per_step = config["train"]["epochs_per_step"]
    rungs = asha_rungs(max_iterations(config), scheduler["grace_period"],
                       scheduler["reduction_factor"])
    return [{"epochs": rung * per_step,
             "trials": sum(record.epochs >= rung * per_step for record in records)}
            for rung in rungs]


def _pbt_section(experiment: str, best: TrialRecord | None) -> dict | None:
    """Who copied whom (PBT's exploits) and the schedule the best trial trained with."""
    events = read_lineage(experiment)
    if not events:
        return None
    return {"exploits": [e for e in events if e["event"] == "exploit"],
            "best_schedule": schedule_of(best.trial_id, events) if best else []}


def build_report(experiment: str) -> dict:
    """Everything the report says, as plain data (also written as report.json)."""
    config = _load_config(experiment)
    dims = parse_space(config)
    records = load_records(experiment, config)
    mode = config["mode"]
    best, baseline = best_record(records, mode), baseline_record(records, config)
    ranked = sorted((r for r in records if r.status in RANKED and r.metric is not None),
                    key=lambda r: r.metric, reverse=mode == "max")
    failures = Counter(r.error for r in records if r.status == "failed")
    report = {
        "experiment": experiment,
        "name": config["name"],
        "metric": config["metric"],
        "mode": mode,
        "counts": dict(Counter(r.status for r in records)),
        "trials": len(records),
        "leaderboard": [asdict(r) for r in ranked[:LEADERBOARD_SIZE]],
        "best": asdict(best) if best else None,
        "baseline": asdict(baseline) if baseline else None,
        "gain": gain(best, baseline, mode),  # positive is better, in either mode
        "failures": [{"error": error, "trials": count} for error, count in failures.most_common()],
        "rungs": _rung_counts(config, records),
        "pbt": _pbt_section(experiment, best),
        "sensitivity": importance(records, dims, mode, seed=config["seed"]),
        "diverged": diverged_values(records, dims),
    }
    report["kinds"] = _by_kind(dims, report["sensitivity"])
    return report


def _by_kind(dims: list[Dimension], sensitivity: list[dict]) -> list[dict]:
    """The tuned hyperparameters grouped by kind, with the share of importance each kind got."""
    scores = {entry["name"]: entry["score"] for entry in sensitivity}
    groups: dict[str, list[Dimension]] = {}
    for dim in dims:
        groups.setdefault(dim.kind or "unspecified", []).append(dim)
    return [{"kind": kind, "hyperparameters": [d.path for d in members],
             "conditional": [d.path for d in members if d.when],
             "importance": sum(scores.get(d.path, 0.0) for d in members) if scores else None}
            for kind, members in groups.items()]


def export_best(experiment: str, report: dict, conf_dir: Path) -> Path | None:
    """Write the best trial as an experiment preset that retrains exactly that trial."""
    best = report["best"]
    if best is None:
        return None
    config = _load_config(experiment)
    groups_path = os.path.join(experiment, GROUPS_FILE)
    groups = json.load(open(groups_path)) if os.path.exists(groups_path) else {}
    name = f"{config['name']}_best"
    # The sweep's whole config with the best values at their paths, as one trial: the first trial
    # of a sweep runs the config's own values, and the trial seed follows from seed + values.
    preset = {key: value for key, value in config.items()
              if key not in ("cluster", "storage_path", "resume", "resume_failed")}
    for path, value in best["tuned"].items():
        set_path(preset, path, value)
    schedule = (report["pbt"] or {}).get("best_schedule") or []
    if schedule:
        # PBT's best trial: start from its lineage's first values and switch as it did.
        for path, value in schedule[0]["values"].items():
            set_path(preset, path, value)
        preset["pbt_schedule"] = schedule[1:]
    preset.update(name=name, num_samples=1)
    preset["scheduler"] = {"name": "fifo"}
    preset["train"]["max_epochs"] = best["epochs"]
    defaults = [{f"override /{group}": option} for group, option in sorted(groups.items())
                if group in ("model", "data", "search")]
    header = (f"# @package _global_\n# The best trial ({best['trial_id']}) of sweep {config['name']}: "
              f"{report['metric']} {best['metric']:.4f} after {best['epochs']} epochs.\n"
              f"#   python launch.py experiment={name}\n")
    conf_dir.mkdir(parents=True, exist_ok=True)
    target = conf_dir / f"{name}.yaml"
    body = yaml.safe_dump({"defaults": defaults, **preset} if defaults else preset, sort_keys=False)
    target.write_text(header + body)
    return target


def _value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(report: dict, images: dict[str, str], best_file: Path | None, command: str) -> str:
    """The report as Markdown, with the pictures embedded."""
    metric, best, baseline = report["metric"], report["best"], report["baseline"]
    lines = [f"# Sweep report: {report['name']}", ""]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report["counts"].items()))
    lines += [f"{report['trials']} trials: {counts}.", ""]
    if best:
        lines += ["## Best against the defaults", "",
                  f"| | trial | {metric} | epochs | test_acc |", "|---|---|---|---|---|"]
        for label, record in (("best", best), ("baseline (defaults)", baseline)):
            if record:
                test = _value(record["test_acc"]) if record["test_acc"] is not None else ""
                shown = _value(record["metric"]) if record["metric"] is not None else record["status"]
                lines.append(f"| {label} | {record['trial_id']} | {shown} | {record['epochs']} | {test} |")
        if report["gain"] is not None:
            gained = gain_text(report["gain"], report["mode"], metric)
            lines += ["", f"**{gained[0].upper()}{gained[1:]}** over the defaults."]
        lines += ["", "Best config: " + ", ".join(f"`{k}={_value(v)}`" for k, v in best["tuned"].items()),
                  "", f"Retrain it: `{command}` ({best_file})" if best_file else "", ""]
    lines += _kinds_markdown(report["kinds"])
    if report["sensitivity"]:
        lines += ["## Which hyperparameters mattered", "",
                  "| hyperparameter | kind | importance |", "|---|---|---|"]
        lines += [f"| {e['name']} | {e['kind']} | {e['score']:.3f} |" for e in report["sensitivity"]]
        lines += ["", "Random-forest permutation importance of each hyperparameter on the trials' best "
                  f"{metric} (see hypersweep/sensitivity.py for the method and its caveats).", ""]
    lines += ["## Leaderboard", "", f"| trial | {metric} | epochs | status | tuned values |",
              "|---|---|---|---|---|"]
    for record in report["leaderboard"]:
        tuned = ", ".join(f"{k}={_value(v)}" for k, v in record["tuned"].items())
        lines.append(f"| {record['trial_id']} | {record['metric']:.4f} | {record['epochs']} | "
                     f"{record['status']} | {tuned} |")
    if report["diverged"]:
        lines += _diverged_markdown(report)
    if report["rungs"]:
        lines += ["", "## ASHA rungs", "", "| rung (epochs) | trials that reached it |", "|---|---|"]
        lines += [f"| {rung['epochs']} | {rung['trials']} |" for rung in report["rungs"]]
    if report["pbt"]:
        lines += _pbt_markdown(report["pbt"])
    if report["failures"]:
        lines += ["", "## Failures by cause", ""]
        lines += [f"- {f['trials']} x `{f['error']}`" for f in report["failures"]]
    lines += [""] + [f"![{title}]({path})" for title, path in images.items()]
    return "\n".join(lines) + "\n"


def _diverged_markdown(report: dict) -> list[str]:
    counts = report["counts"]
    trained = sum(counts.get(status, 0) for status in RANKED)
    said = (f"Their values beside those of the {trained} trials that trained; in bold where the two "
            f"do not overlap, a region the next sweep can leave out." if trained else
            "No trial trained: narrow the space towards the defaults (the learning rate first).")
    lines = ["", "## Diverged trials", "",
             f"{counts['diverged']} of {report['trials']} trials diverged: their loss stopped being "
             f"finite, or stayed at chance. {said}",
             "", "| hyperparameter | diverged | trained |", "|---|---|---|"]
    for row in report["diverged"]:
        name = f"**{row['name']}**" if row["apart"] else row["name"]
        lines.append(f"| {name} | {row['diverged']} | {row['trained']} |")
    return lines


def _kinds_markdown(kinds: list[dict]) -> list[str]:
    lines = ["## Hyperparameters by kind", "", "| kind | hyperparameters | importance |",
             "|---|---|---|"]
    for group in kinds:
        names = ", ".join(f"{name} (conditional)" if name in group["conditional"] else name
                          for name in group["hyperparameters"])
        share = f"{group['importance']:.2f}" if group["importance"] is not None else ""
        lines.append(f"| {group['kind']} | {names} | {share} |")
    return lines + ["", "Conditional hyperparameters count only in the trials where their condition "
                    "held, and are left out of the importance ranking.", ""]


def _changes(before: dict, after: dict) -> str:
    return ", ".join(f"{path} {_value(before.get(path))} -> {_value(value)}"
                     for path, value in after.items() if before.get(path) != value) or "no change"


def _pbt_markdown(pbt: dict) -> list[str]:
    lines = ["", "## PBT lineage", "",
             f"{len(pbt['exploits'])} exploits: at a perturbation a bottom trial copied a top trial's "
             "checkpoint (weights, optimizer state, epoch) and perturbed the copied values.", "",
             "| epoch | trial | copied | its epoch | values (copied -> explored) |",
             "|---|---|---|---|---|"]
    lines += [f"| {e['epoch']} | {e['trial_id']} | {e['donor']} | {e['donor_epoch']} | "
              f"{_changes(e['donor_values'], e['after'])} |" for e in pbt["exploits"]]
    if pbt["best_schedule"]:
        lines += ["", "The best trial's schedule (what its weights were trained with, through "
                  "the trials it copied):", "", "| from epoch | values |", "|---|---|"]
        lines += [f"| {entry['epoch']} | " + ", ".join(
            f"{path}={_value(value)}" for path, value in entry["values"].items()) + " |"
            for entry in pbt["best_schedule"]]
    return lines


def short_text(report: dict, command: str) -> str:
    """The few lines printed to the console."""
    metric, best, baseline = report["metric"], report["best"], report["baseline"]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report["counts"].items()))
    lines = [f"{report['name']}: {report['trials']} trials ({counts})"]
    if best:
        lines.append(f"best {best['trial_id']}: {metric} {best['metric']:.4f}"
                     + (f"; defaults {baseline['metric']:.4f}, "
                        f"{gain_text(report['gain'], report['mode'], metric)}"
                        if report["gain"] is not None else ""))
    apart = [row for row in report["diverged"] if row["apart"]]
    if apart:
        lines.append("diverged apart from the trials that trained: " + "; ".join(
            f"{row['name']} {row['diverged']} (trained: {row['trained']})" for row in apart))
    if report["sensitivity"]:
        lines.append("mattered most: " + ", ".join(
            f"{e['name']} {e['score']:.2f}" for e in report["sensitivity"][:4]))
    if best:
        lines.append(f"retrain the best: {command}")
    return "\n".join(lines)


def _tensorboard(experiment: str, report: dict, image: str | None) -> None:
    import matplotlib.image
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(os.path.join(experiment, "tensorboard", "report"))
    writer.add_text("kinds", "\n".join(_kinds_markdown(report["kinds"])))
    if report["sensitivity"]:
        table = "\n".join(["| hyperparameter | kind | importance |", "|---|---|---|"]
                          + [f"| {e['name']} | {e['kind']} | {e['score']:.3f} |"
                             for e in report["sensitivity"]])
        writer.add_text("sensitivity", table)
    if image:
        writer.add_image("sensitivity", matplotlib.image.imread(image)[..., :3], dataformats="HWC")
    writer.close()


# What write_report writes into the experiment.
REPORT_FILES = [REPORT_FILE, "report.md", "report", "tensorboard/report"]


def write_report(experiment: str, conf_dir: Path = CONF_EXPERIMENTS) -> tuple[dict, str]:
    """Build the report and write every file; returns it and the console text."""
    from hypersweep import plots

    experiment = os.path.abspath(experiment)
    report = build_report(experiment)
    config = _load_config(experiment)
    records = load_records(experiment, config)
    figures = os.path.join(experiment, "report")
    os.makedirs(figures, exist_ok=True)
    images = {"best so far": plots.best_so_far(records, report["metric"], report["mode"],
                                               os.path.join(figures, "best_so_far.png"))}
    best = best_record(records, report["mode"])
    if best is not None:
        images["best trial: metric and learning rate"] = plots.best_trial_curves(
            best, report["metric"], os.path.join(figures, "best_trial.png"))
    if report["sensitivity"]:
        images["sensitivity"] = plots.sensitivity_bars(report["sensitivity"],
                                                       os.path.join(figures, "sensitivity.png"))
        top = report["sensitivity"][0]["name"]
        dims: dict[str, Dimension] = {d.path: d for d in parse_space(config)}
        images[f"{report['metric']} against {top}"] = plots.metric_against(
            records, top, report["metric"], dims[top].log, os.path.join(figures, "top_hyperparameter.png"))
    best_file = export_best(experiment, report, conf_dir)
    command = f"python launch.py experiment={config['name']}_best"
    if best_file and conf_dir.resolve() != CONF_EXPERIMENTS:
        command += f" 'hydra.searchpath=[file://{conf_dir.resolve().parent}]'"  # from any directory
    report["best_config_file"] = str(best_file) if best_file else None
    report["retrain_command"] = command
    relative = {title: os.path.relpath(path, experiment) for title, path in images.items()}
    write_json(os.path.join(experiment, REPORT_FILE), report)
    with open(os.path.join(experiment, "report.md"), "w") as handle:
        handle.write(markdown(report, relative, best_file, command))
    _tensorboard(experiment, report, images.get("sensitivity"))
    return report, short_text(report, command)


def main(argv: list[str] | None = None) -> int:
    """`hypersweep report EXPERIMENT [--conf-dir DIR]`; EXPERIMENT is a directory or a URI."""
    parser = argparse.ArgumentParser(prog="hypersweep report", description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="the experiment: a directory such as runs/digits_mlp, "
                                           "or a URI such as s3://bucket/runs/digits_mlp")
    parser.add_argument("--conf-dir", type=Path, default=CONF_EXPERIMENTS,
                        help="where to write <name>_best.yaml: a folder named experiment, "
                             "as Hydra's config group is (default: conf/experiment)")
    args = parser.parse_args(argv)
    if args.conf_dir.name != CONF_EXPERIMENTS.name:  # Hydra finds a preset only in that group
        print(f"error: --conf-dir: {args.conf_dir} is not named {CONF_EXPERIMENTS.name}, so "
              f"experiment=NAME_best would not find the preset written there; give "
              f"{args.conf_dir / CONF_EXPERIMENTS.name}", file=sys.stderr)
        return 2
    location = args.experiment
    try:
        # An experiment on a URI is reported from its local copy, and the report uploaded.
        experiment = storage.pull(location) if is_uri(location) else location
        _, text = write_report(experiment, args.conf_dir)
        if is_uri(location):
            storage.push(location, REPORT_FILES)
    except HypersweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(text)
    where = join(location, "report.md") if is_uri(location) else os.path.join(
        os.path.abspath(location), "report.md")
    print(f"report: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
