"""hypersweep's entry point: compose -> validate -> connect Ray -> fit or resume -> report.

    python launch.py                                   # the default sweep (digits MLP, TPE, ASHA)
    python launch.py experiment=digits_cnn num_samples=64
    python launch.py --cfg job                         # print the composed config; run nothing
    python launch.py -m scheduler=asha,fifo            # one Tune experiment per Hydra job
"""

import atexit
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from hypersweep.cli import versions_text
from hypersweep.config import to_plain
from hypersweep.early_interrupt import ending_at_once_on_ctrl_c
from hypersweep.errors import HypersweepError
from hypersweep.hydra_errors import hydra_errors_in_one_line
from hypersweep.paths import is_uri, join, local_copy, uri_credentials
from hypersweep.ray_end import end_embedded_ray_with_process
from hypersweep.resume import RESUMABLE_CHANGES
from hypersweep.sweep import sweep

_process_ends_after_main = False  # set by run(), which ends the process once main() returns


# Overrides that say where and how a multirun's jobs run, not what they run: left out of a job's
# experiment name, so that the same multirun resumes with them changed, as a single sweep does.
NOT_IN_JOB_NAMES = (*RESUMABLE_CHANGES, "name", "dry_run")


def _job_name(task_overrides: list[str]) -> str:
    """A multirun job's experiment name: its overrides of what the sweep runs, sorted by key, as
    `key=value` joined by commas; a '/' in a value becomes %2F, since a name is one folder."""
    kept = []
    for override in task_overrides:
        key = override.split("=", 1)[0].lstrip("~+")
        if not any(key == skip or key.startswith(f"{skip}.") for skip in NOT_IN_JOB_NAMES):
            kept.append((key, override.replace("/", "%2F")))
    return ",".join(override for _, override in sorted(kept))


def _place_experiment(config: dict) -> None:
    """Make storage_path absolute; in a Hydra multirun, give each job its own experiment."""
    if not is_uri(config["storage_path"]):
        config["storage_path"] = os.path.abspath(config["storage_path"])
    hydra_config = HydraConfig.get() if HydraConfig.initialized() else None
    if hydra_config is not None and hydra_config.mode == RunMode.MULTIRUN:
        config["storage_path"] = join(config["storage_path"], config["name"])
        config["name"] = _job_name(list(hydra_config.overrides.task)) or str(hydra_config.job.num)


def _last_job_of_process() -> bool:
    """Whether the process ends right after this Hydra job: run() called main(), and Hydra runs
    one job (a multirun runs its jobs one after another in this process, each with its own Ray)."""
    return (_process_ends_after_main and HydraConfig.initialized()
            and HydraConfig.get().mode == RunMode.RUN)


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _group_choices() -> dict[str, str]:
    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    return {group: str(option) for group, option in choices.items() if not group.startswith("hydra")}


def _launch_log_root(storage_path: str, name: str) -> str:
    """Where Hydra keeps its launch records (`hydra/` in conf/config.yaml): the experiment folder,
    or for a URI its local copy, whence they are uploaded (a local folder named 's3:' otherwise).

    Made here, since Hydra makes its run folder in it before any of hypersweep's code runs, and a
    folder it cannot make ended the launch with a page of tracebacks: now one line, exit code 2.
    """
    location = join(storage_path, name)
    root = local_copy(location) if is_uri(location) else location
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as error:
        print(f"error: storage_path: cannot make the experiment folder {os.path.abspath(root)} "
              f"({error.strerror}); choose a folder you can write", file=sys.stderr)
        sys.exit(2)
    return root


def _launch_records(storage_path: str) -> str | None:
    """Hydra's folder for the composed config and overrides of a launch (`hydra.output_subdir`);
    none for a storage URI that carries credentials, which validate() then refuses."""
    return None if uri_credentials(storage_path) else ".hydra"


OmegaConf.register_new_resolver("launch_log_root", _launch_log_root, replace=True)
OmegaConf.register_new_resolver("launch_records", _launch_records, replace=True)

# An absolute path, so the installed `hypersweep` console script finds conf/ from any directory.
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conf")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    """Run one sweep per Hydra job; a config problem ends it with one line and exit code 2."""
    try:
        config = to_plain(cfg)
        _place_experiment(config)
        if _last_job_of_process():
            end_embedded_ray_with_process()
        code = sweep(config, _overrides(), _group_choices())
    except HypersweepError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if code:
        sys.exit(code)


def run() -> None:
    """The command line: run `main`, then end the process without the interpreter's teardown.

    Once the exit handlers have run (logs flushed), what is left is freeing every module and
    torch's and Ray's native state one by one: about a second after the sweep has printed its
    outcome, for nothing, since the process ends anyway. For the same reason an embedded Ray is
    left to end with the process (hypersweep/ray_end.py).
    """
    if sys.argv[1:] in (["--version"], ["-V"]):  # hypersweep's, not only Hydra's
        print(versions_text())
        sys.exit(0)
    global _process_ends_after_main
    _process_ends_after_main = True
    try:
        with hydra_errors_in_one_line(), ending_at_once_on_ctrl_c():
            main()
        code = 0
    except SystemExit as done:
        code = done.code
    if isinstance(code, str):  # sys.exit("message"): Python prints it and exits with 1
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    run()
