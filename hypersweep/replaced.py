"""One of Ray's (or Hydra's) internals replaced for the length of a block, and put back after it.

hypersweep changes a few private parts of Ray, and one of Hydra, this way (each module says why);
tests check that each is still there in the installed versions.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def replaced(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    """`owner.name` (a class's own attribute, a module's global) is `replacement` inside the
    block; the original, exactly as it was (a staticmethod stays one), comes back after it."""
    if name not in vars(owner):
        raise AttributeError(f"{owner.__name__}.{name} is not there: install versions of Ray and Hydra "
                             f"within the ranges that hypersweep's pyproject.toml names")
    original = vars(owner)[name]
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)
