"""A worker's decisions without a server: backoff, keepJobs, failed attempts (lib/job.js, lib/backoffs.js)."""

from __future__ import annotations

from typing import Any

import pytest

from bullpy._core.jobhash import parse_job_hash
from bullpy._core.scripts import KeepJobs
from bullpy._core.work import (
    backoff_delay,
    clock_offset,
    completed_payload,
    failed_attempt,
    keep_jobs,
)


@pytest.mark.parametrize(("option", "expected"), [
    (None, KeepJobs(None)), (False, KeepJobs(None)), (True, KeepJobs(0)), (0, KeepJobs(0)), (10, KeepJobs(10)),
    ({"age": 3600}, KeepJobs(None, 3600)), ({"age": 60, "count": 5}, KeepJobs(5, 60)),
])
def test_keep_jobs(option: Any, expected: KeepJobs) -> None:
    assert keep_jobs(option) == expected


@pytest.mark.parametrize(("backoff", "attempts_made", "expected"), [
    (None, 1, None), (0, 1, None), (1000, 1, 1000), ({"type": "fixed", "delay": 300}, 4, 300),
    ({"type": "exponential", "delay": 200}, 1, 200), ({"type": "exponential", "delay": 200}, 2, 600),
    ({"type": "exponential", "delay": 200}, 3, 1400), ({"type": "exponential", "delay": 2000}, 3, 14000),
    ({"type": "exponential", "delay": 0.5}, 1, 1),  # Math.round(0.5) is 1 in JavaScript
])
def test_builtin_backoffs(backoff: Any, attempts_made: int, expected: float | None) -> None:
    assert backoff_delay(backoff, attempts_made, {}, RuntimeError()) == expected


def test_custom_strategy_receives_node_arguments_and_shadows_builtins() -> None:
    calls = []

    def linear(attempts: int, err: BaseException, options: Any) -> int:
        calls.append((attempts, str(err), options))
        return attempts * 100

    assert backoff_delay({"type": "fixed", "delay": 5, "options": {"k": 1}}, 2, {"fixed": linear}, ValueError("e")) == 200
    assert calls == [(2, "e", {"k": 1})]


def record(opts: str, **fields: str) -> Any:
    return parse_job_hash("7", {"name": "n", "data": "{}", "opts": opts, "timestamp": "1", **fields}, 1)


def test_failed_attempt_decisions() -> None:
    err = RuntimeError("boom")
    assert failed_attempt(record('{"attempts":1}'), err, "s", now_ms=10, strategies={}).attempt.next == "fail"
    retry = failed_attempt(record('{"attempts":2,"lifo":true}'), err, "s", now_ms=10, strategies={}).attempt
    assert (retry.next, retry.lifo, retry.attempts_made) == ("retry", True, 1)
    later = failed_attempt(record('{"attempts":3,"backoff":{"type":"fixed","delay":100}}'), err, "s", now_ms=1000,
                           strategies={}).attempt
    assert later.next == "delay" and later.delayed_score == 1100 * 4096 + 7  # numeric id: its low 12 bits
    stop = failed_attempt(record('{"attempts":3,"backoff":{"type":"never"}}'), err, None, now_ms=1,
                          strategies={"never": lambda *a: -1}).attempt
    assert stop.next == "fail"
    discarded = failed_attempt(record('{"attempts":5}'), err, None, now_ms=1, strategies={}, discarded=True)
    assert discarded.final
    unknown = failed_attempt(record('{"attempts":3,"backoff":{"type":"nope"}}'), err, None, now_ms=1, strategies={})
    assert unknown.final and unknown.attempt.reason.startswith("Unknown backoff strategy nope.")


def test_stacktrace_appends_and_keeps_the_last_limit() -> None:
    job = record('{"attempts":5,"stackTraceLimit":2}', stacktrace='["a","b"]', attemptsMade="2")
    attempt = failed_attempt(job, RuntimeError("x"), "c", now_ms=1, strategies={}).attempt
    assert attempt.stacktrace_json == '["b","c"]' and attempt.attempts_made == 3
    no_stack = failed_attempt(job, RuntimeError("x"), None, now_ms=1, strategies={}).attempt
    assert no_stack.stacktrace_json == '["a","b"]'


def test_completed_payload_is_nodes() -> None:
    assert completed_payload("2", None) == '{"jobId":"2"}'
    assert completed_payload("3", '"a string"') == '{"jobId":"3","val":"\\"a string\\""}'


@pytest.mark.parametrize(("current", "sent", "server", "received", "expected"), [
    (0, 1_000_000, 1_000_300, 1_000_900, 0),            # one clock: the server's reading lies inside the trip
    (0, 1_000_000, 1_000_000, 1_000_000, 0),
    (0, 1_000_000, 990_000, 1_000_400, 10),             # the worker is 10 ms ahead: nearest allowed value
    (0, 1_000_000, 1_250_000, 1_000_400, -250),         # the worker is 250 ms behind
    (10, 1_000_000, 990_000, 1_000_400, 10),            # kept while the trip allows it (within a ms of rounding)
    (11, 1_000_000, 990_000, 1_000_400, 11),
    (13, 1_000_000, 990_000, 1_000_400, 10),            # no longer allowed: re-measured
    (10, 1_000_000, 1_000_200, 1_000_400, 0),           # back on one clock
])
def test_clock_offset(current: int, sent: int, server: int, received: int, expected: int) -> None:
    assert clock_offset(current, sent, server, received) == expected
