"""Bad input gets a clear error naming what is wrong, and Redis is left exactly as it was."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
import redis

import bullpy

from .conftest import keyspace

BAD_ADDS: list[tuple[str, Any, dict[str, Any], type[Exception], str]] = [
    ("set in data", {"tags": {"a"}}, {}, TypeError, "tags"),
    ("bytes in data", {"blob": b"x"}, {}, TypeError, "blob"),
    ("object in data", {"who": object()}, {}, TypeError, "who"),
    ("NaN in data", {"price": math.nan}, {}, ValueError, "NaN"),
    ("Infinity in data", {"n": [1, math.inf]}, {}, ValueError, "Infinity"),
    ("naive datetime", {"at": dt.datetime(2026, 1, 1)}, {}, TypeError, "at"),
    ("negative delay", {}, {"delay": -500}, ValueError, "delay"),
    ("float delay", {}, {"delay": 1.5}, TypeError, "delay"),
    ("string delay", {}, {"delay": "1000"}, TypeError, "delay"),
    ("negative priority", {}, {"priority": -1}, ValueError, "priority"),
    ("huge priority", {}, {"priority": 2**60}, ValueError, "priority"),
    ("float priority", {}, {"priority": 2.5}, TypeError, "priority"),
    ("bool priority", {}, {"priority": True}, TypeError, "priority"),
    ("zero attempts", {}, {"attempts": 0}, ValueError, "attempts"),
    ("unknown option", {}, {"attemps": 3}, TypeError, "attemps"),
    ("camelCase option", {}, {"removeOnComplete": True}, TypeError, "remove_on_complete"),
    ("unknown backoff type", {}, {"backoff": {"type": "linear", "delay": 10}}, ValueError, "linear"),
    ("backoff without delay", {}, {"backoff": {"type": "fixed"}}, ValueError, "delay"),
    ("backoff bad key", {}, {"backoff": {"type": "fixed", "delay": 1, "jitter": 1}}, ValueError, "jitter"),
    ("negative backoff", {}, {"backoff": -1}, ValueError, "backoff"),
    ("bad remove_on_complete", {}, {"remove_on_complete": {"ages": 1}}, ValueError, "ages"),
    ("negative remove_on_fail", {}, {"remove_on_fail": -1}, ValueError, "remove_on_fail"),
    ("timeout zero", {}, {"timeout": 0}, ValueError, "timeout"),
    ("lifo not bool", {}, {"lifo": 1}, TypeError, "lifo"),
    ("reserved job id wait", {}, {"job_id": "wait"}, ValueError, "reserved"),
    ("reserved job id id", {}, {"job_id": "id"}, ValueError, "reserved"),
    ("reserved job id limiter", {}, {"job_id": "limiter:x"}, ValueError, "reserved"),
    ("reserved job id lock", {}, {"job_id": "7:lock"}, ValueError, "reserved"),
    ("reserved job id repeat", {}, {"job_id": "repeat:abc:1"}, ValueError, "repeat"),
    ("empty job id", {}, {"job_id": ""}, ValueError, "job_id"),
    ("float job id", {}, {"job_id": 1.5}, TypeError, "job_id"),
    ("repeat cron and every", {}, {"repeat": {"cron": "* * * * *", "every": 1000}}, ValueError, "every"),
    ("repeat neither", {}, {"repeat": {"tz": "UTC"}}, ValueError, "cron"),
    ("repeat bad cron", {}, {"repeat": {"cron": "not a cron"}}, ValueError, "cron"),
    ("repeat bad tz", {}, {"repeat": {"cron": "0 9 * * *", "tz": "Mars/Olympus"}}, ValueError, "Mars"),
    ("repeat unknown key", {}, {"repeat": {"every": 1000, "often": True}}, ValueError, "often"),
    ("repeat negative every", {}, {"repeat": {"every": -5}}, ValueError, "every"),
    ("repeat zero limit", {}, {"repeat": {"every": 1000, "limit": 0}}, ValueError, "limit"),
    ("debounce without id", {}, {"debounce": {"ttl": 10}}, ValueError, "id"),
]


@pytest.mark.parametrize(("case", "data", "options", "error", "text"), BAD_ADDS, ids=[c[0] for c in BAD_ADDS])
def test_bad_add_raises_and_writes_nothing(
    queue: bullpy.Queue, redis_client: redis.Redis, prefix: str,
    case: str, data: Any, options: dict[str, Any], error: type[Exception], text: str,
) -> None:
    queue.add({"seed": 1})
    before = keyspace(redis_client, prefix)
    with pytest.raises(error, match=text):
        queue.add(data, **options)
    assert keyspace(redis_client, prefix) == before


def test_bad_name_raises(queue: bullpy.Queue, redis_client: redis.Redis, prefix: str) -> None:
    with pytest.raises(ValueError, match="name"):
        queue.add({}, name="")
    assert keyspace(redis_client, prefix) == {}


def test_failed_add_bulk_leaves_no_partial_jobs(queue: bullpy.Queue, redis_client: redis.Redis, prefix: str) -> None:
    queue.add({"seed": 1})
    before = keyspace(redis_client, prefix)
    jobs = [{"data": {"n": i}} for i in range(50)] + [{"data": {"n": math.nan}}]
    with pytest.raises(ValueError, match="item 50"):
        queue.add_bulk(jobs)
    with pytest.raises(TypeError, match="item 1"):
        queue.add_bulk([{"data": {}}, {"data": {}, "opts": {"prority": 1}}])
    with pytest.raises(ValueError, match="add\\(\\)"):
        queue.add_bulk([{"data": {}, "opts": {"repeat": {"every": 1000}}}])
    assert keyspace(redis_client, prefix) == before


def test_add_bulk_batch_is_all_or_nothing_in_redis(queue: bullpy.Queue, redis_client: redis.Redis, prefix: str) -> None:
    # A key of the wrong type makes the script refuse the whole batch before its first write.
    redis_client.set(queue.keys("delayed"), "not a zset")
    before = keyspace(redis_client, prefix)
    with pytest.raises(bullpy.WrongKeyType, match="delayed is a string, not a zset"):
        queue.add_bulk([{"data": {"n": 1}}, {"data": {"n": 2}, "opts": {"delay": 1000}}])
    assert keyspace(redis_client, prefix) == before


def test_bad_queue_arguments() -> None:
    with pytest.raises(ValueError, match="queue name"):
        bullpy.Queue("", "redis://127.0.0.1:6379")
    with pytest.raises(ValueError, match="scheme"):
        bullpy.Queue("q", "http://127.0.0.1:6379")
    with pytest.raises(TypeError, match="redis"):
        bullpy.Queue("q", 6379)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="attempts"):
        bullpy.Queue("q", "redis://127.0.0.1:6379", default_job_options={"attempts": 0})


def test_bad_management_arguments(queue: bullpy.Queue, redis_client: redis.Redis, prefix: str) -> None:
    queue.add({"seed": 1})
    before = keyspace(redis_client, prefix)
    with pytest.raises(ValueError, match="waiting"):
        queue.clean(0, "waiting")
    with pytest.raises(ValueError, match="grace_ms"):
        queue.clean(-1)
    with pytest.raises(ValueError, match="unknown job state"):
        queue.get_job_counts("done")
    with pytest.raises(ValueError, match="pattern"):
        queue.remove_jobs("")
    with pytest.raises(ValueError, match="priority"):
        queue.get_count_per_priority([-1])
    assert keyspace(redis_client, prefix) == before


def test_unreachable_redis_names_host_never_password() -> None:
    queue = bullpy.Queue("q", "redis://:s3cret-pw@127.0.0.1:1/0")
    with pytest.raises(bullpy.RedisUnavailable) as info:
        queue.get_job_counts()
    assert "127.0.0.1:1" in str(info.value)
    assert "s3cret-pw" not in str(info.value)
    assert isinstance(info.value, ConnectionError)
    assert "s3cret-pw" not in repr(queue)
