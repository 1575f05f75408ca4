"""Restoring a trial whose named checkpoint is gone: from the furthest one Ray kept after it.

Ray keeps `checkpoint.num_to_keep` checkpoints of a trial and deletes the oldest as soon as it
registers a new one; the experiment snapshot that names the trial's latest checkpoint is written
a moment later. A driver killed between the two leaves a snapshot naming a checkpoint that no
longer exists, and Ray's restore then fails the trial on every retry: the trial would be lost.
The checkpoints that replaced it are in the same trial folder and hold the trial's own later
state, so the trial goes on from the one of them that holds the furthest progress.
"""

import os
import re
from collections.abc import Callable

CHECKPOINT_DIR = re.compile(r"checkpoint_(\d+)$")


def furthest_replacement(missing: str, read_progress: Callable[[str], dict | None]
                       ) -> tuple[str, dict] | None:
    """The checkpoint folder made after `missing` (a `checkpoint_<n>` path that is gone) that
    holds the furthest progress, with that progress; None when there is none it can read.

    `read_progress(folder)` returns Ray's progress for that checkpoint (its `iteration` and
    `time_total`), or None for a folder it cannot use (half-written). The furthest is not always
    the highest number: a trial resumed from an older checkpoint than its last numbers its new
    ones from there, over the folders of the run that was killed.
    """
    match = CHECKPOINT_DIR.search(os.path.normpath(missing))
    trial_dir = os.path.dirname(os.path.normpath(missing))
    if match is None or not os.path.isdir(trial_dir):
        return None
    found = []
    for entry in os.listdir(trial_dir):
        later = CHECKPOINT_DIR.fullmatch(entry)
        if later and int(later.group(1)) > int(match.group(1)):
            folder = os.path.join(trial_dir, entry)
            progress = read_progress(folder)
            if progress is not None:
                found.append((progress["iteration"], int(later.group(1)), folder, progress))
    if not found:
        return None
    _, _, folder, progress = max(found)
    return folder, progress
