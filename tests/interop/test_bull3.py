"""Queues written by Node Bull 3 (npm ``bull@3.29.3``, pinned in bridge/ as ``bull3``) work with bullpy both ways.

- Bull 3 adds jobs (named and unnamed; attempts, fixed/exponential backoff, delay, priority, LIFO, a custom
  jobId); bullpy reads each back equal to Bull 3's ``getJob(id).toJSON()``; a bullpy Worker processes them
  (retries and backoff included) and Bull 3 then reads the results bullpy wrote, equal field for field.
- bullpy adds jobs with the same options; a Bull 3 worker processes them; both read the same results.

The Node side is ``bridge/bull3-peer.js`` (one process per step, JSON in argv, JSON out on stdout).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bullpy import Queue
from bullpy.worker import Worker

from ..conftest import delete_prefix, wait_until
from .peer import BRIDGE_DIR

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (BRIDGE_DIR / "node_modules" / "bull3" / "package.json").is_file(),
    reason="Node.js or bridge/node_modules/bull3 is missing: run `npm ci` in bridge/",
)

QUEUE = "message-queue"


def bull3(redis_url: str, mode: str, prefix: str, **args: Any) -> Any:
    """Run one step of Node Bull 3 on ``QUEUE`` under ``prefix`` and return what it printed."""
    payload = json.dumps({"queue": QUEUE, "prefix": prefix, **args})
    proc = subprocess.run(["node", str(BRIDGE_DIR / "bull3-peer.js"), mode, payload], cwd=BRIDGE_DIR,
                          env={**os.environ, "REDIS_URL": redis_url}, capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, f"bull3-peer.js {mode} failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def prefix3(redis_client: redis.Redis) -> Iterator[str]:
    prefix = f"bullpy-bull3-{uuid.uuid4().hex[:8]}"
    yield prefix
    delete_prefix(redis_client, prefix)


JOBS = [
    {"data": {"number": "+55 11 99999-0001", "message": "Olá", "delay": 0}},
    {"name": "send", "data": {"number": "+55 11 99999-0002", "message": "oi", "delay": 0},
     "opts": {"attempts": 3, "backoff": {"type": "exponential", "delay": 50}, "priority": 2}},
    {"name": "send", "data": {"number": "+55 11 99999-0003", "message": "later", "delay": 0},
     "opts": {"delay": 300, "attempts": 2, "backoff": {"type": "fixed", "delay": 100}}},
    {"name": "send", "data": {"number": "x", "message": "flaky", "fail": "not yet", "failTimes": 1},
     "opts": {"attempts": 3, "backoff": {"type": "fixed", "delay": 100}, "priority": 1, "jobId": "flaky-1"}},
    {"name": "send", "data": {"number": "y", "message": "bad", "fail": "invalid number"},
     "opts": {"attempts": 2, "backoff": {"type": "exponential", "delay": 50}, "lifo": True}},
]


def _handler(job: Any) -> Any:
    """The bullpy twin of bull3-peer.js's handler."""
    data = job.data or {}
    fail_times = data.get("failTimes", float("inf"))
    if data.get("fail") and job.attempts_made < fail_times:
        raise RuntimeError(data["fail"])
    return {"echo": data, "by": "bullpy", "attempt": job.attempts_made}


def _bullpy_json(queue: Queue, ids: list[str]) -> list[Any]:
    """bullpy's ``to_dict()`` per id, as Bull 3's ``toJSON()`` has it: the one difference is ``debounceId``,
    a Bull 4 key (always ``null`` on a job Bull 3 wrote) that Bull 3's ``toJSON`` does not have."""
    out: list[Any] = []
    for i in ids:
        job = queue.get_job(i)
        if job is None:
            out.append(None)
            continue
        d = job.to_dict()
        assert d.pop("debounceId") is None
        out.append(d)
    return out


