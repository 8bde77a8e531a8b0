"""Shared fixtures: one real Redis per run (REDIS_URL or 127.0.0.1:6379), a unique prefix per test.

Tests never FLUSHDB: each one works under its own ``bullpy-test-<hex>`` prefix and deletes only its keys,
so the suite can run beside real data and in parallel.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import bullpy
import bullpy._core.scripts
import bullpy.connection

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.exit(f"the test Redis at {bullpy.connection.safe_url(redis_url)} is not reachable: {exc}", returncode=3)
    yield client
    client.close()


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
               interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def make_redis_server(tmp_path: Any) -> Iterator[Callable[..., Any]]:
    """Private redis-servers on free loopback ports for this test (tests/servers.py), stopped afterwards."""
    from .servers import redis_servers

    with redis_servers(tmp_path) as make:
        yield make


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    pattern = bullpy._core.scripts.glob_escape(prefix) + ":*"
    batch = []
    for key in client.scan_iter(pattern, count=1000):
        batch.append(key)
        if len(batch) >= 500:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    prefix = f"bullpy-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    delete_prefix(redis_client, prefix)


@pytest.fixture
def other_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A second prefix for the test, deleted afterwards like ``prefix``."""
    prefix = f"bullpy-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    delete_prefix(redis_client, prefix)


@contextlib.contextmanager
def queue_factory(redis: Any, prefix: str, **defaults: Any) -> Iterator[Callable[..., bullpy.Queue]]:
    """``make(name="message-queue", **options)`` -> a Queue on ``redis`` under ``prefix``; all closed at exit."""
    made: list[bullpy.Queue] = []

    def make(name: str = "message-queue", **options: Any) -> bullpy.Queue:
        options.setdefault("prefix", prefix)
        queue = bullpy.Queue(name, redis, **defaults, **options)
        made.append(queue)
        return queue

    try:
        yield make
    finally:
        for queue in made:
            queue.close()


@pytest.fixture
def make_queue(redis_url: str, prefix: str) -> Iterator[Callable[..., bullpy.Queue]]:
    """A factory of Queues on the test Redis under this test's prefix; closed afterwards."""
    with queue_factory(redis_url, prefix) as make:
        yield make


@pytest.fixture
def queue(make_queue: Callable[..., bullpy.Queue]) -> bullpy.Queue:
    return make_queue()


def scanned_keys(client: redis.Redis, pattern: Any, count: int = 1000) -> list[Any]:
    """Every key matching ``pattern``, once each, sorted: SCAN may return a key twice when Redis resizes its
    keyspace during the walk (other tests delete keys meanwhile)."""
    return sorted(set(client.scan_iter(pattern, count=count)))


def keyspace(client: redis.Redis, prefix: str) -> dict[str, Any]:
    """Every key under a prefix with its type and full value (lists in order, zsets with scores)."""
    out: dict[str, Any] = {}
    for key in scanned_keys(client, bullpy._core.scripts.glob_escape(prefix) + ":*"):
        kind = client.type(key)
        if kind == "string":
            value: Any = client.get(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            value = client.hgetall(key)
        else:
            value = None
        out[key[len(prefix) + 1 :]] = (kind, value)
    return out


def counting_client(url: str) -> tuple[redis.Redis, list[list[str]]]:
    """A client whose connections record every round trip (one socket write of one or many commands), for
    tests that a read costs the same round trips whatever a queue's size (the exporter, the widgets)."""
    trips: list[list[str]] = []
    base = redis.ConnectionPool.from_url(url).connection_class

    class Counting(base):  # type: ignore[misc, valid-type]
        def send_command(self, *args: Any, **kwargs: Any) -> None:
            trips.append([str(args[0]).upper() + " " + " ".join(str(a) for a in args[1:4])])
            self._counted = True
            super().send_command(*args, **kwargs)

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            if not getattr(self, "_counted", False):
                trips.append(list(getattr(self, "_pending_names", [])))
            self._counted = False
            super().send_packed_command(command, check_health)

        def pack_commands(self, commands: Any) -> Any:
            self._pending_names = [str(c[0]).upper() + " " + " ".join(str(a) for a in c[1:4]) for c in commands]
            return super().pack_commands(commands)

    pool = redis.ConnectionPool.from_url(url, connection_class=Counting, decode_responses=True)
    return redis.Redis(connection_pool=pool), trips
