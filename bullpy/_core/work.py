"""A worker's decisions, without I/O: what Node's lib/job.js moveToCompleted/moveToFailed/_saveAttempt
and lib/backoffs.js compute before they call a script.

Kept here so the sync and async workers share them and their tests need no server.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import UnknownBackoff
from .codec import delayed_score, js_parse_int, to_json
from .jobhash import JobRecord
from .scripts import FailedAttempt, KeepJobs

#: A custom backoff strategy: (attempts_made, error, options) -> delay ms, 0/None to retry now, -1 to stop.
BackoffStrategy = Callable[[int, BaseException, Any], "int | float | None"]


def keep_jobs(option: Any) -> KeepJobs:
    """removeOnComplete / removeOnFail from a job's opts, as Node packs it for moveToFinished."""
    if isinstance(option, Mapping):
        count, age = option.get("count"), option.get("age")
        return KeepJobs(
            count=int(count) if isinstance(count, (int, float)) and not isinstance(count, bool) else None,
            age=int(age) if isinstance(age, (int, float)) and not isinstance(age, bool) else None,
        )
    if isinstance(option, (int, float)) and not isinstance(option, bool):
        return KeepJobs(count=int(option))
    # true -> {count: 0} (delete); false, undefined -> {count: -1} (keep all)
    return KeepJobs(count=0) if option else KeepJobs(count=None)


def completed_payload(job_id: str, returnvalue_json: str | None) -> str:
    """``JSON.stringify({jobId, val})``: ``val`` is the JSON *string* of the result, absent for undefined."""
    if returnvalue_json is None:
        return to_json({"jobId": job_id})
    return to_json({"jobId": job_id, "val": returnvalue_json})


def backoff_delay(
    backoff: Any, attempts_made: int, strategies: Mapping[str, BackoffStrategy], error: BaseException
) -> float | None:
    """lib/backoffs.js calculate: the delay before the next attempt; None means "retry now"."""
    if not backoff:
        return None
    if isinstance(backoff, (int, float)) and not isinstance(backoff, bool):
        backoff = {"type": "fixed", "delay": backoff}  # backoffs.normalize
    if not isinstance(backoff, Mapping):
        return None
    kind = backoff.get("type")
    options = backoff.get("options")
    # A custom strategy of the same name shadows the built-ins, as in Node.
    if isinstance(kind, str) and kind in strategies:
        value = strategies[kind](attempts_made, error, options)
        return None if value is None else float(value)
    delay = backoff.get("delay")
    if kind == "fixed":
        return None if delay is None else float(delay)
    if kind == "exponential":
        # Math.round((2^attemptsMade - 1) * delay); JavaScript rounds .5 up.
        return None if delay is None else float(math.floor((2**attempts_made - 1) * float(delay) + 0.5))
    raise UnknownBackoff(
        f"Unknown backoff strategy {kind}. If a custom backoff strategy is used, specify it when the queue is created."
    )


@dataclass(frozen=True)
class FailureDecision:
    attempt: FailedAttempt
    final: bool


def failed_attempt(
    record: JobRecord,
    error: BaseException,
    stack: str | None,
    *,
    now_ms: int,
    strategies: Mapping[str, BackoffStrategy],
    discarded: bool = False,
) -> FailureDecision:
    """Node's moveToFailed: count the attempt, keep the stack, then retry now, later, or fail for good."""
    attempts_made = (record.attempts_made or 0) + 1
    stacktrace = list(record.stacktrace or [])
    if stack:
        stacktrace.append(stack)
        limit = record.opts.get("stackTraceLimit")
        if limit:
            stacktrace = stacktrace[-int(limit):]
    reason = str(error) if str(error) else type(error).__name__
    attempts = js_parse_int(str(record.opts.get("attempts", 1)))
    failing = FailedAttempt(
        stacktrace_json=to_json(stacktrace), reason=reason, attempts_made=attempts_made, next="fail",
        finished_on=now_ms, keep=keep_jobs(record.opts.get("removeOnFail")),
        payload=to_json({"jobId": record.id, "val": reason}),
    )
    if attempts is None or attempts_made >= attempts or discarded:
        return FailureDecision(failing, final=True)
    try:
        delay = backoff_delay(record.opts.get("backoff"), attempts_made, strategies, error)
    except UnknownBackoff as exc:
        # Divergence (safe): Node throws here and leaves the job locked in `active` until the stalled
        # check fails it; bullpy fails it at once with Node's own message.
        message = str(exc)
        return FailureDecision(
            replace(failing, reason=message, payload=to_json({"jobId": record.id, "val": message})), final=True
        )
    if delay == -1:
        return FailureDecision(failing, final=True)
    if delay:
        score = delayed_score(now_ms + int(delay), record.id)
        return FailureDecision(replace(failing, next="delay", delayed_score=score), final=False)
    return FailureDecision(replace(failing, next="retry", lifo=bool(record.opts.get("lifo"))), final=False)


def clock_offset(current_ms: int, sent_us: int, server_us: int, received_us: int) -> int:
    """The worker's clock minus Redis's, in ms, from one ``TIME`` round trip (bullpy's own, not Node's).

    Node stamps processedOn/finishedOn with its ``Date.now()`` before it sends the script; bullpy's scripts
    read Redis's clock when they run and add this offset, so the stamps are still the worker's clock, but
    never older than the script (a stamp read before a thread switch or a batch could precede the creation of
    a job the script then takes). The offsets the round trip allows lie between ``sent - server`` and
    ``received - server``: ``current_ms`` is kept while it lies there (a millisecond of rounding allowed), else
    the allowed value nearest 0 is taken. On one clock 0 is always allowed, so the offset stays 0.
    """
    low, high = sent_us - server_us, received_us - server_us
    if low - 1000 <= current_ms * 1000 <= high + 1000:
        return current_ms
    nearest = min(max(0, low), high)
    return round(nearest / 1000)
