"""A data set that takes its time to load, saying when it starts: a wide window in which a
launch is still preparing, for tests of what happens there."""

import time
from pathlib import Path

from trainables.data import SplitData, load_digits

LOAD_SECONDS = 60


def load_digits_slowly(marker: str, val_fraction: float = 0.2, test_fraction: float = 0.2,
                       as_images: bool = False, seed: int = 0) -> SplitData:
    """scikit-learn's digits, after writing `marker` and waiting LOAD_SECONDS."""
    Path(marker).write_text("loading")
    time.sleep(LOAD_SECONDS)
    return load_digits(val_fraction, test_fraction, as_images, seed)
