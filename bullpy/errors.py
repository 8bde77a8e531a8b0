"""Every exception bullpy defines.

The tree::

    BullError                                 root of what bullpy raises itself
    ├── ScriptError                           a Lua script answered with one of Bull's negative codes
    │   ├── JobNotFound (LookupError)         -1  the job hash does not exist
    │   ├── LockNotFound                      -2  a lock was expected but is gone
    │   ├── JobNotInState                     -3  the job is not in the state the operation needs
    │   ├── JobLocked                         the job is locked by a worker (remove, retry)
    │   └── LockMismatch                      -6  the lock is held by another worker's token
    ├── QueueNotPaused                        obliterate on a queue that is not paused
    ├── QueueHasActiveJobs                    obliterate without force while jobs are active
    ├── RedisUnavailable (ConnectionError)    a configured Redis cannot be reached (names host, never the password)
    │   └── RedisAuthenticationFailed         wrong password or user, or a password is needed (PermissionError)
    ├── RedisRefused                          Redis answered but refuses the command; retrying cannot help
    │   ├── RedisPermissionDenied             NOPERM: the ACL user may not run that command or touch those keys
    │   │   (PermissionError)
    │   ├── RedisOutOfMemory                  OOM: used memory is above maxmemory and nothing can be evicted
    │   └── RedisReadOnly                     READONLY: connected to a replica, writes go to the primary
    └── MissingDependency (ImportError)       an optional extra is not installed

Bad arguments raise the builtin ``ValueError``/``TypeError`` before anything reaches Redis.
redis-py's own errors pass through unwrapped unless bullpy can add facts to them: where the server is, which
ACL user, which bullpy script (``bullpy.connection.unavailable_as_error`` does the wrapping). The original
redis-py error stays reachable as ``__cause__``; no message ever carries a password.
"""

from __future__ import annotations


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


class MissingDependency(BullError, ImportError):
    """An optional extra is not installed; the message says which ``pip install`` brings it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"{module} is needed for this; install it with: pip install 'bullpy[{extra}]'")
        self.module = module
        self.extra = extra
