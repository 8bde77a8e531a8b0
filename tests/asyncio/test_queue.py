"""``bullpy.aio`` on a real Redis: the sync tests' behaviour, awaited (tests/test_queue.py's mirror), plus what
only asyncio has (async iteration over events, top-level await in a notebook)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

import bullpy
import bullpy.aio

from ..conftest import keyspace

Run = Callable[[Awaitable[Any]], Any]


def test_add_writes_bulls_hash_and_publishes(aq: bullpy.aio.Queue, run: Run, redis_client: redis.Redis) -> None:
    pubsub = redis_client.pubsub()
    pubsub.psubscribe(aq.keys("*"))
    pubsub.get_message(timeout=1)
    job = run(aq.add({"number": "5511999999999@c.us", "message": "hi", "delay": 0}, name="send",
                     attempts=3, backoff={"type": "exponential", "delay": 2000}, timestamp=1795800097275))
    assert isinstance(job, bullpy.aio.Job)
    assert redis_client.hgetall(aq.keys.job(job.id)) == {
        "name": "send",
        "data": '{"number":"5511999999999@c.us","message":"hi","delay":0}',
        "opts": '{"attempts":3,"backoff":{"type":"exponential","delay":2000},"timestamp":1795800097275,"delay":0}',
        "timestamp": "1795800097275", "delay": "0", "priority": "0",
    }
    delayed = run(aq.add({}, delay=60000, timestamp=1795799484653))
    assert redis_client.zscore(aq.keys("delayed"), delayed.id) == 1795799544653 * 4096 + 2
    messages = [pubsub.get_message(timeout=1) for _ in range(2)]
    assert [(m["channel"], m["data"]) for m in messages if m] == [
        (aq.keys("waiting") + "@" + aq.token, job.id),
        (aq.keys("delayed"), "1795799544653"),
    ]
    pubsub.close()


def test_sync_and_asyncio_queues_write_the_same_keyspace(
    aq: bullpy.aio.Queue, make_queue: Callable[..., bullpy.Queue], run: Run, redis_client: redis.Redis, prefix: str,
) -> None:
    sync = make_queue("sync-twin")
    twin = bullpy.aio.Queue("sync-twin", aq.client, prefix=prefix + "-aio")
    try:
        for q in (sync, twin):
            steps: list[Any] = [
                q.add({"a": 1}, timestamp=1), q.add({"b": 2}, priority=3, timestamp=2),
                q.add({"c": 3}, delay=5000, timestamp=3, job_id="later"),
                q.add_bulk([{"name": "n", "data": {"i": i}, "opts": {"timestamp": 10 + i}} for i in range(3)]),
            ]
            for step in steps:
                if asyncio.iscoroutine(step):
                    run(step)
        assert keyspace(redis_client, prefix) == keyspace(redis_client, prefix + "-aio")
    finally:
        run(twin.obliterate(force=True))


def test_duplicate_custom_id_writes_nothing(aq: bullpy.aio.Queue, run: Run, redis_client: redis.Redis,
                                            prefix: str) -> None:
    first = run(aq.add({"a": 7}, job_id="order-1"))
    before = keyspace(redis_client, prefix)
    second = run(aq.add({"a": "dup"}, job_id="order-1"))
    assert not first.duplicate and second.duplicate and second.id == "order-1"
    after = keyspace(redis_client, prefix)
    assert after.pop(f"{aq.name}:id") == ("string", "2")
    before.pop(f"{aq.name}:id")
    assert after == before


def test_getters_order_like_node(aq: bullpy.aio.Queue, run: Run) -> None:
    async def scenario() -> None:
        ids = [(await aq.add({"n": n})).id for n in range(5)]  # type: ignore[union-attr]
        assert [j.id for j in await aq.get_waiting()] == ids
        assert [j.id for j in await aq.get_waiting(1, 2)] == ids[1:3]
        assert await aq.get_ranges("wait", 0, 1, asc=False) == ids[::-1][:2]
        d1 = await aq.add({}, delay=100_000)
        d2 = await aq.add({}, delay=50_000)
        assert [j.id for j in await aq.get_delayed()] == [d2.id, d1.id]  # type: ignore[union-attr]
        assert await aq.count() == 7
        assert await aq.get_job_counts("wait,delayed", "completed") == {"wait": 5, "delayed": 2, "completed": 0}
        assert await aq.get_job_counts() == {"waiting": 5, "active": 0, "completed": 0, "failed": 0, "delayed": 2,
                                             "paused": 0}
        assert await aq.get_job("nope") is None
        assert await aq.get_states([ids[0], d1.id, "nope"]) == {  # type: ignore[union-attr]
            ids[0]: "waiting", d1.id: "delayed", "nope": "missing"}  # type: ignore[union-attr]
        assert await aq.get_count_per_priority([0, 1]) == {0: 5, 1: 0}
        assert await aq.get_job_fields(ids[:2], ["data"]) == [['{"n":0}'], ['{"n":1}']]
        assert await aq.promote_jobs() == [d2.id, d1.id]  # type: ignore[union-attr]
        assert await aq.get_delayed_count() == 0 and await aq.get_waiting_count() == 7
        assert await aq.exists()

    run(scenario())


def test_job_operations_and_their_errors(aq: bullpy.aio.Queue, run: Run, redis_client: redis.Redis) -> None:
    async def scenario() -> None:
        job = await aq.add({"a": 1})
        assert job is not None
        await job.update({"a": 2})
        await job.update_progress(40)
        assert await job.log("first") == 1
        fresh = await aq.get_job(job.id)
        assert fresh is not None and fresh.data == {"a": 2} and fresh.progress == 40
        assert (await aq.get_job_logs(job.id)).logs == ["first"]
        assert await fresh.get_state() is bullpy.JobState.WAITING
        assert fresh.to_dict()["data"] == {"a": 2}
        redis_client.delete(aq.keys.job(job.id))
        for call in (job.update({"b": 2}), job.update_progress(5), job.log("row"), job.retry(), job.reload()):
            with pytest.raises(bullpy.JobNotFound):
                await call
        locked = await aq.add({"c": 3})
        assert locked is not None
        redis_client.set(aq.keys.lock(locked.id), "some-worker-token", px=10_000)
        with pytest.raises(bullpy.JobLocked):
            await locked.remove()
        with pytest.raises(bullpy.JobNotInState):
            await locked.promote()
        assert await aq.get_lock_owner(locked.id) == "some-worker-token"
        redis_client.delete(aq.keys.lock(locked.id))
        await locked.remove()
        assert await aq.get_job(locked.id) is None

    run(scenario())


def test_outside_completion_and_failure(aq: bullpy.aio.Queue, queue: bullpy.Queue, run: Run,
                                        redis_client: redis.Redis) -> None:
    async def scenario() -> None:
        job = await aq.add({"a": 1}, attempts=2)
        assert job is not None
        # Active without a lock, as a crashed worker leaves a job.
        redis_client.lrem(aq.keys("wait"), 0, job.id)
        redis_client.lpush(aq.keys("active"), job.id)
        assert await job.move_to_failed("first try") is bullpy.JobState.WAITING
        assert job.attempts_made == 0  # the job as read before the attempt counted
        fresh = await aq.get_job(job.id)
        assert fresh is not None and fresh.attempts_made == 1 and fresh.failed_reason == "first try"
        redis_client.lrem(aq.keys("wait"), 0, job.id)
        redis_client.lpush(aq.keys("active"), job.id)
        await job.move_to_completed({"ok": True})
        done = await aq.get_completed()
        assert [j.returnvalue for j in done] == [{"ok": True}]
        with pytest.raises(bullpy.JobNotInState):
            await job.move_to_completed(1)

    run(scenario())
    assert queue.name == aq.name  # the same queue, read by the sync facade too
    assert queue.get_job_counts("completed") == {"completed": 1}


def test_management_pause_clean_retry_empty_obliterate(aq: bullpy.aio.Queue, run: Run, redis_client: redis.Redis,
                                                       prefix: str) -> None:
    async def scenario() -> None:
        await aq.add_bulk([{"data": {"i": i}} for i in range(4)])
        await aq.pause()
        assert await aq.is_paused()
        assert await aq.get_job_counts("wait", "paused") == {"wait": 0, "paused": 4}
        await aq.resume()
        assert not await aq.is_paused()
        # Two failed jobs, as workers leave them.
        for job_id in ("1", "2"):
            redis_client.lrem(aq.keys("wait"), 0, job_id)
            redis_client.zadd(aq.keys("failed"), {job_id: 1})
            redis_client.hset(aq.keys.job(job_id), mapping={"finishedOn": "1", "failedReason": "x"})
        assert [j.id for j in await aq.get_failed()] == ["2", "1"]
        await aq.retry_jobs()
        assert await aq.get_job_counts("failed", "wait") == {"failed": 0, "wait": 4}
        assert sorted(await aq.clean(0, "wait", dry_run=True)) == ["1", "2", "3", "4"]
        (cleaned,) = await aq.clean(0, "wait", 1)
        other = next(i for i in ("1", "2", "3", "4") if i != cleaned)
        assert await aq.remove_jobs(other + "*", dry_run=True) == [other]
        assert await aq.remove_jobs(other) == [other]
        assert await aq.empty() == 2
        await aq.add({"x": 1})
        redis_client.lpush(aq.keys("active"), "9")
        with pytest.raises(bullpy.QueueHasActiveJobs):
            await aq.obliterate()
        await aq.obliterate(force=True)
        assert not await aq.exists()

    run(scenario())
    assert keyspace(redis_client, prefix) == {}


def test_clean_retries_through_an_outage_with_the_sync_policy(aq: bullpy.aio.Queue, run: Run) -> None:
    run(aq.add({}, timestamp=1))
    policy = bullpy.RetryPolicy(attempts=3, first_delay=0.01)
    assert run(aq.clean(0, "wait", retry=policy)) == ["1"]
    broken = bullpy.aio.Queue("q", "redis://127.0.0.1:1/0")
    with pytest.raises(bullpy.RedisUnavailable, match="clean: gave up after trying 2 times"):
        run(broken.clean(0, "wait", retry=bullpy.RetryPolicy(attempts=2, first_delay=0.01)))
    with pytest.raises(bullpy.RedisUnavailable, match="cannot reach Redis at 127.0.0.1:1"):
        run(broken.get_job_counts())
    run(broken.close())


def test_repeatable_jobs_metrics_and_workers(aq: bullpy.aio.Queue, queue: bullpy.Queue, run: Run) -> None:
    async def scenario() -> None:
        await aq.add({"r": 1}, name="daily", repeat={"every": 86_400_000})
        assert await aq.get_repeatable_count() == 1
        (definition,) = await aq.get_repeatable_jobs()
        assert definition == queue.get_repeatable_jobs()[0]
        assert await aq.remove_repeatable("daily", every=86_400_000)
        assert await aq.get_repeatable_count() == 0
        metrics = await aq.get_metrics("completed")
        assert metrics.count == 0 and metrics.data == []
        assert await aq.get_workers() == [] and await aq.count_workers() == 0

    run(scenario())


def test_async_iteration_over_global_events(aq: bullpy.aio.Queue, queue: bullpy.Queue, run: Run) -> None:
    seen: list[tuple[Any, ...]] = []

    async def scenario() -> list[bullpy.aio.Event]:
        await aq.on("global:progress", lambda *args: seen.append(args))

        async def also(job_id: str, progress: Any) -> None:
            seen.append(("async", job_id, progress))

        await aq.on("global:progress", also)
        events: list[bullpy.aio.Event] = []
        async with aq.events("global:waiting", "global:progress", timeout=2) as stream:
            job = queue.add({"from": "sync"})  # another client's add and progress arrive here
            assert job is not None
            job.update_progress(50)
            async for event in stream:
                events.append(event)
                if len(events) == 2:
                    break
        await asyncio.sleep(0.05)
        return events

    events = run(scenario())
    assert [(e.name, e.job_id) for e in events] == [("global:waiting", "1"), ("global:progress", "1")]
    assert events[1].value == 50
    assert ("1", 50) in seen and ("async", "1", 50) in seen


def test_events_stop_after_timeout_and_local_progress(aq: bullpy.aio.Queue, run: Run) -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        got = [e async for e in aq.events("global:completed", timeout=0.2)]
        local: list[Any] = []
        await aq.on("progress", lambda job, value: local.append((job.id, value)))
        job = await aq.add({})
        assert job is not None
        await job.update_progress(7)
        return got, local

    assert run(scenario()) == ([], [("1", 7)])


def test_find_queues_and_stats(aq: bullpy.aio.Queue, run: Run, redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        await aq.add({"a": 1}, timestamp=1000)
        assert await bullpy.aio.find_queues(redis_url, prefix) == [aq.name]
        stats = await aq.get_stats({"completed": 0, "failed": 0})
        assert stats.counts["waiting"] == 1 and stats.oldest_waiting_since == 1000
        assert stats.finished == {"completed": [], "failed": []} and not stats.paused

    run(scenario())


def test_bad_arguments_fail_before_redis(run: Run) -> None:
    with pytest.raises(ValueError, match="prefix"):
        bullpy.aio.Queue("q", "redis://127.0.0.1:1/0", prefix="")
    with pytest.raises(TypeError, match="redis.asyncio"):
        bullpy.aio.Queue("q", redis.Redis())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Cluster"):
        bullpy.aio.Queue("q", "redis://127.0.0.1:1/0", cluster=True)
    q = bullpy.aio.Queue("q", "redis://127.0.0.1:1/0")
    with pytest.raises(ValueError, match="unknown job state"):
        run(q.get_job_counts("nope"))
    with pytest.raises(TypeError, match="add_bulk item 0"):
        run(q.add_bulk(["not a dict"]))  # type: ignore[list-item]
    with pytest.raises(ValueError, match="clean unknown queue type"):
        run(q.clean(0, "waiting"))
    run(q.close())


def test_default_job_options_merge_like_node(make_aio_queue: Callable[..., bullpy.aio.Queue], run: Run,
                                             redis_client: redis.Redis) -> None:
    aq = make_aio_queue(default_job_options={"attempts": 3, "remove_on_complete": True})
    job = run(aq.add({}, priority=2, attempts=5, timestamp=1))
    opts = json.loads(redis_client.hget(aq.keys.job(job.id), "opts"))
    assert list(opts) == ["attempts", "removeOnComplete", "priority", "timestamp", "delay"]
