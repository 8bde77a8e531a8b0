"""The Python worker on a real Redis: handlers, failures, timeouts, close/pause, settings, Redis restarts.

(Mixed fleets with Node workers are in tests/interop.)"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import bullpy
from bullpy import _housekeeping
from bullpy._core import scripts
from bullpy._core.scripts import KeepJobs
from bullpy.utils import now_ms
from bullpy.worker import Worker

from .conftest import wait_until


@pytest.fixture
def make_worker(queue: bullpy.Queue) -> Iterator[Callable[..., Worker]]:
    made: list[Worker] = []

    def make(handler: Any, q: bullpy.Queue | None = None, **settings: Any) -> Worker:
        worker = Worker(q or queue, handler, **settings).start()
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close(force=True, timeout=5)


def test_plain_async_and_named_handlers(queue: bullpy.Queue, make_worker: Callable[..., Worker]) -> None:
    async def send(job: bullpy.Job) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"sent": job.data["n"]}

    make_worker({"send": send, "*": lambda job: job.name})
    a = queue.add({"n": 1}, name="send")
    b = queue.add({"n": 2}, name="report")
    assert a and b
    wait_until(lambda: queue.get_completed_count() == 2)
    assert queue.get_job(a.id).returnvalue == {"sent": 1}  # type: ignore[union-attr]
    assert queue.get_job(b.id).returnvalue == "report"  # type: ignore[union-attr]


def test_missing_handler_fails_like_node(queue: bullpy.Queue, make_worker: Callable[..., Worker]) -> None:
    make_worker({"send": lambda job: 1})
    job = queue.add({}, name="other")
    assert job
    wait_until(lambda: queue.get_failed_count() == 1)
    assert queue.get_job(job.id).failed_reason == "Missing process handler for job type other"  # type: ignore[union-attr]


def test_unserialisable_result_fails_the_job(queue: bullpy.Queue, make_worker: Callable[..., Worker]) -> None:
    make_worker(lambda job: {"when": object()})
    job = queue.add({})
    assert job
    wait_until(lambda: queue.get_failed_count() == 1)
    failed = queue.get_job(job.id)
    assert failed is not None and "returnvalue['when']" in (failed.failed_reason or "")
    assert failed.attempts_made == 1


def test_handler_past_timeout_fails_and_the_worker_goes_on(queue: bullpy.Queue, make_worker: Callable[..., Worker]) -> None:
    release = threading.Event()

    def handler(job: bullpy.Job) -> str:
        if job.data.get("hang"):
            release.wait(5)
        return "ok"

    make_worker(handler, concurrency=2)
    slow = queue.add({"hang": True}, timeout=200, attempts=2)
    fast = queue.add({})
    assert slow and fast
    wait_until(lambda: queue.get_failed_count() == 1)
    failed = queue.get_job(slow.id)
    assert failed is not None
    assert failed.failed_reason == "Promise timed out after 200 milliseconds"
    assert failed.attempts_made == 2 and failed.stacktrace[0].startswith("TimeoutError")
    assert queue.get_job(fast.id).returnvalue == "ok"  # type: ignore[union-attr]
    release.set()


def test_progress_log_and_events(queue: bullpy.Queue, make_worker: Callable[..., Worker]) -> None:
    seen: list[tuple[str, Any]] = []
    queue.on("active", lambda job, _p: seen.append(("active", job.id)))
    queue.on("progress", lambda job, p: seen.append(("progress", p)))
    queue.on("completed", lambda job, r: seen.append(("completed", r)))
    queue.on("failed", lambda job, e: seen.append(("failed", str(e))))
    queue.on("drained", lambda: seen.append(("drained", None)))

    def handler(job: bullpy.Job) -> int:
        job.update_progress(50)
        job.log("half way")
        if job.data.get("fail"):
            raise ValueError("nope")
        return 7

    make_worker(handler)
    ok = queue.add({})
    bad = queue.add({"fail": True})
    assert ok and bad
    wait_until(lambda: ("failed", "nope") in seen and ("drained", None) in seen)
    assert ("active", ok.id) in seen and ("progress", 50) in seen and ("completed", 7) in seen
    assert queue.get_job_logs(ok.id).logs == ["half way"]


def test_close_lets_current_jobs_finish(queue: bullpy.Queue) -> None:
    started = threading.Event()

    def handler(job: bullpy.Job) -> str:
        started.set()
        time.sleep(0.5)
        return "finished"

    worker = Worker(queue, handler).start()
    job = queue.add({})
    assert job
    started.wait(5)
    worker.close()
    assert queue.get_job(job.id).returnvalue == "finished"  # type: ignore[union-attr]
    assert not worker.running
    queue.add({})
    time.sleep(0.3)
    assert queue.get_job_counts()["waiting"] == 1  # nothing takes jobs after close


def test_local_pause_and_resume(queue: bullpy.Queue, make_worker: Callable[..., Worker]) -> None:
    worker = make_worker(lambda job: None)
    worker.pause()
    queue.add({})
    time.sleep(0.5)
    assert queue.get_job_counts()["waiting"] == 1
    assert not queue.is_paused()  # local: Redis unchanged
    worker.resume()
    wait_until(lambda: queue.get_completed_count() == 1)
    assert worker.when_current_jobs_finished(timeout=2)


def test_global_pause_stops_python_workers(queue: bullpy.Queue, make_worker: Callable[..., Worker]) -> None:
    make_worker(lambda job: None)
    queue.pause()
    queue.add({})
    time.sleep(0.5)
    assert queue.get_job_counts("paused")["paused"] == 1
    queue.resume()
    wait_until(lambda: queue.get_completed_count() == 1)


def test_workers_are_listed_like_node_workers(queue: bullpy.Queue, make_worker: Callable[..., Worker]) -> None:
    make_worker(lambda job: None)
    make_worker(lambda job: None)
    workers = wait_until(lambda: len(queue.get_workers()) == 2 and queue.get_workers())
    assert all(w["name"] == queue.name for w in workers)


def test_bad_settings_are_refused(queue: bullpy.Queue) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Worker(queue, lambda job: None, concurrency=0)
    with pytest.raises(ValueError, match="bounce_back"):
        Worker(queue, lambda job: None, limiter={"max": 1, "duration": 1000, "bounce_back": True})
    with pytest.raises(ValueError, match="duration"):
        Worker(queue, lambda job: None, limiter={"max": 1})
    with pytest.raises(TypeError, match="callable"):
        Worker(queue, "not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no handler"):
        Worker(queue).run()
    with pytest.raises(ValueError, match="no handler"):
        Worker(queue).start()


def test_finishing_and_taking_scripts_stamp_the_time_they_run(queue: bullpy.Queue, redis_client: redis.Redis) -> None:
    # With a clock offset the scripts read Redis's clock when they run: a stamp read long before sending
    # (a thread switch, a batch waiting its turn) no longer shows. Without one they stamp what they are given.
    first, second = queue.add({}), queue.add({})
    assert first and second
    stale = now_ms() - 60_000
    taken = queue._run(scripts.move_to_active(queue.keys, queue.token, 30_000, stale, clock_offset=0))
    assert taken.id == first.id
    processed = int(redis_client.hget(queue.keys.job(first.id), "processedOn"))
    assert first.timestamp <= processed <= now_ms()
    nxt = queue._run(scripts.move_to_completed(
        queue.keys, first.id, queue.token, stale, "null", KeepJobs(), "{}", True, 30_000, None, clock_offset=0))
    assert nxt.id == second.id
    done = queue.get_job(first.id)
    taken_next = queue.get_job(second.id)
    assert done and taken_next
    assert processed <= done.finished_on == taken_next.processed_on <= now_ms()  # type: ignore[operator]
    queue._run(scripts.move_to_completed(
        queue.keys, second.id, queue.token, stale, "null", KeepJobs(), "{}", False, 30_000, None))
    assert queue.get_job(second.id).finished_on == stale  # type: ignore[union-attr]


def test_stamps_keep_the_workers_clock_when_it_differs_from_redis(
        queue: bullpy.Queue, make_worker: Callable[..., Worker], monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker whose clock runs 5 s ahead of Redis's measures that offset and stamps its own time, as a Node
    # worker on that host would.
    real = time.time_ns
    monkeypatch.setattr(_housekeeping.time, "time_ns", lambda: real() + 5_000_000_000)
    make_worker(lambda job: None)
    job = queue.add({})
    assert job
    wait_until(lambda: queue.get_completed_count() == 1)
    done = queue.get_job(job.id)
    assert done and done.processed_on and done.finished_on and done.timestamp
    assert 4_900 <= done.processed_on - done.timestamp <= 6_000
    assert done.processed_on <= done.finished_on


def test_close_gives_running_jobs_back_after_a_timeout(queue: bullpy.Queue, make_queue: Callable[..., bullpy.Queue],
                                                        redis_client: redis.Redis) -> None:
    release, started = threading.Event(), threading.Semaphore(0)

    def stuck(job: bullpy.Job) -> str:
        started.release()
        release.wait(10)
        return "from the closed worker"

    worker = Worker(queue, stuck, concurrency=2, lock_duration=600, stalled_interval=300).start()
    jobs = [queue.add({"n": i}) for i in range(3)]
    assert started.acquire(timeout=5) and started.acquire(timeout=5)
    t0 = time.monotonic()
    worker.close(timeout=0.3)  # the running jobs do not finish in time: still closing
    assert time.monotonic() - t0 < 2
    assert len(worker.running_jobs()) == 2
    worker.close(force=True)  # give them back, as Node's close(true)
    assert not worker.running
    held = {j.id for j in worker.running_jobs()}
    assert queue.get_job_counts()["active"] == 2 and queue.get_job_counts()["waiting"] == 1
    release.set()  # the old handlers return: their results are no longer sent
    other = make_queue(queue.name)
    Worker(other, lambda job: "recovered", lock_duration=600, stalled_interval=300).start()
    wait_until(lambda: queue.get_completed_count() == 3, 10)
    for job in jobs:
        assert job
        done = queue.get_job(job.id)
        assert done and done.returnvalue == "recovered"
        assert redis_client.hget(queue.keys.job(job.id), "stalledCounter") == ("1" if job.id in held else None)
    other.close()


def test_a_handler_calling_sys_exit_abandons_its_job_and_the_worker_goes_on(
        queue: bullpy.Queue, make_worker: Callable[..., Worker]) -> None:
    def handler(job: bullpy.Job) -> int:
        if job.data["n"] == 0:
            raise SystemExit(3)
        return int(job.data["n"])

    worker = make_worker(handler, concurrency=2)
    queue.add({"n": 0})
    for n in range(1, 6):
        queue.add({"n": n})
    wait_until(lambda: queue.get_completed_count() == 5)
    assert queue.get_job_counts()["active"] == 1  # left to the stalled check, as a crashed worker leaves it
    worker.close(timeout=5)
    assert not worker.running


def test_worker_survives_a_redis_restart(make_redis_server: Callable[..., Any]) -> None:
    server = make_redis_server(appendonly=True)
    queue = bullpy.Queue("restart-q", server.url())
    errors: list[BaseException] = []
    queue.on("error", errors.append)
    worker = Worker(queue, lambda job: job.data["n"]).start()
    try:
        first = [queue.add({"n": i}) for i in range(5)]
        wait_until(lambda: queue.get_completed_count() == 5)
        server.restart()  # connections drop; AOF keeps the data
        wait_until(lambda: _safe(lambda: queue.get_completed_count()) == 5, 10)
        later = [queue.add({"n": i}) for i in range(5, 10)]
        wait_until(lambda: _safe(lambda: queue.get_completed_count()) == 10, 20)
        assert errors, "the connection loss should have been reported as an error event"
        assert [queue.get_job(j.id).returnvalue for j in first + later] == list(range(10))  # type: ignore[union-attr]
    finally:
        worker.close(timeout=5)
        queue.close()


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (redis.RedisError, ConnectionError):
        return None


def test_unreadable_jobs_fail_at_once_and_readable_odd_ones_run(
    queue: bullpy.Queue, make_worker: Callable[..., Worker], redis_client: redis.Redis, redis_url: str,
) -> None:
    # docs/divergences.md W2: what Node can read (bytes that are not UTF-8, JSON thousands deep) runs; what it
    # cannot (data not JSON, opts null) or what nests too deep for a worker fails at once, finally.
    raw = redis.Redis.from_url(redis_url)  # bytes as they are
    cases: dict[str, dict[bytes, bytes]] = {
        "not-utf8": {b"data": b'{"s":"a\xff\xfeb"}'},
        "deep": {b"data": b"[" * 5000 + b"]" * 5000},
        "deep-object": {b"data": b'{"a":' * 5000 + b"1" + b"}" * 5000},
        "null-opts": {b"opts": b"null"},
        "not-json": {b"data": b"{bad"},
        "too-deep": {b"data": b"[" * 200_000 + b"]" * 200_000},
    }
    ids = {}
    for name, fields in cases.items():
        job = queue.add({"x": 1}, name=name, attempts=3)
        raw.hset(queue.keys.job(job.id), mapping=fields)  # type: ignore[arg-type]
        ids[name] = job.id
    seen: dict[str, Any] = {}

    def handler(job: bullpy.Job) -> str:
        seen[job.name] = job.data
        return "ran"

    errors: list[BaseException] = []
    queue.on("error", errors.append)
    make_worker(handler, concurrency=2)
    wait_until(lambda: queue.get_completed_count() == 3 and queue.get_failed_count() == 3, 10)
    assert redis_client.llen(queue.keys("active")) == 0
    assert seen["not-utf8"] == {"s": "a\ufffd\ufffdb"}
    depth, value = 0, seen["deep"]
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    assert depth == 4999
    for name, reason in [("null-opts", "field 'opts' is JSON null"), ("not-json", "field 'data' is not valid JSON"),
                         ("too-deep", "nests deeper than bullpy reads")]:
        job_key = queue.keys.job(ids[name])
        assert reason in redis_client.hget(job_key, "failedReason")  # type: ignore[operator]
        assert redis_client.zscore(queue.keys("failed"), ids[name]) is not None
        assert redis_client.hget(job_key, "attemptsMade") == "1"  # failed finally despite attempts 3
        assert redis_client.zscore(queue.keys("delayed"), ids[name]) is None
    assert len(errors) == 3 and not [e for e in errors if isinstance(e, UnicodeDecodeError)]
    assert sys.getrecursionlimit() < 10_000


def test_an_outage_is_reported_once_and_its_end_once(make_redis_server: Callable[..., Any]) -> None:
    server = make_redis_server(appendonly=True)
    queue = bullpy.Queue("outage-q", server.url())
    errors: list[BaseException] = []
    recovered: list[tuple[int, float]] = []
    queue.on("error", errors.append)
    queue.on("recovered", lambda attempts, seconds: recovered.append((attempts, seconds)))
    worker = Worker(queue, lambda job: (time.sleep(0.02), job.data["n"])[1], concurrency=5).start()
    try:
        for i in range(200):
            queue.add({"n": i})
        wait_until(lambda: queue.get_completed_count() >= 20)
        server.stop()  # jobs are running, finishing, being taken: every thread meets the outage
        time.sleep(3)
        during = len(errors)
        server.start()
        later = [queue.add({"n": i}) for i in range(200, 210)]
        wait_until(lambda: all(_safe(lambda j=j: queue.get_job(j.id).returnvalue) == j.data["n"]  # type: ignore[union-attr]
                               for j in later), 30, "work to resume")
        wait_until(lambda: recovered, 10, "the recovery to be reported")
        assert 1 <= during <= 3, [repr(e) for e in errors]
        assert len(errors) <= 3
        assert len(recovered) == 1
        attempts, seconds = recovered[0]
        assert attempts >= 2 and seconds >= 2.5
    finally:
        worker.close(timeout=5)
        queue.close()


def test_a_delayed_job_announced_while_a_promotion_is_answered_is_not_left_for_the_guard(
    queue: bullpy.Queue, make_worker: Callable[..., Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job added while the promotion script's answer is on its way (as the next iteration of a repeatable job
    is, by the take of the one just promoted) is missing from that answer; its announcement on the ``delayed``
    channel must outlive the answer, or the job waits a whole ``guard_interval``. Seen in CI as a repeatable
    job's third iteration coming 5 s late."""
    done: dict[str, float] = {}
    late: list[bullpy.Job] = []
    armed = threading.Event()
    run = queue._run

    def answered_late(call: scripts.Call[Any]) -> Any:
        reply = run(call)
        if call.script == "update_delay_set" and reply is None and armed.is_set() and not late:
            job = queue.add({"n": "late"}, delay=200)  # announced while this answer is held back
            assert job
            late.append(job)
            time.sleep(0.4)  # the listener has the announcement before the answer is read
        return reply

    monkeypatch.setattr(queue, "_run", answered_late)
    make_worker(lambda job: done.setdefault(job.id, time.monotonic()), guard_interval=60_000)
    channel = queue.keys("delayed")
    wait_until(lambda: dict(queue.client.pubsub_numsub(channel)).get(channel), 5, "the worker's subscription")
    armed.set()
    first = queue.add({"n": "first"}, delay=300)
    assert first
    wait_until(lambda: first.id in done and late, 5, "the first delayed job")
    wait_until(lambda: late[0].id in done, 5, "the job announced during the promotion (not 60 s later)")
