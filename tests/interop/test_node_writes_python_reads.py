"""Node Bull writes, bullpy reads: every job field and every getter equals what Node itself reports.

Real Node Bull 4.16.5 (the ``bull`` peer) adds jobs with each job option, processes them (return values of
every JSON kind, progress, logs, retries, final failures) and leaves a queue in every state. bullpy then
reads the same prefix and queue name, and each read is compared with Node's own read of the same state:
``job.toJSON()``, ``getState()``, ``getJobLogs``, ``getJobCounts``, ``getJobs``, ``getCountsPerPriority``,
``isPaused``, ``getRepeatableJobs`` and ``getWorkers``. Full structures are compared, with JSON types and key
order (``True == 1`` and ``1 == 1.0`` in Python, so ``==`` alone would hide a wrong type).

Node's ``toJSON`` leaves ``failedReason`` undefined when a job never failed; the peer drops undefined members
as ``JSON.stringify`` does, and bullpy's ``to_dict`` omits the key too, so jobs are compared as they come.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

import bullpy

from .peer import Peer, PeerQueue

pytestmark = pytest.mark.node

MakeQueue = Callable[..., bullpy.Queue]
Json = Any

LONG_DELAY = 3_600_000  # delayed jobs that never come due during a test
END_DATE = 4_102_444_800_000  # 2100-01-01


# --- helpers --------------------------------------------------------------------------------------------
def node_json(job: dict[str, Any] | None) -> dict[str, Any] | None:
    """A job as the peer returns it: never a ``failedReason: null`` (JSON.stringify drops undefined)."""
    assert job is None or "failedReason" not in job or job["failedReason"] is not None, job
    return job


def node_jobs(jobs: Sequence[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
    return [node_json(job) for job in jobs]


def assert_json_equal(python: Json, node: Json) -> None:
    """Equal values, and equal as JSON text too: same types (bool vs int, int vs float) and key order."""
    assert python == node
    assert json.dumps(python, ensure_ascii=False) == json.dumps(node, ensure_ascii=False)


def assert_same_job(bull: Peer, queue: bullpy.Queue, job_id: str) -> dict[str, Any]:
    """bullpy's ``get_job(id).to_dict()`` and ``get_state()`` equal Node's ``getJob(id)`` and ``getState()``."""
    node = node_json(bull.get_job(queue, job_id))
    job = queue.get_job(job_id)
    assert node is not None, f"Node has no job {job_id!r}"
    assert job is not None, f"bullpy has no job {job_id!r}"
    assert_json_equal(job.to_dict(), node)
    assert job.get_state().value == bull.job(queue, job_id, "getState")
    return node


def dicts(jobs: Sequence[bullpy.Job]) -> list[dict[str, Any]]:
    return [job.to_dict() for job in jobs]


def peer_data(**behaviour: Any) -> dict[str, Any]:
    """Job data carrying a per-job behaviour for the peer's handler."""
    return {"__peer": behaviour}


