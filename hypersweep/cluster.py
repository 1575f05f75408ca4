"""Connecting to Ray: an embedded local Ray by default, or an existing cluster by address.

Token authentication (on by default for `ray start --head` in current Ray) is read the way Ray
reads it: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token. hypersweep sets the mode
(RAY_AUTH_MODE) itself, so the token is all a user needs, and never copies the token anywhere: not
into the config, the logs or the experiment directory.
"""

import logging
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from hypersweep.cluster_address import check_address, connect_hint
from hypersweep.errors import ClusterError
from hypersweep.lean_start import lean_start
from hypersweep.ray_end import shut_down_ray
from hypersweep.trial_environment import embedded_ray_environment

AUTH_MODE = "RAY_AUTH_MODE"
LOOPBACK_HOSTS = ("localhost", "::1", "[::1]")
NO_IDLE_WORKERS = {"enable_worker_prestart": False, "prestart_worker_first_driver": False}
# How long the embedded Ray's processes wait for a GCS they lost before they end (Ray: 60 s). Its
# GCS is a child of the driver that no one restarts: once lost, it is gone, as when a signal to
# the whole process group (`timeout`, a batch system's time limit) ended it with the driver.
GCS_LOST_SECONDS = 10
# The raylet connects to its object store's socket as it starts, and when the store's thread has
# not opened it yet, Ray tries again a second later (`raylet_client_connect_timeout_milliseconds`):
# that second fell on ray.init's path in about half the embedded Ray's starts here (raylet.out:
# the store's start, then the object manager 1.00 s later). The same 10 s of patience, in 50-ms
# tries.
SOCKET_RETRIES = {"raylet_client_connect_timeout_milliseconds": 50, "raylet_client_num_connect_attempts": 200}


def token_path() -> Path | None:
    """The token file Ray would read, if any (RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token)."""
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    return path if path.is_file() else None


def token_available() -> bool:
    """Whether Ray will find an authentication token for this process."""
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or token_path() is not None


def is_loopback(address: str) -> bool:
    """Whether a cluster address (HOST:PORT or ray://HOST:PORT) stays on this machine."""
    host = address.split("://")[-1].rsplit(":", 1)[0]
    return host.startswith("127.") or host in LOOPBACK_HOSTS