def test_bull3_adds_bullpy_reads_and_processes(redis_url: str, prefix3: str) -> None:
    added = bull3(redis_url, "add", prefix3, jobs=JOBS)
    ids = [str(j["id"]) for j in added]
    assert ids[3] == "flaky-1"
    queue = Queue(QUEUE, redis_url, prefix=prefix3)
    try:
        # Read back as Bull 3 wrote them: equal to Bull 3's own getJob().toJSON().
        assert _bullpy_json(queue, ids) == bull3(redis_url, "get", prefix3, ids=ids)
        assert queue.get_job_counts() == {"waiting": 4, "active": 0, "completed": 0, "failed": 0,
                                          "delayed": 1, "paused": 0}
        assert queue.get_job_counts() == {k: v for k, v in bull3(redis_url, "counts", prefix3).items()
                                          if k in queue.get_job_counts()}

        with Worker(queue, {"*": _handler}, stalled_interval=1000, guard_interval=200).start():
            wait_until(lambda: sum(queue.get_job_counts("completed", "failed").values()) == 5, timeout=30,
                       what="5 finished jobs")
        states = {i: queue.get_job(i).get_state() for i in ids}
        assert states == {ids[0]: "completed", ids[1]: "completed", ids[2]: "completed",
                          "flaky-1": "completed", ids[4]: "failed"}
        flaky = queue.get_job("flaky-1")
        assert flaky.attempts_made == 1 and flaky.returnvalue == {"echo": JOBS[3]["data"], "by": "bullpy", "attempt": 1}
        bad = queue.get_job(ids[4])
        assert bad.attempts_made == 2 and bad.failed_reason == "invalid number" and len(bad.stacktrace) == 2
        # What bullpy's worker wrote reads back in Bull 3 exactly as bullpy reads it.
        assert _bullpy_json(queue, ids) == bull3(redis_url, "get", prefix3, ids=ids)
    finally:
        queue.close()


def test_bullpy_adds_bull3_processes(redis_url: str, prefix3: str) -> None:
    queue = Queue(QUEUE, redis_url, prefix=prefix3)
    try:
        jobs = []
        for spec in JOBS:
            opts = dict(spec.get("opts", {}))
            kwargs: dict[str, Any] = {
                "name": spec.get("name"),
                "attempts": opts.get("attempts"),
                "backoff": opts.get("backoff"),
                "delay": opts.get("delay"),
                "priority": opts.get("priority"),
                "lifo": opts.get("lifo"),
                "job_id": opts.get("jobId"),
            }
            jobs.append(queue.add(spec["data"], **{k: v for k, v in kwargs.items() if v is not None}))
        ids = [j.id for j in jobs]
        # Bull 3 reads what bullpy wrote equal to bullpy's own reading.
        assert bull3(redis_url, "get", prefix3, ids=ids) == _bullpy_json(queue, ids)

        started = time.monotonic()
        runs = bull3(redis_url, "process", prefix3, finished=5, timeoutMs=30000)
        assert time.monotonic() - started < 60
        assert sorted(r["id"] for r in runs) == sorted(ids[:3] + ["flaky-1", "flaky-1", ids[4], ids[4]])
        # Priority order among the jobs waiting at the start: priority 1 before 2 (Bull's priority set).
        first = [r["id"] for r in runs]
        assert first.index("flaky-1") < first.index(ids[1])

        assert {i: queue.get_job(i).get_state() for i in ids} == {
            ids[0]: "completed", ids[1]: "completed", ids[2]: "completed", "flaky-1": "completed", ids[4]: "failed"}
        flaky = queue.get_job("flaky-1")
        assert flaky.attempts_made == 1 and flaky.returnvalue == {"echo": JOBS[3]["data"], "by": "bull3", "attempt": 1}
        bad = queue.get_job(ids[4])
        assert bad.attempts_made == 2 and bad.failed_reason == "invalid number" and len(bad.stacktrace) == 2
        delayed = queue.get_job(ids[2])
        assert delayed.processed_on - delayed.timestamp >= 300
        assert bull3(redis_url, "get", prefix3, ids=ids) == _bullpy_json(queue, ids)
    finally:
        queue.close()
