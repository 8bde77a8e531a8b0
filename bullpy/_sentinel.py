"""Redis Sentinel: ``redis+sentinel://`` URLs, clients that follow a failover, and how they are described.

The URL names the Sentinels, not a Redis server; the client asks them where the master of a service is,
before every new connection (redis-py's ``Sentinel.master_for``)::

    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service_name[/db][?options]

* ``user``/``password`` log in to the Redis master (and replicas), as in a ``redis://`` URL;
* each ``host[:port]`` is one Sentinel (port 26379 when left out);
* ``service_name`` is the name the Sentinels monitor (``sentinel monitor <name> ...``), ``db`` 0 by default;
* options: ``sentinel_username`` and ``sentinel_password`` when the Sentinels themselves require a login,
  ``db``, ``socket_timeout`` and ``socket_connect_timeout`` (seconds, for every connection).

``bridge/lib/redis-config.js`` reads the same URL for Node (ioredis ``sentinels`` + ``name``).

Failover, as ioredis' ``failoverDetector`` does it: a thread per client subscribes to the Sentinels'
``+switch-master`` channel and, when the service's master changes, shuts down every connection still open
to the old one, so that the next command of each (and of a worker blocked in BLMOVE) reconnects through the
Sentinels to the new master. Without it, connections stay on the old master until Sentinel demotes it,
which happens up to ~10 s later (Sentinel's INFO period): the old master keeps accepting writes meanwhile,
and loses them all when it becomes a replica. A connection that still reaches a demoted master gets
READONLY, which redis-py's Sentinel connection turns into a ConnectionError and a reconnection.

TLS to Sentinel set-ups (``rediss+sentinel://``) is not supported yet.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, quote, unquote, urlencode

import redis as _redis
from redis.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelConnectionPoolProxy,
    SentinelManagedConnection,
)

SCHEME = "redis+sentinel"
DEFAULT_PORT = 26379
_CHANNEL = "+switch-master"
_FLOAT_OPTIONS = ("socket_timeout", "socket_connect_timeout")
_OPTIONS = ("db", "password", "sentinel_username", "sentinel_password", *_FLOAT_OPTIONS)


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    socket_options: Mapping[str, float] = field(default_factory=dict)

    def sentinel_kwargs(self) -> dict[str, Any]:
        """Connection settings for the Sentinels themselves."""
        kwargs: dict[str, Any] = dict(self.socket_options)
        if self.sentinel_username:
            kwargs["username"] = self.sentinel_username
        if self.sentinel_password:
            kwargs["password"] = self.sentinel_password
        return kwargs


def parse_url(url: str) -> SentinelUrl:
    """Parse a ``redis+sentinel://`` URL; errors name the part that is wrong, never the password."""
    head = f"{SCHEME}://"
    if not url.startswith(head):
        raise ValueError(f"a Sentinel URL starts with {head}")
    rest, _, query = url[len(head):].partition("?")
    netloc, _, path = rest.partition("/")
    auth, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = auth.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(part) for part in hosts.split(",")) if hosts else ()
    if not sentinels:
        raise ValueError(f"{SCHEME}:// URL without Sentinels: use {SCHEME}://host:26379[,host2:26379]/service_name")
    segments = [s for s in path.split("/") if s]
    if not segments:
        raise ValueError(f"{SCHEME}:// URL without a service name: use {SCHEME}://host:26379/service_name[/db]")
    if len(segments) > 2:
        raise ValueError(f"{SCHEME}:// URL path must be /service_name[/db], got {len(segments)} segments")
    service = unquote(segments[0])
    db = _db(segments[1]) if len(segments) == 2 else 0
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _OPTIONS:
            raise ValueError(f"unknown {SCHEME}:// URL option {key!r}; known: {', '.join(_OPTIONS)}")
        options[key] = value
    if "db" in options:
        db = _db(options["db"])
    if "password" in options and password is None:
        password = options["password"]
    socket_options: dict[str, float] = {}
    for key in _FLOAT_OPTIONS:
        if key in options:
            try:
                socket_options[key] = float(options[key])
            except ValueError:
                raise ValueError(f"{SCHEME}:// URL option {key} must be a number of seconds") from None
    return SentinelUrl(sentinels, service, db, username, password, options.get("sentinel_username") or None,
                       options.get("sentinel_password") or None, socket_options)