# --- 1. Node adds a job with each option; bullpy reads every field --------------------------------------
ADD_CASES: list[tuple[str, list[Any]]] = [
    ("plain", [{"a": 1}]),
    ("named", ["email", {"to": "someone@example.com"}]),
    ("no-args", []),
    ("numbers-unicode-nested", [{
        "text": "ünï cødé ☃ 😀 \u2028 \"quoted\" \\ back",
        "nested": {"list": [1, [2, {"deep": None, "t": True, "f": False}]], "empty": {}, "arr": []},
        "floats": [0.1, 1e-7, 1e21, -0.0, 1.5, 2.5e-300, 1.7976931348623157e308, 123456789012345678],
        "ints": [0, -1, 2**53 - 1],
    }]),
    ("string-datum", ["just a string"]),
    ("empty-string-datum", [""]),
    ("zero-datum", [0]),
    ("false-datum", [False]),
    ("null-datum", [None]),
    ("list-datum", [[1, "two", {"three": 3}]]),
    ("attempts-backoff-object", [{"n": 1}, {"attempts": 3, "backoff": {"type": "exponential", "delay": 2000}}]),
    ("attempts-backoff-fixed-object", [{"n": 1}, {"attempts": 2, "backoff": {"type": "fixed", "delay": 500}}]),
    ("backoff-number", [{"n": 2}, {"attempts": 2, "backoff": 5000}]),
    ("priority", [{"p": 5}, {"priority": 5}]),
    ("delay", [{"later": True}, {"delay": 60_000}]),
    ("delay-and-priority", ["dp", {}, {"delay": 120_000, "priority": 3}]),
    ("lifo", [{"lifo": True}, {"lifo": True}]),
    ("job-id-string", [{"c": 1}, {"jobId": "my-custom-id"}]),
    ("job-id-odd", ["edge", {"x": 1}, {"jobId": "ünï cødé:{x} 1 [y]"}]),
    ("job-id-number", [{"num": True}, {"jobId": 12345}]),
    ("remove-on-true", [{}, {"removeOnComplete": True, "removeOnFail": True}]),
    ("remove-on-number", [{}, {"removeOnComplete": 10, "removeOnFail": 0}]),
    ("remove-on-age-count", [{}, {"removeOnComplete": {"age": 3600, "count": 100}, "removeOnFail": {"age": 60}}]),
    ("remove-on-false", [{}, {"removeOnComplete": False, "removeOnFail": {"count": 5}}]),
    ("timeout", [{}, {"timeout": 5000}]),
    ("stack-trace-limit", [{}, {"stackTraceLimit": 3, "attempts": 4}]),
    ("prevent-parsing-data", ["raw-not-json {x", {"preventParsingData": True}]),
    ("prevent-parsing-object", [{"obj": [1, 2]}, {"preventParsingData": True}]),
    ("explicit-timestamp", [{}, {"timestamp": 1_795_800_000_000}]),
    ("every-option", ["all", {"all": "ü"}, {
        "attempts": 5, "backoff": {"type": "exponential", "delay": 100}, "priority": 2, "lifo": True,
        "jobId": "every:option", "removeOnComplete": 3, "removeOnFail": {"age": 10, "count": 2},
        "timeout": 1000, "stackTraceLimit": 2,
    }]),
]


@pytest.mark.parametrize("args", [case for _, case in ADD_CASES], ids=[name for name, _ in ADD_CASES])
def test_node_add_option_reads_equal(make_queue: MakeQueue, bull: Peer, args: list[Any]) -> None:
    queue = make_queue()
    added = bull.call(queue, "add", *args)
    node = assert_same_job(bull, queue, added["id"])
    assert node["opts"] == added["opts"]  # what Node wrote is what both read back


def test_node_duplicate_job_id_reads_first(make_queue: MakeQueue, bull: Peer) -> None:
    queue = make_queue()
    bull.call(queue, "add", {"c": "first"}, {"jobId": "dup"})
    bull.call(queue, "add", {"c": "second"}, {"jobId": "dup", "priority": 9})
    node = assert_same_job(bull, queue, "dup")
    assert node["data"] == {"c": "first"}


def test_node_debounce_reads_equal(make_queue: MakeQueue, bull: Peer) -> None:
    queue = make_queue()
    first = bull.call(queue, "add", {"d": 1}, {"debounce": {"id": "deb1", "ttl": 60_000}})
    second = bull.call(queue, "add", {"d": 2}, {"debounce": {"id": "deb1", "ttl": 60_000}})
    untimed = bull.call(queue, "add", {"d": 3}, {"debounce": {"id": "deb2"}})
    for job_id in {first["id"], second["id"], untimed["id"]}:
        assert_same_job(bull, queue, job_id)
    job = queue.get_job(first["id"])
    assert job is not None and job.to_dict()["debounceId"] == "deb1"
    assert_json_equal(dicts(queue.get_waiting()), node_jobs(bull.call(queue, "getWaiting")))


