"""bullpy.transfer on queues real Node Bull filled, and Node Bull processing what was imported or moved.

1. A queue Node filled with every kind of job (waiting, active, delayed, prioritised, completed with a
   returnvalue and progress, failed with stack traces, logs, a repeatable, a debounced job, metrics,
   paused) is exported and imported under another prefix in another Redis database: the keyspaces are
   equal once normalised, and a Node worker on that database processes the imported jobs in order.
2. Importing under another queue name (Bull stores the name only in key names).
3. Copy and move between queues on two prefixes and between states, then Node processes the jobs.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import bullpy
import bullpy.connection
from bullpy import transfer

from ..conftest import delete_prefix, keyspace
from .peer import Peer, PeerQueue


def transferable(space: dict[str, Any]) -> dict[str, Any]:
    """What a transfer reproduces: everything but a worker's locks and its stalled-check state."""
    return {key: value for key, value in space.items()
            if not key.endswith((":lock", ":stalled", ":stalled-check"))}


def renamed(space: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return {new + key[len(old):] if key.startswith(old + ":") else key: value for key, value in space.items()}


@pytest.fixture
def other_db(redis_url: str) -> Iterator[tuple[str, redis.Redis, str]]:
    """(url, client, prefix) on another database of the test server (db 1, or 2 if the run uses 1);
    the prefix is deleted there afterwards."""
    base = redis.Redis.from_url(redis_url)
    kwargs = dict(base.connection_pool.connection_kwargs)
    kwargs["db"] = 2 if kwargs.get("db", 0) == 1 else 1
    kwargs["decode_responses"] = True
    client = redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=base.connection_pool.connection_class, **kwargs))
    base.close()
    prefix = f"bullpy-test-{uuid.uuid4().hex[:8]}"
    yield bullpy.connection.url_for(client), client, prefix
    delete_prefix(client, prefix)
    client.close()




def node_fill(bull: Peer, queue: bullpy.Queue) -> dict[str, Any]:
    """Every kind of job, written by Node Bull; the ids by role."""
    with_metrics = PeerQueue(queue.name, queue.prefix, metrics={"maxDataPoints": 5})
    done = bull.call(with_metrics, "add", "send", {"number": "5511999", "__peer": {
        "progress": [50, 100], "log": ["sent to 5511999"], "return": {"messageId": "abc123"}}})
    bad = bull.call(with_metrics, "add", "send", {"number": "x", "__peer": {"fail": "whatsapp not ready"}},
                    {"attempts": 2})
    bull.process(with_metrics, count=3)  # done once, bad twice
    bull.wait_for_counts(with_metrics, completed=1, failed=1)
    bull.close(with_metrics)

    # One active job, held by a Node worker whose handler never returns (concurrency 1: it takes no more).
    busy = bull.call(queue, "add", "send", {"number": "busy"})
    bull.process(queue, behaviour={"hang": True})
    bull.wait_for_counts(queue, active=1)

    plain = [bull.call(queue, "add", "send", {"number": f"55{i}", "message": "hi"})["id"] for i in range(3)]
    bull.call(queue, "add", "send", {"number": "p2"}, {"priority": 2})
    bull.call(queue, "add", "send", {"number": "p1"}, {"priority": 1})
    later = bull.call(queue, "add", "send", {"number": "later"}, {"delay": 3_600_000})
    bull.call(queue, "add", "report", {"kind": "hourly"}, {"repeat": {"every": 3_600_000}})
    bull.call(queue, "add", "send", {"number": "deb"}, {"debounce": {"id": "deb-1", "ttl": 600_000}})
    bull.job(queue, plain[0], "log", "queued by the campaign")
    bull.job(queue, plain[0], "progress", 10)
    bull.call(queue, "pause")  # global: the waiting jobs move to the paused list
    return {"done": done["id"], "bad": bad["id"], "busy": busy["id"], "plain": plain, "later": later["id"]}


