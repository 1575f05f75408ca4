"""hypersweep's entry point: compose -> validate -> connect Ray -> fit or resume -> report.

    python launch.py                                   # the default sweep (digits MLP, TPE, ASHA)
    python launch.py experiment=digits_cnn num_samples=64
    python launch.py --cfg job                         # print the composed config; run nothing
    python launch.py -m scheduler=asha,fifo            # one Tune experiment per Hydra job
"""

import os
import signal
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from hypersweep.config import to_plain, validate
from hypersweep.errors import HypersweepError

EXIT_INTERRUPTED = 130  # what shells report for a run ended by Ctrl-C


def _sigterm_as_ctrl_c(signum: int, frame: object) -> None:
    # Ray Tune stops gracefully and saves its state on SIGINT; give SIGTERM (a scheduler or
    # `kill`) the same clean stop.
    os.kill(os.getpid(), signal.SIGINT)


def _place_experiment(config: dict) -> None:
    """Make storage_path absolute; in a Hydra multirun, give each job its own experiment."""
    config["storage_path"] = os.path.abspath(config["storage_path"])
    hydra_config = HydraConfig.get() if HydraConfig.initialized() else None
    if hydra_config is not None and hydra_config.mode == RunMode.MULTIRUN:
        config["storage_path"] = os.path.join(config["storage_path"], config["name"])
        config["name"] = hydra_config.job.override_dirname or str(hydra_config.job.num)


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _group_choices() -> dict[str, str]:
    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    return {group: str(option) for group, option in choices.items() if not group.startswith("hydra")}


def _dry_run(config: dict, dims: list) -> int:
    """Print what the sweep would do on the current cluster, and start no trial."""
    from hypersweep.cluster import alive_nodes, connect
    from hypersweep.experiment import planned_trials
    from hypersweep.preflight import concurrent_trials, local_nodes, trial_request
    from hypersweep.summary import dry_run_text

    if config["cluster"]["address"] == "local":
        nodes = local_nodes(config["cluster"])
    else:
        with connect(config["cluster"]):
            nodes = alive_nodes()
    at_once = concurrent_trials(trial_request(config["resources"]), nodes, config["max_concurrent"])
    print(dry_run_text(config, planned_trials(config, dims), at_once, len(nodes)), flush=True)
    return 0


def sweep(config: dict) -> int:
    """Validate a plain config, run its sweep and print the outcome; returns the exit code."""
    dims = validate(config)
    # Imported here so that --help, --cfg and config errors never pay for Ray and torch.
    from hypersweep import experiment
    from hypersweep.cluster import connect
    from hypersweep.preflight import check_cluster
    from hypersweep.records import baseline_record, best_record, save_summary
    from hypersweep.resume import resume_command, should_resume
    from hypersweep.summary import outcome_text, plan_text
    from trainables.trainable import experiment_dir

    print(plan_text(config, dims), flush=True)
    if config["dry_run"]:
        return _dry_run(config, dims)
    resume = should_resume(config)
    if resume:
        print(f"resuming the sweep in {config['storage_path']}/{config['name']}", flush=True)
    with connect(config["cluster"]) as ray_logs:
        check_cluster(config)
        # After ray.init, which installs a SIGTERM handler of its own that just exits.
        signal.signal(signal.SIGTERM, _sigterm_as_ctrl_c)
        outcome = experiment.run(config, dims, resume, _group_choices())
    records = outcome.records
    best = best_record(records, config["mode"])
    baseline = baseline_record(records, config, dims)
    save_summary(config, experiment_dir(config), records, best, baseline)
    print(outcome_text(config, records, best, baseline), flush=True)
    if ray_logs:
        print(f"ray logs: {ray_logs}", flush=True)
    if outcome.interrupted:
        print(f"interrupted; the state is saved. Resume with: {resume_command(_overrides())}",
              flush=True)
        return EXIT_INTERRUPTED
    return 0 if best is not None else 1


# An absolute path, so the installed `hypersweep` console script finds conf/ from any directory.
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conf")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    """Run one sweep per Hydra job; a config problem ends it with one line and exit code 2."""
    try:
        config = to_plain(cfg)
        _place_experiment(config)
        code = sweep(config)
    except HypersweepError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
