"""Retrying what is safe to repeat while Redis restarts or fails over, with exponential backoff.

What is retried (each under a ``RetryPolicy``):

* ``add_frame`` chunks **with job ids**: a chunk that may or may not have been written is sent again; the
  rows already there come back as duplicates of themselves (reported ``added`` when this load created them);
* ``export_queue`` batches: reads, resumed at the same cursor;
* ``bullpy clean``: Bull's clean removes what still matches, so a second run finishes the first.

What is not: an ``add_frame`` chunk **without job ids** that failed in flight (Bull gives each job a fresh
id, so a chunk written once and sent again would be queued twice): ``add_frame`` stops with
``FrameLoadInterrupted``, saying which rows are queued for sure and which may be. Worker loops have their own
reconnection (``bullpy.worker``); single ``Queue`` calls rely on redis-py's own reconnect-and-resend.

Transient (retried): connection refused/reset/timeout, ``LOADING`` (a restarted Redis reading its AOF),
``READONLY`` (a failover in progress: the old master was demoted, or a replica was reached),
``MASTERDOWN``, ``NOREPLICAS`` and ``TRYAGAIN``. Never retried (they fail at once with one clear message):
wrong password or user, NOPERM, OOM, MISCONF, script errors and bad input: repeating cannot help.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import redis as _redis

from ._facade import ScriptRunner
from .errors import (
    BullError,
    RedisAuthenticationFailed,
    RedisReadOnly,
    RedisRefused,
    RedisUnavailable,
)

if TYPE_CHECKING:
    from ._core.scripts import Call

T = TypeVar("T")

# Error codes of replies that mean "not now": the same command succeeds once the server is ready again.
_TRANSIENT_CODES = ("LOADING", "READONLY", "MASTERDOWN", "NOREPLICAS", "TRYAGAIN", "CLUSTERDOWN")


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep retrying an operation that is safe to repeat.

    Args:
        attempts: tries in all (1 = never retry).
        first_delay: seconds before the first retry; each next delay doubles (with jitter: 50-100% of it).
        max_delay: the longest pause between two tries.
        deadline: give up once this many seconds have passed since the first failure, tries left or not.

    The default rides out a Redis restart (seconds) and a Sentinel failover (Sentinel's
    ``down-after-milliseconds`` plus a few seconds) and gives up after about a minute.
    """

    attempts: int = 12
    first_delay: float = 0.1
    max_delay: float = 5.0
    deadline: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool) or self.attempts < 1:
            raise ValueError(f"RetryPolicy attempts must be an integer >= 1, got {self.attempts!r}")
        for name in ("first_delay", "max_delay", "deadline"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or not math.isfinite(value):
                raise ValueError(f"RetryPolicy {name} must be a number of seconds >= 0, got {value!r}")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        ceiling = min(self.max_delay, self.first_delay * 2 ** min(retry - 1, 30))
        return float(ceiling * random.uniform(0.5, 1.0))


DEFAULT_POLICY = RetryPolicy()
#: One try only: fail at the first connection problem.
NO_RETRY = RetryPolicy(attempts=1)


def is_transient(exc: BaseException) -> bool:
    """True for a failure that repeating the same (idempotent) operation later can cure."""
    if isinstance(exc, (RedisAuthenticationFailed, _redis.AuthenticationError)):
        return False
    if isinstance(exc, (RedisReadOnly, _redis.ReadOnlyError)):
        return True
    if isinstance(exc, RedisRefused):
        return False
    if isinstance(exc, (RedisUnavailable, _redis.ConnectionError, _redis.TimeoutError)):
        return True  # includes redis-py's BusyLoadingError (LOADING) and Sentinel's MasterNotFoundError
    if isinstance(exc, _redis.ResponseError):
        text = str(exc).split(" of pipeline caused error: ", 1)[-1].lstrip()
        return text.startswith(_TRANSIENT_CODES)
    return False


def as_error(exc: BaseException, client: _redis.Redis, operation: str) -> BaseException:
    """The one clear error to raise for ``exc`` (bullpy's wrapping where it adds facts, else ``exc``)."""
    from ._refusals import as_bull_error

    if isinstance(exc, BullError):
        return exc
    return as_bull_error(exc, client, operation) or exc


def call(
    fn: Callable[[], T],
    *,
    client: _redis.Redis,
    what: str,
    policy: RetryPolicy | None = None,
    on_retry: Callable[[BaseException, int, float], None] | None = None,
) -> T:
    """Run ``fn`` (an operation that is safe to repeat), retrying transient failures under ``policy``.

    ``on_retry(error, retry_number, delay)`` is called before each pause. A failure that is not transient
    is raised at once as bullpy's error for it; when the policy runs out, ``RedisUnavailable`` names the
    operation, the tries and the last failure (its ``__cause__``).
    """
    policy = policy or DEFAULT_POLICY
    first_failure: float | None = None
    tries = 0
    while True:
        tries += 1
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                error = as_error(exc, client, what)
                if error is exc:
                    raise
                raise error from exc
            now = time.monotonic()
            if first_failure is None:
                first_failure = now
            elapsed = now - first_failure
            delay = policy.delay(tries)
            if tries >= policy.attempts or elapsed + delay > policy.deadline:
                raise gave_up(exc, client, what, tries, elapsed) from exc
            if on_retry is not None:
                on_retry(exc, tries, delay)
            time.sleep(delay)


def gave_up(exc: BaseException, client: _redis.Redis, what: str, tries: int, seconds: float) -> RedisUnavailable:
    """The error that ends a retried operation: what, how long, and the last failure in bullpy's words."""
    last = as_error(exc, client, "")
    text = str(last).removeprefix(": ").strip() or type(exc).__name__
    times = "once" if tries == 1 else f"{tries} times over {seconds:.1f} s"
    return RedisUnavailable(f"{what}: gave up after trying {times}: {text}")


class RetryingRunner(ScriptRunner):
    """A ScriptRunner whose ``run`` retries under a policy: for Calls that are safe to repeat (reads)."""

    def __init__(self, client: _redis.Redis, *, what: str, policy: RetryPolicy | None = None) -> None:
        super().__init__(client)
        self.what = what
        self.policy = policy

    def run(self, script_call: Call[T]) -> T:
        return call(lambda: super(RetryingRunner, self).run(script_call), client=self.client, what=self.what,
                    policy=self.policy)


__all__ = ["DEFAULT_POLICY", "NO_RETRY", "RetryPolicy", "RetryingRunner", "as_error", "call", "gave_up", "is_transient"]
