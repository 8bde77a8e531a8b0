"""Smoke tests of the Node side itself: bridge/peer.js (through Peer) and bridge/worker.js.

These check the test harness, not bullpy: if they fail, interop failures elsewhere say
nothing about the library.
"""

from __future__ import annotations

import json
import os
import queue as queue_mod
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from .peer import BRIDGE_DIR, DEFAULT_REDIS_URL, Peer, PeerError, PeerQueue, node_available

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(not node_available(), reason="needs node on PATH and bridge/node_modules (npm ci)"),
]

REDIS_URL = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)


@pytest.fixture(scope="module")
def smoke_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    yield client
    client.close()


@pytest.fixture
def smoke_prefix(smoke_redis: redis.Redis) -> Iterator[str]:
    prefix = f"bullpy-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    for key in smoke_redis.scan_iter(f"{prefix}:*"):
        smoke_redis.delete(key)


@pytest.fixture(scope="module")
def smoke_peer(smoke_redis: redis.Redis) -> Iterator[Peer]:
    peer = Peer(REDIS_URL)
    yield peer
    assert peer.stop() == 0


@pytest.fixture
def smoke_queue(smoke_peer: Peer, smoke_prefix: str) -> Iterator[PeerQueue]:
    queue = PeerQueue("smoke", prefix=smoke_prefix)
    yield queue
    # Close before the prefix fixture deletes keys, so no Node timer writes them again.
    smoke_peer.close(queue, do_not_wait_jobs=True)


def test_add_then_get_job_round_trips(smoke_peer: Peer, smoke_queue: PeerQueue, smoke_redis: redis.Redis) -> None:
    added = smoke_peer.call(smoke_queue, "add", "send", {"number": "5511", "n": [1, 2]}, {"attempts": 3})
    fetched = smoke_peer.get_job(smoke_queue, added["id"])

    assert fetched is not None
    assert fetched["id"] == added["id"] == "1"
    assert fetched["name"] == "send"
    assert fetched["data"] == {"number": "5511", "n": [1, 2]}
    assert fetched["opts"]["attempts"] == 3
    assert smoke_peer.job(smoke_queue, added["id"], "getState") == "waiting"
    assert smoke_redis.hget(f"{smoke_queue.prefix}:smoke:1", "name") == b"send"
    assert smoke_peer.get_job(smoke_queue, "nope") is None
    with pytest.raises(PeerError, match="job not found"):
        smoke_peer.job(smoke_queue, "nope", "getState")


def test_failing_handler_retries_then_fails(smoke_peer: Peer, smoke_queue: PeerQueue) -> None:
    job = smoke_peer.call(smoke_queue, "add", {"__peer": {"fail": "boom"}}, {"attempts": 2})
    smoke_peer.process(smoke_queue, count=2)

    smoke_peer.wait_for_counts(smoke_queue, failed=1, waiting=0, active=0)
    final = smoke_peer.get_job(smoke_queue, job["id"])
    assert final is not None
    assert final["attemptsMade"] == 2
    assert final["failedReason"] == "boom"
    assert len(final["stacktrace"]) == 2
    runs = smoke_peer.processed(smoke_queue)
    assert [(run["attemptsMade"], run["outcome"], run["error"]) for run in runs] == [
        (0, "failed", "boom"),
        (1, "failed", "boom"),
    ]


def test_fail_times_then_succeeds(smoke_peer: Peer, smoke_queue: PeerQueue) -> None:
    smoke_peer.process(smoke_queue, behaviour={"failTimes": 1, "return": {"ok": True}})
    job = smoke_peer.call(smoke_queue, "add", {}, {"attempts": 3})

    smoke_peer.wait_for_counts(smoke_queue, completed=1)
    final = smoke_peer.get_job(smoke_queue, job["id"])
    assert final is not None
    assert (final["attemptsMade"], final["returnvalue"]) == (1, {"ok": True})


def test_listen_receives_global_completed(smoke_peer: Peer, smoke_queue: PeerQueue) -> None:
    assert set(smoke_peer.listen(smoke_queue, ["global:completed", "global:progress"])) >= {"global:completed"}
    smoke_peer.process(smoke_queue, behaviour={"progress": [50]})
    job = smoke_peer.call(smoke_queue, "add", {"x": 1})

    completed = smoke_peer.wait_for_events(smoke_queue, "global:completed")
    assert completed[0]["args"][0] == job["id"]
    assert json.loads(completed[0]["args"][1]) == {"processed": job["id"]}  # Node passes val unparsed
    progress = [event["args"] for event in smoke_peer.events(smoke_queue) if event["event"] == "global:progress"]
    assert progress == [[job["id"], 50]]


