"""The driver's pyarrow buffers come from the system allocator, unless the user chose another
(hypersweep/arrow_memory.py)."""

import os
import subprocess
import sys

import pyarrow

from hypersweep.arrow_memory import POOL_VARIABLE
from tests.conftest import ROOT

# launch.py's imports, as the command makes them, then what sweep() does before anything else.
SWEEP_START = ("import launch; from hypersweep.arrow_memory import arrow_uses_system_allocator; "
               "arrow_uses_system_allocator()")


def _arrow_pool(code: str, **variables: str) -> str:
    """The backend of pyarrow's default memory pool in a new process, after `code`."""
    env = {name: value for name, value in os.environ.items() if name != POOL_VARIABLE}
    done = subprocess.run([sys.executable, "-c", f"{code}; import ray.tune, pyarrow; "
                           "print(pyarrow.default_memory_pool().backend_name)"],
                          env={**env, "PYTHONPATH": str(ROOT), **variables}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_the_driver_allocates_arrow_buffers_with_the_system_allocator():
    assert _arrow_pool("import launch") != "system", "pyarrow's own default"
    assert _arrow_pool(SWEEP_START) == "system"


def test_a_pool_the_user_chose_stays():
    chosen = next(backend for backend in pyarrow.supported_memory_backends() if backend != "system")
    assert _arrow_pool(SWEEP_START, **{POOL_VARIABLE: chosen}) == chosen