def test_node_repeatable_jobs_read_equal(make_queue: MakeQueue, bull: Peer) -> None:
    queue = make_queue()
    every = bull.call(queue, "add", "daily", {"r": 1}, {"repeat": {"every": 86_400_000}})
    cron = bull.call(queue, "add", "tzjob", {"r": 2}, {
        "jobId": "rid", "repeat": {"cron": "0 9 * * 1", "tz": "Europe/Paris", "endDate": END_DATE, "limit": 50},
    })
    plain_cron = bull.call(queue, "add", {"r": 3}, {"repeat": {"cron": "*/5 * * * *", "tz": "UTC"}})
    for added in (every, cron, plain_cron):
        assert added["id"].startswith("repeat:")
        node = assert_same_job(bull, queue, added["id"])
        assert node["opts"]["repeat"]["count"] == 1

    colon = bull.call(queue, "add", "a:b", {"r": 4}, {"jobId": "x:y", "repeat": {"every": 60_000, "endDate": END_DATE}})
    assert_same_job(bull, queue, colon["id"])

    node_all = bull.call(queue, "getRepeatableJobs")
    assert len(node_all) == 4
    assert_json_equal([r.to_node_json() for r in queue.get_repeatable_jobs()], node_all)
    assert_json_equal(
        [r.to_node_json() for r in queue.get_repeatable_jobs(asc=True)],
        bull.call(queue, "getRepeatableJobs", 0, -1, True),
    )
    assert_json_equal(
        [r.to_node_json() for r in queue.get_repeatable_jobs(1, 2)],
        bull.call(queue, "getRepeatableJobs", 1, 2),
    )
    assert_json_equal(
        [r.to_node_json() for r in queue.get_repeatable_jobs(0, 1, asc=True)],
        bull.call(queue, "getRepeatableJobs", 0, 1, True),
    )
    for start, end, asc in [(1, 1, True), (2, 5, False), (1, -2, False)]:
        assert_json_equal(
            [r.to_node_json() for r in queue.get_repeatable_jobs(start, end, asc)],
            bull.call(queue, "getRepeatableJobs", start, end, asc),
        )
    assert queue.get_repeatable_count() == bull.call(queue, "getRepeatableCount")
    assert_json_equal(dicts(queue.get_delayed()), node_jobs(bull.call(queue, "getDelayed")))


def test_node_repeatable_jobs_end_zero(make_queue: MakeQueue, bull: Peer) -> None:
    queue = make_queue()
    bull.call(queue, "add", "a", {}, {"repeat": {"every": 60_000}})
    bull.call(queue, "add", "b", {}, {"repeat": {"every": 120_000}})
    for asc in (False, True):
        assert_json_equal(
            [r.to_node_json() for r in queue.get_repeatable_jobs(0, 0, asc)],
            bull.call(queue, "getRepeatableJobs", 0, 0, asc),
        )


def test_node_add_bulk_reads_equal(make_queue: MakeQueue, bull: Peer) -> None:
    queue = make_queue()
    added = bull.call(queue, "addBulk", [
        {"name": "bn", "data": {"b": 1}, "opts": {"priority": 2}},
        {"data": {"b": 2}},
        {"name": "bn", "data": {"b": 3}, "opts": {"delay": 5000}},
        {"data": "s", "opts": {"jobId": "bulk-custom", "lifo": True}},
        {"name": "bn", "data": {"b": 5}, "opts": {"attempts": 2, "backoff": 100, "removeOnComplete": True}},
    ])
    assert len(added) == 5
    for job in added:
        assert_same_job(bull, queue, job["id"])
    assert_json_equal(dicts(queue.get_waiting()), node_jobs(bull.call(queue, "getWaiting")))
    assert_json_equal(dicts(queue.get_delayed()), node_jobs(bull.call(queue, "getDelayed")))


# --- 2. Node processes jobs; bullpy reads results, failures, progress, logs ------------------------------
PROCESS_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # name, data, opts
    ("ret-string", peer_data(**{"return": "done ü"}), {}),
    ("ret-empty-string", peer_data(**{"return": ""}), {}),
    ("ret-zero", peer_data(**{"return": 0}), {}),
    ("ret-false", peer_data(**{"return": False}), {}),
    ("ret-true", peer_data(**{"return": True}), {}),
    ("ret-null", peer_data(**{"return": None}), {}),
    ("ret-undefined", peer_data(returnUndefined=True), {}),
    ("ret-float", peer_data(**{"return": 3.5}), {}),
    ("ret-big-float", peer_data(**{"return": 1e21}), {}),
    ("ret-list", peer_data(**{"return": [1, "x", None, {"y": [2.5]}]}), {}),
    ("ret-object", peer_data(**{"return": {"nested": {"a": [1, 2.5, None]}, "ü": "☃"}}), {}),
    ("ret-default", {"plain": True}, {}),
    ("progress-number", peer_data(progress=[10, 42]), {}),
    ("progress-float", peer_data(progress=[55.5]), {}),
    ("progress-object", peer_data(progress=[10, {"step": "x", "pct": [1, 0.5]}]), {}),
    ("progress-string", peer_data(progress=["half way"]), {}),
    ("progress-null", peer_data(progress=[5, None]), {}),
    ("progress-false", peer_data(progress=[False]), {}),
    ("progress-list", peer_data(progress=[[1, "a", None]]), {}),
    ("logs", peer_data(log=["one", "two ü", {"obj": 1}, "four", "five"]), {}),
    ("retry-then-complete", peer_data(failTimes=2, fail="flaky"), {"attempts": 3}),
    ("fail-no-attempts", peer_data(fail="once"), {}),
    ("fail-after-retries", peer_data(fail="boom"), {"attempts": 2}),
    ("fail-stack-trace-limit", peer_data(fail="limited"), {"attempts": 4, "stackTraceLimit": 2}),
    ("fail-discarded", peer_data(fail="discarded", discard=True), {"attempts": 5}),
    ("fail-timeout", peer_data(sleep=800), {"timeout": 100}),
    ("fail-unicode-reason", peer_data(fail="ünï: {reason}\nline 2", log=["before failing"]), {}),
]


