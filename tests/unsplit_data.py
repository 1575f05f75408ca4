"""A data loader that returns its arrays as they are, not as a SplitData: a mistake a user's own
loader makes, for the test that it is named before any trial runs."""

import numpy as np

from trainables.data import load_digits


def load_digits_unsplit(val_fraction: float = 0.2, test_fraction: float = 0.2, as_images: bool = False,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (features, labels) of the training split."""
    data = load_digits(val_fraction, test_fraction, as_images, seed)
    return data.x_train, data.y_train
