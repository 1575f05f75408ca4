"""The project's exception types. Each message names the key, the bad value and the fix."""


class HypersweepError(Exception):
    """Base of every error hypersweep raises on purpose; launch.py prints it as one line."""


class ConfigError(HypersweepError, ValueError):
    """A config value is missing, malformed or inconsistent. Raised before Ray starts."""


class ClusterError(HypersweepError, RuntimeError):
    """Ray could not be reached, or the cluster cannot run what the config asks for."""


class ExperimentError(HypersweepError, RuntimeError):
    """The experiment directory holds something that a run must not touch or cannot resume."""


class StorageError(HypersweepError, OSError):
    """The experiment's storage (a URI's bucket) could not be read or written."""
