"""Every exception bullpy defines.

The tree::

    BullError                                 root of what bullpy raises itself
    ├── ScriptError                           a Lua script answered with one of Bull's negative codes
    │   ├── JobNotFound (LookupError)         -1  the job hash does not exist
    │   ├── LockNotFound                      -2  a lock was expected but is gone
    │   ├── JobNotInState                     -3  the job is not in the state the operation needs
    │   ├── JobLocked                         the job is locked by a worker (remove, retry)
    │   └── LockMismatch                      -6  the lock is held by another worker's token
    ├── JobTimeout (TimeoutError)             a handler ran past the job's ``timeout`` (Node's message)
    ├── MissingHandler (LookupError)          a worker has no handler for a job's name (Node's message)
    ├── HandlerNotFound (ImportError)         a service's ``module:function`` handler cannot be loaded
    ├── UnknownBackoff (ValueError)           a job names a backoff type no strategy handles
    ├── FrameError (ValueError)               a campaign frame is not valid; names the rows
    ├── ExportFormatError (ValueError)        an export file is malformed, truncated or altered
    ├── ImportConflict                        imported job ids already exist in the target queue
    ├── QueueNotPaused                        obliterate on a queue that is not paused
    ├── QueueHasActiveJobs                    obliterate without force while jobs are active
    ├── WrongKeyType (TypeError)              WRONGTYPE: a key of the queue holds another Redis type than Bull's
    ├── RedisUnavailable (ConnectionError)    a configured Redis cannot be reached (names host, never the password)
    │   └── RedisAuthenticationFailed         wrong password or user, or a password is needed (PermissionError)
    ├── RedisRefused                          Redis answered but refuses the command; retrying cannot help
    │   ├── RedisPermissionDenied             NOPERM: the ACL user may not run that command or touch those keys
    │   │   (PermissionError)
    │   ├── RedisOutOfMemory                  OOM: used memory is above maxmemory and nothing can be evicted
    │   └── RedisReadOnly                     READONLY: connected to a replica, writes go to the primary
    ├── MissingDependency (ImportError)       an optional extra is not installed
    └── NodeUnavailable (RuntimeError)        the Node worker (bullpy demo, bullpy.bridge) cannot run here

Warnings: ``NumericIdentifierWarning`` (UserWarning), an integer column of identifiers about to be written as
JSON numbers (``add_frame``).

Bad arguments raise the builtin ``ValueError``/``TypeError`` before anything reaches Redis.
redis-py's own errors pass through unwrapped unless bullpy can add facts to them: where the server is, which
ACL user, which bullpy script (``bullpy._refusals.unavailable_as_error`` does the wrapping). The original
redis-py error stays reachable as ``__cause__``; no message ever carries a password.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class BullError(Exception):
    """Root of what bullpy raises itself; redis-py errors pass through unwrapped."""


class ScriptError(BullError):
    """A script refused an operation on one job with one of Bull's negative codes."""

    code: int = 0
    reason: str = "unexpected script reply"

    def __init__(self, job_id: str, command: str, detail: str | None = None) -> None:
        message = f"{command}: job {job_id!r}: {self.reason}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)
        self.job_id = job_id
        self.command = command


class JobNotFound(ScriptError, LookupError):
    code, reason = -1, "the job does not exist"


class LockNotFound(ScriptError):
    code, reason = -2, "the job's lock is missing"


class JobNotInState(ScriptError):
    code, reason = -3, "the job is not in the required state"


class LockMismatch(ScriptError):
    code, reason = -6, "the job's lock is held by another worker"


class JobLocked(ScriptError):
    code, reason = -7, "the job is locked by a worker"


_BY_CODE: dict[int, type[ScriptError]] = {
    cls.code: cls for cls in (JobNotFound, LockNotFound, JobNotInState, LockMismatch, JobLocked)
}


def error_for_code(code: int, job_id: str, command: str, detail: str | None = None) -> ScriptError:
    """The exception for one of Bull's negative script codes."""
    cls = _BY_CODE.get(code, ScriptError)
    return cls(job_id, command, detail)


class QueueNotPaused(BullError):
    """``obliterate`` needs a globally paused queue (Bull's -1)."""


class QueueHasActiveJobs(BullError):
    """``obliterate(force=False)`` found active jobs (Bull's -2)."""


