"""Deciding whether a launch starts a sweep or resumes one, and keeping what was there safe.

An experiment directory holds `sweep.json` (the plain config it started with) and
`versions.json` (the versions it ran under). A launch whose config matches resumes it, one that
only raises num_samples grows it (TPE and random search); anything else is refused unless the
user asks (`resume=overwrite` moves the old files aside, never deletes).
An experiment on a URI is read from its local copy, downloaded first (hypersweep/storage.py).
"""

import json
import os
import platform
import shlex
import time
from importlib import metadata
from typing import Any

from hypersweep import __version__, storage
from hypersweep.config_diff import describe, differences, undoing_overrides, with_target_defaults
from hypersweep.errors import ExperimentError
from hypersweep.paths import (
    GROUPS_FILE,
    REPLACED_PREFIX,
    SWEEP_FILE,
    VERSIONS_FILE,
    experiment_dir,
    experiment_location,
    is_uri,
    join,
    stays_in_place,
)
from schedulers.space import parse_space, planned_trials

# Keys that may change between the launch that starts a sweep and the one that resumes it.
RESUMABLE_CHANGES = ("cluster", "storage_path", "resume", "resume_failed", "allow_version_change")


def current_versions() -> dict[str, str]:
    """The versions that decide whether Ray's saved experiment state can be read back."""
    import ray

    # torch's from its package metadata: importing it would cost the driver a second and 180 MiB.
    return {"hypersweep": __version__, "ray": ray.__version__, "torch": metadata.version("torch"),
            "python": platform.python_version()}


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def write_json(path: str, data: object) -> None:
    """Write JSON atomically: a crash never leaves a half-written file behind."""
    with open(path + ".tmp", "w") as handle:
        json.dump(data, handle, indent=2, default=str)
    os.replace(path + ".tmp", path)


def _save_own_files(config: dict, files: dict[str, object]) -> None:
    """Write hypersweep's own files (name -> data) into the experiment, each whole, and upload
    them when the experiment is on a URI."""
    path = experiment_dir(config)
    os.makedirs(path, exist_ok=True)
    for name, data in files.items():
        write_json(os.path.join(path, name), data)
    if is_uri(config["storage_path"]):
        storage.push(experiment_location(config), list(files))


def record_start(config: dict, groups: dict[str, str]) -> None:
    """Save the config, Hydra's group choices and the versions of a new sweep."""
    _save_own_files(config, {SWEEP_FILE: config, GROUPS_FILE: groups, VERSIONS_FILE: current_versions()})


def _comparable(config: dict) -> dict:
    return {key: value for key, value in config.items() if key not in RESUMABLE_CHANGES}


def _move_aside(config: dict) -> str:
    """Move a sweep's files into replaced-<time>/ in its experiment, keeping Hydra's launch
    records; returns where they went."""
    name = time.strftime(f"{REPLACED_PREFIX}%Y-%m-%d_%H-%M-%S")
    location = experiment_location(config)
    if is_uri(location):
        storage.move_aside(location, name)
        storage.pull(location)
        return join(location, name)
    path = experiment_dir(config)
    aside = os.path.join(path, name)
    os.makedirs(aside)
    for entry in os.listdir(path):
        if not stays_in_place(entry):
            os.replace(os.path.join(path, entry), os.path.join(aside, entry))
    return aside


