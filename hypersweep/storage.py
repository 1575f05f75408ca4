"""An experiment on object storage (storage_path=s3://..., gs://...): the driver's local copy.

Ray writes the checkpoints and its experiment state to the URI itself. hypersweep reads and
writes its own files (sweep.json, summary.json, the report, each trial's result.json) in a local
copy on the driver (paths.local_copy): a launch downloads the experiment, checkpoints and
TensorBoard runs left out, before it looks at it (`pull`), and uploads what it wrote (`push`).

While trials run, the files that grow (each trial's result.json, the PBT lineage) live in Ray's
staging directory instead (`live_file`): Ray uploads it with every snapshot of the experiment
state, so the URI holds them in step with the snapshot a resume starts from. A trial's results
also go up before each of its checkpoints counts (`publish`, from result_log.py): a checkpoint
is in the bucket before Ray hears of it, and a trial must never go on from a checkpoint beyond
the results the bucket holds.
"""

import functools
import os
import posixpath
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypersweep.errors import StorageError
from hypersweep.paths import LAUNCH_RECORDS, join, local_copy, stays_in_place

# Ray's storage filesystems for a directory, where hypersweep writes its files in place: pyarrow's
# own, and the one that writes Ray's files whole (whole_files.py; pyarrow prefixes it with "py::").
DIRECTORY_FILESYSTEMS = ("local", "py::local-whole-files")


@contextmanager
def _reaching(uri: str) -> Iterator[None]:
    """Turn pyarrow's errors (a wrong endpoint, missing credentials, no such bucket) into one line."""
    try:
        yield
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        if isinstance(err, StorageError):
            raise
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StorageError(f"storage_path: cannot use {uri}: {reason}; check the URI, its "
                           f"endpoint and the credentials (AWS_ACCESS_KEY_ID, ... or "
                           f"GOOGLE_APPLICATION_CREDENTIALS)") from err


@functools.lru_cache(maxsize=32)
def filesystem(uri: str) -> tuple[Any, str]:
    """pyarrow's filesystem for `uri` and the path on it, as Ray resolves them (made once: an
    S3 client is not free, and a trial uploads its TensorBoard run at each checkpoint)."""
    import pyarrow.fs

    with _reaching(uri):
        return pyarrow.fs.FileSystem.from_uri(uri)


def _downloaded(relpath: str) -> bool:
    """Whether a pull fetches this file: not checkpoints, TensorBoard runs or replaced sweeps."""
    parts = relpath.split("/")
    return not (parts[0] == "tensorboard" or stays_in_place(parts[0])
                or any(part.startswith("checkpoint_") for part in parts))


def _clear(local: str) -> None:
    """Empty the local copy, keeping Hydra's launch records (of this machine; uploaded, never
    replaced by a pull)."""
    if not os.path.isdir(local):
        return
    for entry in os.scandir(local):
        if entry.name == LAUNCH_RECORDS:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.remove(entry.path)


def pull(uri: str) -> str:
    """Make the local copy of the experiment at `uri` hold what the URI holds now; its path.

    The local copy is a cache: what it held is replaced (Hydra's launch records stay).
    """
    from pyarrow.fs import FileSelector, FileType

    fs, root = filesystem(uri)
    local = local_copy(uri)
    with _reaching(uri):
        found = fs.get_file_info(FileSelector(root, recursive=True, allow_not_found=True))
        _clear(local)
        os.makedirs(local, exist_ok=True)
        for info in found:
            relpath = posixpath.relpath(info.path, root)
            if info.type != FileType.File or not _downloaded(relpath):
                continue
            _download(fs, info.path, os.path.join(local, *relpath.split("/")))
    return local


def push(uri: str, names: list[str]) -> None:
    """Upload these files or folders of the local copy (relative paths) to the experiment at `uri`."""
    for name in names:
        upload(os.path.join(local_copy(uri), name), join(uri, name))


def upload(local: str, uri: str) -> None:
    """Upload the file or folder `local` to `uri`; a folder's files keep their relative paths."""
    fs, root = filesystem(uri)
    with _reaching(uri):
        if os.path.isfile(local):
            _upload(fs, local, root)
            return
        for folder, _, files in os.walk(local):
            for file in files:
                relpath = os.path.relpath(os.path.join(folder, file), local).replace(os.sep, "/")
                _upload(fs, os.path.join(folder, file), posixpath.join(root, relpath))


def live_file(storage: Any, relpath: str) -> str:
    """The local file to append to for `relpath`, a file of the experiment that grows as trials
    run. `storage` is Ray's StorageContext of the run (a trial's `trial.storage`).

    For a directory, the experiment's own file. For a URI, the file in Ray's staging directory,
    which Ray uploads with each snapshot; a resumed run first fetches what the URI holds, so
    that the upload carries the earlier rows too.
    """
    stored = posixpath.join(storage.experiment_fs_path, relpath)
    fs = storage.storage_filesystem
    if fs.type_name in DIRECTORY_FILESYSTEMS:
        return stored
    staged = _staged(storage, relpath)
    if not os.path.exists(staged):
        from pyarrow.fs import FileType

        os.makedirs(os.path.dirname(staged), exist_ok=True)
        if fs.get_file_info(stored).type == FileType.File:
            _download(fs, stored, staged)
    return staged


def publish(storage: Any, relpath: str) -> None:
    """Upload the staged file `relpath` (see live_file) now, ahead of Ray's next snapshot; for a
    directory experiment, where the file is written in place, nothing to do."""
    fs = storage.storage_filesystem
    if fs.type_name in DIRECTORY_FILESYSTEMS:
        return
    staged = _staged(storage, relpath)
    if os.path.exists(staged):
        _upload(fs, staged, posixpath.join(storage.experiment_fs_path, relpath))


def move_aside(uri: str, aside: str) -> None:
    """Move the experiment at `uri` into its folder `aside`, keeping Hydra's launch records and
    sweeps moved aside before. Object stores copy, then delete."""
    import pyarrow.fs
    from pyarrow.fs import FileSelector, FileType

    fs, root = filesystem(uri)
    with _reaching(uri):
        for info in fs.get_file_info(FileSelector(root, allow_not_found=True)):
            name = posixpath.basename(info.path)
            if stays_in_place(name):
                continue
            target = posixpath.join(root, aside, name)
            if info.type == FileType.Directory:
                # One thread: pyarrow's threaded uploads to S3 can fail (as Ray notes, arrow#32372).
                pyarrow.fs.copy_files(info.path, target, source_filesystem=fs,
                                      destination_filesystem=fs, use_threads=False)
                fs.delete_dir(info.path)
            else:
                fs.copy_file(info.path, target)
                fs.delete_file(info.path)


def _staged(storage: Any, relpath: str) -> str:
    return os.path.join(storage.experiment_driver_staging_path, *relpath.split("/"))


def _download(fs: Any, path: str, local: str) -> None:
    os.makedirs(os.path.dirname(local), exist_ok=True)
    with fs.open_input_stream(path) as source, open(local + ".tmp", "wb") as target:
        shutil.copyfileobj(source, target)
    os.replace(local + ".tmp", local)


def _upload(fs: Any, local: str, path: str) -> None:
    if fs.type_name == "local":  # a file:// URI: folders must exist; object stores have none
        fs.create_dir(posixpath.dirname(path), recursive=True)
    with open(local, "rb") as source, fs.open_output_stream(path) as target:
        shutil.copyfileobj(source, target)
