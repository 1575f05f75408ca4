"""Where an experiment lives; a module of its own so that the driver can ask before importing torch."""

import os


def experiment_dir(config: dict) -> str:
    """Where the experiment lives; the driver makes storage_path absolute before Ray sees it."""
    return os.path.join(config["storage_path"], config["name"])


def is_uri(storage_path: str) -> bool:
    """Whether a storage_path is a URI (s3://, gs://, ...), which hypersweep refuses, not a path."""
    return "://" in str(storage_path)
