"""TensorBoard for one trial: scalars per report and an HParams session, written live.

Each trial is one TensorBoard run (`<experiment>/tensorboard/<trial_id>`). Its session-start
record goes out when the trial starts, so the HParams dashboard lists running trials too; the
session-end record carries the final status. TensorBoard derives the experiment (hyperparameter
and metric columns) from the runs.

For an experiment on a URI, the run is written locally and uploaded at each checkpoint and at
the end (`upload_to`); a trial that goes on elsewhere adds an event file to the same run.
"""

import math
import time
from typing import Any

from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

OUTCOMES = ("finished", "stopped early", "diverged", "failed")
STATUSES = {
    "success": api_pb2.STATUS_SUCCESS,
    "failure": api_pb2.STATUS_FAILURE,
    "running": api_pb2.STATUS_RUNNING,
}


def _hparams_summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    data.version = metadata.PLUGIN_DATA_VERSION
    meta = metadata.create_summary_metadata(data)
    return Summary(value=[Summary.Value(tag=tag, metadata=meta)])


def session_start(hparams: dict[str, Any], group: str) -> Summary:
    """The HParams session-start record: numbers as numbers, everything else as strings."""
    info = plugin_data_pb2.SessionStartInfo(group_name=group, start_time_secs=time.time())
    for name, value in hparams.items():
        if isinstance(value, bool):
            info.hparams[name].bool_value = value
        elif isinstance(value, int | float):
            info.hparams[name].number_value = float(value)
        else:
            info.hparams[name].string_value = str(value)
    return _hparams_summary(metadata.SESSION_START_INFO_TAG,
                            plugin_data_pb2.HParamsPluginData(session_start_info=info))


def session_end(status: str) -> Summary:
    """The HParams session-end record with `status` (success, failure, running)."""
    info = plugin_data_pb2.SessionEndInfo(status=STATUSES[status], end_time_secs=time.time())
    return _hparams_summary(metadata.SESSION_END_INFO_TAG,
                            plugin_data_pb2.HParamsPluginData(session_end_info=info))


class TrialBoard:
    """The TensorBoard run of one trial."""

    def __init__(self, logdir: str, hparams: dict[str, Any], group: str,
                 upload_to: str | None = None):
        # Here, not at the top: it imports torch, which the driver (importing the trainable to
        # hand it to Ray) never needs.
        from torch.utils.tensorboard import SummaryWriter

        self.logdir, self.upload_to = logdir, upload_to
        self.writer = SummaryWriter(log_dir=logdir, flush_secs=5)
        self.writer.file_writer.add_summary(session_start(hparams, group))
        self.writer.flush()

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Write each finite number in `values` as a scalar at `step`."""
        for name, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(name, value, step)

    def close(self, outcome: str, step: int) -> None:
        """Record how the trial ended (finished, stopped early, diverged, failed), then close.

        The outcome goes in as 0/1 scalars `status/<outcome>`, which the HParams dashboard shows
        as columns, and as the session's end status (success, or failure when diverged/failed).
        """
        for name in OUTCOMES:
            self.writer.add_scalar(f"status/{name.replace(' ', '_')}", float(name == outcome), step)
        self.writer.file_writer.add_summary(
            session_end("failure" if outcome in ("diverged", "failed") else "success"))
        self.writer.close()
        self._upload()

    def close_unfinished(self) -> None:
        """Close without an outcome, for a trial that will go on elsewhere."""
        self.writer.close()
        self._upload()

    def publish(self) -> None:
        """Make what was written so far reach the experiment (at a checkpoint)."""
        if self.upload_to:
            self.writer.flush()
            self._upload()

    def _upload(self) -> None:
        if self.upload_to:
            from hypersweep.storage import upload

            upload(self.logdir, self.upload_to)


class NoBoard:
    """Stands in for TrialBoard when TensorBoard logging is off (`tensorboard: false`)."""

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Write nothing."""

    def close(self, outcome: str, step: int) -> None:
        """Record nothing."""

    def close_unfinished(self) -> None:
        """Nothing to close."""

    def publish(self) -> None:
        """Nothing to publish."""
