"""The embedded Ray's start, without what a sweep never uses and without Ray's slow waits.

`ray.init(address="local")` starts a head node on the path to the first trial, and on 2 cores
that start is CPU-bound. While it runs (`lean_start`), hypersweep changes four private parts of
Ray, each put back afterwards; a Ray that lacks one starts as it would (a test checks that each
is still there):
- the methods of Ray's `Node` that start processes a sweep never uses do nothing;
- without the dashboard, the raylet starts idle_agent.py in place of Ray's dashboard agent, and
  lazy_env_agent.py, which becomes Ray's runtime-environment agent when first called, in place
  of that agent;
- the check for the dashboard's packages asks the import system's finders instead of importing
  them all;
- the wait for the raylet to register asks the GCS every 50 ms, not once a second.
"""

import importlib.util
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from hypersweep.replaced import replaced

# Ray's head node starts these besides the GCS, the raylet and its two agents, and a sweep on the
# embedded Ray uses none of them: the autoscaler monitor (one machine autoscales nothing) and the
# log monitor (it forwards the workers' output to drivers that ask for it, and hypersweep's driver
# does not: log_to_driver=False). Together 1.2 CPU-s of a start-up that is CPU-bound on 2 cores.
UNUSED_HEAD_PROCESSES = ("start_monitor", "start_log_monitor")
# With the dashboard off, Ray's API server only reports Ray's usage statistics, and ray.init
# waits for it to publish its address (1.1 CPU-s).
DASHBOARD_PROCESSES = ("start_api_server",)
# The packages whose imports make Ray's test of a full install (`ray.dashboard.optional_deps`).
DASHBOARD_PACKAGES = ("aiohttp", "aiohttp_cors", "grpc", "opencensus", "opentelemetry.exporter.prometheus",
                      "opentelemetry.proto", "prometheus_client", "pydantic")
REGISTRATION_POLL_SECONDS = 0.05
REGISTRATION_TIMEOUT_SECONDS = 30.0  # Ray's own wait gives up after as long


@contextmanager
def lean_start(dashboard: bool) -> Iterator[None]:
    """While the embedded Ray starts (`ray.init(address="local")` in this block): start only what
    a sweep uses (the dashboard too, if `dashboard`), and wait for it no longer than it takes."""
    import ray._private.services as ray_services
    import ray._private.utils as ray_utils
    from ray._private.node import Node

    unused = UNUSED_HEAD_PROCESSES + (() if dashboard else DASHBOARD_PROCESSES)
    replacements = [(Node, name, _start_nothing) for name in unused]
    replacements.append((ray_utils, "get_dashboard_dependency_error", dashboard_dependency_error))
    if "get_node" in vars(ray_services):
        replacements.append((ray_services, "get_node", _once_registered(ray_services.get_node)))
    if not dashboard and "start_ray_process" in vars(ray_services):
        replacements.append((ray_services, "start_ray_process",
                             _with_stand_in_agents(ray_services.start_ray_process)))
    with ExitStack() as stack:
        for owner, name, replacement in replacements:
            if name in vars(owner):  # else Ray starts as it would
                stack.enter_context(replaced(owner, name, replacement))
        yield


def _start_nothing(node: object, *args: object, **kwargs: object) -> None:
    """Stands in for a Node method that starts a process nobody uses."""


def dashboard_dependency_error() -> ImportError | None:
    """Ray's `get_dashboard_dependency_error`, answered by the import system's finders: an
    ImportError naming the dashboard's packages that are not installed; None when all are.

    Ray imports them all to find out, 0.5 s of the driver's main thread just before it starts
    the raylet, only to start its agent in a minimal mode when one is missing.
    """
    missing = []
    for name in DASHBOARD_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # its parent package is missing
            found = False
        if not found:
            missing.append(name)
    return ImportError(f"not installed: {', '.join(missing)}") if missing else None


def _once_registered(get_node: Callable[[str, str], dict]) -> Callable[[str, str], dict]:
    """Ray's `services.get_node(gcs_address, node_id)`, called once the node has registered.

    Ray's own wait for the new raylet (`GlobalStateAccessor::GetNode`) asks the GCS once a
    second, which rounded the embedded Ray's start up to the next whole second after the raylet
    registered: half a second of every start, on average.
    """

    def get_node_once_registered(gcs_address: str, node_id: str) -> dict:
        try:
            wait_for_registration(gcs_address, node_id)
        except Exception:  # Ray's own wait follows, and reports whatever went wrong
            pass
        return get_node(gcs_address, node_id)

    return get_node_once_registered


def wait_for_registration(gcs_address: str, node_id: str) -> bool:
    """Wait until the GCS at `gcs_address` lists the node `node_id` (hex) alive; False if it
    still does not after REGISTRATION_TIMEOUT_SECONDS."""
    from ray._raylet import GcsClient, NodeID
    from ray.core.generated.gcs_pb2 import GcsNodeInfo
    from ray.core.generated.gcs_service_pb2 import GetAllNodeInfoRequest

    client = GcsClient(address=gcs_address)
    selector = GetAllNodeInfoRequest.NodeSelector(node_id=NodeID.from_hex(node_id).binary())
    deadline = time.monotonic() + REGISTRATION_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if client.get_all_node_info(timeout=REGISTRATION_TIMEOUT_SECONDS, node_selectors=[selector],
                                    state_filter=GcsNodeInfo.GcsNodeState.ALIVE):
            return True
        time.sleep(REGISTRATION_POLL_SECONDS)
    return False


def _with_stand_in_agents(start_ray_process: Callable[..., object]) -> Callable[..., object]:
    """Ray's `services.start_ray_process`, but the raylet it starts runs idle_agent.py where it
    would run Ray's dashboard agent, and lazy_env_agent.py where it would run its runtime-environment
    agent (the agents' options stay as Ray gives them)."""
    import ray
    from ray._private import ray_constants

    from hypersweep import idle_agent, lazy_env_agent

    # The raylet gets each agent's command as one string, quoted as `list2cmdline` quotes it.
    stand_ins = {
        "--dashboard_agent_command=": (os.path.join(os.path.dirname(ray.__file__), "dashboard", "agent.py"),
                                       idle_agent.__file__),
        "--runtime_env_agent_command=": (lazy_env_agent.ray_agent_script(), lazy_env_agent.__file__),
    }

    def with_stand_in(arg: str) -> str:
        for option, (script, stand_in) in stand_ins.items():
            if arg.startswith(option):
                return arg.replace(subprocess.list2cmdline([script]), subprocess.list2cmdline([stand_in]))
        return arg

    def start(command: list[str], process_type: str, *args: object, **kwargs: object) -> object:
        if process_type == ray_constants.PROCESS_TYPE_RAYLET:
            command = [with_stand_in(arg) for arg in command]
        return start_ray_process(command, process_type, *args, **kwargs)

    return start
