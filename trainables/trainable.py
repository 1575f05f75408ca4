"""TorchTrainable: the Ray Tune class trainable that wraps any torch classifier.

One actor runs many trials in turn (`reset_config`), so torch is imported and the data set is
turned into tensors once per actor, not once per trial. Each `step` trains
`train.epochs_per_step` epochs and reports train_loss, val_loss, val_acc, test_acc, lr and epoch.

Per batch: the learning-rate schedule (lr_schedule.py) and augmentation (augment.py); per report:
divergence (a non-finite loss, or a model stuck at chance: `at_chance`), early-stopping patience,
TensorBoard. PBT's explore reaches a running trial through `reset_config` and its exploit through
`load_checkpoint` (live settings: live.py).

The torch side (data tensors, model, optimizer, random streams) is learner.py's Learner, imported
inside the methods that run in the trial processes: the driver imports this module only to hand
TorchTrainable to Ray, and torch would cost it about a second of start-up and 180 MiB.
"""

import hashlib
import json
import math
import os
import posixpath
from typing import TYPE_CHECKING, Any

from ray import tune

from hypersweep.dotted import get_path, set_path
from hypersweep.paths import experiment_location, is_uri, join
from hypersweep.result_log import RESULT_FILE
from schedulers.space import tuned_values, with_inactive_defaults
from trainables.data import SplitData
from trainables.live import LIVE_SETTINGS
from trainables.lr_schedule import lr_factor
from trainables.recovery import furthest_replacement
from trainables.targets import build

if TYPE_CHECKING:
    from trainables.tensorboard import NoBoard, TrialBoard

CHECKPOINT_FILE = "state.pt"
LOG_EVERY_BATCHES = 10  # training loss and learning rate go to TensorBoard this often
# How long a trial runs, how often it reports, when it gives up: none of them shapes its curve.
CURVE_NEUTRAL_SETTINGS = ("max_epochs", "epochs_per_step", "chance_patience")
CHANCE_ACCURACY_FACTOR = 1.5  # accuracy under 1.5x a uniform guess's counts as no better
# A loss within 0.2% of a uniform guess's counts as a guess's: a model that learns nothing drifts a
# few thousandths below it (digits: 2.2995 after 18 epochs at accuracy 0.10), where slow starters
# that went on to learn were 0.015 below it after 3 epochs.
CHANCE_LOSS_TOLERANCE = 0.002


def at_chance(val_loss: float, val_acc: float, classes: int) -> bool:
    """Whether a classifier scores no better than a uniform guess over `classes`: its cross-entropy
    at or above the guess's, ln(classes), less CHANCE_LOSS_TOLERANCE of it, and its accuracy under
    CHANCE_ACCURACY_FACTOR / classes.

    A model that a too-large step has collapsed to one answer scores so (digits: loss 2.30 or
    more, accuracy 0.10) and rarely leaves it; so does one too slow to learn anything in the
    epochs a sweep gives it. The accuracy keeps out a model whose loss is high only because it is
    overconfident where it errs (seen here: loss 2.98 at accuracy 0.80).
    """
    guess = math.log(classes)
    return (val_loss >= guess * (1 - CHANCE_LOSS_TOLERANCE)
            and val_acc < CHANCE_ACCURACY_FACTOR / classes)


def trial_seed(config: dict) -> int:
    """A seed from everything that shapes training: same settings, same curve.

    It leaves out how long the trial runs, how often it reports and when it gives up
    (CURVE_NEUTRAL_SETTINGS), so a retrained best config replays the sweep's trial exactly.
    """
    train = {k: v for k, v in config["train"].items() if k not in CURVE_NEUTRAL_SETTINGS}
    shaping = {"seed": config["seed"], "model": config["model"], "data": config["data"],
               "optim": config["optim"], "train": train}
    key = json.dumps(shaping, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little") & 0x7FFFFFFF


def _recorded_iteration(storage: Any) -> int | None:
    """The last iteration the trial's result.json in the experiment records; None if unknown.
    `storage` is the StorageContext Ray gives the trainable."""
    if storage is None:
        return None
    try:
        with storage.storage_filesystem.open_input_stream(
                posixpath.join(storage.trial_fs_path, RESULT_FILE)) as stream:
            rows = stream.read().decode().splitlines()
        return json.loads(rows[-1])["training_iteration"] if rows else 0
    except (OSError, ValueError, KeyError):
        return None


def _saved_progress(fs: Any, checkpoint_dir: str) -> dict | None:
    """The iteration and training time a checkpoint of this trainable (on the pyarrow filesystem
    `fs`) was saved at; None when it cannot be read (half-written, or saved before these were
    recorded)."""
    from trainables.learner import load_state

    try:
        with fs.open_input_stream(posixpath.join(checkpoint_dir, CHECKPOINT_FILE)) as stream:
            state = load_state(stream.read())
    except Exception:  # a half-written file fails in whatever way torch's reader meets it
        return None
    if "iteration" not in state:
        return None
    return {"iteration": state["iteration"], "time_total": state.get("time_total", 0.0)}


def worst_value(mode: str) -> float:
    """The value a diverged trial reports for the metric, so no search or scheduler prefers it."""
    return -math.inf if mode == "max" else math.inf


def placement() -> dict[str, str]:
    """Where this trial runs: Ray's node, the GPUs Ray assigned and what torch can see of them."""
    import ray

    return {"node_id": ray.get_runtime_context().get_node_id(),
            "gpu_ids": ",".join(str(gpu) for gpu in ray.get_gpu_ids()),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "")}