def _host_port(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [::1]:26379
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = text.partition(":")
    if not host:
        raise ValueError(f"{SCHEME}:// URL has an empty Sentinel host")
    if not port:
        return host, DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{SCHEME}:// URL Sentinel {host!r} has a bad port {port!r}")
    return host, int(port)


def _db(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{SCHEME}:// URL db must be a number, got {text!r}")
    return int(text)


def connect(url: str) -> _redis.Redis:
    """A client of the service's master that follows failovers (see the module docstring)."""
    spec = parse_url(url)
    sentinel = Sentinel(list(spec.sentinels), sentinel_kwargs=spec.sentinel_kwargs())  # type: ignore[no-untyped-call]
    kwargs: dict[str, Any] = {"decode_responses": True, "db": spec.db, **spec.socket_options}
    if spec.username:
        kwargs["username"] = spec.username
    if spec.password:
        kwargs["password"] = spec.password
    client: _redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        spec.service, connection_class=_FollowingConnection, **kwargs)
    pool = cast(SentinelConnectionPool, client.connection_pool)  # master_for always builds one
    pool.proxy.bullpy_spec = spec  # type: ignore[attr-defined]
    pool.proxy.bullpy_watcher = _Watcher(spec, pool)  # type: ignore[attr-defined]
    return client


def _proxy(client: _redis.Redis) -> SentinelConnectionPoolProxy | None:
    """The Sentinel side of a client's pool: its own, or the one a twin pool's connections carry."""
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        return pool.proxy
    found = pool.connection_kwargs.get("connection_pool")
    return found if isinstance(found, SentinelConnectionPoolProxy) else None


def is_sentinel(client: _redis.Redis) -> bool:
    return _proxy(client) is not None


def spec_of(client: _redis.Redis) -> SentinelUrl | None:
    proxy = _proxy(client)
    return None if proxy is None else getattr(proxy, "bullpy_spec", None)


def describe(client: _redis.Redis) -> str | None:
    """``sentinel service 'name' via host:port,... (master host:port) db N``, or None for other clients."""
    proxy = _proxy(client)
    if proxy is None:
        return None
    sentinels = ",".join(
        f"{s.connection_pool.connection_kwargs.get('host', '?')}:{s.connection_pool.connection_kwargs.get('port', '?')}"
        for s in proxy.sentinel_manager.sentinels
    )
    # The master last seen; asking the Sentinels here would add a round trip to every error message.
    master = proxy.master_address
    where = f" (master {master[0]}:{master[1]})" if master else ""
    db = client.connection_pool.connection_kwargs.get("db", 0) or 0
    return f"sentinel service {proxy.service_name!r} via {sentinels}{where} db {db}"


def url_for(client: _redis.Redis) -> str | None:
    """The ``redis+sentinel://`` URL of a Sentinel client, passwords included (never print it)."""
    spec = spec_of(client)
    if spec is None:
        return None
    auth = ""
    if spec.password:
        auth = f"{quote(spec.username or '', safe='')}:{quote(spec.password, safe='')}@"
    elif spec.username:
        auth = f"{quote(spec.username, safe='')}@"
    hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in spec.sentinels)
    query = {k: v for k, v in (("sentinel_username", spec.sentinel_username),
                                ("sentinel_password", spec.sentinel_password)) if v}
    query.update({k: repr(v) for k, v in spec.socket_options.items()})
    url = f"{SCHEME}://{auth}{hosts}/{quote(spec.service, safe='')}/{spec.db}"
    return url + ("?" + urlencode(query) if query else "")


def master_state(client: _redis.Redis) -> dict[str, Any] | None:
    """What a Sentinel says about the service's master (``SENTINEL MASTER``), or None when none answers."""
    proxy = _proxy(client)
    if proxy is None:
        return None
    for sentinel in proxy.sentinel_manager.sentinels:
        try:
            state = sentinel.sentinel_master(proxy.service_name)
        except (_redis.ConnectionError, _redis.TimeoutError, _redis.ResponseError):
            continue
        return dict(state)
    return None


