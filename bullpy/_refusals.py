"""What a redis-py error means for a queue: the bullpy error that names the server, the ACL user and the command
or bullpy script that was refused (never a password), or, for a WRONGTYPE, the damaged key of the queue.

Refusals that retrying cannot cure (wrong password, NOPERM, OOM, READONLY, MISCONF) become the errors of
``bullpy.errors``; connection failures become ``RedisUnavailable``; anything else passes through unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import redis as _redis

from . import _cluster
from .connection import describe, is_tls, user_of
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
        if is_tls(client) and any(w in detail.lower() for w in ("ssl", "certificate", "tls")):
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
