"""Redis Cluster: a queue pinned to the master of its hash slot, and what must ask every master.

A Bull queue on a cluster keeps all its keys in one slot (a hash tag in the prefix or the name, see
``bullpy._core.cluster``), so all of its commands, scripts, MULTI/EXEC reads, the worker's blocking BLMOVE
and the CLIENT UNBLOCK that interrupts it go to one node: the master serving that slot. bullpy asks the
cluster (redis-py's ``RedisCluster``) which master that is when the Queue is created, and then talks to it
through a plain ``redis.Redis``: the whole single-server code path (pipelines, EVALSHA with NOSCRIPT
reloads, blocking reads, pub/sub) runs unchanged. Pub/sub needs nothing more: a PUBLISH on any node of a
cluster reaches the subscribers of every node, which is how Node's (ioredis) event subscriber, connected to
some other node, still hears a Python worker's ``completed``.

What is about the whole cluster asks every master: queue discovery (SCAN) and ``get_workers`` (CLIENT LIST;
a Node Bull worker on ioredis Cluster names the connection of a random master, and bullpy's the one of its
slot's master).

Not followed: a resharding or failover that moves the queue's slot to another master after the Queue was
created. Redis then answers MOVED, which bullpy raises as a RedisRefused naming the new owner: create the
Queue (and its workers) again.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import redis as _redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from ._core.cluster import check_one_slot

ENV = "REDIS_CLUSTER"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")

# The cluster each pinned node client belongs to (for describe(), the MOVED message and every-master questions).
_pinned: weakref.WeakKeyDictionary[_redis.Redis, RedisCluster] = weakref.WeakKeyDictionary()


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def env_flag(environ: Mapping[str, str] | None = None) -> bool:
    """``REDIS_CLUSTER`` as a boolean (unset: False); a value that is neither raises ValueError."""
    env = os.environ if environ is None else environ
    value = env.get(ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{ENV} must be 1 or 0 (true/false, yes/no), got {env.get(ENV)!r}")


def connect(url: str, safe: str) -> RedisCluster:
    """A RedisCluster that discovers the cluster from the node ``url`` names (``safe``: the URL for messages)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"a Redis Cluster is reached with a redis:// or rediss:// URL of one of its nodes, "
                         f"not {safe!r}")
    db = parts.path.strip("/")
    if db not in ("", "0"):
        raise ValueError(f"a Redis Cluster has only database 0, but {safe!r} names database {db!r}")
    # The path's "/0" is dropped: redis-py's cluster client refuses a db argument, even 0.
    url = parts._replace(path="").geturl()
    try:
        return RedisCluster.from_url(url, decode_responses=True)
    except (_redis.RedisError, RedisClusterException) as exc:
        from .errors import RedisUnavailable

        if "Cluster mode is not enabled" in str(exc):
            raise ValueError(f"Redis at {safe} is a single server, not a Redis Cluster node (cluster_enabled:0): "
                             "open the queue without cluster=True (CLI: --no-cluster; unset REDIS_CLUSTER)") from exc
        raise RedisUnavailable(f"cannot reach the Redis Cluster at {safe}: {exc}") from exc


def pin(cluster: RedisCluster, prefix: str, name: str) -> _redis.Redis:
    """A plain client on the master serving the queue's slot; ValueError when the queue has no hash tag."""
    check_one_slot(prefix, name)
    node = cluster.get_node_from_key(f"{prefix}:{name}:")  # type: ignore[no-untyped-call]
    pool = cluster.get_redis_connection(node).connection_pool
    kwargs = dict(pool.connection_kwargs)
    # redis-py gives node clients of a cluster no retries (the cluster client retries instead); a pinned
    # client is on its own, so it gets a plain client's default retries.
    kwargs.pop("retry", None)
    client = _redis.Redis.from_pool(_redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))
    _pinned[client] = cluster
    return client


def pin_like(client: _redis.Redis, like: _redis.Redis) -> None:
    """Count ``client`` (made from ``like``'s connection settings) as pinned in ``like``'s cluster, if any."""
    cluster = _pinned.get(like)
    if cluster is not None:
        _pinned[client] = cluster


def cluster_of(client: _redis.Redis) -> RedisCluster | None:
    """The cluster a pinned client belongs to, or None for a single server."""
    return _pinned.get(client)


def masters(client: _redis.Redis) -> list[_redis.Redis]:
    """Clients for every master of the client's cluster, or ``[client]`` for a single server."""
    cluster = _pinned.get(client)
    if cluster is None:
        return [client]
    return [cluster.get_redis_connection(node) for node in cluster.get_primaries()]  # type: ignore[no-untyped-call]


def describe(client: _redis.Redis) -> str | None:
    """``cluster node host:port`` for a pinned client, None for others."""
    if client not in _pinned:
        return None
    kwargs = client.connection_pool.connection_kwargs
    return f"Redis Cluster node {kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


def master_clients(target: _redis.Redis | RedisCluster) -> list[_redis.Redis]:
    """Clients for every master of a cluster (a RedisCluster or a client pinned in one), else ``[target]``."""
    if isinstance(target, RedisCluster):
        return [target.get_redis_connection(node) for node in target.get_primaries()]  # type: ignore[no-untyped-call]
    return masters(target)


def detect(url: str) -> bool:
    """Whether the server a ``redis://``/``rediss://`` URL names is a Redis Cluster node (``INFO cluster``).

    One short connection; any failure answers False, leaving the error to the real connection that follows.
    """
    if urlsplit(url).scheme not in ("redis", "rediss"):
        return False
    try:
        client = _redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5, socket_timeout=5)
    except (ValueError, _redis.RedisError):
        return False
    try:
        return bool(int(client.info("cluster").get("cluster_enabled", 0)))
    except (ValueError, _redis.RedisError):
        return False
    finally:
        client.close()
