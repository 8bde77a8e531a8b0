"""The commands for queues Node workers are using: the event tail, job logs, moving stuck active jobs to
failed or completed, removing a repeatable, and `queues --watch`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import redis
from click.testing import CliRunner, Result

import bullpy
from bullpy.cli import main
from bullpy.worker import Worker

from ..conftest import wait_until
from .peer import Peer, PeerQueue

NAME = "live q"


def cli_runner(redis_url: str, prefix: str) -> Callable[..., Result]:
    def run(*args: str, fmt: str = "json") -> Result:
        return CliRunner().invoke(main, ["--redis", redis_url, "--prefix", prefix, "--format", fmt, *args])

    return run


def spec(prefix: str, tag: int) -> PeerQueue:
    """The queue as one Node worker process sees it (a distinct ``tag`` is a distinct Bull instance)."""
    return PeerQueue(NAME, prefix=prefix, settings={"stalledInterval": 30_000 + tag})


def test_events_follow_node_and_python_workers(make_queue: Any, bull: Peer, redis_url: str, prefix: str) -> None:
    queue: bullpy.Queue = make_queue(NAME)
    tail = subprocess.Popen(
        [sys.executable, "-m", "bullpy.cli", "--redis", redis_url, "--prefix", prefix, "events", NAME, "--format",
         "json", "--event", "completed", "--event", "failed", "--count", "3", "--timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert tail.stderr is not None and "following events of queue 'live q'" in tail.stderr.readline()
        bull.call(queue, "add", {"__peer": {"return": {"sent": 1}}}, {"jobId": "from-node"})
        bull.call(queue, "add", {"__peer": {"fail": "number not on WhatsApp"}}, {"jobId": "node-fails"})
        bull.process(spec(prefix, 1), count=2)
        bull.close()  # Node's workers stop; a Python worker runs the next job
        queue.add({"python": True}, job_id="from-python", name="py")
        worker = Worker(queue, lambda job: {"py": job.id}).start()
        try:
            out, err = tail.communicate(timeout=60)
        finally:
            worker.close()
    finally:
        if tail.poll() is None:
            tail.kill()
    assert tail.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    got = {(e["event"], e["job_id"]): e["value"] for e in events}
    assert got[("completed", "from-node")] == {"sent": 1}
    assert got[("failed", "node-fails")] == "number not on WhatsApp"
    assert got[("completed", "from-python")] == {"py": "from-python"}
    assert all(isinstance(e["at"], int) for e in events)

    run = cli_runner(redis_url, prefix)
    quiet = run("events", NAME, "--timeout", "0.3", fmt="table")
    assert quiet.exit_code == 0 and quiet.stdout == "" and "following events" in quiet.stderr
    short = run("events", NAME, "--count", "1", "--timeout", "0.3")
    assert short.exit_code == 1 and "0 of 1 events within 0.3s" in short.output


def test_logs_are_read_and_written_beside_node(make_queue: Any, bull: Peer, redis_url: str, prefix: str) -> None:
    queue: bullpy.Queue = make_queue(NAME)
    bull.call(queue, "add", {"__peer": {"log": ["tried", "tried again"]}}, {"jobId": "j1"})
    bull.process(spec(prefix, 1), count=1)
    run = cli_runner(redis_url, prefix)
    assert run("logs", NAME, "j1", fmt="table").stdout == "tried\ntried again\n"
    assert run("logs", NAME, "j1", "--tail", "1", fmt="table").stdout == "tried again\n"
    assert json.loads(run("logs", NAME, "j1").stdout) == {"id": "j1", "count": 2, "logs": ["tried", "tried again"]}
    assert json.loads(run("log", NAME, "j1", "resent by ops").stdout) == {"id": "j1", "rows": 3}
    assert bull.call(queue, "getJobLogs", "j1") == {"logs": ["tried", "tried again", "resent by ops"], "count": 3}
    missing = run("log", NAME, "nope", "x")
    assert missing.exit_code == 1 and "no job 'nope'" in missing.output


def test_a_stuck_job_failed_by_hand_is_retried_by_node_and_completes(make_queue: Any, bull: Peer, redis_url: str,
                                                                   prefix: str, redis_client: redis.Redis) -> None:
    queue: bullpy.Queue = make_queue(NAME)
    bull.call(queue, "add", {"number": "5511"}, {"jobId": "stuck", "attempts": 2})
    bull.process(spec(prefix, 1), behaviour={"hang": True})  # one slot, held by the hanging job
    bull.wait_for_state(queue, "stuck", "active")
    run = cli_runner(redis_url, prefix)
    before = redis_client.hgetall(queue.keys.job("stuck"))

    locked = run("fail", NAME, "stuck", "--reason", "worker hung", "--yes")
    assert locked.exit_code == 1 and "live lock (--force takes it over)" in locked.output
    refused = run("fail", NAME, "stuck", "--reason", "worker hung", "--force")
    assert refused.exit_code == 1 and "refusing to move 1 active job(s)" in refused.output
    assert redis_client.hgetall(queue.keys.job("stuck")) == before
    assert run("fail", NAME, "stuck", "--reason", "worker hung", "--force", "--dry-run").exit_code == 0
    assert redis_client.hgetall(queue.keys.job("stuck")) == before

    moved = run("fail", NAME, "stuck", "--reason", "worker hung", "--force", "--yes")
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.stdout) == [{"id": "stuck", "result": "waiting"}]  # one attempt left: retried now
    node_job = bull.call(queue, "getJob", "stuck")
    assert (node_job["attemptsMade"], node_job["failedReason"]) == (1, "worker hung")
    assert redis_client.get(queue.keys.lock("stuck")) is None

    bull.process(spec(prefix, 2), count=1)  # another Node worker, free to work
    bull.wait_for_state(queue, "stuck", "completed")
    runs = [r for r in bull.processed(spec(prefix, 2)) if r["id"] == "stuck"]
    assert [(r["outcome"], r["attemptsMade"]) for r in runs] == [("completed", 1)]


def test_a_job_whose_worker_died_is_failed_then_retried_by_node(make_queue: Any, bull: Peer, redis_url: str,
                                                               prefix: str) -> None:
    queue: bullpy.Queue = make_queue(NAME)
    bull.call(queue, "add", {"number": "5512"}, {"jobId": "orphan"})
    doomed = Peer(redis_url)
    try:
        dying = PeerQueue(NAME, prefix=prefix, settings={"lockDuration": 1000, "stalledInterval": 0})
        doomed.process(dying, behaviour={"crash": True})
        doomed.wait_exit(timeout=30)
    finally:
        doomed.stop()
    wait_until(lambda: queue.get_lock_owner("orphan") is None, timeout=10, what="the dead worker's lock to expire")
    assert bull.job(queue, "orphan", "getState") == "active"  # stuck: no worker will ever finish it

    run = cli_runner(redis_url, prefix)
    shown = run("job", NAME, "orphan", fmt="table").stdout
    assert "lock_owner     (none: no worker holds it; stuck? see `bullpy fail`)" in shown
    failed = run("fail", NAME, "orphan", "--reason", "worker died", "--yes")  # no live lock: no --force needed
    assert failed.exit_code == 0 and json.loads(failed.stdout) == [{"id": "orphan", "result": "failed"}]
    node_job = bull.call(queue, "getJob", "orphan")
    assert bull.job(queue, "orphan", "getState") == "failed"
    assert (node_job["failedReason"], node_job["attemptsMade"]) == ("worker died", 1) and node_job["finishedOn"]

    again = run("fail", NAME, "orphan", "--reason", "x", "--yes")
    assert again.exit_code == 1 and "is failed, not active" in again.output
    assert run("retry", NAME, "--id", "orphan").exit_code == 0
    bull.process(spec(prefix, 1), count=1)
    bull.wait_for_state(queue, "orphan", "completed")


def test_a_stuck_job_completed_by_hand(make_queue: Any, bull: Peer, redis_url: str, prefix: str) -> None:
    queue: bullpy.Queue = make_queue(NAME)
    bull.call(queue, "add", {"number": "5513"}, {"jobId": "sent-already"})
    bull.process(spec(prefix, 1), behaviour={"hang": True})
    bull.wait_for_state(queue, "sent-already", "active")
    bull.listen(queue, ["global:completed"])
    run = cli_runner(redis_url, prefix)
    assert run("complete", NAME, "sent-already", "--yes").exit_code == 1  # the live lock
    done = run("complete", NAME, "sent-already", "--returnvalue", '{"sent": true}', "--force", "--yes")
    assert done.exit_code == 0 and json.loads(done.stdout) == [{"id": "sent-already", "result": "completed"}]
    assert bull.job(queue, "sent-already", "getState") == "completed"
    assert bull.call(queue, "getJob", "sent-already")["returnvalue"] == {"sent": True}
    events = bull.wait_for_events(queue, "global:completed")
    assert [e["args"][0] for e in events] == ["sent-already"]


def test_repeatable_remove_as_node_sees_it(make_queue: Any, bull: Peer, redis_url: str, prefix: str) -> None:
    queue: bullpy.Queue = make_queue(NAME)
    bull.call(queue, "add", {"report": True}, {"repeat": {"every": 3_600_000}})
    bull.call(queue, "add", "daily", {"digest": True}, {"repeat": {"cron": "0 9 * * *"}})
    keys = {r["name"]: r["key"] for r in bull.call(queue, "getRepeatableJobs")}
    run = cli_runner(redis_url, prefix)
    listed = run("repeatable", "list", NAME)
    assert sorted(r["key"] for r in json.loads(listed.stdout)) == sorted(keys.values())
    refused = run("repeatable", "remove", NAME, keys["__default__"])
    assert refused.exit_code == 1 and "refusing to remove 1 repeatable" in refused.output
    done = run("repeatable", "remove", NAME, keys["__default__"], "--yes")
    assert done.exit_code == 0 and json.loads(done.stdout) == {"queue": NAME, "removed": 1}
    assert [r["key"] for r in bull.call(queue, "getRepeatableJobs")] == [keys["daily"]]
    assert all(j["name"] == "daily" for j in bull.call(queue, "getDelayed"))  # its pending run went too
    unknown = run("repeatable", "remove", NAME, "no::such::key", "--yes")
    assert unknown.exit_code == 1 and "no repeatable definition 'no::such::key'" in unknown.output


def test_queues_watch_redraws_until_interrupted(make_queue: Any, redis_url: str, prefix: str) -> None:
    make_queue(NAME).add({"x": 1})
    watch = subprocess.Popen([sys.executable, "-m", "bullpy.cli", "--redis", redis_url, "--prefix", prefix, "queues",
                              "--watch", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "COLUMNS": "100"})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(watch.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(lambda: sum(line.startswith("queue ") for line in lines) >= 2, timeout=30, what="two refreshes")
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=30)
    assert watch.returncode == 0
    assert any(line.startswith("live q ") for line in lines)