def test_node_processed_jobs_read_equal(make_queue: MakeQueue, bull: Peer) -> None:
    queue = make_queue()
    ids: dict[str, str] = {}
    for name, data, opts in PROCESS_CASES:
        ids[name] = bull.call(queue, "add", name, data, opts)["id"]
    failed = sum(1 for name, _, _ in PROCESS_CASES if name.startswith("fail-"))
    bull.process(queue, concurrency=8)
    bull.wait_for_counts(queue, completed=len(PROCESS_CASES) - failed, failed=failed, waiting=0, active=0, delayed=0)

    nodes = {name: assert_same_job(bull, queue, job_id) for name, job_id in ids.items()}

    # Sanity: the cases did what their names say, so the comparisons above cover those fields.
    assert nodes["ret-string"]["returnvalue"] == "done ü"
    assert nodes["ret-object"]["returnvalue"] == {"nested": {"a": [1, 2.5, None]}, "ü": "☃"}
    assert nodes["progress-object"]["progress"] == {"step": "x", "pct": [1, 0.5]}
    assert nodes["progress-float"]["progress"] == 55.5
    assert nodes["progress-null"]["progress"] is None
    assert nodes["progress-false"]["progress"] is False
    assert len(nodes["retry-then-complete"]["stacktrace"]) == 2
    assert len(nodes["fail-after-retries"]["stacktrace"]) == 2
    assert len(nodes["fail-stack-trace-limit"]["stacktrace"]) == 2
    assert nodes["fail-stack-trace-limit"]["attemptsMade"] == 4
    assert nodes["fail-discarded"]["attemptsMade"] == 1
    assert "timed out" in nodes["fail-timeout"]["failedReason"]
    assert nodes["fail-unicode-reason"]["failedReason"] == "ünï: {reason}\nline 2"

    job_id = ids["logs"]
    for start, end, asc in [(0, -1, True), (0, -1, False), (1, 2, True), (1, 2, False), (0, 0, False),
                            (3, 10, True), (5, 9, False), (-2, -1, True), (2, -1, False)]:
        logs = queue.get_job_logs(job_id, start, end, asc)
        assert_json_equal({"logs": logs.logs, "count": logs.count},
                          bull.call(queue, "getJobLogs", job_id, start, end, asc))
    logs = queue.get_job_logs(job_id)
    assert_json_equal({"logs": logs.logs, "count": logs.count}, bull.call(queue, "getJobLogs", job_id))
    assert logs.logs == ["one", "two ü", '{"obj":1}', "four", "five"]
    for name in ("fail-unicode-reason", "ret-string"):
        logs = queue.get_job_logs(ids[name])
        assert_json_equal({"logs": logs.logs, "count": logs.count}, bull.call(queue, "getJobLogs", ids[name]))

    assert_json_equal(dicts(queue.get_completed()), node_jobs(bull.call(queue, "getCompleted")))
    assert_json_equal(dicts(queue.get_failed()), node_jobs(bull.call(queue, "getFailed")))
    assert_json_equal(dicts(queue.get_failed(1, 3)), node_jobs(bull.call(queue, "getFailed", 1, 3)))