def failover_in_progress(client: _redis.Redis) -> bool:
    """True while a Sentinel reports a failover of the service under way (or none can be asked)."""
    state = master_state(client)
    if state is None:
        return True
    flags = state.get("flags", "")
    text = ",".join(flags) if isinstance(flags, (list, tuple, set)) else str(flags)
    return "failover_in_progress" in text or "promoted" in text or bool(state.get("is_odown"))


def current_master(client: _redis.Redis) -> tuple[str, int] | None:
    proxy = _proxy(client)
    if proxy is None:
        return None
    try:
        host, port = proxy.sentinel_manager.discover_master(proxy.service_name)
    except (_redis.ConnectionError, _redis.TimeoutError):
        return None
    return str(host), int(port)


# --- following a failover --------------------------------------------------------------------------------

class _FollowingConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that the client's watcher can cut when the master changes.

    ``generation`` counts its (re)connections: a caller that must know whether two commands ran on the same
    server session (a write, then the WAIT that confirms it) compares it.
    """

    generation = 0

    def connect_to(self, address: Any) -> None:
        super().connect_to(address)  # type: ignore[no-untyped-call]
        self.generation += 1
        watcher = getattr(self.connection_pool, "bullpy_watcher", None)
        if watcher is not None:
            watcher.track(self)


class _Watcher:
    """Subscribes to ``+switch-master`` on the Sentinels while the client has open connections (started on a
    connection, stopped a few seconds after the last one closed); cuts the connections to the old master when
    the service's master changes."""

    idle_exit = 5.0  # seconds without an open connection before the thread stops

    def __init__(self, spec: SentinelUrl, pool: SentinelConnectionPool) -> None:
        self.spec = spec
        self._pool = weakref.ref(pool)
        self._connections: weakref.WeakSet[_FollowingConnection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.switches = 0

    def track(self, connection: _FollowingConnection) -> None:
        with self._lock:
            self._connections.add(connection)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"bullpy-sentinel-{self.spec.service}",
                                                daemon=True)
                self._thread.start()

    def _cut(self, address: tuple[str, int]) -> None:
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            if (conn.host, conn.port) == address:
                # shutdown(), not close(): another thread may be reading; its read now fails with a
                # connection error and redis-py reconnects, asking the Sentinels for the new master.
                sock = getattr(conn, "_sock", None)
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def _open(self) -> bool:
        with self._lock:
            return any(getattr(c, "_sock", None) is not None for c in self._connections)

    def _run(self) -> None:
        subscriptions: dict[tuple[str, int], Any] = {}
        retry_at = 0.0
        idle_since: float | None = None
        try:
            while self._pool() is not None:
                if self._open():
                    idle_since = None
                else:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > self.idle_exit:
                        with self._lock:
                            if not any(getattr(c, "_sock", None) is not None for c in self._connections):
                                self._thread = None  # the next connection starts a new one
                                return
                if len(subscriptions) < len(self.spec.sentinels) and time.monotonic() >= retry_at:
                    for address in self.spec.sentinels:
                        if address not in subscriptions:
                            with contextlib.suppress(_redis.RedisError, OSError):
                                client = _redis.Redis(*address, decode_responses=True, **self.spec.sentinel_kwargs())
                                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                                pubsub.subscribe(_CHANNEL)
                                subscriptions[address] = pubsub
                    retry_at = time.monotonic() + 1.0
                if not subscriptions:
                    time.sleep(0.2)
                    continue
                for address, pubsub in list(subscriptions.items()):
                    try:
                        message = pubsub.get_message(timeout=0.2 / len(subscriptions))
                    except (_redis.RedisError, OSError):
                        with contextlib.suppress(Exception):
                            pubsub.close()
                        del subscriptions[address]
                        continue
                    if message:
                        self._switched(str(message.get("data", "")))
        finally:
            for pubsub in subscriptions.values():
                with contextlib.suppress(Exception):
                    pubsub.close()

    def _switched(self, data: str) -> None:
        # "<service> <old ip> <old port> <new ip> <new port>"
        parts = data.split()
        if len(parts) != 5 or parts[0] != self.spec.service or not parts[2].isdigit():
            return
        self.switches += 1
        self._cut((parts[1], int(parts[2])))
