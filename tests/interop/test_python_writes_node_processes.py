"""Jobs bullpy writes are processed by real Node Bull workers with Node's semantics, and bullpy reads
the results back: priority order, LIFO, delays, retries with fixed and exponential backoff, timeouts,
removeOnComplete/removeOnFail counts and ages."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

import bullpy

from .peer import Peer

BRIDGE = Path(__file__).resolve().parents[2] / "bridge"


def order(processed: list[dict[str, Any]]) -> list[Any]:
    return [p["data"]["n"] for p in processed if p["outcome"] in ("completed", "failed")]


def test_priority_order_and_fifo_within_a_priority(bull: Peer, queue: bullpy.Queue) -> None:
    for n, priority in [(1, None), (2, 5), (3, 1), (4, 3), (5, 1), (6, None), (7, 10)]:
        queue.add({"n": n}, priority=priority)
    bull.process(queue, count=7)
    # Lower number first, FIFO within a priority, all prioritised jobs ahead of plain ones.
    assert order(bull.processed(queue)) == [3, 5, 4, 2, 7, 1, 6]


def test_lifo_runs_newest_first(bull: Peer, queue: bullpy.Queue) -> None:
    for n in range(1, 4):
        queue.add({"n": n})
    queue.add({"n": 4}, lifo=True)
    queue.add({"n": 5}, lifo=True)
    bull.process(queue, count=5)
    assert order(bull.processed(queue)) == [5, 4, 1, 2, 3]


def test_delayed_job_is_taken_within_a_second_of_its_due_time(bull: Peer, queue: bullpy.Queue) -> None:
    bull.process(queue)  # an idle Node worker, blocked in BRPOPLPUSH with its delay timer armed
    time.sleep(0.3)
    job = queue.add({"n": 1}, delay=1500)
    assert job is not None and job.get_state() is bullpy.JobState.DELAYED
    bull.wait_for_processed(queue, 1, timeout=10)
    done = queue.get_job(job.id)
    assert done is not None and done.timestamp is not None and done.processed_on is not None
    due = done.timestamp + 1500
    # Without the PUBLISH on P:Q:delayed an idle Node worker would wait for its 5 s guard tick.
    assert due <= done.processed_on < due + 1000
    assert done.get_state() is bullpy.JobState.COMPLETED
    assert done.delay == 0  # Node resets the hash field when the job leaves `delayed`
    assert done.opts["delay"] == 1500


def test_retries_with_fixed_backoff_then_success(bull: Peer, queue: bullpy.Queue) -> None:
    job = queue.add({"n": 1, "__peer": {"failTimes": 2}}, attempts=3, backoff=300)
    assert job is not None
    bull.process(queue)
    bull.wait_for_state(queue, job.id, "completed", timeout=10)
    runs = bull.processed(queue)
    assert [r["outcome"] for r in runs] == ["failed", "failed", "completed"]
    assert runs[1]["start"] - runs[0]["end"] >= 300 - 5
    assert runs[2]["start"] - runs[1]["end"] >= 300 - 5
    done = queue.get_job(job.id)
    assert done is not None
    assert done.attempts_made == 2
    assert done.returnvalue == {"processed": job.id}
    assert len(done.stacktrace) == 2 and done.stacktrace[0].startswith("Error:")
    assert done.failed_reason is not None  # kept from the last failed attempt, as Node keeps it
    assert done.finished_on is not None and done.finished_on >= done.processed_on  # type: ignore[operator]


def test_exponential_backoff_then_final_failure(bull: Peer, queue: bullpy.Queue) -> None:
    job = queue.add({"n": 1, "__peer": {"fail": "whatsapp not ready"}}, attempts=3,
                    backoff={"type": "exponential", "delay": 200}, stack_trace_limit=2)
    assert job is not None
    bull.process(queue)
    bull.wait_for_state(queue, job.id, "failed", timeout=10)
    runs = bull.processed(queue)
    assert len(runs) == 3
    # (2^n - 1) x 200 ms: 200 ms after the first failure, 600 ms after the second.
    assert 200 - 5 <= runs[1]["start"] - runs[0]["end"] < 200 + 900
    assert 600 - 5 <= runs[2]["start"] - runs[1]["end"] < 600 + 900
    failed = queue.get_job(job.id)
    assert failed is not None
    assert failed.get_state() is bullpy.JobState.FAILED
    assert failed.failed_reason == "whatsapp not ready"
    assert failed.attempts_made == 3
    assert len(failed.stacktrace) == 2  # stackTraceLimit keeps the last two
    assert all("whatsapp not ready" in s for s in failed.stacktrace)
    assert failed.returnvalue is None
    assert [j.id for j in queue.get_failed()] == [job.id]


def test_timeout_fails_the_job_as_node_does(bull: Peer, queue: bullpy.Queue) -> None:
    job = queue.add({"n": 1, "__peer": {"sleep": 3000}}, timeout=300)
    assert job is not None
    bull.process(queue)
    bull.wait_for_state(queue, job.id, "failed", timeout=10)
    failed = queue.get_job(job.id)
    assert failed is not None
    assert failed.failed_reason == "Promise timed out after 300 milliseconds"
    assert failed.stacktrace and failed.stacktrace[0].startswith("TimeoutError")


def test_remove_on_complete_and_fail_counts(bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis) -> None:
    ok = [queue.add({"n": n}, remove_on_complete=2) for n in range(5)]
    bad = [queue.add({"n": n, "__peer": {"fail": "no"}}, remove_on_fail=1) for n in range(5, 8)]
    gone = queue.add({"n": 8}, remove_on_complete=True)
    bull.process(queue, count=9)
    assert queue.get_completed_count() == 2
    assert queue.get_failed_count() == 1
    kept_ok = [j.id for j in queue.get_completed()]
    assert kept_ok == [ok[4].id, ok[3].id]  # type: ignore[union-attr]
    assert [j.id for j in queue.get_failed()] == [bad[2].id]  # type: ignore[union-attr]
    for job in ok[:3] + bad[:2] + [gone]:
        assert job is not None
        assert queue.get_job(job.id) is None
        assert not redis_client.exists(queue.keys.logs(job.id))


def test_remove_on_complete_age(bull: Peer, queue: bullpy.Queue) -> None:
    first = queue.add({"n": 1}, remove_on_complete={"age": 1})
    assert first is not None
    bull.process(queue, count=1)
    assert queue.get_job(first.id) is not None
    time.sleep(1.2)
    second = queue.add({"n": 2}, remove_on_complete={"age": 1, "count": 10})
    assert second is not None
    bull.wait_for_processed(queue, 2)
    # Finishing the second job trims every completed job older than `age` seconds.
    assert queue.get_job(first.id) is None
    assert [j.id for j in queue.get_completed()] == [second.id]


def test_returnvalues_progress_and_logs_read_back(bull: Peer, queue: bullpy.Queue) -> None:
    values: list[Any] = [{"ok": True, "n": [1, 2.5]}, "a string", 0, False, None, 12.75, "ünï"]
    jobs = [queue.add({"n": i, "__peer": {"return": v, "progress": [10, {"step": 2}], "log": [f"row {i}", "ü"]}})
            for i, v in enumerate(values)]
    bull.process(queue, count=len(values))
    for job, value in zip(jobs, values):
        assert job is not None
        done = queue.get_job(job.id)
        assert done is not None
        assert done.returnvalue == value
        assert done.progress == {"step": 2}
        assert queue.get_job_logs(job.id).logs == [f"row {job.data['n']}", "ü"]
        node = bull.get_job(queue, job.id)
        assert node is not None
        node_json = {k: v for k, v in node.items() if not (k == "failedReason" and v is None)}
        assert done.to_dict() == node_json


def test_named_jobs_and_bulk_adds_are_processed(bull: Peer, queue: bullpy.Queue) -> None:
    jobs = queue.add_bulk([
        {"name": "send", "data": {"n": 1}},
        {"data": {"n": 2}, "opts": {"priority": 1}},
        {"name": "report", "data": {"n": 3}, "opts": {"delay": 200}},
    ])
    assert [j.id for j in jobs] == ["1", "2", "3"]
    bull.process(queue, count=3)
    runs = bull.processed(queue)
    assert [(r["name"], r["data"]["n"]) for r in runs] == [("__default__", 2), ("send", 1), ("report", 3)]


def test_whatsapp_campaign_sent_by_the_real_worker(queue: bullpy.Queue, redis_url: str, tmp_path: Path) -> None:
    """The mission: a campaign queued from Python is sent by the unchanged Node sender worker."""
    if not (BRIDGE / "node_modules" / "bull").is_dir():
        pytest.skip("bridge/node_modules missing")
    rows = [{"number": f"+55 11 9999-{n:04d}", "message": f"Olá {n}", "delay": 0} for n in range(1, 6)]
    jobs = queue.add_bulk([{"data": r, "opts": {"attempts": 3, "backoff": {"type": "exponential", "delay": 2000}}}
                           for r in rows])
    sent_log = tmp_path / "sent.jsonl"
    env = {**os.environ, "REDIS_URL": redis_url, "QUEUE_NAME": queue.name, "BULL_PREFIX": queue.prefix,
           "DRY_RUN_LOG": str(sent_log), "EXIT_WHEN_DRAINED": "1"}
    worker = subprocess.run(["node", "worker.js"], cwd=BRIDGE, env=env, timeout=60, capture_output=True, text=True)
    assert worker.returncode == 0, worker.stderr
    sent = [json.loads(line) for line in sent_log.read_text().splitlines()]
    assert sorted(s["to"] for s in sent) == [f"55119999{n:04d}@c.us" for n in range(1, 6)]
    assert [s["message"] for s in sorted(sent, key=lambda s: int(s["jobId"]))] == [r["message"] for r in rows]
    for job in jobs:
        done = queue.get_job(job.id)
        assert done is not None and done.get_state() is bullpy.JobState.COMPLETED
        assert done.returnvalue["success"] is True and done.returnvalue["messageId"]
        assert done.progress == 100
