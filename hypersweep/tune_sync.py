"""Keeping Ray Tune's experiment sync off hypersweep's own files.

When Ray Tune resumes an experiment it downloads every top-level .json and .pkl file of the
experiment folder into its staging folder on the driver, and at each snapshot copies that folder
back over the experiment. Our files went along: a driver killed during such a copy left an empty
sweep.json behind (before whole_files.py), and a copy is stale anyway: a report written while the
sweep resumed was replaced by the one from the run's start. The files are hypersweep's, written
whole by it alone, so Tune's copies are removed before its first snapshot.
"""

import glob
import os
from typing import Any

from ray.train.constants import _get_ray_train_session_dir
from ray.tune import Callback

from hypersweep.paths import OWN_FILES


class OwnFilesOutOfTuneSync(Callback):
    """Removes Ray Tune's staging copies of hypersweep's files, so its snapshots never write them."""

    def __init__(self, experiment_name: str) -> None:
        self.experiment_name = experiment_name

    def setup(self, **info: Any) -> None:
        # Called once the run is restored, before its first snapshot. The staging folder is
        # <Ray session>/artifacts/<the run's first start>/<experiment>/driver_artifacts.
        pattern = os.path.join(glob.escape(_get_ray_train_session_dir()), "*",
                               glob.escape(self.experiment_name), "driver_artifacts")
        for staging in glob.glob(pattern):
            for name in OWN_FILES:
                try:
                    os.remove(os.path.join(staging, name))
                except FileNotFoundError:
                    pass
