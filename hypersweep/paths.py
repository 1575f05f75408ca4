"""Where an experiment lives; a module of its own so that the driver can ask before importing torch.

A storage_path is a directory (local, or shared such as NFS) or a URI (s3://bucket/runs,
gs://..., with pyarrow's query options such as ?endpoint_override=...). For a URI, the driver
reads and writes hypersweep's own files in a local copy of the experiment (hypersweep/storage.py).
"""

import os
import tempfile
from urllib.parse import parse_qs, urlsplit, urlunsplit

# pyarrow reads credentials from a URI's query too; in a storage_path they would be saved with the
# experiment's config and in Hydra's launch records.
URI_SECRETS = ("access_key", "secret_key", "session_token", "password")


# Entries of an experiment folder: Hydra's launch records (conf/config.yaml's `hydra.run.dir`),
# and the folders that resume=overwrite moves earlier sweeps into.
LAUNCH_RECORDS = "hydra"
REPLACED_PREFIX = "replaced-"
LAUNCH_LOCK = ".launch.lock"  # held by the launch that runs the experiment (launch_lock.py)

# hypersweep's own files at the top of an experiment folder (the README's layout).
SWEEP_FILE = "sweep.json"  # the plain config the sweep started with
VERSIONS_FILE = "versions.json"  # the versions it started under
GROUPS_FILE = "groups.json"  # Hydra's config-group choices (model: mlp, ...), for the best preset
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.json"
OWN_FILES = (SWEEP_FILE, VERSIONS_FILE, GROUPS_FILE, SUMMARY_FILE, REPORT_FILE)


def stays_in_place(entry: str) -> bool:
    """Whether resume=overwrite leaves this top-level entry where it is: Hydra's launch records,
    sweeps moved aside before, and the lock that the launch moving them holds."""
    return entry in (LAUNCH_RECORDS, LAUNCH_LOCK) or entry.startswith(REPLACED_PREFIX)


def is_uri(storage_path: str) -> bool:
    """Whether a storage_path is a URI (s3://, gs://, ...) rather than a directory."""
    return "://" in str(storage_path)


def uri_credentials(storage_path: str) -> list[str]:
    """What credentials a storage URI carries (query keys, "a password"); [] for none or a path."""
    if not is_uri(storage_path):
        return []
    parts = urlsplit(storage_path)
    found = [key for key in parse_qs(parts.query) if key in URI_SECRETS]
    return found + (["a password"] if parts.password else [])


def join(storage_path: str, *parts: str) -> str:
    """`storage_path`/`parts`; for a URI, the parts go into its path and its query stays last."""
    if not is_uri(storage_path):
        return os.path.join(storage_path, *parts)
    scheme, netloc, path, query, fragment = urlsplit(storage_path)
    path = "/".join([path.rstrip("/"), *parts]) if path else "/" + "/".join(parts)
    return urlunsplit((scheme, netloc, path, query, fragment))


def experiment_location(config: dict) -> str:
    """The experiment as the user named it: its directory, or its URI."""
    return join(config["storage_path"], config["name"])


def local_copy(uri: str) -> str:
    """The driver's local copy of the experiment at `uri`: the same URI, the same folder."""
    scheme, netloc, path, _, _ = urlsplit(uri)
    user = os.environ.get("USER") or str(os.getuid())
    bucket = netloc.rpartition("@")[2]  # never a user:password@ in a folder name
    return os.path.join(tempfile.gettempdir(), f"hypersweep-{user}", scheme, bucket,
                        path.strip("/"))


def experiment_dir(config: dict) -> str:
    """The local directory of the experiment's files on the driver: the experiment itself, or
    for a URI its local copy. The driver makes a storage_path directory absolute first."""
    location = experiment_location(config)
    return local_copy(location) if is_uri(location) else location