def test_cron_next_returns_increasing_times(smoke_peer: Peer) -> None:
    start = 1_700_000_000_000  # 2023-11-14T22:13:20Z
    times = smoke_peer.cron_next("*/15 * * * *", count=4, options={"currentDate": start, "tz": "UTC"})

    assert len(times) == 4
    assert all(later - earlier == 15 * 60_000 for earlier, later in zip(times, times[1:]))
    assert start < times[0] <= start + 15 * 60_000
    assert times[0] % (15 * 60_000) == 0


def test_node_errors_come_back_as_peer_error(smoke_peer: Peer, smoke_queue: PeerQueue) -> None:
    with pytest.raises(PeerError, match="not allowed"):
        smoke_peer.call(smoke_queue, "process")
    with pytest.raises(PeerError, match="unknown command"):
        smoke_peer.request("eval", code="1")
    assert isinstance(smoke_peer.now(), int)


def test_redis_url_parsing_in_node() -> None:
    script = (
        "const r = require('./lib/redis-config');"
        "const urls = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(urls.map(u => [r.optionsFromUrl(u), r.describeRedis(r.optionsFromUrl(u))])));"
    )
    urls = [
        "redis://:s3cret@redis.local:6380/2",
        "rediss://user:p%40ss@example.com/0?db=4",
        "unix:///run/redis/redis.sock?db=3",
    ]
    out = subprocess.run(
        ["node", "-e", script, json.dumps(urls)], cwd=BRIDGE_DIR, capture_output=True, text=True, check=True
    )
    parsed = json.loads(out.stdout)

    assert parsed[0] == [
        {"host": "redis.local", "port": 6380, "password": "s3cret", "db": 2},
        "redis://:***@redis.local:6380/2",
    ]
    assert parsed[1][0] == {
        "host": "example.com",
        "port": 6379,
        "username": "user",
        "password": "p@ss",
        "db": 4,
        "tls": {"servername": "example.com"},
    }
    assert parsed[2] == [{"path": "/run/redis/redis.sock", "db": 3}, "unix:///run/redis/redis.sock?db=3"]


# -- bridge/worker.js ----------------------------------------------------------------------


class _Lines:
    """Collect a subprocess's stdout lines on a thread, so reads can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._lines: queue_mod.Queue[str] = queue_mod.Queue()
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._lines.put(line)

    def next_json(self, timeout: float) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self._lines.get(timeout=timeout))
        return result


def _wait_for_lines(path: Path, count: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            if len(lines) >= count:
                return [json.loads(line) for line in lines]
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} lines within {timeout} s")


def test_worker_sends_dry_run_messages_and_exits_on_sigterm(
    smoke_peer: Peer, smoke_prefix: str, smoke_redis: redis.Redis, tmp_path: Path
) -> None:
    queue_name = f"messages-{uuid.uuid4().hex[:8]}"
    queue = PeerQueue(queue_name, prefix=smoke_prefix)
    log_path = tmp_path / "dry-run.jsonl"
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "BULL_PREFIX": smoke_prefix,
        "QUEUE_NAME": queue_name,
        "DRY_RUN_LOG": str(log_path),
        "CONCURRENCY": "2",
    }
    worker = subprocess.Popen(
        ["node", "worker.js"], cwd=BRIDGE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        ready = _Lines(worker).next_json(timeout=15)
        assert ready["event"] == "ready"
        assert (ready["queue"], ready["prefix"], ready["concurrency"]) == (queue_name, smoke_prefix, 2)

        ids = [
            smoke_peer.call(queue, "add", {"number": "+55 11 99999-0001", "message": "hi", "delay": 0})["id"]
            for _ in range(3)
        ]
        sent = _wait_for_lines(log_path, 3, timeout=15)
        smoke_peer.wait_for_counts(queue, completed=3)

        assert sorted(line["jobId"] for line in sent) == sorted(ids)
        assert {line["to"] for line in sent} == {"5511999990001@c.us"}
        assert {line["queue"] for line in sent} == {queue_name}
        for line in sent:
            raw = smoke_redis.hget(f"{smoke_prefix}:{queue_name}:{line['jobId']}", "returnvalue")
            assert raw is not None
            assert json.loads(raw) == {"success": True, "messageId": line["messageId"]}
            assert smoke_peer.call(queue, "getJobLogs", line["jobId"])["logs"] == ["sent to 5511999990001@c.us"]

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        smoke_peer.close(queue)
