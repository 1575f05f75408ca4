"""Data sets as numpy arrays split into train, validation and test; no downloads.

A loader returns a SplitData, which the driver puts into Ray's object store once per experiment.
A trial whose tuned `data` settings differ (a validation fraction, a sequence length, an image
size) loads its own copy in its actor; a split's test part depends only on test_fraction and the
seed, so every trial is tested on the same samples.
"""

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hypersweep.errors import ConfigError
from trainables.split import stratified_split


@dataclass(frozen=True)
class SplitData:
    """Features and integer labels of the three splits, plus what models need to know."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int
    source: dict | None = None  # the `data` config it was loaded from (set by the driver)

    def sizes(self) -> tuple[int, int, int]:
        """Samples in train, validation and test."""
        return len(self.y_train), len(self.y_val), len(self.y_test)


def split(features: np.ndarray, labels: np.ndarray, val_fraction: float, test_fraction: float,
          seed: int) -> SplitData:
    """Stratified train/validation/test split of one labelled array."""
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
            raise ConfigError(f"data.{name}: needs a fraction between 0 and 1, got {fraction!r}")
    if val_fraction + test_fraction >= 1:
        raise ConfigError(f"data.val_fraction + data.test_fraction must stay below 1 "
                         f"(got {val_fraction} + {test_fraction}); lower one of them")
    rest, test = stratified_split(labels, test_fraction, seed)
    x_rest, y_rest = features[rest], labels[rest]
    train, val = stratified_split(y_rest, val_fraction / (1 - test_fraction), seed)
    return SplitData(x_rest[train], y_rest[train], x_rest[val], y_rest[val], features[test],
                     labels[test], input_shape=tuple(features.shape[1:]),
                     num_classes=int(labels.max()) + 1)


def digits_file() -> Path | None:
    """scikit-learn's bundled digits (digits.csv.gz), found without importing scikit-learn, whose
    import would cost the driver 1.4 s more; None if it is not where scikit-learn keeps it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    return path if path.is_file() else None


def _read_digits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 images (values 0-16) and labels in the digits file: a row per image, its 64
    pixels, then its label."""
    with gzip.open(path, mode="rt", encoding="utf-8") as rows:
        table = np.loadtxt(rows, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def resized(images: np.ndarray, size: int) -> np.ndarray:
    """Images (n, height, width) resized to (n, size, size) by bilinear interpolation between
    pixel centres, as torch's `interpolate(mode="bilinear")` does."""
    def shares(old: int) -> np.ndarray:  # (size, old): how much of each old pixel a new one takes
        centres = np.clip((np.arange(size) + 0.5) * old / size - 0.5, 0, old - 1)
        low = np.floor(centres).astype(int)
        high = np.minimum(low + 1, old - 1)
        weights = np.zeros((size, old))
        np.add.at(weights, (np.arange(size), low), 1 - (centres - low))
        np.add.at(weights, (np.arange(size), high), centres - low)
        return weights
    return np.einsum("ih,nhw,jw->nij", shares(images.shape[1]), images, shares(images.shape[2]))


def load_digits(val_fraction: float = 0.2, test_fraction: float = 0.2, as_images: bool = False,
                seed: int = 0, image_size: int = 8) -> SplitData:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1]; flat (64,) or images (1, 8, 8).

    `image_size` resizes them (bilinear): a data hyperparameter, as the resolution of a vision
    model's input is; flat, the features are the resized image's pixels.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 2:
        raise ConfigError(f"data.image_size: needs a whole number of pixels >= 2, got {image_size!r}")
    path = digits_file()
    if path is not None:
        images, labels = _read_digits(path)
    else:  # a scikit-learn that keeps its data elsewhere
        from sklearn.datasets import load_digits as sklearn_digits

        digits = sklearn_digits()
        images, labels = digits.images, digits.target.astype(np.int64)
    if image_size != images.shape[1]:
        images = resized(images, image_size)
    features = (images / 16.0).astype(np.float32)
    features = features[:, None, :, :] if as_images else features.reshape(len(features), -1)
    return split(features, labels, val_fraction, test_fraction, seed)


def load_mnist1d(num_samples: int = 5000, seq_len: int = 40, val_fraction: float = 0.2,
                 test_fraction: float = 0.2, seed: int = 0) -> SplitData:
    """MNIST-1D (Greydanus, 2020): 1-D signals of the ten digits, generated here, not downloaded.

    `seq_len` is the length each signal is resampled to (the benchmark's 40 by default);
    the generator's own seed stays the package's 42, so the samples are the standard ones.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.final_seq_length = num_samples, seq_len
    state = np.random.get_state()  # make_dataset seeds numpy's global generator; keep ours
    try:
        generated = make_dataset(args)
    finally:
        np.random.set_state(state)
    features = np.concatenate([generated["x"], generated["x_test"]]).astype(np.float32)
    labels = np.concatenate([generated["y"], generated["y_test"]]).astype(np.int64)
    return split(features, labels, val_fraction, test_fraction, seed)
