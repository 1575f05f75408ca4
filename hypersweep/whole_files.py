"""Ray Tune's storage on a directory, with every file it writes there whole or not at all.

Ray Tune writes its experiment snapshot (the trials' states, the searcher's) in a staging folder on
the driver, then copies it over the previous copy in the experiment, in place. A driver killed
during that copy left the snapshot cut short: Tune could not restore the run and started it over
with none of its trials. Here Ray's files are written beside their target and renamed over it when
complete, which is atomic on a local disk and on NFS alike, so a kill leaves the old snapshot or
the new one. Buckets (s3://, gs://) need none of this: an object appears whole once uploaded.

A snapshot is several files (the trials' states, the search's count of the trials it created, the
searcher's own state), which Ray copies several at once; whole files alone still let a kill leave
a new one beside an old one. So the files of one of the driver's uploads appear together, once all
are written, the trials' states last (`uploads_appear_whole`). The kernel copies each file
(`shutil.copyfile`): Ray's upload (pyarrow's copy_files, 64 MiB chunks) read a snapshot file whole
into the driver and copied it once more through Python, a passing peak of up to twice its size.
"""

import io
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pyarrow
from pyarrow import fs as pafs
from ray.train._internal import storage as ray_storage

from hypersweep.replaced import replaced

# The file Ray restores an experiment from first: renamed last, once the rest of its snapshot is in.
EXPERIMENT_STATE_PREFIX = "experiment_state-"
# Ray's own upload (Ray 2.x; tests check it is still there), taken before `uploads_appear_whole`
# can replace it.
_ray_upload = ray_storage._upload_to_fs_path


def _temporary_path(path: str) -> str:
    """Where a new version of the file at `path` is written before it is put in place: hidden, so
    that no reader globbing `*.json` takes it for Ray's, and unique per writer."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{os.getpid()}-{threading.get_ident()}.tmp")


class _RenamedWhenClosed(io.FileIO):
    """A file written under a temporary name in the same folder; on close, `complete(temporary
    name, path)` puts it in place."""

    def __init__(self, path: str, complete: Callable[[str, str], None]) -> None:
        self.final_path = path
        self.complete = complete
        super().__init__(_temporary_path(path), "w")

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        self.complete(self.name, self.final_path)


class WholeFilesHandler(pafs.FileSystemHandler):
    """pyarrow's local filesystem, except that a file written appears only once complete."""

    def __init__(self) -> None:
        self.local = pafs.LocalFileSystem()
        self._lock = threading.Lock()
        self._held: list[tuple[str, str]] | None = None  # (written, final path) while held back

    @contextmanager
    def files_appear_together(self) -> Iterator[None]:
        """Files written inside the block (from any thread) appear when it ends, all of them, the
        experiment's state last; none of them if it raises (their previous versions stay)."""
        with self._lock:
            self._held = []
        try:
            yield
        except BaseException:
            for written, _ in self._stop_holding():
                with suppress(OSError):  # the upload's own error is the one to raise
                    os.remove(written)
            raise
        held = self._stop_holding()
        # The experiment's state last: a kill between two renames leaves its previous version.
        held.sort(key=lambda pair: os.path.basename(pair[1]).startswith(EXPERIMENT_STATE_PREFIX))
        for written, final in held:
            os.replace(written, final)

    def _stop_holding(self) -> list[tuple[str, str]]:
        with self._lock:
            held, self._held = self._held or [], None
        return held

    def _complete(self, written: str, final: str) -> None:
        with self._lock:
            if self._held is not None:
                self._held.append((written, final))
                return
        os.replace(written, final)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WholeFilesHandler)

    def __ne__(self, other: object) -> bool:
        return not isinstance(other, WholeFilesHandler)

    def __reduce__(self) -> tuple:
        return WholeFilesHandler, ()  # sent to every trial process with Ray's storage context

    def get_type_name(self) -> str:
        return "local-whole-files"  # storage.DIRECTORY_FILESYSTEMS names it

    def normalize_path(self, path: str) -> str:
        return self.local.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return self.local.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self.local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("refusing to delete the contents of / (Ray Tune's storage)")

    def delete_file(self, path: str) -> None:
        self.local.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self.local.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self.copy_in(src, dest)

    def copy_in(self, local_path: str, path: str) -> None:
        """Copy the local file at `local_path` to `path`, where it appears once complete (once the
        block ends inside `files_appear_together`)."""
        temporary = _temporary_path(path)
        try:
            shutil.copyfile(local_path, temporary)  # by the kernel (sendfile) on Linux
        except BaseException:
            with suppress(OSError):
                os.remove(temporary)
            raise
        self._complete(temporary, path)

    def open_input_stream(self, path: str) -> Any:
        return self.local.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        return self.local.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        return pyarrow.PythonFile(_RenamedWhenClosed(path, self._complete), mode="w")

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        return self.local.open_append_stream(path)


def whole_files_filesystem() -> pafs.PyFileSystem:
    """The storage_filesystem to give Ray Tune for a storage_path that is a directory."""
    return pafs.PyFileSystem(WholeFilesHandler())


def read_in_place(filesystem: pafs.FileSystem) -> pafs.FileSystem:
    """The filesystem to read a checkpoint from: pyarrow's local one in place of the whole-files
    one, since Ray loads a checkpoint in place only from it (from any other it copies the
    checkpoint into a temporary folder first); any other, itself."""
    if isinstance(filesystem, pafs.PyFileSystem) and isinstance(filesystem.handler, WholeFilesHandler):
        return pafs.LocalFileSystem()
    return filesystem


@contextmanager
def uploads_appear_whole() -> Iterator[None]:
    """Inside the block, each of Ray's uploads to a whole-files filesystem (the driver's snapshot
    syncs) appears whole: its files together, the experiment's state last."""
    with replaced(ray_storage, "_upload_to_fs_path", upload_whole):
        yield


def upload_whole(local_path: str, fs: pafs.FileSystem, fs_path: str, exclude: Any = None) -> None:
    """Ray's `_upload_to_fs_path`, whose files appear together on a whole-files filesystem.

    At module level, so that pickling it names it: Ray's syncer keeps its last command, and every
    trial's state in every snapshot pickles that syncer (a closure here cost 6.6 KB a trial).
    """
    handler = fs.handler if isinstance(fs, pafs.PyFileSystem) else None
    if not isinstance(handler, WholeFilesHandler) or exclude:  # the driver's snapshots exclude nothing
        return _ray_upload(local_path=local_path, fs=fs, fs_path=fs_path, exclude=exclude)
    with handler.files_appear_together():
        for source, target in _files_to_copy(local_path, fs_path):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            handler.copy_in(source, target)


def _files_to_copy(local_path: str, path: str) -> Iterator[tuple[str, str]]:
    """(local file, its copy's path) for the file at `local_path`, or each file under that folder,
    copied to `path` as Ray's upload copies them."""
    if os.path.isfile(local_path):
        yield local_path, path
        return
    if not os.path.isdir(local_path):
        raise FileNotFoundError(f"nothing to upload at {local_path}")
    os.makedirs(path, exist_ok=True)
    for folder, _, names in os.walk(local_path):
        relative = os.path.relpath(folder, local_path)
        for name in names:
            yield os.path.join(folder, name), os.path.normpath(os.path.join(path, relative, name))
