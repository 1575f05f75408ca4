"""The HParams dashboard, asked through a real TensorBoard server's HTTP API."""

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.test_resume import _read_until_progress, _start, _stop_session

FAULTY = ("experiment=smoke", "num_samples=8", "train.max_epochs=3", "max_failures=0",
          "model._target_=tests.faulty.BrokenForSomeConfigs", "+model.broken_units=256",
          "optim.name=sgd", "~space.optim.name", "~space.optim.lr",
          "+space.optim.lr={type:choice,values:[0.05,100000.0]}", "optim.lr=0.05", "seed=1")
STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


class TensorBoard:
    """`tensorboard --logdir ... --host 127.0.0.1` for one test, stopped by its pid."""

    def __init__(self, logdir: Path):
        self.url = f"http://127.0.0.1:{free_port()}"
        command = [str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(logdir),
                   "--host", "127.0.0.1", "--port", self.url.rsplit(":", 1)[1], "--reload_interval", "1"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.experiment()
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("tensorboard did not start")

    def _post(self, route: str, body: dict) -> dict:
        request = urllib.request.Request(f"{self.url}/data/plugin/hparams/{route}",
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def experiment(self) -> dict:
        return self._post("experiment", {"experimentName": ""})

    def sessions(self) -> dict[str, dict]:
        """Each trial's session: hparams, status and its final metric values by tag."""
        groups = self._post("session_groups", {"experimentName": "", "allowedStatuses": STATUSES,
                                               "startIndex": 0, "sliceSize": 1000})["sessionGroups"]
        found = {}
        for group in groups:
            (session,) = group["sessions"]
            metrics = {m["name"]["tag"]: m.get("value") for m in session.get("metricValues", [])}
            found[group["name"]] = {"hparams": group["hparams"], "status": session.get("status"),
                                    "metrics": metrics}
        return found

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _wait_for(condition, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(1)


def test_hparams_lists_every_trial_with_status_values_and_metrics(tmp_path):
    process = _start(tmp_path, *FAULTY)
    _read_until_progress(process, 2)
    board = TensorBoard(tmp_path / "runs" / "smoke" / "tensorboard")
    try:
        # While the sweep runs: trials already started are listed, some with no end yet.
        during = _wait_for(lambda: board.sessions())
        assert during, "running sweep's trials are listed from the moment they start"
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output[-3000:]
        summary = json.loads((tmp_path / "runs" / "smoke" / "summary.json").read_text())
        trials = {t["trial_id"]: t for t in summary["trials"]}
        sessions = _wait_for(lambda: (s := board.sessions()) and len(s) == len(trials) and all(
            x["status"] != "STATUS_UNKNOWN" for x in s.values()) and s)
        assert set(sessions) == set(trials)
        info = board.experiment()
        types = {h["name"]: h["type"] for h in info["hparamInfos"]}
        assert types["model.activation"] == "DATA_TYPE_STRING"
        assert types["optim.lr"] == types["train.batch_size"] == "DATA_TYPE_FLOAT64"
        assert {"val_acc", "val_loss", "best_val_acc", "status/diverged", "status/failed"} <= {
            m["name"]["tag"] for m in info["metricInfos"]}
        outcomes = {"finished": "status/finished", "stopped early": "status/stopped_early",
                    "diverged": "status/diverged", "failed": "status/failed"}
        seen = set()
        for trial_id, session in sessions.items():
            status = trials[trial_id]["status"]
            seen.add(status)
            assert session["metrics"][outcomes[status]] == 1.0, (status, session)
            failed = status in ("failed", "diverged")
            assert session["status"] == ("STATUS_FAILURE" if failed else "STATUS_SUCCESS")
            assert session["hparams"]["optim.lr"] == pytest.approx(trials[trial_id]["tuned"]["optim.lr"])
            if status in ("finished", "stopped early"):
                assert session["metrics"]["val_acc"] == pytest.approx(trials[trial_id]["metric"])
        assert {"failed", "diverged"} <= seen
    finally:
        board.stop()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=120)
        _stop_session(process.pid)
