"""Ray Tune's storage filesystem for directories: a file written appears only once complete."""

import os
import pickle
import subprocess
import sys

import pytest
from pyarrow import fs as pafs
from ray.train._internal.storage import _upload_to_fs_path

from hypersweep.storage import live_file
from hypersweep.whole_files import uploads_appear_whole, whole_files_filesystem
from tests.conftest import ROOT

# Writes half of a new version of the file, says so, and waits to be killed.
WRITER = """
import sys, time
from pyarrow import fs as pafs
from hypersweep.whole_files import whole_files_filesystem

filesystem = whole_files_filesystem() if sys.argv[2] == "whole" else pafs.LocalFileSystem()
with filesystem.open_output_stream(sys.argv[1]) as sink:
    sink.write(b"new " * 1000)
    sink.flush()
    print("half written", flush=True)
    time.sleep(60)
    sink.write(b"end")
"""


# Writes the new search state of a snapshot, says so, and waits to be killed before its new trials'
# state (Ray copies a snapshot's files several at once, in no set order).
SNAPSHOT_UPLOADER = """
import contextlib, sys, time
from hypersweep.whole_files import whole_files_filesystem

filesystem = whole_files_filesystem()
held = filesystem.handler.files_appear_together if sys.argv[2] == "together" else contextlib.nullcontext
with held():
    with filesystem.open_output_stream(sys.argv[1] + "/search_gen_state-1.json") as sink:
        sink.write(b"new")
    print("search state written", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize(("filesystem", "survives"), [("whole", True), ("local", False)])
def test_a_writer_killed_midway_leaves_the_previous_file_whole(tmp_path, filesystem, survives):
    target = tmp_path / "experiment_state-1.json"
    target.write_text("the previous snapshot")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target), filesystem],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert writer.stdout.readline() == "half written\n"
    writer.kill()
    writer.wait()
    # pyarrow's own local filesystem writes in place: the kill leaves the file cut short.
    assert (target.read_text() == "the previous snapshot") is survives


def test_ray_tunes_upload_writes_every_file_whole_and_leaves_no_temporary_file(tmp_path):
    staging = tmp_path / "staging"
    (staging / "trial_1" / "checkpoint_000000").mkdir(parents=True)
    (staging / "experiment_state-1.json").write_text("{}" * 10_000)
    (staging / "trial_1" / "checkpoint_000000" / "model.pt").write_bytes(os.urandom(3 << 20))
    experiment = tmp_path / "experiment"
    experiment.mkdir()
    (experiment / "experiment_state-1.json").write_text("old")

    filesystem = whole_files_filesystem()
    _upload_to_fs_path(str(staging), filesystem, str(experiment))

    written = sorted(str(p.relative_to(experiment)) for p in experiment.rglob("*") if p.is_file())
    assert written == ["experiment_state-1.json", "trial_1/checkpoint_000000/model.pt"]
    for name in written:
        assert (experiment / name).read_bytes() == (staging / name).read_bytes()
    with filesystem.open_input_stream(str(experiment / written[1])) as stream:
        assert stream.read() == (staging / written[1]).read_bytes()
    filesystem.copy_file(str(experiment / written[0]), str(tmp_path / "copy.json"))
    assert (tmp_path / "copy.json").read_text() == "{}" * 10_000


# In a new process: the peak RSS above the RSS before (MiB) while the driver's upload copies a
# staging folder with one large file (argv: staging, experiment) into the experiment.
UPLOAD_PEAK = """
import sys
from pathlib import Path
from ray.train._internal import storage
from hypersweep.whole_files import uploads_appear_whole, whole_files_filesystem

def memory(name):
    status = Path("/proc/self/status").read_text()
    return int(status.split(name + ":")[1].split()[0]) / 1024

Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from the RSS
before = memory("VmRSS")
with uploads_appear_whole():
    storage._upload_to_fs_path(sys.argv[1], whole_files_filesystem(), sys.argv[2])
