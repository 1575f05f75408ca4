"""pyarrow's buffers come from the C library's allocator, which gives freed memory back.

Ray's storage layer writes every experiment snapshot and checkpoint through pyarrow, whose default
allocator (mimalloc in pyarrow 26) keeps the pages it has used. In the driver of a sweep of 1,000
sleeping trials on a simulated cluster, one of its mappings grew from 10 to 20 MiB between the
200th and the 950th trial; with the C library's allocator the driver grew by 10-12 KiB a trial there
instead of 21-40, and its peak was 186 MiB instead of 207-211. (What glibc's own heaps keep goes
back as the sweep goes on: freed_memory.py.)

No Ray here: sweep() calls this before anything imports pyarrow.
"""

import os

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def arrow_uses_system_allocator() -> None:
    """Make the C library's allocator pyarrow's default memory pool in this process and in the
    processes it starts (the embedded Ray's, trials included), unless the user chose one.

    pyarrow reads the variable once, as it is imported: call this before anything imports it.
    """
    os.environ.setdefault(POOL_VARIABLE, "system")
