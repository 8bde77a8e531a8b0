"""bullpy.doctor on real Redis: each problem found on a deliberately broken queue, silence on a healthy one.

Server-level findings (eviction policy, persistence, refused CONFIG) need servers of their own; queue-level
findings are checked on the shared Redis under the test's prefix. Node-made breakage is in
tests/interop/test_doctor.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

import bullpy
from bullpy.doctor import MISSING_HANDLER, DoctorReport, Severity, diagnose
from bullpy.worker import Worker

from .conftest import keyspace, wait_until
from .servers import RedisServer

# Findings about the server itself: the shared Redis runs without persistence and its policy may be anything.
SERVER_CODES = {"eviction-policy", "no-persistence"}


def queue_codes(report: DoctorReport, *, problems: bool = False) -> set[str]:
    """The codes of queue-level findings (or problems only)."""
    return {f.code for f in (report.problems if problems else report.findings)} - SERVER_CODES


def only(report: DoctorReport, code: str) -> Any:
    found = report.by_code(code)
    assert len(found) == 1, report.render()
    return found[0]


def healthy_server(make: Callable[..., RedisServer]) -> RedisServer:
    return make("--maxmemory-policy", "noeviction", appendonly=True)


def test_a_healthy_queue_on_a_well_configured_server_is_silent(make_redis_server: Callable[..., RedisServer]) -> None:
    server = healthy_server(make_redis_server)
    queue = bullpy.Queue("message-queue", server.url(), prefix="bull")
    release = threading.Event()

    def handler(job: bullpy.Job) -> Any:
        if job.data.get("hold"):
            release.wait(10)
        if job.data.get("bad"):
            raise ValueError("invalid number")
        return {"sent": job.data["n"]}

    worker = Worker(queue, handler, drain_delay=1).start()
    try:
        for n in range(5):
            queue.add({"n": n}, name="send")
        queue.add({"n": 5, "bad": True}, name="send")  # a failure the handler chose: not a doctor matter
        wait_until(lambda: queue.get_job_counts("completed", "failed") == {"completed": 5, "failed": 1})
        held = queue.add({"n": 6, "hold": True}, name="send")
        assert held is not None
        wait_until(lambda: queue.get_active_count() == 1)
        queue.add({"n": 7}, name="send")
        queue.add({"n": 8}, name="send", delay=60_000)
        report = diagnose(queue, recheck_delay=0.2)
    finally:
        release.set()
        worker.close(timeout=10)
        queue.close()
    assert report.ok, report.render()
    assert report.problems == ()
    assert report.exit_code == 0
    assert report.codes() == {"memory-per-job"}  # a fact, not a problem
    assert report.render().endswith("no problems found")
    memory = only(report, "memory-per-job")
    assert memory.severity is Severity.INFO
    assert memory.details["jobs"] == 9 and memory.details["sampled"] >= 4
    assert 100 < memory.details["average_bytes"] < 10_000


def test_eviction_policy_and_missing_persistence_are_reported(make_redis_server: Callable[..., RedisServer]) -> None:
    server = make_redis_server("--maxmemory-policy", "allkeys-lru", "--maxmemory", "100mb")  # save "", no AOF
    admin = server.client()
    queue = bullpy.Queue("q", server.url())
    queue.add({"n": 1})

    report = diagnose(queue)
    eviction = only(report, "eviction-policy")
    assert eviction.severity is Severity.ERROR  # a maxmemory is set: keys are evicted once it is reached
    assert eviction.details == {"policy": "allkeys-lru", "maxmemory": 100 * 1024 * 1024}
    assert "noeviction" in eviction.fix
    persistence = only(report, "no-persistence")
    assert persistence.severity is Severity.WARNING and "appendonly" in persistence.fix
    assert report.exit_code == 2

    admin.config_set("maxmemory", "0")  # no limit yet: a risk, not a loss
    assert only(diagnose(queue), "eviction-policy").severity is Severity.WARNING

    admin.config_set("save", "3600 1")  # RDB snapshots are persistence enough
    admin.config_set("maxmemory-policy", "noeviction")
    assert diagnose(queue).ok
    admin.config_set("save", "")
    admin.config_set("appendonly", "yes")
    assert diagnose(queue).ok
    queue.close()


def test_a_user_without_info_and_config_gets_unknown_not_a_crash(make_redis_server: Callable[..., RedisServer]) -> None:
    server = make_redis_server("--maxmemory-policy", "allkeys-lru")
    admin = server.client()
    admin.execute_command("ACL", "SETUSER", "reader", "on", ">reader-pw", "~bull:*", "-@all", "+@read")
    writer = bullpy.Queue("q", server.url())
    writer.add({"n": 1})
    admin.hset("bull:q:77", mapping={"name": "send", "data": "{}", "opts": "{}", "timestamp": "1"})  # an orphan
    reader = bullpy.Queue("q", server.url(user="reader", password="reader-pw"))

    report = diagnose(reader, recheck_delay=0.1)
    eviction = only(report, "eviction-policy")
    assert eviction.severity is Severity.INFO and eviction.details["policy"] == "unknown"
    assert only(report, "no-persistence").severity is Severity.INFO
    # The queue-level checks still run on plain reads.
    assert only(report, "orphan-jobs").details["job_ids"] == ["77"]
    assert "memory-per-job" in report.codes()
    writer.close()
    reader.close()


def test_each_queue_problem_is_found(queue: bullpy.Queue, make_queue: Callable[..., bullpy.Queue],
                                     redis_client: redis.Redis, prefix: str) -> None:
    k = queue.keys
    # Finished jobs kept without removeOnComplete, and a job name no worker handles (bullpy's worker fails
    # it with Node's words).
    worker = Worker(queue, {"send": lambda job: "ok"}, drain_delay=1).start()
    try:
        for n in range(6):
            queue.add({"n": n}, name="send")
        other = queue.add({"n": 6}, name="other")
        wait_until(lambda: queue.get_job_counts("completed", "failed") == {"completed": 6, "failed": 1})
    finally:
        worker.close(timeout=10)
    assert other is not None
    failed = queue.get_job(other.id)
    assert failed is not None and failed.failed_reason == MISSING_HANDLER + "other"

    # A worker that died between taking a job (BRPOPLPUSH wait -> active) and locking it, and a job taken
    # right now whose lock is set a moment after the doctor's first look.
    stuck = queue.add({"n": 7}, name="send")
    fresh = queue.add({"n": 8}, name="send")
    assert stuck is not None and fresh is not None
    redis_client.lmove(k("wait"), k("active"), "RIGHT", "LEFT")
    redis_client.lmove(k("wait"), k("active"), "RIGHT", "LEFT")
    timer = threading.Timer(0.3, lambda: redis_client.set(k.lock(fresh.id), "a-worker-token", px=30_000))
    timer.start()

    # A job hash in no state (what a client that LREMs without deleting leaves), and a queue named
    # "message-queue:sub" whose job hashes share the key space but are not this queue's orphans.
    orphan = queue.add({"n": 9}, name="send")
    assert orphan is not None
    redis_client.lrem(k("wait"), 0, orphan.id)
    nested = make_queue("message-queue:sub", allow_colon=True)
    nested.add({"n": 10})

    before = keyspace(redis_client, prefix)
    report = diagnose(queue, max_finished=5, recheck_delay=1.0)
    timer.join()
    assert keyspace(redis_client, prefix) == {**before, f"message-queue:{fresh.id}:lock": ("string", "a-worker-token")}

    completed = only(report, "completed-unbounded")
    assert completed.severity is Severity.WARNING
    assert completed.details["count"] == 6 and completed.details["newest_without_option"] == 6
    assert "removeOnComplete" in completed.fix
    assert f"`bullpy --prefix {prefix} clean message-queue --state completed --grace 1d`" in completed.fix
    assert "failed-unbounded" not in report.codes()

    handler = only(report, "missing-handler")
    assert handler.severity is Severity.ERROR
    assert handler.details["name"] == "other" and handler.details["failed"] == 1
    assert handler.details["job_ids"] == [other.id]
    assert f"`bullpy --prefix {prefix} retry message-queue`" in handler.fix

    locks = only(report, "active-without-lock")
    assert locks.details["job_ids"] == [stuck.id]  # not the one that got its lock in time
    assert locks.details["workers"] == 0 and "no worker is connected" in locks.message

    orphans = only(report, "orphan-jobs")
    assert orphans.details["job_ids"] == [orphan.id]
    assert orphans.details["samples"] == [{"id": orphan.id, "name": "send", "timestamp": orphan.timestamp}]

    assert queue_codes(report, problems=True) == {"completed-unbounded", "missing-handler", "active-without-lock",
                                                  "orphan-jobs"}
    assert report.exit_code == 2
    text = report.render()
    assert text.splitlines()[0].startswith(f"bullpy doctor: queue 'message-queue' (prefix {prefix!r}) on 127.0.0.1")
    assert text.index("ERROR    missing-handler") < text.index("WARNING  orphan-jobs")
    assert "        fix: Bull workers take jobs of every name" in text
    assert text.endswith(f"1 error(s), {len(report.problems) - 1} warning(s)")
    assert json.loads(json.dumps(report.to_dict()))["findings"][0]["code"] == "missing-handler"

    # The fixes the findings name make them go away.
    queue.clean(0, "completed")
    job = queue.get_job(orphan.id)
    assert job is not None
    job.remove()
    redis_client.lrem(k("active"), 0, stuck.id)
    redis_client.rpush(k("wait"), stuck.id)
    queue.get_job(other.id).remove()  # type: ignore[union-attr]
    assert queue_codes(diagnose(queue, max_finished=5, recheck_delay=0.1), problems=True) == set()


def test_age_threshold_and_large_jobs(make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis) -> None:
    queue = make_queue("big")
    queue.add({"blob": "x" * 200_000})
    queue.add({"blob": "y" * 200_000})
    failed = queue.add({"n": 1})
    assert failed is not None
    # A failed job finished a day ago (as moveToFinished leaves it), kept by a queue without removeOnFail.
    k = queue.keys
    day_ago = int(time.time() * 1000) - 86_400_000
    redis_client.lrem(k("wait"), 0, failed.id)
    redis_client.zadd(k("failed"), {failed.id: day_ago})
    redis_client.hset(k.job(failed.id), mapping={"failedReason": "boom", "finishedOn": str(day_ago)})

    report = diagnose(queue, max_finished_age_ms=3_600_000, recheck_delay=0.1)
    old = only(report, "failed-unbounded")
    assert old.details["count"] == 1 and old.details["oldest_finished_on"] == day_ago
    assert "the oldest finished 1.0 d ago" in old.message and "removeOnFail" in old.fix
    large = only(report, "large-jobs")
    assert large.severity is Severity.WARNING and large.details["average_bytes"] > 100_000
    assert queue_codes(diagnose(queue, max_job_bytes=10_000_000, recheck_delay=0.1)) == {"memory-per-job"}


@pytest.mark.parametrize(("option", "value"), [("max_finished", -1), ("recheck_delay", "1s"), ("sample_size", 1.5),
                                               ("max_finished_age_ms", True)])
def test_bad_arguments_are_refused(queue: bullpy.Queue, option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        diagnose(queue, **{option: value})


def test_an_unreachable_redis_is_one_clear_error() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, retry=None)  # no retries: fail at once
    with pytest.raises(bullpy.RedisUnavailable, match=r"doctor: cannot reach Redis at 127\.0\.0\.1:1 db 0"):
        diagnose(bullpy.Queue("q", client))


def test_the_doctor_runs_on_bullpys_fake_redis() -> None:
    """Users' unit tests run on bullpy.testing: what fakeredis lacks (INFO, CONFIG, MEMORY) is skipped."""
    from bullpy.testing import fake_queue

    queue = fake_queue()
    kept = queue.add({"n": 1})
    lost = queue.add({"n": 2})
    assert kept is not None and lost is not None
    queue.client.lrem(queue.keys("wait"), 0, lost.id)
    report = diagnose(queue, recheck_delay=0)
    assert [f.code for f in report.problems] == ["orphan-jobs"]
    assert report.by_code("orphan-jobs")[0].details["job_ids"] == [lost.id]
    assert {f.code for f in report.findings if f.severity is Severity.INFO} == {
        "eviction-policy", "no-persistence", "check-skipped"}
