"""Checks against the connected cluster, before any trial starts: resources and storage."""

import os

from hypersweep.cluster import alive_nodes
from hypersweep.errors import ClusterError
from hypersweep.paths import is_uri

# Filesystems every node of a cluster can share.
SHARED_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "ceph", "glusterfs", "beegfs",
                      "9p", "virtiofs")
GIB = 1024**3


def trial_request(resources: dict) -> dict[str, float]:
    """What one trial asks Ray for, in Ray's resource names (memory in bytes)."""
    request = {"CPU": float(resources["cpu"]), "GPU": float(resources["gpu"])}
    if resources.get("memory_gb"):
        request["memory"] = float(resources["memory_gb"]) * GIB
    return request


def _show(resources: dict[str, float]) -> str:
    parts = [f"{resources.get('CPU', 0):g} CPU", f"{resources.get('GPU', 0):g} GPU"]
    if "memory" in resources:
        parts.append(f"{resources['memory'] / GIB:.1f} GiB memory")
    return ", ".join(parts)


def check_resources(request: dict[str, float], nodes: list[dict]) -> None:
    """Refuse a trial that fits on no node, naming what it asks and what the largest node has."""
    if request["GPU"] > 0 and not any(node.get("GPU", 0) > 0 for node in nodes):
        raise ClusterError(f"resources.gpu: a trial asks for {request['GPU']:g} GPU but the cluster "
                           f"has no GPU; set resources.gpu=0 or connect to a GPU cluster")
    if any(all(node.get(key, 0) >= amount for key, amount in request.items()) for node in nodes):
        return
    most = {key: max(node.get(key, 0) for node in nodes) for key in request}
    raise ClusterError(f"resources: a trial asks for {_show(request)} but no node has that much "
                       f"(the most one node has: {_show(most)}); lower resources.* or add a larger "
                       f"node")


def filesystem_type(path: str, mounts_file: str = "/proc/mounts") -> str:
    """The type of the filesystem `path` lives on ("ext4", "nfs4", ...), from the mount table."""
    path = os.path.realpath(path)
    best, kind = "", "unknown"
    with open(mounts_file) as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) >= 3:
                point = fields[1]
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and len(point) > len(best):
                    best, kind = point, fields[2]
    return kind


def check_storage(storage_path: str, nodes: list[dict], driver_ip: str, fs_type: str | None) -> None:
    """Refuse a path on one machine's local disk for a cluster of several machines. A bucket
    (a URI; `fs_type` None) is reached alike from every node."""
    if is_uri(storage_path):
        return
    machines = {node["ip"] for node in nodes} | {driver_ip}
    if len(machines) == 1:
        return  # every node runs on this machine, so they all see its disk
    if fs_type in SHARED_FILESYSTEMS or fs_type.startswith("fuse."):
        return
    raise ClusterError(
        f"storage_path: {storage_path} is on this machine's local disk ({fs_type}) but the cluster "
        f"spans {len(machines)} machines, whose trials could not save or restore checkpoints there; "
        f"use a shared path (NFS, or a bucket mounted with gcsfuse or s3fs)")


def check_cluster(config: dict) -> None:
    """Run the resource and storage checks against the cluster Ray is connected to."""
    import ray

    nodes = alive_nodes()
    check_resources(trial_request(config["resources"]), nodes)
    storage = config["storage_path"]
    fs_type = None if is_uri(storage) else filesystem_type(storage)
    check_storage(storage, nodes, ray.util.get_node_ip_address(), fs_type)


def concurrent_trials(request: dict[str, float], nodes: list[dict], max_concurrent: int) -> int:
    """How many trials the cluster runs at once (each node packs what fits), capped by the config."""
    fits = 0
    for node in nodes:
        limits = [int(node.get(key, 0) // amount) for key, amount in request.items() if amount > 0]
        fits += min(limits) if limits else 0
    return min(fits, max_concurrent) if max_concurrent else fits


def local_nodes(cluster: dict) -> list[dict]:
    """The embedded Ray's one node, as ray.nodes() would describe it, without starting Ray."""
    import torch

    cpus = cluster.get("num_cpus") or os.cpu_count() or 1
    gpus = cluster.get("num_gpus")
    return [{"ip": "127.0.0.1", "CPU": float(cpus),
             "GPU": float(torch.cuda.device_count() if gpus is None else gpus)}]