def _data_key(data_config: dict) -> str:
    return json.dumps(data_config, sort_keys=True, default=str)


def fixed_part(config: dict) -> dict:
    """The config without the live settings: what needs a new model when it changes."""
    fixed = json.loads(json.dumps(config, default=str))
    for path in LIVE_SETTINGS:
        *parents, leaf = path.split(".")
        get_path(fixed, ".".join(parents), {}).pop(leaf, None)
    return fixed


def changing_settings(config: dict) -> list[str]:
    """The settings that change during this trial: PBT's mutable ones, or a replayed schedule's."""
    scheduled = {path for entry in config.get("pbt_schedule") or [] for path in entry["values"]}
    mutable = config["scheduler"].get("mutable") if config["scheduler"]["name"] == "pbt" else []
    return sorted(set(mutable or []) | scheduled)


class TorchTrainable(tune.Trainable):
    """Builds model, optimizer and data from the trial config; trains, reports, checkpoints."""

    LIVE_SETTINGS = LIVE_SETTINGS

    def setup(self, config: dict, data: SplitData):
        from trainables.learner import pick_device, to_tensors, use_threads

        self.device = pick_device()
        use_threads(int(config["resources"]["cpu"]))
        # Data sets by their `data` config: the experiment's own, and any a trial tuned.
        self.datasets = {_data_key(data.source): to_tensors(data, self.device)} if data.source else {}
        self.shared_data = data
        self.board: TrialBoard | NoBoard | None = None
        self.build_error: Exception | None = None
        self._start_trial(with_inactive_defaults(config))

    def _tensors_for(self, config: dict) -> dict[str, Any]:
        """The trial's data set as tensors: the shared one, or its own when it tuned a `data`
        setting."""
        from trainables.learner import to_tensors

        key = _data_key(config["data"])
        if key not in self.datasets:
            loaded = (self.shared_data if not self.shared_data.source
                      else build(config["data"], seed=config["seed"]))
            # Keep the shared set and this trial's own: a tuned fraction makes every trial differ.
            shared = _data_key(self.shared_data.source) if self.shared_data.source else None
            self.datasets = {k: v for k, v in self.datasets.items() if k == shared}
            self.datasets[key] = to_tensors(loaded, self.device)
        return self.datasets[key]

    def _start_trial(self, config: dict) -> None:
        self.running_trial = self.trial_id
        self.epoch, self.batches = 0, 0
        self.diverged, self.failed = False, False
        self.best: float | None = None
        self.since_best = 0  # reports since the metric last improved (early-stopping patience)
        self.reports_at_chance = 0  # in a row, no better than a uniform guess (at_chance)
        self.last_train_loss = math.nan
        # The TensorBoard run opens first, so that even a config that fails to build is listed.
        # Imported here, as the learner is: the driver would spend 0.15 s on TensorBoard's.
        from trainables.tensorboard import NoBoard, TrialBoard

        run = join(experiment_location(config), "tensorboard", self.trial_id)
        if is_uri(run):  # written here, in the trial's working directory, and uploaded
            logdir, upload_to = os.path.join(self.logdir, "tensorboard", self.trial_id), run
        else:
            logdir, upload_to = run, None
        self.board = (TrialBoard(logdir, tuned_values(config), group=self.trial_id, upload_to=upload_to)
                      if config.get("tensorboard", True) else NoBoard())
        try:
            self._build(config)
        except Exception:
            self.failed = True
            self._close_board()
            raise

    def _build(self, config: dict) -> None:
        """A fresh model, optimizer and random streams from the trial's config and seed."""
        from trainables.learner import Learner

        self.settings = config
        tensors = self._tensors_for(config)
        self.classes = tensors["num_classes"]
        self.learner = Learner(config, tensors, self.device, trial_seed(config))

    def reset_config(self, new_config: dict) -> bool:
        """Take the actor's next trial, or new values for the trial it runs (PBT's explore).

        The same trial with only live settings changed keeps its model and optimizer and gets
        the new values written into them; anything else builds anew (a checkpoint, if Ray has
        one for the trial, is loaded next). A config that fails to build raises at the trial's
        first step, not here: Ray files an error in reset_config under the actor's previous trial.
        """
        self.build_error = None
        new_config = with_inactive_defaults(new_config)
        try:
            if self.trial_id != self.running_trial:
                self._close_board()
                self._start_trial(new_config)
            elif fixed_part(new_config) == fixed_part(self.settings):
                self.settings = new_config
                self._apply_live_settings()
            else:
                self._build(new_config)
        except Exception as err:
            self.build_error = err
        return True

    def _lr_at(self, progress: float) -> float:
        """The base rate of the trial's config times its schedule's factor at `progress` epochs."""
        return self.settings["optim"]["lr"] * lr_factor(self.settings["optim"], progress,
                                                        self.settings["train"]["max_epochs"])

    def _apply_live_settings(self) -> None:
        """Write the live settings of `self.settings` into the optimizer and the model."""
        self.learner.set_lr(self._lr_at(self.epoch))
        self.learner.apply_settings(self.settings["optim"], self.settings["model"].get("dropout"))

    def _follow_schedule(self) -> None:
        """Apply the replayed PBT schedule's values for the current epoch, if any."""
        due = [entry for entry in self.settings.get("pbt_schedule") or []
               if entry["epoch"] <= self.epoch]
        if not due:
            return
        settings = json.loads(json.dumps(self.settings))
        for path, value in due[-1]["values"].items():
            set_path(settings, path, value)
        if settings != self.settings:
            self.settings = settings
            self._apply_live_settings()

    def step(self) -> dict[str, Any]:
        try:
            if self.build_error is not None:
                raise self.build_error
            return self._step()
        except Exception:
            self.failed = True
            self._close_board()
            raise

    def _step(self) -> dict[str, Any]:
        train = self.settings["train"]
        if self.epoch >= train["max_epochs"]:
            # Restored from its own end checkpoint: the trial ended, but the driver died before
            # it recorded that. Report the end again; train nothing.
            return self._report(self.last_train_loss)
        with self.learner.own_random_state():
            for _ in range(train["epochs_per_step"]):
                self._follow_schedule()
                train_loss = self._train_epoch()
                self.epoch += 1
                if not math.isfinite(train_loss):
                    break
        self.last_train_loss = train_loss
        return self._report(train_loss)

    def _report(self, train_loss: float) -> dict[str, Any]:
        """Evaluate, update best and patience, log to TensorBoard: the step's result."""
        train = self.settings["train"]
        val_loss, val_acc = self._evaluate("val")
        _, test_acc = self._evaluate("test")
        result = {"train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc,
                  "test_acc": test_acc, "lr": self.learner.lr,
                  "epoch": self.epoch, **placement()}
        self.diverged = (not (math.isfinite(train_loss) and math.isfinite(val_loss))
                         or self._stuck_at_chance(val_loss, val_acc))
        metric, mode = self.settings["metric"], self.settings["mode"]
        measured = dict(result)  # what TensorBoard shows; Tune gets the worst metric when diverged
        if self.diverged:
            result[metric] = worst_value(mode)
        elif self.best is None or (result[metric] > self.best if mode == "max"
                                   else result[metric] < self.best):
            self.best, self.since_best = result[metric], 0
        else:
            self.since_best += 1
        # The values in force now, as curves: PBT's schedule shows as it was found.
        changing = {f"hparam/{path}": get_path(self.settings, path, None)
                    for path in changing_settings(self.settings)}
        self.board.scalars({**measured, f"best_{metric}": self.best, **changing}, step=self.epoch)
        result["diverged"] = self.diverged
        patience = train.get("patience", 0)
        # Under PBT a diverged member goes on, scoring the worst, to its next perturbation, where
        # PBT copies a top member's weights and values over it: the population keeps its size.
        ends_diverged = self.diverged and self.settings["scheduler"]["name"] != "pbt"
        result["done"] = (ends_diverged or self.epoch >= train["max_epochs"]
                          or bool(patience) and self.since_best >= patience)
        return result

    def _stuck_at_chance(self, val_loss: float, val_acc: float) -> bool:
        """Count this report if it scores no better than a uniform guess (at_chance); True once
        train.chance_patience reports in a row have. Never under PBT, which copies a better member
        over one that scores badly, nor for a sweep saved before the setting existed (its trials'
        configs, restored by Ray, lack it): it resumes as it ran."""
        stuck = at_chance(val_loss, val_acc, self.classes)
        self.reports_at_chance = self.reports_at_chance + 1 if stuck else 0
        patience = self.settings["train"].get("chance_patience", 0)
        if self.settings["scheduler"]["name"] == "pbt" or not patience:
            return False
        return self.reports_at_chance >= patience

    def _train_epoch(self) -> float:
        def on_batch(loss: float) -> None:
            self.batches += 1
            if self.batches % LOG_EVERY_BATCHES == 0:
                self.board.scalars({"train/loss_step": loss, "train/lr_step": self.learner.lr},
                                   step=self.batches)

        return self.learner.train_epoch(self.settings["train"]["batch_size"],
                                        self.settings.get("augment") or {},
                                        lambda fraction: self._lr_at(self.epoch + fraction), on_batch)

    def _evaluate(self, split: str) -> tuple[float, float]:
        return self.learner.evaluate(split)

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        from trainables.learner import save_state

        state = {
            # Ray's own progress, so that a restore can pick this checkpoint up without the
            # driver's record of it (recovery.py).
            "iteration": self.iteration,
            "time_total": self._time_total,
            **self.learner.state(),
            "epoch": self.epoch,
            "batches": self.batches,
            "train_loss": self.last_train_loss,
            "best": self.best,
            "since_best": self.since_best,
            "reports_at_chance": self.reports_at_chance,
        }
        save_state(state, os.path.join(checkpoint_dir, CHECKPOINT_FILE))
        if self.board is not None:
            self.board.publish()

    def restore(self, checkpoint_path: Any) -> None:
        """Ray's restore, from the furthest checkpoint kept after the named one when that is gone
        (the driver died between Ray deleting it and saving the snapshot: recovery.py), as far
        as the trial's recorded results reach, and in place from a directory (whole_files.py).
        `self._storage` is Ray's StorageContext."""
        from pyarrow.fs import FileType
        from ray.train._internal.checkpoint_manager import _TrainingResult
        from ray.tune.result import TIME_TOTAL_S, TRAINING_ITERATION

        from hypersweep.whole_files import read_in_place

        named = getattr(checkpoint_path, "checkpoint", None)
        fs = read_in_place(named.filesystem) if named is not None else None
        if named is not None and fs is not named.filesystem:
            checkpoint_path = _TrainingResult(checkpoint=tune.Checkpoint(named.path, filesystem=fs),
                                              metrics=checkpoint_path.metrics)
        if named is not None and fs.get_file_info(named.path).type == FileType.NotFound:
            found = furthest_replacement(fs, named.path, lambda folder: _saved_progress(fs, folder),
                                         recorded=_recorded_iteration(self._storage))
            if found is not None:
                folder, progress = found
                print(f"trial {self.trial_id}: checkpoint {named.path} is gone; going on from "
                      f"{folder} (iteration {progress['iteration']})", flush=True)
                checkpoint_path = _TrainingResult(
                    checkpoint=tune.Checkpoint(folder, filesystem=fs),
                    metrics={TRAINING_ITERATION: progress["iteration"],
                             TIME_TOTAL_S: progress["time_total"]})
        super().restore(checkpoint_path)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        from trainables.learner import load_state

        state = load_state(os.path.join(checkpoint_dir, CHECKPOINT_FILE), self.device)
        self.learner.load(state)
        self.epoch = state["epoch"]
        self.batches = state.get("batches", self.batches)
        self.last_train_loss = state.get("train_loss", math.nan)
        self.best = state.get("best", self.best)
        self.since_best = state.get("since_best", 0)
        self.reports_at_chance = state.get("reports_at_chance", 0)
        # The optimizer's state carries the learning rate (and the rest) of whoever saved it;
        # after a PBT exploit that is the donor, so this trial's own values go back in.
        self._apply_live_settings()

    def outcome(self) -> str:
        """How this trial ended, as TensorBoard and the report name it."""
        if self.failed:
            return "failed"
        if self.diverged:
            return "diverged"
        return "finished" if self.epoch >= self.settings["train"]["max_epochs"] else "stopped early"

    def _close_board(self) -> None:
        if self.board is None:
            return
        if self.epoch == 0 and not self.failed:
            # Ended before its first step (Ray moved it to another actor): no outcome to record;
            # the actor that runs it will write one.
            self.board.close_unfinished()
        else:
            self.board.close(self.outcome(), step=self.epoch)
        self.board = None

    def cleanup(self) -> None:
        self._close_board()
