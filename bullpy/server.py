"""The Redis server a queue lives on, as the layers need to see it: where it is, what it runs, its settings.

``queue.server`` gives one. Every question a layer (the doctor, the dashboard, transfer, migrate, the CLI)
asks of the server itself, rather than of a queue's keys, goes through here, so no layer holds a raw client.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import redis as _redis

from . import _refusals, connection
from .utils import text


def identity(connection_kwargs: Mapping[str, Any], run_id: Any) -> tuple[Any, ...]:
    """``Server.identity()`` for any client (an asyncio one too): its connection settings and the ``run_id``
    its server's INFO gave (None or "" where INFO was refused)."""
    db = int(connection_kwargs.get("db", 0) or 0)
    if run_id:
        return (text(run_id), db)
    return (connection_kwargs.get("path"), connection_kwargs.get("host"), connection_kwargs.get("port"), db)


class Server:
    """One Redis server (and db) seen through a client; answers are read fresh on every call."""

    def __init__(self, client: _redis.Redis) -> None:
        self._client = client

    def describe(self) -> str:
        """``host:port db N`` (socket path, Sentinel or Cluster, TLS), never the password."""
        return connection.describe(self._client)

    @property
    def db(self) -> int:
        """The database number this client uses (0 on a Redis Cluster); CLIENT LIST shows it per client."""
        return int(self._client.connection_pool.connection_kwargs.get("db", 0) or 0)

    def url(self) -> str:
        """A URL another process (a Node worker) can use to reach this server and db.

        It carries the password when there is one: pass it through the environment, never print it.
        """
        return connection.url_for(self._client)

    def ping(self) -> float:
        """Seconds one PING took; raises ``RedisUnavailable`` (or another bullpy error) when Redis does not answer."""
        start = time.perf_counter()
        with _refusals.unavailable_as_error(self._client):
            self._client.ping()
        return time.perf_counter() - start

    def info(self, section: str) -> dict[str, Any]:
        """``INFO section`` as a dict with str keys; ``{}`` when the server refuses INFO (ACL, managed Redis)."""
        with _refusals.unavailable_as_error(self._client):
            try:
                reply = self._client.info(section)
            except _redis.ResponseError:
                return {}
        return {text(k): v for k, v in reply.items()} if isinstance(reply, Mapping) else {}

    def config_get(self, name: str) -> str | None:
        """One ``CONFIG GET`` value, or None when the server refuses CONFIG or has no such setting."""
        with _refusals.unavailable_as_error(self._client):
            try:
                reply = self._client.config_get(name)
            except _redis.ResponseError:  # unknown (renamed) command, NOPERM, or a service that hides CONFIG
                return None
        value = reply.get(name) if isinstance(reply, Mapping) else None
        return None if value is None else text(value)

    def eviction_policy(self) -> str | None:
        """``maxmemory-policy``, or None when the server will not say.

        ``INFO memory`` first: managed services that rename or forbid CONFIG usually still answer it; then
        ``CONFIG GET``.
        """
        policy = self.info("memory").get("maxmemory_policy")
        if policy is None:
            policy = self.config_get("maxmemory-policy")
        policy = text(policy) if policy is not None else None
        return policy or None

    def identity(self) -> tuple[Any, ...]:
        """What tells two connections to the same server and db apart from two servers: INFO's ``run_id``
        and the db (one server reached as localhost and 127.0.0.1 has one run_id), else, where INFO is
        refused, the connection settings."""
        return identity(self._client.connection_pool.connection_kwargs, self.info("server").get("run_id"))

    def masters(self) -> list[Server]:
        """Every master of a Redis Cluster this server belongs to, else ``[self]`` (where SCAN and CLIENT
        LIST must run to see everything)."""
        nodes = connection.masters(self._client)
        return [self if node is self._client else Server(node) for node in nodes]

    def client_list(self) -> list[dict[str, str]]:
        """``CLIENT LIST`` of every master, fields as str; ``[]`` where the server refuses it."""
        return self.clients() or []

    def clients(self) -> list[dict[str, str]] | None:
        """``CLIENT LIST`` of every master, fields as str; None where the server refuses it (ACL, proxies)."""
        out: list[dict[str, str]] = []
        with _refusals.unavailable_as_error(self._client):
            try:
                for node in connection.masters(self._client):
                    out.extend({text(k): text(v) for k, v in entry.items()} for entry in node.client_list())
            except _redis.ResponseError:
                return None  # servers or proxies without CLIENT LIST
        return out

    def __repr__(self) -> str:
        return f"<Server {self.describe()}>"
