"""bullpy._core.ops and reads without a server: the steps each operation sends and what it makes of the
replies, which both facades (sync and ``bullpy.aio``) share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from bullpy import JobLocked, JobNotFound, JobNotInState, QueueHasActiveJobs, QueueNotPaused
from bullpy._core import ops, reads, stats
from bullpy._core.keys import JobState, QueueKeys
from bullpy._core.ops import Batch, Op, run_sync
from bullpy._core.reads import Read
from bullpy._core.scripts import Call

KEYS = QueueKeys("message-queue", "bull")


def drive(op: Op[Any], replies: Sequence[Any]) -> tuple[Any, list[Any]]:
    """Run an operation against scripted replies (each parsed by the step's own parser); its result and steps."""
    steps: list[Any] = []
    answers = iter(replies)

    def step(current: Any) -> Any:
        steps.append(current)
        reply = next(answers)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(current, (Call, Read)):
            return current.parse(reply)
        if isinstance(current, Batch):
            return reply if current.raw else [c.parse(r) for c, r in zip(current.calls, reply)]
        raise AssertionError(current)

    return run_sync(op, step), steps


def names(steps: list[Any]) -> list[str]:
    return [s.script if isinstance(s, Call) else type(s).__name__ for s in steps]


def test_obliterate_refuses_before_pausing_a_busy_queue_and_maps_codes() -> None:
    with pytest.raises(QueueHasActiveJobs):
        drive(ops.obliterate(KEYS, False, 1000), [[3]])
    result, steps = drive(ops.obliterate(KEYS, False, 1000), [[0], 1, 1, 1, 0])
    assert result is None and names(steps) == ["Read", "pause", "obliterate", "obliterate", "obliterate"]
    _, steps = drive(ops.obliterate(KEYS, True, 1000), [1, 0])
    assert names(steps) == ["pause", "obliterate"]  # force: no active check
    with pytest.raises(QueueNotPaused):
        drive(ops.obliterate(KEYS, True, 1000), [1, -1])
    with pytest.raises(QueueHasActiveJobs):
        drive(ops.obliterate(KEYS, True, 1000), [1, -2])


@pytest.mark.parametrize(("code", "error"), [(0, JobNotFound), (-1, JobLocked), (-2, JobNotInState), (1, None)])
def test_retry_maps_bulls_codes(code: int, error: type[Exception] | None) -> None:
    op = ops.retry_job(KEYS, "7", "failed", False, "token", 1)
    if error is None:
        assert drive(op, [code])[0] is None
    else:
        with pytest.raises(error):
            drive(op, [code])


def test_clean_steps_until_the_cursor_ends_and_orders_lists_like_node() -> None:
    plan = ops.plan_clean(0, "wait", 0, 2, now_ms=10_000)
    assert plan.cutoff == 10_000
    taken: dict[str, None] = {}
    result, steps = drive(ops.clean(KEYS, plan, False, taken), [[["1", "2"], ["c"]], [["3"], []]])
    assert names(steps) == ["clean_jobs_in_set", "clean_jobs_in_set"]
    assert result == ["3", "2", "1"]  # walked from the head, listed left to right as Node lists them
    limited, _ = drive(ops.clean(KEYS, ops.plan_clean(0, "completed", 2, 10, 0), False, {}), [[["a", "b"], ["c"]]])
    assert limited == ["a", "b"]
    with pytest.raises(ValueError, match="unknown queue type"):
        ops.plan_clean(0, "waiting", 0, 1, 0)


def test_a_step_that_fails_is_thrown_into_the_operation() -> None:
    def op() -> Op[str]:
        try:
            yield Read([("GET", "x")], list)
        except KeyError:
            return "handled"
        return "not reached"

    assert drive(op(), [KeyError("x")])[0] == "handled"


def test_get_stats_reads_one_snapshot_then_the_few_jobs_found() -> None:
    op = stats.get_stats(KEYS, {"completed": 5000.0}, limit=10)
    snapshot: list[Any] = [
        3, 1, 7, 0, 2, 0,           # the six counts
        0, False,                   # meta-paused, meta.paused
        "12", None,                 # Bull's metrics counts: completed recorded, failed not
        "1", "3", None, None,       # wait's head and tail, an empty paused list
        ["9", "6000", "8", "5500"], 2,
    ]
    hashes = [
        ["1000", "0", None, None],        # job 1: created at 1000, never ran
        ["2000", "500", "4000", None],    # job 3: delayed 500, back in wait after an attempt at 4000
        ["4000", "0", "5900", None],      # job 9: waited 1900 ms, ran 100 ms
        ["4000", "1000", "5200", "5100"], # job 8: retried by hand at 5100, started 5200, ran 300 ms
    ]
    got, steps = drive(op, [snapshot, hashes])
    assert [len(s.commands) for s in steps] == [16, 4] and steps[0].snapshot and not steps[1].snapshot
    assert steps[0].commands[14] == ("ZREVRANGEBYSCORE", "bull:message-queue:completed", "+inf", "(5000",
                                     "WITHSCORES", "LIMIT", 0, 10)
    assert got.counts == {"waiting": 3, "active": 1, "completed": 7, "failed": 0, "delayed": 2, "paused": 0}
    assert not got.paused and got.metrics_counts == {"completed": 12, "failed": None}
    assert got.oldest_waiting_since == 1000
    assert got.finished_counts == {"completed": 2} and got.newest_finished == {"completed": 6000.0}
    nine, eight = got.finished["completed"]
    assert (nine.id, nine.processing_ms, nine.waited_ms) == ("9", 100.0, 1900.0)
    assert (eight.id, eight.processing_ms, eight.waited_ms) == ("8", 300.0, 100.0)
    with pytest.raises(ValueError, match="finished_after"):
        drive(stats.get_stats(KEYS, {"waiting": 0}, 10), [])


def test_reads_parse_both_reply_shapes() -> None:
    flat = reads.repeatable_jobs(KEYS, 0, -1, False)
    nested = ["__default__::::86400000", "1795800000000"]
    assert flat.parse([nested])[0].next == 1795800000000
    assert flat.parse([[nested]])[0].next == 1795800000000  # RESP3 pairs
    assert reads.as_hash(["a", "1", "b", "2"]) == {"a": "1", "b": "2"}
    counts = reads.job_counts(KEYS, ["wait,delayed", "completed"])
    assert counts.commands == [("LLEN", "bull:message-queue:wait"), ("ZCARD", "bull:message-queue:delayed"),
                               ("ZCARD", "bull:message-queue:completed")]
    with pytest.raises(ValueError, match="unknown job state"):
        reads.job_counts(KEYS, ["nope"])


def test_get_state_and_remove_raise_bullpy_errors() -> None:
    assert drive(ops.get_state(KEYS, "1"), ["active"])[0] is JobState.ACTIVE
    with pytest.raises(JobNotFound):
        drive(ops.get_state(KEYS, "1"), ["missing"])
    with pytest.raises(JobLocked):
        drive(ops.remove_job(KEYS, "1"), [0])

