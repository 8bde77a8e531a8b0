"""Private Redis set-ups that tests may break: a Sentinel group (master, replica, Sentinel) and AOF servers.

Nothing here touches the shared Redis: every server runs on a free loopback port with its files in the
test's ``tmp_path`` (``tests/servers.py``), and is stopped afterwards.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from ..servers import RedisServer, free_port, redis_server_binary, redis_servers


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except redis.RedisError as exc:  # a server restarting or failing over
            last, value = exc, None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}" + (f" (last error: {last})" if last else ""))


@dataclass
class SentinelGroup:
    """One master, one replica and one Sentinel (quorum 1) monitoring them as ``service``."""

    servers: list[RedisServer]
    sentinel_port: int
    service: str
    folder: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.service}/0"

    def sentinel(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel_port, decode_responses=True, socket_timeout=5)

    def master_port(self) -> int:
        return int(self.sentinel().sentinel_get_master_addr_by_name(self.service)[1])

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def master(self) -> RedisServer:
        return self.server(self.master_port())

    def replica(self) -> RedisServer:
        return next(s for s in self.servers if s.port != self.master_port())

    def failover(self, timeout: float = 15.0) -> tuple[int, int]:
        """SENTINEL FAILOVER; returns (old, new) master ports once the Sentinel names the new master."""
        old = self.master_port()
        self.sentinel().execute_command("SENTINEL", "FAILOVER", self.service)
        wait_for(lambda: self.master_port() != old, timeout, "the Sentinel to switch masters")
        return old, self.master_port()

    def settle(self, timeout: float = 20.0) -> None:
        """Make the old master a replica of the new one and wait until it is in sync.

        The Sentinel would do the same (REPLICAOF, and a full resync that discards what the old master
        accepted alone), but only when its next INFO reaches it, up to 10 s after the switch.
        """
        master_server = self.master()
        master = master_server.client()
        replica = self.replica().client()
        if replica.info("replication").get("role") == "master":
            replica.replicaof("127.0.0.1", master_server.port)

        def synced() -> bool:
            info = replica.info("replication")
            if info.get("role") != "slave" or info.get("master_link_status") != "up":
                return False
            return int(info["slave_repl_offset"]) >= int(master.info("replication")["master_repl_offset"])

        wait_for(synced, timeout, "the old master to become an in-sync replica", interval=0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("redis-server is not installed")
    with redis_servers(tmp_path) as make:
        # Both data nodes keep an AOF fsynced on every write: what a node acknowledged survives its restart.
        # A master waits 5 s for more replicas before a (diskless) full sync by default: not here.
        options = ("--appendfsync", "always", "--repl-diskless-sync-delay", "0")
        master = make(*options, appendonly=True)
        replica = make("--replicaof", "127.0.0.1", str(master.port), *options, appendonly=True)
        wait_for(lambda: replica.client().info("replication").get("master_link_status") == "up", 10,
                 "the replica to sync")
        folder = tmp_path / "sentinel"
        folder.mkdir()
        service = "bullpy-svc"
        for _ in range(3):
            port = free_port()
            (folder / "sentinel.conf").write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\nlogfile {folder / 'sentinel.log'}\n"
                f"sentinel monitor {service} 127.0.0.1 {master.port} 1\n"
                f"sentinel down-after-milliseconds {service} 2000\n"
                f"sentinel failover-timeout {service} 10000\n",
                encoding="ascii",
            )
            proc = subprocess.Popen([binary, str(folder / "sentinel.conf"), "--sentinel"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            group = SentinelGroup([master, replica], port, service, folder, proc)
            try:
                sentinel = group.sentinel()
                wait_for(lambda: sentinel.sentinel_master(service)["num-slaves"] >= 1, 10,  # noqa: B023 (called here)
                         "the Sentinel to discover the replica")
                break
            except AssertionError:
                group.stop()
                if proc.poll() is None or "Address already in use" not in _log(folder):
                    raise AssertionError(f"the Sentinel did not start:\n{_log(folder)[-2000:]}") from None
        try:
            yield group
        finally:
            group.stop()


def _log(folder: Path) -> str:
    path = folder / "sentinel.log"
    return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def aof_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis with ``appendonly yes`` and ``appendfsync always``: a restart loses nothing acknowledged."""
    with redis_servers(tmp_path) as make:
        yield make("--appendfsync", "always", appendonly=True)
