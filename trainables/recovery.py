"""Restoring a trial whose named checkpoint is gone: from the newest one Ray kept after it.

Ray keeps `checkpoint.num_to_keep` checkpoints of a trial and deletes the oldest as soon as it
registers a new one; the experiment snapshot that names the trial's latest checkpoint is written
a moment later. A driver killed between the two leaves a snapshot naming a checkpoint that no
longer exists, and Ray's restore then fails the trial on every retry: the trial would be lost.
The checkpoints that replaced it are in the same trial folder and hold the trial's own later
state, so the trial goes on from the newest of them that can be read.
"""

import os
import re
from collections.abc import Callable

CHECKPOINT_DIR = re.compile(r"checkpoint_(\d+)$")


def newest_replacement(missing: str, read_progress: Callable[[str], dict | None]
                       ) -> tuple[str, dict] | None:
    """The newest checkpoint folder made after `missing` (a `checkpoint_<n>` path that is gone),
    with what `read_progress` reads from it; None when there is none that it can read.

    `read_progress(folder)` returns Ray's progress metrics for that checkpoint (its
    training_iteration and time_total_s), or None for a folder it cannot use (half-written).
    """
    match = CHECKPOINT_DIR.search(os.path.normpath(missing))
    trial_dir = os.path.dirname(os.path.normpath(missing))
    if match is None or not os.path.isdir(trial_dir):
        return None
    later = []
    for entry in os.listdir(trial_dir):
        found = CHECKPOINT_DIR.fullmatch(entry)
        if found and int(found.group(1)) > int(match.group(1)):
            later.append((int(found.group(1)), os.path.join(trial_dir, entry)))
    for _, folder in sorted(later, reverse=True):
        progress = read_progress(folder)
        if progress is not None:
            return folder, progress
    return None