def _read_saved(path: str) -> Any:
    """One of the experiment's saved JSON files; a one-line error when it cannot be read."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ExperimentError(f"resume: {path} cannot be read ({error}); repair it, or resume=overwrite "
                              f"to move the experiment aside and start again") from None


def _check_versions(path: str, config: dict) -> None:
    saved_path = os.path.join(path, VERSIONS_FILE)
    if config.get("allow_version_change") or not os.path.exists(saved_path):
        return
    saved = _read_saved(saved_path)
    now = current_versions()
    for package in ("ray", "python"):
        if _minor(saved[package]) != _minor(now[package]):
            raise ExperimentError(
                f"resume: {experiment_location(config)} was started under {package} "
                f"{saved[package]} and this is {now[package]}; Ray's saved state does not load "
                f"across {package} versions. Resume with {package} {_minor(saved[package])}, or force it "
                f"with allow_version_change=true")


def _group_changes(path: str, groups: dict[str, str]) -> list[tuple[str, Any, Any]]:
    """The config groups chosen otherwise than when the sweep started (`model: mlp -> cnn`), which
    explain the differences of their keys better; none when either choice is unknown."""
    saved_path = os.path.join(path, GROUPS_FILE)
    if not groups or not os.path.exists(saved_path):
        return []
    saved = _read_saved(saved_path)
    return [(group, saved[group], choice) for group, choice in sorted(_comparable(groups).items())
            if saved.get(group, choice) != choice]


def _check_can_grow(config: dict, saved_samples: int) -> None:
    """Refuse to add trials to a PBT sweep: its population trains side by side from the start. (A
    grid never repeats: the config check refuses num_samples above 1 for it.)"""
    undo = f"resume it with num_samples={saved_samples}, or start a new sweep with name=..."
    if config["scheduler"]["name"] == "pbt":
        raise ExperimentError(f"num_samples: a PBT population cannot grow once it trains "
                              f"({saved_samples} -> {config['num_samples']}); {undo}")


def _grow(saved: dict, config: dict) -> None:
    """Record a sweep's new, larger num_samples in its saved config `saved`, so that later launches
    resume it as it is now."""
    more = planned_trials(config, parse_space(config)) // config["num_samples"] \
        * (config["num_samples"] - saved["num_samples"])  # each sample runs the grid, if any
    print(f"num_samples {saved['num_samples']} -> {config['num_samples']}: the sweep runs "
          f"{more} trials more", flush=True)
    _save_own_files(config, {SWEEP_FILE: {**saved, "num_samples": config["num_samples"]}})


def _check_same_sweep(path: str, saved: dict, config: dict, groups: dict[str, str]) -> bool:
    """Refuse a launch whose config differs from the saved sweep's (`saved`), saying how to undo
    it. Returns whether the launch grows the sweep: raising num_samples is the one change allowed."""
    found = differences(with_target_defaults(_comparable(saved), config), _comparable(config))
    if not found:
        return False
    if [key for key, _, _ in found] == ["num_samples"] and config["num_samples"] > saved["num_samples"]:
        _check_can_grow(config, saved["num_samples"])
        return True
    found = _group_changes(path, groups) or found
    fixes = undoing_overrides(found)
    raise ExperimentError(
        f"name: {experiment_location(config)} holds a sweep with other settings ({describe(found)}); "
        + (f"resume it with {fixes}, " if fixes else "")
        + "choose a new name=..., or resume=overwrite to move it aside")


def should_resume(config: dict, groups: dict[str, str]) -> bool:
    """True to resume the sweep in the experiment directory, False to start a new one.

    `groups` are Hydra's group choices ({} when unknown): a refusal names a group chosen otherwise
    rather than every key it sets.

    Raises ExperimentError when the directory holds a sweep this launch must not touch.
    """
    mode = config["resume"]
    location = experiment_location(config)
    path = storage.pull(location) if is_uri(location) else experiment_dir(config)
    saved_path = os.path.join(path, SWEEP_FILE)
    if not os.path.exists(saved_path):
        return False
    if mode == "overwrite":
        print(f"resume=overwrite: moved the previous sweep to {_move_aside(config)}", flush=True)
        return False
    if mode == "never":
        raise ExperimentError(f"name: {location} already holds a sweep and resume=never; choose a new "
                              f"name=..., or resume=overwrite to move it aside")
    saved_config = _read_saved(saved_path)
    grows = _check_same_sweep(path, saved_config, config, groups)
    from ray.tune import Tuner  # here: a new sweep starts Ray without waiting for this import

    if not Tuner.can_restore(location):
        raise ExperimentError(f"name: {location} has {SWEEP_FILE} but no Ray Tune state to resume; "
                              f"resume=overwrite moves it aside and starts again")
    _check_versions(path, config)
    if grows:
        _grow(saved_config, config)
    return True


def resume_command(overrides: list[str]) -> str:
    """The command line that resumes this sweep: the same launch, the same overrides."""
    return " ".join(["python launch.py", *(shlex.quote(o) for o in overrides)])
