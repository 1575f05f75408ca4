"""The driver gives back what its C heaps hold free, every 100 ended trials (hypersweep/freed_memory.py)."""

import os
import subprocess
import sys

import pytest

from hypersweep.freed_memory import malloc_trim
from tests.conftest import ROOT

# In a new process: 48 MiB freed below a block still held, which keeps glibc from returning it by
# itself; then the RSS (MiB) after each of 100 trial ends, told to the callback.
FREED_THEN_TRIALS_END = """
import resource
from hypersweep.freed_memory import GiveBackFreedMemory

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20

callback = GiveBackFreedMemory(every=100)
size = 1000  # a variable: b"x" * 1000 would be one constant
blocks = [b"x" * size for _ in range(48 * 1024)]
held = b"y" * size
del blocks
for _ in range(100):
    callback.on_trial_complete(0, [], None)
    print(round(rss(), 1))
"""


@pytest.mark.skipif(malloc_trim() is None, reason="a C library without malloc_trim (not glibc)")
def test_every_hundredth_trial_end_gives_the_freed_memory_back():
    done = subprocess.run([sys.executable, "-c", FREED_THEN_TRIALS_END], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    rss = [float(line) for line in done.stdout.split()]
    assert len(rss) == 100
    assert max(rss[:99]) - min(rss[:99]) < 4, "nothing given back before the 100th trial end"
    assert rss[98] - rss[99] > 40, rss[95:]
