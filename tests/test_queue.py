"""Queue and Job behaviour on a real Redis that needs no Node peer (what Redis holds afterwards)."""

from __future__ import annotations

import json

import pytest
import redis

import bullpy

from .conftest import keyspace


def test_add_writes_bulls_hash_and_publishes(queue: bullpy.Queue, redis_client: redis.Redis) -> None:
    pubsub = redis_client.pubsub()
    pubsub.psubscribe(queue.keys("*"))
    pubsub.get_message(timeout=1)
    job = queue.add({"number": "5511999999999@c.us", "message": "hi", "delay": 0}, name="send",
                    attempts=3, backoff={"type": "exponential", "delay": 2000}, timestamp=1795800097275)
    assert job is not None
    assert redis_client.hgetall(queue.keys.job(job.id)) == {
        "name": "send",
        "data": '{"number":"5511999999999@c.us","message":"hi","delay":0}',
        "opts": '{"attempts":3,"backoff":{"type":"exponential","delay":2000},"timestamp":1795800097275,"delay":0}',
        "timestamp": "1795800097275", "delay": "0", "priority": "0",
    }
    delayed = queue.add({}, delay=60000, timestamp=1795799484653)
    assert delayed is not None
    assert redis_client.zscore(queue.keys("delayed"), delayed.id) == 1795799544653 * 4096 + 2
    messages = [pubsub.get_message(timeout=1) for _ in range(2)]
    assert [(m["channel"], m["data"]) for m in messages if m] == [
        (queue.keys("waiting") + "@" + queue.token, job.id),
        (queue.keys("delayed"), "1795799544653"),
    ]
    pubsub.close()


def test_auto_id_skips_existing_numeric_custom_id(queue: bullpy.Queue) -> None:
    custom = queue.add({"c": "custom 2"}, job_id="2")
    auto = queue.add({"auto": True})
    assert custom is not None and auto is not None
    # Node would give the auto job id 2 and overwrite the custom job; bullpy moves on (divergence 4).
    assert auto.id == "3"
    stored = queue.get_job("2")
    assert stored is not None and stored.data == {"c": "custom 2"}
    assert queue.get_ranges("wait") == ["3", "2"]


def test_duplicate_custom_id_writes_nothing(queue: bullpy.Queue, redis_client: redis.Redis, prefix: str) -> None:
    first = queue.add({"a": 7}, job_id="order-1")
    before = keyspace(redis_client, prefix)
    second = queue.add({"a": "dup"}, job_id="order-1")
    assert first is not None and second is not None
    assert second.duplicate and second.id == "order-1"
    after = keyspace(redis_client, prefix)
    assert after.pop(f"{queue.name}:id") == ("string", "2")  # Bull counts every add, duplicates too
    before.pop(f"{queue.name}:id")
    assert after == before


def test_getters_order_like_node(queue: bullpy.Queue) -> None:
    ids = [queue.add({"n": n}).id for n in range(5)]  # type: ignore[union-attr]
    assert [j.id for j in queue.get_waiting()] == ids  # next to run first
    assert [j.id for j in queue.get_waiting(1, 2)] == ids[1:3]
    assert queue.get_ranges("wait", 0, 1, asc=False) == ids[::-1][:2]  # newest first when desc
    d1 = queue.add({}, delay=100_000)
    d2 = queue.add({}, delay=50_000)
    assert [j.id for j in queue.get_delayed()] == [d2.id, d1.id]  # type: ignore[union-attr]
    assert queue.count() == 7
    assert queue.get_job_counts("wait,delayed", "completed") == {"wait": 5, "delayed": 2, "completed": 0}
    assert queue.get_job("nope") is None


def test_names_and_ids_with_odd_characters_work(make_queue: object, redis_client: redis.Redis, prefix: str) -> None:
    queue = make_queue("edge L:{ü} *[x]", allow_colon=True)  # type: ignore[operator]
    job = queue.add({"a": 1}, job_id="ünï cødé:{x} 1")
    assert redis_client.exists(f"{prefix}:edge L:{{ü}} *[x]:ünï cødé:{{x}} 1")
    assert queue.get_job("ünï cødé:{x} 1").data == {"a": 1}
    other = make_queue("edge L:{ü} *[x]y", allow_colon=True)  # type: ignore[operator]
    other.add({"b": 2}, job_id="zzz")
    # The base key is glob-escaped: removing "*" here must not touch the other queue's jobs.
    assert queue.remove_jobs("*") == [job.id]
    assert other.get_job("zzz") is not None


def test_job_operations_on_missing_or_locked_jobs(queue: bullpy.Queue, redis_client: redis.Redis) -> None:
    job = queue.add({"a": 1})
    assert job is not None
    redis_client.delete(queue.keys.job(job.id))
    with pytest.raises(bullpy.JobNotFound):
        job.update({"b": 2})
    with pytest.raises(bullpy.JobNotFound):
        job.update_progress(5)
    with pytest.raises(bullpy.JobNotFound):
        job.log("row")
    with pytest.raises(bullpy.JobNotFound):
        job.retry()
    locked = queue.add({"c": 3})
    assert locked is not None
    redis_client.set(queue.keys.lock(locked.id), "some-worker-token", px=10_000)
    with pytest.raises(bullpy.JobLocked):
        locked.remove()
    assert queue.get_job(locked.id) is not None
    with pytest.raises(bullpy.JobNotInState):
        locked.promote()


def test_retry_of_a_job_not_in_the_set_changes_nothing(queue: bullpy.Queue, redis_client: redis.Redis) -> None:
    job = queue.add({"a": 1})
    assert job is not None
    # A completed job, as a worker leaves it.
    redis_client.lrem(queue.keys("wait"), 0, job.id)
    redis_client.zadd(queue.keys("completed"), {job.id: 1795800000000})
    redis_client.hset(queue.keys.job(job.id), mapping={"processedOn": "1795799999000", "finishedOn": "1795800000000",
                                                         "returnvalue": "42"})
    before = redis_client.hgetall(queue.keys.job(job.id))
    with pytest.raises(bullpy.JobNotInState):
        job.retry()  # divergence 2: Node strips finishedOn/processedOn here
    assert redis_client.hgetall(queue.keys.job(job.id)) == before
    job.retry(state="completed")
    after = redis_client.hgetall(queue.keys.job(job.id))
    assert "finishedOn" not in after and "processedOn" not in after and "retriedOn" in after
    assert queue.get_job(job.id).get_state() is bullpy.JobState.WAITING  # type: ignore[union-attr]


def test_default_job_options_merge_like_node(make_queue: object, redis_client: redis.Redis) -> None:
    queue = make_queue(default_job_options={"attempts": 3, "remove_on_complete": True})  # type: ignore[operator]
    job = queue.add({}, priority=2, attempts=5, timestamp=1)
    opts = json.loads(redis_client.hget(queue.keys.job(job.id), "opts"))
    # {...defaultJobOptions, ...opts}: defaults keep their place, the call's values win.
    assert list(opts) == ["attempts", "removeOnComplete", "priority", "timestamp", "delay"]
    assert opts["attempts"] == 5


def test_repr_never_shows_password() -> None:
    queue = bullpy.Queue("q", "redis://:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in repr(queue)