def warn(message: str) -> None:
    """A warning for the user, on stderr, one line."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _use_auth_mode(mode: str) -> None:
    """Set Ray's authentication `mode` for this process and the Ray processes it starts.

    Ray reads RAY_AUTH_MODE once, when it is imported, and a sweep imports Ray before it connects:
    a Ray already imported reads its config again, as `ray.init` makes it do when it turns token
    authentication on. Without that, the driver would leave out the token the cluster needs, and
    be refused.
    """
    os.environ[AUTH_MODE] = mode
    raylet = sys.modules.get("ray._raylet")
    if raylet is not None:
        raylet.Config.initialize("")


def _prepare_auth(cluster: dict) -> None:
    address = cluster["address"]
    if cluster.get("auth", "token") == "none":
        _use_auth_mode("disabled")
        if not is_loopback(address):
            warn(f"connecting to {address} without token authentication: anyone who can reach "
                 f"it can run code on it; use cluster.auth=token")
        return
    if not token_available():
        raise ClusterError(
            f"cluster.auth: {address} needs Ray's authentication token and none was found; on the "
            f"head node run `ray get-auth-token`, then put it in ~/.ray/auth_token here (chmod "
            f"600) or set RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH")
    _use_auth_mode("token")
    path = token_path()
    if path is not None and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn(f"{path} can be read by other users of this machine; chmod 600 {path}")


def _caused_by_auth(error: BaseException, logged: str) -> bool:
    if "InvalidAuthToken" in logged:
        return True
    while error is not None:
        if type(error).__name__ == "AuthenticationError":
            return True
        error = error.__cause__ or error.__context__
    return False


@contextmanager
def _stderr_captured() -> Iterator[list[str]]:
    """Collect what this process and its C++ core write to fd 2, handing it back afterwards.

    Ray's core logs each retry of a connection it is refused (a wrong token) straight to fd 2;
    captured, that wall becomes the one line the user needs.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    captured: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def _init_options(cluster: dict) -> dict:
    options = {
        "address": cluster["address"],
        # Trial output goes to the trial's own log files; the driver's console stays readable.
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    if cluster["address"] != "local":
        return options
    exposed = bool(cluster.get("expose_dashboard"))
    if exposed:
        warn("cluster.expose_dashboard=true: Ray's dashboard and job API listen on every network "
             "interface; anyone who reaches this machine can submit jobs to it")
    options.update(
        num_cpus=cluster.get("num_cpus"),
        num_gpus=cluster.get("num_gpus"),
        include_dashboard=_dashboard_on(cluster),
        dashboard_host="0.0.0.0" if exposed else "127.0.0.1",
        # Ray starts an idle worker per CPU for tasks to come, and ray.init waits for the first:
        # on 2 CPUs that delayed the first epoch by 0.4-0.8 s (when Tune's actors still had a
        # runtime environment, and so never used them), and by 0.7-1.4 s since (they could).
        _system_config={**NO_IDLE_WORKERS, **SOCKET_RETRIES,
                        "gcs_rpc_server_reconnect_timeout_s": GCS_LOST_SECONDS},
    )
    return options


def _dashboard_on(cluster: dict) -> bool:
    return bool(cluster.get("dashboard")) or bool(cluster.get("expose_dashboard"))


def _starting(cluster: dict) -> AbstractContextManager:
    """What surrounds ray.init: the embedded Ray's lean start; nothing for a cluster's address."""
    return lean_start(_dashboard_on(cluster)) if cluster["address"] == "local" else nullcontext()


@contextmanager
def connect(cluster: dict) -> Iterator[str | None]:
    """Start the embedded Ray, or join the cluster at cluster.address; shut down afterwards.

    Yields the directory of Ray's own logs for this session (None where Ray does not say).

    Raises ClusterError with one line when the cluster cannot be reached or refuses the token.
    """
    if cluster["address"] == "local":
        # Token authentication, as current Ray gives every new cluster; chosen here rather than
        # left to Ray's default, which logs a warning on every start. A RAY_AUTH_MODE set stays.
        _use_auth_mode(os.environ.get(AUTH_MODE, "token"))
    elif cluster["address"] != "auto":
        # ("auto" runs inside the cluster, as a `ray job submit` entrypoint, whose environment
        # already carries the cluster's authentication settings.)
        _prepare_auth(cluster)
    with embedded_ray_environment() if cluster["address"] == "local" else nullcontext():
        session = getattr(_init_ray(cluster), "address_info", {}).get("session_dir")
        try:
            yield os.path.join(session, "logs") if session else None
        finally:
            shut_down_ray(agents_end_with_raylet=not _dashboard_on(cluster))


def _init_ray(cluster: dict) -> Any:
    """`ray.init` for `cluster`, Ray's context back; a ClusterError of one line if it fails."""
    import ray

    address = cluster["address"]
    if address not in ("local", "auto"):
        check_address(address)
    # In client mode the server starts a process per client, which can miss its start-up deadline
    # on a loaded head node; one more try is what a user would do by hand.
    attempts = 2 if address.startswith("ray://") else 1
    try:
        for attempt in range(1, attempts + 1):
            try:
                with _stderr_captured() as logged, _starting(cluster):
                    context = ray.init(**_init_options(cluster))
                break
            except ConnectionError as err:
                if attempt == attempts or _caused_by_auth(err, logged[0] if logged else ""):
                    raise
        sys.stderr.write(logged[0])  # connected: Ray's own warnings are worth seeing
    except Exception as err:
        if _caused_by_auth(err, logged[0] if logged else ""):
            raise ClusterError(
                f"cluster.address: {address} refused this machine's authentication token; get the "
                f"cluster's token with `ray get-auth-token` on its head node and put it in "
                f"~/.ray/auth_token (or RAY_AUTH_TOKEN)") from None
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ClusterError(f"cluster.address: cannot connect to {address} ({reason}); "
                           f"{connect_hint(address)}") from None
    return context


def alive_nodes() -> list[dict]:
    """The cluster's alive nodes: {"ip": ..., "CPU": ..., "GPU": ..., "memory": ...}."""
    import ray

    return [{"ip": node["NodeManagerAddress"], **node["Resources"]}
            for node in ray.nodes() if node["Alive"]]