def test_node_remove_on_finish_reads_equal(make_queue: MakeQueue, bull: Peer) -> None:
    """Jobs Node removes on completion or failure are gone for both; the kept ones read equal."""
    queue = make_queue()
    jobs = [
        ({"k": 0}, {"removeOnComplete": True}),
        ({"k": 1}, {"removeOnComplete": 1}),
        ({"k": 2}, {"removeOnComplete": 1}),
        ({"k": 3}, {"removeOnComplete": {"count": 5}}),
        (peer_data(fail="gone"), {"removeOnFail": True}),
        (peer_data(fail="kept"), {"removeOnFail": {"count": 1}}),
        (peer_data(fail="kept too"), {"removeOnFail": 2}),
    ]
    ids = [bull.call(queue, "add", data, opts)["id"] for data, opts in jobs]
    bull.process(queue, count=len(jobs))
    bull.wait_for_counts(queue, waiting=0, active=0)
    for job_id in ids:
        node = node_json(bull.get_job(queue, job_id))
        job = queue.get_job(job_id)
        assert_json_equal(None if job is None else job.to_dict(), node)
    assert queue.get_job(ids[0]) is None and queue.get_job(ids[4]) is None
    assert_json_equal(dicts(queue.get_completed()), node_jobs(bull.call(queue, "getCompleted")))
    assert_json_equal(dicts(queue.get_failed()), node_jobs(bull.call(queue, "getFailed")))
    assert_json_equal(queue.get_job_counts(), bull.call(queue, "getJobCounts"))


def test_node_retry_with_backoff_reads_delayed(make_queue: MakeQueue, bull: Peer) -> None:
    queue = make_queue()
    job_id = bull.call(queue, "add", peer_data(fail="later"), {"attempts": 3, "backoff": LONG_DELAY})["id"]
    bull.process(queue, count=1)
    bull.wait_for_counts(queue, delayed=1, active=0)
    node = assert_same_job(bull, queue, job_id)
    assert node["attemptsMade"] == 1 and node["failedReason"] == "later"
    assert_json_equal(dicts(queue.get_delayed()), node_jobs(bull.call(queue, "getDelayed")))


def test_node_job_operations_read_equal(make_queue: MakeQueue, bull: Peer) -> None:
    """Node changes jobs outside a handler (take, update, progress, log, finish, retry, promote); bullpy reads them."""
    queue = make_queue()
    done, retried, failed = (bull.call(queue, "add", {"n": i}, {"attempts": 2 if i < 2 else 1})["id"] for i in range(3))
    waiting = bull.call(queue, "add", "w", {"w": 1})["id"]
    delayed = bull.call(queue, "add", "later", {"d": 1}, {"delay": LONG_DELAY})["id"]
    taken = [bull.call(queue, "getNextJob")["id"] for _ in range(3)]
    assert taken == [done, retried, failed]
    assert_json_equal(dicts(queue.get_active()), node_jobs(bull.call(queue, "getActive")))
    for job_id in taken:
        assert_same_job(bull, queue, job_id)

    # getNextJob locked them with this Node queue's token, so the finishing calls hold the lock.
    bull.job(queue, done, "moveToCompleted", {"manual": True}, False, True)
    bull.job(queue, retried, "moveToFailed", {"message": "manual failure"})  # attempt 1 of 2: back to wait
    bull.job(queue, failed, "moveToFailed", {"message": "final", "stack": "Error: final\n    at x (y.js:1:2)"})
    bull.job(queue, waiting, "update", {"updated": "ü", "list": [1.5, None]})
    bull.job(queue, waiting, "progress", {"pct": 12.5})
    bull.job(queue, waiting, "log", "a row")
    bull.job(queue, delayed, "promote")
    for job_id in (done, retried, failed, waiting, delayed):
        assert_same_job(bull, queue, job_id)
    logs = queue.get_job_logs(waiting)
    assert_json_equal({"logs": logs.logs, "count": logs.count}, bull.call(queue, "getJobLogs", waiting))

    bull.job(queue, failed, "retry")
    assert_same_job(bull, queue, failed)
    assert_json_equal(dicts(queue.get_waiting()), node_jobs(bull.call(queue, "getWaiting")))
    assert_json_equal(dicts(queue.get_completed()), node_jobs(bull.call(queue, "getCompleted")))
    assert queue.get_job("no-such-job") is None and bull.get_job(queue, "no-such-job") is None


