"""One sweep from a plain, composed config: validate -> connect Ray -> fit or resume -> summary.

launch.py (Hydra) composes the config and calls `sweep`; tests call it directly too.
"""

import importlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hypersweep.arrow_memory import arrow_uses_system_allocator
from hypersweep.config import check_targets, validate
from hypersweep.deferred_imports import defer_unused_imports
from hypersweep.early_interrupt import EXIT_INTERRUPTED
from schedulers.searchers import search_module

PREPARING_NICENESS = 10  # how much lower the preparing thread's CPU priority is (Linux)


def _dry_run(config: dict, dims: list) -> int:
    """Print what the sweep would do on the current cluster, and start no trial.

    It makes the checks a real run makes before its first trial (the data set's, the resources',
    the storage's), so that a preview that passes is a sweep that starts.
    """
    from hypersweep.cluster import alive_nodes, connect
    from hypersweep.preflight import (
        check_cluster,
        check_resources,
        concurrent_trials,
        local_nodes,
        trial_request,
    )
    from hypersweep.summary import dry_run_text
    from schedulers.space import planned_trials

    _prepare(config)
    request = trial_request(config["resources"])
    if config["cluster"]["address"] == "local":
        nodes = local_nodes(config["cluster"])
        check_resources(request, nodes)  # one machine: its disk is every node's
    else:
        with connect(config["cluster"]):
            nodes = alive_nodes()
            check_cluster(config)
    at_once = concurrent_trials(request, nodes, config["max_concurrent"])
    print(dry_run_text(config, planned_trials(config, dims), at_once, len(nodes)), flush=True)
    return 0


def _prepare(config: dict) -> Any:
    """Check the importable targets, import the search, load the data set."""
    from hypersweep.experiment import load_data

    importlib.import_module(search_module(config["search"]["name"]))
    check_targets(config)
    return load_data(config)


def _lower_thread_priority(increment: int) -> None:
    """Lower the calling thread's CPU priority (its nice value) by `increment`, not the process's.

    Linux gives each thread a nice value of its own; elsewhere this does nothing. Threads and
    processes the thread starts afterwards inherit the lower priority.
    """
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + increment)
    except OSError:  # a sandbox may refuse it; the sweep only starts a little later
        pass


def _prepare_in_background(config: dict) -> Any:
    """`_prepare`, yielding the CPU to the embedded Ray's start, which takes longer and is what
    the first trial waits for. On 2 cores Ray's start-up processes then run first: ray.init
    returned 1.4 s sooner and the first epoch came 1 s sooner (with Ray imported before this
    starts); this now sometimes ends after ray.init, by up to 0.9 s in the runs measured."""
    _lower_thread_priority(PREPARING_NICENESS)
    return _prepare(config)


def _start_preparing(config: dict) -> Callable[[], Any]:
    """Start `_prepare`; the returned function waits for its data set (or its ConfigError).

    Importing Ray Tune, the search and the trainable and loading the data take about as long
    as starting an embedded Ray, which mostly waits on its own processes: they run meanwhile, in
    a thread, and the first trial starts ~2 s sooner (a target whose module exists but lacks
    the name then fails after Ray started). Joining a running cluster is quick: there, they run
    first.
    """
    if config["cluster"]["address"] != "local":
        data = _prepare(config)
        return lambda: data
    # Ray itself first, so that ray.init does not wait for an interpreter the thread keeps busy.
    import ray  # noqa: F401

    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(_prepare_in_background, config)
    pool.shutdown(wait=False)  # the thread ends with its one task
    return future.result


def sweep(config: dict, overrides: list[str], groups: dict[str, str]) -> int:
    """Validate a plain config, run its sweep and print the outcome; returns the exit code.

    `overrides` are the command line's (for the resume command), `groups` Hydra's group choices.
    """
    dims = validate(config, import_targets=False)
    arrow_uses_system_allocator()  # before anything imports pyarrow
    defer_unused_imports()  # before anything imports Ray Tune
    # Imported here so that --help, --cfg and config errors never pay for Ray and torch.
    from hypersweep.launch_lock import held_by_this_launch
    from hypersweep.paths import experiment_dir, experiment_location
    from hypersweep.summary import plan_text

    print(plan_text(config, dims), flush=True)
    if config["dry_run"]:
        return _dry_run(config, dims)
    with held_by_this_launch(experiment_dir(config), experiment_location(config)):
        return _run(config, dims, overrides, groups)


def _run(config: dict, dims: list, overrides: list[str], groups: dict[str, str]) -> int:
    """Start or resume the sweep, run it, save and print the outcome; returns the exit code."""
    from hypersweep import experiment
    from hypersweep.cluster import connect
    from hypersweep.early_interrupt import hand_ctrl_c_to_the_sweep
    from hypersweep.lost_head import telling_when_the_head_is_lost
    from hypersweep.paths import LAUNCH_RECORDS, experiment_dir, experiment_location, is_uri
    from hypersweep.preflight import check_cluster
    from hypersweep.records import baseline_record, best_record, save_summary
    from hypersweep.resume import resume_command, should_resume
    from hypersweep.sigterm import stopping_on_sigterm, without_ray_resume_hint
    from hypersweep.summary import outcome_text, pbt_text

    resume = should_resume(config, groups)
    if resume:
        print(f"resuming the sweep in {experiment_location(config)}", flush=True)
    resume_with = resume_command(overrides)
    prepared = _start_preparing(config)
    with connect(config["cluster"]) as ray_logs:
        data = prepared()
        check_cluster(config)
        hand_ctrl_c_to_the_sweep()
        with (stopping_on_sigterm(resume_with), without_ray_resume_hint(),
              telling_when_the_head_is_lost(resume_with)):
            outcome = experiment.run(config, dims, resume, groups, data)
    records = outcome.records
    best = best_record(records, config["mode"])
    baseline = baseline_record(records, config)
    summary = save_summary(config, experiment_dir(config), records, best, baseline)
    if is_uri(config["storage_path"]):
        from hypersweep import storage

        storage.push(experiment_location(config), [os.path.basename(summary), LAUNCH_RECORDS])
    print(f"\n{outcome_text(config, records, best, baseline)}", flush=True)
    if config["scheduler"]["name"] == "pbt":
        print(pbt_text(config, best), flush=True)
    if ray_logs:
        print(f"ray logs: {ray_logs}", flush=True)
    if outcome.interrupted:
        print(f"interrupted; the state is saved. Resume with: {resume_with}", flush=True)
        return EXIT_INTERRUPTED
    return 0 if best is not None else 1