def test_export_import_into_another_prefix_and_database_then_node_processes(
    bull: Peer, make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis,
    other_db: tuple[str, redis.Redis, str], tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    source = make_queue("whatsapp send")
    ids = node_fill(bull, source)
    path = tmp_path / "whatsapp.bullpy"
    summary = transfer.export_queue(source, path, batch_size=3)
    assert summary.counts == {"delayed": 2, "wait": 0, "paused": 6, "active": 1, "completed": 1, "failed": 1}
    assert summary.repeatables == 1 and summary.paused

    url, client, prefix = other_db
    target = bullpy.Queue(source.name, url, prefix=prefix)
    request.addfinalizer(target.close)
    result = transfer.import_queue(path, target, batch_size=4)
    assert result.written == {"paused": 7, "delayed": 2, "completed": 1, "failed": 1}
    assert result.requeued_active == 1 and result.repeatables_added == 1 and result.paused_target

    src, dst = keyspace(redis_client, source.prefix), keyspace(client, prefix)
    # Normalised: besides the prefix (keyspace() strips it) and the database, only the active job
    # differs: its lock and the worker's stalled-check state stay behind, and it waits at the head
    # (the right end) of the target's list instead of being active.
    expected = transferable(src)
    name = source.name
    assert expected.pop(f"{name}:active") == ("list", [ids["busy"]])
    expected[f"{name}:paused"] = ("list", [*src[f"{name}:paused"][1], ids["busy"]])
    assert dst == expected
    assert {f"{name}:metrics:completed", f"{name}:repeat", f"{name}:de:deb-1", f"{name}:meta-paused",
            f"{name}:{ids['plain'][0]}:logs"} <= set(dst)

    with Peer(url) as node:
        on_target = PeerQueue(name, prefix)
        for job_id in (ids["done"], ids["bad"], ids["later"]):  # Node reads the jobs as it wrote them
            assert node.get_job(on_target, job_id) == bull.get_job(source, job_id)
        order = [ids["busy"], *reversed(src[f"{name}:paused"][1])]  # head first
        target.resume()
        node.process(on_target, count=7)
        processed = node.processed(on_target)
        assert [r["id"] for r in processed] == order
        assert all(r["outcome"] == "completed" for r in processed)
        assert node.wait_for_counts(on_target, completed=8, failed=1, delayed=2, waiting=0, active=0)
        assert [r["key"] for r in node.call(on_target, "getRepeatableJobs")] == [
            r["key"] for r in bull.call(source, "getRepeatableJobs")]


def test_import_under_another_queue_name(
    bull: Peer, make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis, other_prefix: str,
) -> None:
    source = make_queue("campaign {a}")
    bull.call(source, "add", "send", {"n": "done", "__peer": {"log": ["row"], "return": 7}})
    bull.process(source, count=1)
    bull.close(source)
    waiting = [bull.call(source, "add", "send", {"n": i})["id"] for i in range(2)]
    bull.call(source, "add", "daily", {"n": "cron"}, {"repeat": {"cron": "0 8 * * *", "tz": "America/Sao_Paulo"}})
    bull.call(source, "add", "send", {"n": "later"}, {"delay": 600_000, "jobId": "later"})
    data = io.BytesIO()
    transfer.export_queue(source, data)

    target = make_queue("renamed", prefix=other_prefix)
    data.seek(0)
    transfer.import_queue(data, target)
    src = transferable(keyspace(redis_client, source.prefix))
    # Bull keeps the queue name in key names only (repeat keys, hashes and logs do not hold it).
    assert renamed(keyspace(redis_client, other_prefix), "renamed", source.name) == src
    data.seek(0)
    again = transfer.import_queue(data, target, on_conflict="skip")  # idempotent
    assert again.jobs == 0 and again.skipped == 5 and again.repeatables_present == 1
    assert renamed(keyspace(redis_client, other_prefix), "renamed", source.name) == src

    assert bull.call(target, "getRepeatableJobs") == bull.call(source, "getRepeatableJobs")
    bull.process(target, count=2)
    assert sorted(r["id"] for r in bull.processed(target)) == sorted(waiting)
    assert bull.wait_for_counts(target, completed=3, delayed=2, waiting=0)
    assert bull.call(target, "getJobLogs", "1")["logs"] == ["row"]


def test_copy_and_move_between_queues_and_states_then_node_processes(
    bull: Peer, make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis, other_prefix: str,
) -> None:
    source = make_queue("campaign")
    for i in (1, 2):
        bull.call(source, "add", "send", {"n": i}, {"jobId": f"ok-{i}"})
    for i in (1, 2, 3):  # fail the first attempt only: a retry that keeps attemptsMade then succeeds
        bull.call(source, "add", "send", {"n": i, "__peer": {"failTimes": 1}}, {"jobId": f"f-{i}"})
    bull.process(source, count=5)
    bull.wait_for_counts(source, completed=2, failed=3)
    bull.close(source)
    for i in (1, 2, 3):
        bull.call(source, "add", "send", {"n": i}, {"jobId": f"w-{i}"})
    bull.call(source, "add", "send", {"n": "d"}, {"jobId": "d-1", "delay": 3_600_000, "priority": 3})

    # 1. Copy the waiting jobs to the same queue name under another prefix: the source is untouched.
    before = keyspace(redis_client, source.prefix)
    copy = make_queue("campaign", prefix=other_prefix)
    copied = transfer.copy_jobs(source, copy, states="wait")
    assert copied.written == {"wait": 3} and copied.removed == 0
    assert keyspace(redis_client, source.prefix) == before
    bull.process(copy, count=3)
    assert sorted(r["id"] for r in bull.processed(copy)) == ["w-1", "w-2", "w-3"]

    # 2. Within the source: failed -> wait, compared with Node's own job.retry() on a sibling.
    bull.job(source, "f-1", "retry")
    moved = transfer.move_jobs(source, source, ids=["f-2"], to_state="wait")
    assert moved.written == {"wait": 1} and str(moved).startswith("moved 1 job within")
    node_retried, ours = redis_client.hgetall(source.keys.job("f-1")), redis_client.hgetall(source.keys.job("f-2"))
    assert set(ours) == set(node_retried)
    assert {"finishedOn", "processedOn", "failedReason"}.isdisjoint(ours) and ours["attemptsMade"] == "1"
    assert ours["stacktrace"] == before["campaign:f-2"][1]["stacktrace"]
    assert set(redis_client.lrange(source.keys("wait"), 0, -1)) == {"w-1", "w-2", "w-3", "f-1", "f-2"}

    # 3. Failed and delayed jobs to another queue on the other prefix, as waiting (retry / promote).
    retry = make_queue("retry q", prefix=other_prefix)
    result = transfer.move_jobs(source, retry, states=["failed", "delayed"], to_state="wait")
    assert result.written == {"wait": 2} and result.removed == 2 and result.changed == 0
    assert not redis_client.exists(source.keys.job("f-3"), source.keys.job("d-1"))
    assert redis_client.zcard(source.keys("failed")) == redis_client.zcard(source.keys("delayed")) == 0
    assert redis_client.hget(retry.keys.job("d-1"), "delay") == "0"
    assert redis_client.zscore(retry.keys("priority"), "d-1") == 3
    bull.process(retry, count=2)
    runs = {r["id"]: r for r in bull.processed(retry)}
    assert runs["f-3"]["attemptsMade"] == 1 and runs["f-3"]["outcome"] == "completed"
    assert runs["d-1"]["outcome"] == "completed"

    # 4. Node processes what stayed or came back to waiting in the source.
    bull.process(source, count=5)
    assert bull.wait_for_counts(source, completed=7, failed=0, waiting=0, delayed=0)
    bull.close(source)

    # 5. An active job whose lock a Node worker holds is never moved; a copy takes it as waiting.
    busy = PeerQueue(source.name, source.prefix, settings={"lockDuration": 30_000})
    bull.call(busy, "add", "send", {"n": "busy"}, {"jobId": "busy"})
    bull.process(busy, behaviour={"hang": True})
    bull.wait_for_counts(busy, active=1)
    held = transfer.move_jobs(source, retry, states=["active"])
    assert held.locked_in_source == 1 and held.jobs == 0 and "locked by a worker, not moved" in str(held)
    assert redis_client.lrange(source.keys("active"), 0, -1) == ["busy"]
    assert not redis_client.exists(retry.keys.job("busy"))
    taken = transfer.copy_jobs(source, copy, states=["active"])
    assert taken.written == {"wait": 1} and taken.requeued_active == 1
    # The Node worker still running on the copy (step 1) runs it there, while it hangs in the source.
    assert bull.wait_for_processed(copy, 4)[-1]["id"] == "busy"
    assert redis_client.lrange(source.keys("active"), 0, -1) == ["busy"]