class WrongKeyType(BullError, TypeError):
    """WRONGTYPE: a key of the queue holds another Redis type than Bull keeps there (a stray ``SET``, or Node's
    ``jobId: 'wait'`` turning the wait list into a hash); nothing was changed.

    Attributes: ``key`` (the damaged key), ``actual`` (its Redis type) and ``expected`` (the type Bull keeps
    there); all three None when no queue-level key was found of the wrong type (then a job's own key is).
    """

    def __init__(self, message: str, *, key: str | None = None, actual: str | None = None,
                 expected: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.actual = actual
        self.expected = expected


class RedisUnavailable(BullError, ConnectionError):
    """A configured Redis cannot be reached; the message names host and port, never the password."""


class RedisAuthenticationFailed(RedisUnavailable, PermissionError):
    """Redis refused the credentials (WRONGPASS) or wants some (NOAUTH); names the user, never the password.

    A RedisUnavailable too, because redis-py reports it as a connection error and callers that catch
    ``RedisUnavailable`` around connecting keep working.
    """

    def __init__(self, message: str, *, where: str, user: str) -> None:
        super().__init__(message)
        self.where = where
        self.user = user


class RedisRefused(BullError):
    """Redis answered but will not run the command; the same command fails again until someone acts.

    Attributes: ``where`` (host:port and db), ``user`` (the ACL user), ``command`` (the Redis command,
    when Redis named it) and ``script`` (the bullpy script that ran it, if any).
    """

    def __init__(self, message: str, *, where: str, user: str, command: str | None = None,
                 script: str | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.user = user
        self.command = command
        self.script = script


class RedisPermissionDenied(RedisRefused, PermissionError):
    """NOPERM: the ACL user may not run the command (or touch the keys); nothing was written."""


class RedisOutOfMemory(RedisRefused):
    """OOM: Redis is at ``maxmemory`` and may evict nothing, so it refuses every write."""


class RedisReadOnly(RedisRefused):
    """READONLY: the server is a replica; bullpy must be pointed at the primary."""


class FrameLoadInterrupted(BullError):
    """``add_frame`` stopped part-way; rows before ``written`` (frame order) are queued for sure, the rows in
    ``uncertain`` may or may not be, later rows are not. ``__cause__`` is what stopped it."""

    def __init__(self, message: str, *, written: int, uncertain: range, total: int) -> None:
        super().__init__(message)
        self.written = written
        self.uncertain = uncertain
        self.total = total


class JobTimeout(BullError, TimeoutError):
    """A handler ran past the job's ``timeout`` option (Node's p-timeout message)."""

    def __init__(self, ms: int) -> None:
        super().__init__(f"Promise timed out after {ms} milliseconds")


class MissingHandler(BullError, LookupError):
    """No handler for the job's name and no ``*`` catch-all (Node's message)."""


class HandlerNotFound(BullError, ImportError):
    """``bullpy worker``'s ``module:function`` (or ``module:mapping``) names nothing that can handle jobs."""


class UnknownBackoff(BullError, ValueError):
    """The job names a backoff type that neither Bull nor this worker's strategies know."""


_ROWS_SHOWN = 10  # offending rows a FrameError message lists; ``rows`` holds them all


class FrameError(BullError, ValueError):
    """A campaign frame is not valid; ``rows`` holds the offending row labels."""

    def __init__(self, message: str, rows: Sequence[Any] = ()) -> None:
        shown = list(rows)[:_ROWS_SHOWN]
        more = f" and {len(rows) - _ROWS_SHOWN} more" if len(rows) > _ROWS_SHOWN else ""
        super().__init__(f"{message}" + (f" (rows {shown}{more})" if rows else ""))
        self.rows = list(rows)


class NumericIdentifierWarning(UserWarning):
    """A frame column of integers that look like identifiers (8 digits or more: phone numbers, customer ids) is
    about to be written as JSON numbers, which a worker expecting text (``number.includes(...)``) fails on.
    Silence it by converting the column (``df[c].astype(str)``) or by declaring ``schema={c: int}``."""


class ExportFormatError(BullError, ValueError):
    """An export file is malformed, truncated, altered or of another version; nothing was written."""

    def __init__(self, message: str, *, source: str = "", record: int | None = None, offset: int | None = None) -> None:
        where = []
        if record is not None:
            where.append(f"record {record}")
        if offset is not None:
            where.append(f"byte {offset}")
        place = f" ({', '.join(where)})" if where else ""
        super().__init__(f"{source or 'export'}{place}: {message}")
        self.source, self.record, self.offset = source, record, offset


_IDS_SHOWN = 20  # conflicting ids an ImportConflict message lists; ``ids`` holds them all


class ImportConflict(BullError):
    """Job ids being imported already exist in the target queue (with ``on_conflict="error"``)."""

    def __init__(self, target: str, count: int, ids: Sequence[str], written: int = 0) -> None:
        shown = ", ".join(repr(i) for i in ids[:_IDS_SHOWN]) + (", ..." if count > len(ids[:_IDS_SHOWN]) else "")
        if written:
            outcome = (f"{written} jobs had been written by then (the batch with the conflict was not); "
                       "run again with on_conflict='skip' to complete the import")
        else:
            outcome = "nothing was written"
        super().__init__(f"{count} job id{'s' if count != 1 else ''} already exist in {target}: {shown}; {outcome} "
                         "(use on_conflict='skip' to keep the target's jobs or 'replace' to overwrite them)")
        self.target, self.count, self.ids, self.written = target, count, list(ids), written


class MissingDependency(BullError, ImportError):
    """An optional extra is not installed; the message says which ``pip install`` brings it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"{module} is needed for this; install it with: pip install 'bullpy[{extra}]'")
        self.module = module
        self.extra = extra


class NodeUnavailable(BullError, RuntimeError):
    """The Node side (``bullpy demo``, ``bullpy.bridge``) cannot run: no Node.js >= 18, no npm, or npm ci failed."""