print(round(memory("VmHWM") - before, 1))
"""


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="no resettable peak RSS")
def test_the_drivers_upload_never_holds_a_file_in_memory(tmp_path):
    # Ray's own upload read up to 64 MiB of a file at once and copied it again through Python.
    staging, experiment = tmp_path / "staging", tmp_path / "experiment"
    staging.mkdir()
    content = os.urandom(1 << 20) * 80
    (staging / "experiment_state-1.json").write_bytes(content)
    done = subprocess.run([sys.executable, "-c", UPLOAD_PEAK, str(staging), str(experiment)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout) < 16, f"the upload's peak RSS was {done.stdout.strip()} MiB above its start"
    assert (experiment / "experiment_state-1.json").read_bytes() == content
    assert [p.name for p in experiment.iterdir()] == ["experiment_state-1.json"], "no temporary file left"


def test_a_copy_that_fails_leaves_nothing_in_place(tmp_path):
    handler = whole_files_filesystem().handler
    (tmp_path / "state.json").write_text("old")
    with pytest.raises(OSError):
        # Opens, and fails at the first read (nothing is mapped at address 0), after the copy began.
        handler.copy_in("/proc/self/mem", str(tmp_path / "state.json"))
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"], "no temporary file left"
    assert (tmp_path / "state.json").read_text() == "old"


@pytest.mark.parametrize(("upload", "consistent"), [("together", True), ("file by file", False)])
def test_an_upload_killed_midway_leaves_the_previous_snapshot_whole(tmp_path, upload, consistent):
    for name in ("experiment_state-1.json", "search_gen_state-1.json"):
        (tmp_path / name).write_text("old")
    uploader = subprocess.Popen([sys.executable, "-c", SNAPSHOT_UPLOADER, str(tmp_path), upload], text=True,
                                stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert uploader.stdout.readline() == "search state written\n"
    uploader.kill()
    uploader.wait()
    assert (tmp_path / "experiment_state-1.json").read_text() == "old"
    # File by file, the new search state stood beside the old trials' state: a torn snapshot.
    assert ((tmp_path / "search_gen_state-1.json").read_text() == "old") is consistent


def test_files_held_for_an_upload_that_fails_never_appear(tmp_path):
    (tmp_path / "experiment_state-1.json").write_text("old")
    filesystem = whole_files_filesystem()
    with pytest.raises(OSError), filesystem.handler.files_appear_together():
        for name in ("experiment_state-1.json", "search_gen_state-1.json"):
            with filesystem.open_output_stream(str(tmp_path / name)) as sink:
                sink.write(b"new")
        raise OSError("the copy failed")
    assert [p.name for p in tmp_path.iterdir()] == ["experiment_state-1.json"], "no temporary file left"
    assert (tmp_path / "experiment_state-1.json").read_text() == "old"


def test_ray_tunes_uploads_appear_whole_inside_the_block(tmp_path):
    from ray.train._internal import storage

    staging = tmp_path / "staging"
    staging.mkdir()
    for name in ("experiment_state-1.json", "search_gen_state-1.json", "searcher-state-1.pkl"):
        (staging / name).write_text(name * 1000)
    experiment = tmp_path / "experiment"
    upload = storage._upload_to_fs_path
    with uploads_appear_whole():
        storage._upload_to_fs_path(str(staging), whole_files_filesystem(), str(experiment))
        # Ray's syncer keeps its last command, and every trial's state in every snapshot pickles
        # it: the replacement is pickled by its name, not copied (a closure cost 6.6 KB a trial).
        pickled = pickle.dumps(storage._upload_to_fs_path)
        assert len(pickled) < 100 and pickle.loads(pickled) is storage._upload_to_fs_path
    assert storage._upload_to_fs_path is upload, "Ray's own function is back"
    assert sorted(p.name for p in experiment.iterdir()) == sorted(p.name for p in staging.iterdir())
    for name in staging.iterdir():
        assert (experiment / name.name).read_text() == name.read_text()


def test_it_travels_to_the_trial_processes_as_itself():
    filesystem = whole_files_filesystem()
    copy = pickle.loads(pickle.dumps(filesystem))
    assert copy.equals(filesystem) and copy.type_name == "py::local-whole-files"
    assert not copy.equals(pafs.LocalFileSystem())


def test_hypersweeps_growing_files_are_appended_to_in_the_experiment_itself(tmp_path):
    # Not in Ray's staging folder, as for a bucket: every snapshot would copy them all again.
    from ray.train._internal.storage import StorageContext

    storage = StorageContext(str(tmp_path), "sweep", storage_filesystem=whole_files_filesystem())
    assert live_file(storage, "trial_1/result.json") == f"{tmp_path}/sweep/trial_1/result.json"