# --- 3. Getters over a queue in every state --------------------------------------------------------------
def _build_mixed_state(bull: Peer, queue: bullpy.Queue) -> PeerQueue:
    """completed 3, failed 2, active 1 (hanging, held by a Node worker), waiting 7, delayed 3."""
    worker = PeerQueue(queue.name, queue.prefix, settings={"lockDuration": 60_000})
    bull.process(worker, concurrency=1)
    for i in range(3):
        bull.call(queue, "add", {"ok": i})
    for i in range(2):
        bull.call(queue, "add", "bad", peer_data(fail=f"bad {i}"))
    bull.wait_for_counts(queue, completed=3, failed=2, active=0)
    # concurrency 1: while this job hangs the worker takes nothing else
    bull.call(queue, "add", "hang", peer_data(hang=True))
    bull.wait_for_counts(queue, active=1, waiting=0)
    for args in ([{"w": 0}], ["p5", {"w": 1}, {"priority": 5}], ["p1", {"w": 2}, {"priority": 1}],
                 ["p1", {"w": 3}, {"priority": 1}], [{"w": 4}, {"lifo": True}], ["p2", {"w": 5}, {"priority": 2}],
                 [{"w": 6}, {"jobId": "custom:w6"}]):
        bull.call(queue, "add", *args)
    bull.call(queue, "add", "d", {"d": 0}, {"delay": LONG_DELAY})
    bull.call(queue, "add", "d", {"d": 1}, {"delay": LONG_DELAY // 2, "priority": 4})
    bull.call(queue, "add", "d", {"d": 2}, {"delay": LONG_DELAY * 2})
    bull.wait_for_counts(queue, completed=3, failed=2, active=1, waiting=7, delayed=3, paused=0)
    return worker


COUNT_ARGS: list[list[Any]] = [
    [],
    ["completed"],
    ["completed", "failed"],
    ["completed,failed", "delayed"],
    ["waiting"],
    ["wait"],
    ["paused", "wait", "active"],
    ["delayed , active"],
    [["completed", "failed"]],
]

JOBS_ARGS: list[list[Any]] = [
    ["wait"],
    ["waiting", 0, -1, True],
    [["wait"], 1, 3, True],
    [["wait"], 1, 3, False],
    [["wait", "delayed"], 0, 1, True],
    [["delayed", "wait"], 0, 1, False],
    ["completed,failed", 0, -1, True],
    [["completed", "failed"], 0, 0, False],
    [["active", "completed", "failed", "delayed", "wait", "paused"]],
    [["active", "completed", "failed", "delayed", "wait", "paused"], 0, -1, True],
    [["failed"], 1, 5, True],
    [["delayed"], -2, -1, True],
    [["wait"], -3, -1, False],
    [["paused"]],
]


def _compare_getters(bull: Peer, queue: bullpy.Queue) -> None:
    for args in COUNT_ARGS:
        node = bull.call(queue, "getJobCounts", *args)
        python = queue.get_job_counts(*(args[0] if args and isinstance(args[0], list) else args))
        assert_json_equal(python, node)
    assert queue.count() == bull.call(queue, "count")
    assert queue.get_waiting_count() == bull.call(queue, "getWaitingCount")
    assert queue.get_paused_count() == bull.call(queue, "getPausedCount")
    assert queue.get_job_count_by_types("completed,failed", "delayed") == bull.call(
        queue, "getJobCountByTypes", "completed,failed", "delayed"
    )

    assert_json_equal(dicts(queue.get_waiting()), node_jobs(bull.call(queue, "getWaiting")))
    assert_json_equal(dicts(queue.get_waiting(1, 3)), node_jobs(bull.call(queue, "getWaiting", 1, 3)))
    assert_json_equal(dicts(queue.get_delayed()), node_jobs(bull.call(queue, "getDelayed")))
    assert_json_equal(dicts(queue.get_delayed(1, 1)), node_jobs(bull.call(queue, "getDelayed", 1, 1)))
    assert_json_equal(dicts(queue.get_active()), node_jobs(bull.call(queue, "getActive")))
    assert_json_equal(dicts(queue.get_completed()), node_jobs(bull.call(queue, "getCompleted")))
    assert_json_equal(dicts(queue.get_completed(0, 1)), node_jobs(bull.call(queue, "getCompleted", 0, 1)))
    assert_json_equal(dicts(queue.get_failed()), node_jobs(bull.call(queue, "getFailed")))

    for args in JOBS_ARGS:
        node_ids = bull.call(queue, "getRanges", *args)
        assert queue.get_ranges(*args) == node_ids, args
        assert_json_equal(dicts(queue.get_jobs(*args)), node_jobs(bull.call(queue, "getJobs", *args)))

    priorities = [0, 1, 2, 5, 3, 4, 2]
    node_counts = bull.call(queue, "getCountsPerPriority", priorities)
    python_counts = {str(p): n for p, n in queue.get_count_per_priority(priorities).items()}
    # JS objects list integer-like keys in ascending order whatever the insertion order; a Python dict keeps
    # the order asked for. Same keys and values, so compare without key order.
    assert python_counts == node_counts
    assert json.dumps(python_counts, sort_keys=True) == json.dumps(node_counts, sort_keys=True)
    assert queue.is_paused() is bull.call(queue, "isPaused")


def test_node_queue_state_getters_equal(make_queue: MakeQueue, bull: Peer) -> None:
    queue = make_queue()
    _build_mixed_state(bull, queue)
    _compare_getters(bull, queue)
    waiting_ids = [job.id for job in queue.get_waiting()]
    assert len(waiting_ids) == 7 and waiting_ids[0] != "custom:w6"
    assert queue.is_paused() is False

    # Node pauses globally: the wait list becomes the paused list, and both read it the same way.
    bull.call(queue, "pause")
    bull.wait_for_counts(queue, waiting=0, paused=7)
    assert queue.is_paused() is True
    _compare_getters(bull, queue)
    assert [job.id for job in queue.get_waiting()] == waiting_ids
    assert [job.get_state().value for job in queue.get_waiting()] == ["paused"] * 7
    assert bull.job(queue, waiting_ids[0], "getState") == "paused"

    bull.call(queue, "resume")
    bull.wait_for_counts(queue, waiting=7, paused=0)
    _compare_getters(bull, queue)
    assert [job.id for job in queue.get_waiting()] == waiting_ids


def test_node_duplicate_types_in_get_jobs(make_queue: MakeQueue, bull: Peer) -> None:
    """Node's parseTypeArg keeps a type given twice, so getRanges/getJobs list its jobs twice."""
    queue = make_queue()
    for i in range(2):
        bull.call(queue, "add", {"i": i})
    node_ids = bull.call(queue, "getRanges", ["wait", "wait"], 0, -1, True)
    assert len(node_ids) == 4
    assert queue.get_ranges(["wait", "wait"], 0, -1, True) == node_ids
    assert_json_equal(dicts(queue.get_jobs("wait,wait")), node_jobs(bull.call(queue, "getJobs", "wait,wait")))


def test_node_workers_counted_equal(make_queue: MakeQueue, bull: Peer) -> None:
    queue = make_queue()
    other = make_queue("other-queue")
    assert_json_equal(queue.get_workers(), bull.call(queue, "getWorkers"))  # nobody processes yet: []

    bull.process(queue, concurrency=3)
    bull.process(PeerQueue(queue.name, queue.prefix, settings={"lockDuration": 45_000}))
    bull.process(other)
    node = bull.call(queue, "getWorkers")
    python = queue.get_workers()
    assert len(node) == 2  # one named blocking connection per Node Queue with a handler, whatever the concurrency
    assert len(python) == len(node)
    for entries in (python, node):
        assert {e["name"] for e in entries} == {queue.name}
    assert sorted((e["id"], e["addr"]) for e in python) == sorted((e["id"], e["addr"]) for e in node)
    assert len(other.get_workers()) == len(bull.call(other, "getWorkers")) == 1


def test_node_workers_prefix_match_divergence(make_queue: MakeQueue, bull: Peer) -> None:
    """docs/divergences.md #9: Node's getWorkers prefix-matches names, so queue "abc" lists "abcd"'s worker."""
    abc, abcd = make_queue("abc"), make_queue("abcd")  # base64: YWJj, YWJjZA==
    bull.process(abcd)
    node_abc = bull.call(abc, "getWorkers")
    assert [e["name"] for e in node_abc] == ["abc"]  # Node renames abcd's worker to the queue asked about
    assert abc.get_workers() == []
    python_abcd, node_abcd = abcd.get_workers(), bull.call(abcd, "getWorkers")
    assert [(e["id"], e["name"]) for e in python_abcd] == [(e["id"], e["name"]) for e in node_abcd]
    assert [e["id"] for e in node_abc] == [e["id"] for e in node_abcd]
