"""A real multi-node Ray cluster on 127.0.0.1 for tests: `ray start` processes the test owns.

Each node is one `ray start --block` process in its own process group, so stopping a node (or
killing it, to simulate a lost machine) ends exactly the processes this test started.
"""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.ports import free_port

RAY = str(Path(sys.executable).parent / "ray")


class LocalCluster:
    """A head node and worker nodes with token authentication and declared resources."""

    def __init__(self, workers: int = 1, cpus: int = 2, gpus: int = 0, dashboard: bool = False):
        self.root = Path(tempfile.mkdtemp(prefix="hs-cluster-"))
        self.token = secrets.token_hex(32)
        token_file = self.root / "auth_token"
        token_file.write_text(self.token)
        token_file.chmod(0o600)
        # Clients of this cluster (drivers, job submitters) need exactly this environment.
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file),
                    "RAY_USAGE_STATS_ENABLED": "0"}
        self.port, self.dashboard_port, client_port = free_port(), free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_address = f"ray://127.0.0.1:{client_port}"
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"
        self.nodes: list[subprocess.Popen] = []
        resources = [f"--num-cpus={cpus}", f"--num-gpus={gpus}", "--node-ip-address=127.0.0.1"]
        # Each node's dashboard agent on a port of its own: Ray's fixed default (52365) is shared
        # by every node on this machine, and by any other Ray left here.
        agent_port = ["--dashboard-agent-listen-port", str(free_port())]
        head = [RAY, "start", "--head", "--block", f"--port={self.port}", f"--temp-dir={self.root}/t",
                "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
                f"--include-dashboard={str(dashboard).lower()}", f"--ray-client-server-port={client_port}",
                *resources, *agent_port]
        try:
            self._start(head)
            self._wait_for_nodes(1)
            for index in range(1, workers + 1):
                # A temporary directory per node, as separate machines have: nodes sharing one
                # share their runtime environments' files, and a node setting up a Ray job's
                # working directory then deletes and unpacks it under the job's running driver.
                self._start([RAY, "start", "--block", f"--address={self.address}", *resources,
                             f"--temp-dir={self.root}/t{index}",
                             "--dashboard-agent-listen-port", str(free_port())])
            self._wait_for_nodes(1 + workers)
        except BaseException:
            self.stop()
            raise

    def _start(self, command: list[str]) -> None:
        log = open(self.root / f"node{len(self.nodes)}.log", "w")
        self.nodes.append(subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def alive_nodes(self) -> int:
        """Alive nodes as the cluster's GCS sees them (asked from a subprocess client)."""
        code = (f"import ray; ray.init(address='{self.address}', logging_level='ERROR'); "
                "print(sum(n['Alive'] for n in ray.nodes()))")
        try:
            done = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True,
                                  text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return 0
        return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else 0

    def _wait_for_nodes(self, count: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            exited = [node for node in self.nodes if node.poll() is not None]
            if exited:
                log = (self.root / f"node{self.nodes.index(exited[0])}.log").read_text()
                raise RuntimeError(f"a test cluster node exited: {log[-1500:]}")
            if self.alive_nodes() >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"the test cluster did not reach {count} nodes; see {self.root}")

    def kill_node(self, index: int) -> None:
        """Kill one node's processes at once, as a lost machine would go."""
        os.killpg(self.nodes[index].pid, signal.SIGKILL)
        self.nodes[index].wait()

    def stop(self) -> None:
        """Stop every node this cluster started (workers first), then remove its files."""
        for node in reversed(self.nodes):
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGTERM)
        for node in reversed(self.nodes):
            try:
                node.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
        # Worker processes may outlive their raylet by a moment; they are in the nodes' groups.
        for node in self.nodes:
            try:
                os.killpg(node.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
        self.nodes = []
