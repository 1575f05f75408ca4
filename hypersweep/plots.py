"""The report's pictures, as PNG files (matplotlib, no display needed)."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hypersweep.records import RANKED, TrialRecord  # noqa: E402


def best_so_far(records: list[TrialRecord], metric: str, mode: str, path: str) -> str:
    """The best metric found after each trial, in the order the trials were created."""
    ordered = sorted(records, key=lambda r: _start_time(r))
    best, curve, points = None, [], []
    for index, record in enumerate(ordered, start=1):
        value = record.metric if record.status in RANKED else None
        if value is not None and math.isfinite(value):
            points.append((index, value))
            if best is None or (value > best) == (mode == "max"):
                best = value
        curve.append(best)
    figure, axes = plt.subplots(figsize=(6, 3.5))
    if points:
        axes.scatter(*zip(*points, strict=True), s=12, alpha=0.5, label="trial")
    axes.step(range(1, len(curve) + 1), curve, where="post", color="C1", label="best so far")
    axes.set(xlabel="trial", ylabel=metric, title=f"best {metric} so far")
    axes.legend()
    return _save(figure, path)


def sensitivity_bars(ranking: list[dict], path: str) -> str:
    """Horizontal bars of each hyperparameter's importance, labelled with its kind."""
    figure, axes = plt.subplots(figsize=(6, 0.45 * max(len(ranking), 2) + 1))
    names = [f"{entry['name']} ({entry['kind']})" for entry in reversed(ranking)]
    axes.barh(names, [entry["score"] for entry in reversed(ranking)], color="C0")
    axes.set(xlabel="importance (share of the total)", title="which hyperparameters mattered")
    return _save(figure, path)


def metric_against(records: list[TrialRecord], name: str, metric: str, log: bool, path: str) -> str:
    """Each trial's best metric against one hyperparameter's value."""
    scored = [r for r in records if r.status in RANKED and r.best_metric is not None
              and name in r.tuned]
    figure, axes = plt.subplots(figsize=(6, 3.5))
    values = [r.tuned[name] for r in scored]
    if values and all(isinstance(v, int | float) for v in values):
        axes.scatter(values, [r.best_metric for r in scored], s=14)
        if log:
            axes.set_xscale("log")
    else:
        labels = sorted({str(v) for v in values})
        axes.scatter([labels.index(str(v)) for v in values], [r.best_metric for r in scored], s=14)
        axes.set_xticks(range(len(labels)), labels)
    axes.set(xlabel=name, ylabel=f"best {metric}", title=f"{metric} against {name}")
    return _save(figure, path)


def best_trial_curves(record: TrialRecord, metric: str, path: str) -> str:
    """The best trial's metric and learning rate (its schedule, PBT's changes) per epoch."""
    from hypersweep.records import trial_rows

    rows = [row for row in trial_rows(record.path) if "epoch" in row]
    rates = [(row["epoch"], row["lr"]) for row in rows
             if isinstance(row.get("lr"), int | float) and row["lr"] > 0]
    figure, axes = plt.subplots(2 if rates else 1, 1, figsize=(6, 5 if rates else 3),
                                sharex=True, squeeze=False)
    top = axes[0][0]
    top.plot([r["epoch"] for r in rows], [r.get(metric) for r in rows], marker=".")
    top.set(ylabel=metric, title=f"best trial {record.trial_id}", xlabel="epoch")
    if rates:  # a trainable that reports its learning rate: show the schedule it trained with
        bottom = axes[1][0]
        bottom.plot(*zip(*rates, strict=True), marker=".", color="C1")
        bottom.set(xlabel="epoch", ylabel="learning rate", yscale="log")
    return _save(figure, path)


def _start_time(record: TrialRecord) -> float:
    from hypersweep.records import trial_rows

    rows = trial_rows(record.path)
    return rows[0].get("timestamp", 0) - rows[0].get("time_this_iter_s", 0) if rows else math.inf


def _save(figure, path: str) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
