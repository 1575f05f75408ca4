"""Whether a cluster address has what Ray connects to, asked before ray.init.

Ray retries an address where nothing answers, or where something else does (the dashboard's
port), for about 14 minutes (20 tries of ~41 s in Ray 2.60), and for 30 s a try in client mode;
a head node answers one call of its own protocol at once.
"""

import os
from typing import Literal

from hypersweep.errors import ClusterError

REACH_SECONDS = 5
CLIENT_PORT = 10001  # Ray client's server on the head node


def _dialled(address: str) -> tuple[str, int]:
    """The host and port Ray dials for a cluster address (HOST:PORT or ray://HOST[:PORT]).

    A HOST:PORT is put in Ray's canonical form, which turns this machine's loopback into its node
    IP, as ray.init does. Raises ValueError for an address Ray cannot parse either.
    """
    if address.startswith("ray://"):
        host, _, port = address.removeprefix("ray://").rpartition(":")
        if not host:
            host, port = port, str(CLIENT_PORT)
    else:
        from ray._private.services import canonicalize_bootstrap_address

        host, _, port = canonicalize_bootstrap_address(address).rpartition(":")
    return host.strip("[]"), int(port)


def _probe(host: str, port: int) -> tuple[Literal["gcs", "grpc", "none"], str]:
    """What answers at host:port: ("gcs", "") for a Ray cluster's GCS, ("grpc", "") for another
    gRPC server (such as Ray client's), or ("none", why) where nothing Ray can use does.

    One GCS call without a token: a GCS answers it, or refuses it for want of the token; any other
    server fails it at once.
    """
    import grpc
    from ray.core.generated.gcs_service_pb2 import GetClusterIdRequest
    from ray.core.generated.gcs_service_pb2_grpc import NodeInfoGcsServiceStub

    # No HTTP proxy, as Ray's own connections have none (grpc_enable_http_proxy).
    with grpc.insecure_channel(f"{host}:{port}", options=[("grpc.enable_http_proxy", 0)]) as channel:
        try:
            NodeInfoGcsServiceStub(channel).GetClusterId(GetClusterIdRequest(), timeout=REACH_SECONDS)
        except grpc.RpcError as err:
            code, details = err.code(), err.details() or ""
            if code == grpc.StatusCode.UNAUTHENTICATED:
                return "gcs", ""
            if code == grpc.StatusCode.UNIMPLEMENTED:
                return "grpc", ""
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return "none", f"nothing answered at {host}:{port} within {REACH_SECONDS} s"
            if "refused" in details:
                return "none", f"nothing listens at {host}:{port}"
            if "resolv" in details:
                return "none", f"no host is named {host}"
            if "HTTP/2" in details:
                return "none", f"{host}:{port} does not speak gRPC: a web server, the dashboard?"
            return "none", details.splitlines()[0] if details else code.name
    return "gcs", ""


def connect_hint(address: str) -> str:
    """What to check when `address` cannot be reached, for the end of an error line."""
    if address.startswith("ray://"):
        return (f"is the head node up (`ray start --head` serves Ray client mode on port {CLIENT_PORT}) "
                f"and the address ray://HOST:{CLIENT_PORT}?")
    return "is the head node up (`ray start --head`) and the address HOST:6379?"


def check_address(address: str) -> None:
    """Raise a ClusterError of one line at once where `address` (HOST:PORT or ray://HOST[:PORT])
    lacks what Ray connects to there: a GCS, or for ray:// Ray client's server."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return  # a plain channel cannot talk to a cluster that takes TLS only; ray.init can
    try:
        host, port = _dialled(address)
    except ValueError:
        return  # ray.init says what is wrong with the address
    found, why = _probe(host, port)
    client_mode = address.startswith("ray://")
    if found == "none":
        raise ClusterError(f"cluster.address: cannot connect to {address} ({why}); {connect_hint(address)}")
    if found == "gcs" and client_mode:
        raise ClusterError(f"cluster.address: {address} is a Ray cluster's GCS port, not Ray client mode's; "
                           f"connect to it without ray:// ({host}:{port}), or use ray://HOST:{CLIENT_PORT}")
    if found == "grpc" and not client_mode:
        raise ClusterError(f"cluster.address: what answers at {address} is not a Ray cluster's GCS; give the "
                           f"head's GCS port (HOST:6379), or ray://HOST:{CLIENT_PORT} for Ray client mode")
