"""Shared fixtures: the real config tree composed with Hydra's compose API, and subprocess runs."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from hypersweep.config import to_plain
from tests.s3_bucket import CREDENTIALS, s3_bucket

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"


@pytest.fixture
def compose_config() -> Callable[..., dict]:
    """Compose conf/ with overrides into a plain dict, as launch.py does; Hydra state is cleared."""

    def _compose(*overrides: str) -> dict:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return to_plain(compose(config_name="config", overrides=list(overrides)))

    yield _compose
    GlobalHydra.instance().clear()


def run_launch(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python launch.py ARGS` as a user would, in `cwd`, and capture its output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def bucket():
    """A storage_path URI in a fresh bucket of a local S3 server; the credentials are in the
    environment meanwhile (subprocesses get them too)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        with s3_bucket() as uri:
            yield uri
