"""Connecting to Ray: an embedded local Ray by default, never exposed beyond 127.0.0.1."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def connect(cluster: dict) -> Iterator[dict]:
    """Start (or join) Ray for one experiment and shut the connection down afterwards.

    Yields the cluster's total resources (`{"CPU": 2.0, ...}`).
    """
    import ray

    options = {
        "address": cluster["address"],
        "include_dashboard": bool(cluster.get("dashboard")),
        "dashboard_host": "127.0.0.1",
        # Trial output goes to the trial's own log files; the driver's console stays readable.
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    if cluster["address"] == "local":
        options["num_cpus"] = cluster.get("num_cpus")
        options["num_gpus"] = cluster.get("num_gpus")
    ray.init(**options)
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()
