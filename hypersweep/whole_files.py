"""Ray Tune's storage on a directory, with every file it writes there whole or not at all.

Ray Tune writes its experiment snapshot (the trials' states, the searcher's) in a staging folder on
the driver, then copies it over the previous copy in the experiment, in place. A driver killed
during that copy left the snapshot cut short: Tune could not restore the run and started it over
with none of its trials. Here Ray's files are written beside their target and renamed over it when
complete, which is atomic on a local disk and on NFS alike, so a kill leaves the old snapshot or
the new one. Buckets (s3://, gs://) need none of this: an object appears whole once uploaded.
"""

import io
import os
import threading
from typing import Any

import pyarrow
from pyarrow import fs as pafs


class _RenamedWhenClosed(io.FileIO):
    """A file written under a temporary name in the same folder, renamed to `path` on close."""

    def __init__(self, path: str) -> None:
        folder, name = os.path.split(path)
        self.final_path = path
        # Hidden and unique per writer, so that no reader globbing `*.json` takes it for Ray's.
        super().__init__(os.path.join(folder, f".{name}.{os.getpid()}-{threading.get_ident()}.tmp"), "w")

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        os.replace(self.name, self.final_path)


class WholeFilesHandler(pafs.FileSystemHandler):
    """pyarrow's local filesystem, except that a file written appears only once complete."""

    def __init__(self) -> None:
        self.local = pafs.LocalFileSystem()

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
        with self.local.open_input_stream(src) as source, self.open_output_stream(dest, None) as sink:
            while chunk := source.read(1 << 24):
                sink.write(chunk)

    def open_input_stream(self, path: str) -> Any:
        return self.local.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        return self.local.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        return pyarrow.PythonFile(_RenamedWhenClosed(path), mode="w")

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
