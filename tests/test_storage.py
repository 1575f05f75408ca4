"""An experiment in a bucket: paths, and the driver's local copy against a real S3 API."""

import os
from pathlib import Path

from hypersweep import storage
from hypersweep.paths import experiment_dir, join, local_copy


def test_a_uri_takes_names_into_its_path_and_keeps_its_query_last():
    uri = "s3://sweeps/runs?endpoint_override=http://127.0.0.1:9000&scheme=http"
    assert join(uri, "smoke", "tensorboard") == (
        "s3://sweeps/runs/smoke/tensorboard?endpoint_override=http://127.0.0.1:9000&scheme=http")
    assert join("gs://sweeps", "smoke") == "gs://sweeps/smoke"
    assert join("/data/runs", "smoke") == "/data/runs/smoke"
    copy = local_copy(join(uri, "smoke"))
    assert copy.endswith(os.path.join("s3", "sweeps", "runs", "smoke"))
    assert experiment_dir({"storage_path": uri, "name": "smoke"}) == copy


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_what_is_pushed_comes_back_on_another_machine_without_checkpoints_or_runs(bucket):
    uri = join(bucket, "copied")
    here = Path(local_copy(uri))
    _write(here, {"sweep.json": "{}", "trial_a/result.json": "1\n2\n",
                  "trial_a/checkpoint_000001/model.pt": "weights", "tensorboard/a/events": "tb",
                  "replaced-2026/sweep.json": "old", "hydra/t0/launch.log": "here"})
    storage.push(uri, ["sweep.json", "trial_a", "tensorboard", "replaced-2026", "hydra"])
    (here / "stale.json").write_text("from an older sweep of this name")

    storage.pull(uri)
    assert _tree(here) == {"sweep.json": "{}", "trial_a/result.json": "1\n2\n",
                           "hydra/t0/launch.log": "here"}, "checkpoints and runs stay in the bucket"


def test_a_sweep_moved_aside_keeps_every_file_under_replaced(bucket):
    uri = join(bucket, "aside")
    here = Path(local_copy(uri))
    _write(here, {"sweep.json": "old", "trial_a/checkpoint_000001/model.pt": "weights",
                  "hydra/t0/launch.log": "log"})
    storage.push(uri, ["sweep.json", "trial_a", "hydra"])
    storage.move_aside(uri, "replaced-1")
    storage.pull(uri)
    assert _tree(here) == {"hydra/t0/launch.log": "log"}, "nothing left to resume; no download of the old"
    fs, root = storage.filesystem(uri)
    with fs.open_input_stream(f"{root}/replaced-1/trial_a/checkpoint_000001/model.pt") as stored:
        assert stored.read() == b"weights"
    with fs.open_input_stream(f"{root}/hydra/t0/launch.log") as stored:
        assert stored.read() == b"log", "Hydra's records stay where they were"
