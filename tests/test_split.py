"""Data without importing scikit-learn: its digits and its stratified split, the very same."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sklearn_digits
from sklearn.model_selection import train_test_split

from hypersweep.errors import ConfigError
from tests.conftest import ROOT
from trainables.data import digits_file, load_digits, resized
from trainables.split import stratified_split

DIGIT_LABELS = sklearn_digits().target
# Class sizes whose proportional shares tie, so that ties are broken by the generator.
TIED_LABELS = np.repeat(np.arange(5), [3, 3, 3, 2, 2])


def _sklearn_indices(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    return tuple(train_test_split(np.arange(len(labels)), test_size=test_fraction, random_state=seed,
                                  stratify=labels))


@pytest.mark.parametrize("labels, fractions", [(DIGIT_LABELS, (0.1, 0.2, 0.25, 1 / 3, 0.5, 0.77)),
                                               (TIED_LABELS, (0.35, 0.4, 0.5, 0.6))])
def test_the_split_is_scikit_learns_to_the_index(labels, fractions):
    for fraction in fractions:
        for seed in range(25):
            ours = stratified_split(labels, fraction, seed)
            theirs = _sklearn_indices(labels, fraction, seed)
            assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True)), (fraction, seed)


def test_the_digits_are_scikit_learns_and_split_as_before():
    digits = sklearn_digits()
    assert digits_file() is not None
    data = load_digits(val_fraction=0.2, test_fraction=0.2, seed=3)
    # What the loader did with scikit-learn itself.
    features = (digits.images / 16.0).astype(np.float32).reshape(len(digits.images), -1)
    x_rest, x_test, y_rest, y_test = train_test_split(features, digits.target, test_size=0.2,
                                                      random_state=3, stratify=digits.target)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.25, random_state=3,
                                                      stratify=y_rest)
    for ours, theirs in ((data.x_train, x_train), (data.y_train, y_train), (data.x_val, x_val),
                         (data.y_val, y_val), (data.x_test, x_test), (data.y_test, y_test)):
        assert ours.dtype == theirs.dtype
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("labels, fraction, message", [
    (np.array([0, 0, 1, 1, 2]), 0.4, "class 2 has a single sample"),
    (np.repeat(np.arange(10), 5), 0.1, "a part of 5 samples cannot hold each of the 10 classes"),
])
def test_a_split_that_cannot_be_stratified_says_why(labels, fraction, message):
    with pytest.raises(ConfigError, match=message):  # launch.py prints it as one line
        stratified_split(labels, fraction, seed=0)


def test_loading_the_digits_imports_no_scikit_learn():
    probe = ("import sys; from trainables.data import load_digits; load_digits(); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("size", [4, 6, 8, 12, 16, 28])
def test_resizing_is_torchs_bilinear_interpolation(size):
    images = np.random.default_rng(size).random((5, 8, 8))
    theirs = torch.nn.functional.interpolate(torch.as_tensor(images)[:, None], size=(size, size),
                                             mode="bilinear", align_corners=False)[:, 0].numpy()
    assert np.allclose(resized(images, size), theirs, atol=1e-12)


def test_the_image_size_resizes_the_digits_as_images_and_as_flat_features():
    images = load_digits(as_images=True, image_size=16, seed=3)
    assert images.input_shape == (1, 16, 16) and images.x_test.shape[1:] == (1, 16, 16)
    assert 0 <= images.x_train.min() and images.x_train.max() <= 1
    assert load_digits(image_size=12, seed=3).input_shape == (144,)
    unchanged = load_digits(as_images=True, image_size=8, seed=3)
    default = load_digits(as_images=True, seed=3)
    assert np.array_equal(unchanged.x_train, default.x_train)
    # The same samples in the same splits, at another resolution.
    assert np.array_equal(images.y_test, default.y_test)


@pytest.mark.parametrize("size", [1, 0, 8.5, True])
def test_an_image_size_that_is_not_a_whole_number_of_pixels_from_2_is_refused(size):
    with pytest.raises(ConfigError, match=f"data.image_size: needs a whole number of pixels >= 2, "
                                          f"got {size!r}"):
        load_digits(as_images=True, image_size=size)
