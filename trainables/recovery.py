"""Restoring a trial whose named checkpoint is gone: from the furthest one Ray kept after it.

Ray keeps `checkpoint.num_to_keep` checkpoints of a trial and deletes the oldest as soon as it
registers a new one; the experiment snapshot that names the trial's latest checkpoint is written
a moment later. A driver killed between the two leaves a snapshot naming a checkpoint that no
longer exists, and Ray's restore then fails the trial on every retry: the trial would be lost.
The checkpoints that replaced it are in the same trial folder and hold the trial's own later
state, so the trial goes on from the one of them that holds the furthest progress.

On a bucket (storage_path=s3://...) the window is wider: Ray uploads the snapshot in the
background, while a trial's checkpoints are uploaded before Ray hears of them, and a checkpoint
can be further on than the trial's results in the bucket. Going on from there would leave the
reports in between missing, so a checkpoint counts only up to the last recorded report.
"""

import posixpath
import re
from collections.abc import Callable
from typing import Any

CHECKPOINT_DIR = re.compile(r"checkpoint_(\d+)$")


def furthest_replacement(fs: Any, missing: str, read_progress: Callable[[str], dict | None],
                         recorded: int | None = None) -> tuple[str, dict] | None:
    """The checkpoint folder made after `missing` (a `checkpoint_<n>` path that is gone) that
    holds the furthest progress, with that progress; None when there is none it can read.
    Paths are on `fs`, the pyarrow filesystem the checkpoints are on (Ray's Checkpoint's own).

    `recorded` is the last iteration the trial's results record: checkpoints beyond it count
    only when none is within it, and then the least far of them (the fewest reports missing).

    `read_progress(folder)` returns Ray's progress for that checkpoint (its `iteration` and
    `time_total`), or None for a folder it cannot use (half-written). The furthest is not always
    the highest number: a trial resumed from an older checkpoint than its last numbers its new
    ones from there, over the folders of the run that was killed.
    """
    from pyarrow.fs import FileSelector, FileType

    match = CHECKPOINT_DIR.search(posixpath.normpath(missing))
    if match is None:
        return None
    trial_dir = posixpath.dirname(posixpath.normpath(missing))
    found = []
    for info in fs.get_file_info(FileSelector(trial_dir, allow_not_found=True)):
        later = CHECKPOINT_DIR.fullmatch(posixpath.basename(info.path))
        if info.type == FileType.Directory and later and int(later.group(1)) > int(match.group(1)):
            folder = info.path
            progress = read_progress(folder)
            if progress is not None:
                found.append((progress["iteration"], int(later.group(1)), folder, progress))
    if not found:
        return None
    within = [entry for entry in found if recorded is None or entry[0] <= recorded]
    _, _, folder, progress = max(within) if within else min(found)
    return folder, progress
