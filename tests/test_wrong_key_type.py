"""A key of the wrong type in one queue (issue 12): reported for that queue, naming the key, and only there.

Real Redis; nothing here writes: the keyspace digest is the same before and after.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis
from click.testing import CliRunner

import bullpy
from bullpy.cli import main

from .conftest import keyspace


@pytest.fixture
def server(make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis, prefix: str) -> dict[str, bullpy.Queue]:
    """Two healthy queues (a: 2 waiting, 1 delayed; b: 1 waiting) and c, whose wait list is a string."""
    a, b, c = make_queue("a"), make_queue("b"), make_queue("c")
    a.add({"n": 1})
    a.add({"n": 2})
    a.add({"n": 3}, delay=60_000)
    b.add({"n": 1})
    c.add({"n": 1}, delay=60_000)
    redis_client.delete(c.keys("wait"))
    redis_client.set(c.keys("wait"), "str")
    return {"a": a, "b": b, "c": c}


def _cli(redis_url: str, prefix: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--redis", redis_url, "--prefix", prefix, *args])
    return result.exit_code, result.stdout, result.stderr


def test_getters_raise_wrong_key_type_naming_the_key(server: dict[str, bullpy.Queue],
                                                     redis_client: redis.Redis, prefix: str) -> None:
    before = keyspace(redis_client, prefix)
    c = server["c"]
    for getter in (c.get_job_counts, c.get_waiting, c.get_waiting_count, lambda: c.get_job_counts(plain=True)):
        with pytest.raises(bullpy.WrongKeyType) as caught:
            getter()
        assert (caught.value.key, caught.value.actual, caught.value.expected) == (f"{prefix}:c:wait", "string", "list")
        assert str(caught.value).startswith(f"damaged: {prefix}:c:wait is a string, not a list (WRONGTYPE)")
        assert isinstance(caught.value, bullpy.BullError) and isinstance(caught.value, TypeError)
        assert isinstance(caught.value.__cause__, redis.ResponseError)
    # States whose keys are healthy still read.
    assert c.get_delayed_count() == 1
    assert server["a"].get_job_counts()["waiting"] == 2
    assert keyspace(redis_client, prefix) == before


def test_queues_lists_the_healthy_ones_and_marks_the_damaged_one(server: dict[str, bullpy.Queue], redis_url: str,
                                                                  redis_client: redis.Redis, prefix: str) -> None:
    before = keyspace(redis_client, prefix)
    code, out, err = _cli(redis_url, prefix, "queues")
    assert code == 1, (out, err)
    lines = out.splitlines()
    assert lines[0].split()[:8] == ["queue", "waiting", "active", "completed", "failed", "delayed", "paused",
                                    "paused?"] and lines[0].split()[-1] == "damaged"
    assert lines[1].split() == ["a", "2", "0", "0", "0", "1", "0", "no"]
    assert lines[2].split() == ["b", "1", "0", "0", "0", "0", "0", "no"]
    assert lines[3].split(None, 1) == ["c", f"damaged: {prefix}:c:wait is a string, not a list"]
    assert "1 queue with a key of the wrong type: c" in err and "Traceback" not in out + err

    code, out, _ = _cli(redis_url, prefix, "--format", "json", "queues")
    assert code == 1
    rows = {row["queue"]: row for row in json.loads(out)}
    assert rows["a"]["waiting"] == 2 and rows["a"]["delayed"] == 1 and rows["b"]["waiting"] == 1
    assert rows["c"] == {"queue": "c", "damaged": f"damaged: {prefix}:c:wait is a string, not a list"}
    assert keyspace(redis_client, prefix) == before


def test_queues_without_damage_keeps_its_columns_and_exit_status(make_queue: Callable[..., bullpy.Queue],
                                                                 redis_url: str, prefix: str) -> None:
    make_queue("a").add({"n": 1})
    code, out, err = _cli(redis_url, prefix, "queues")
    assert code == 0 and "damaged" not in out + err
    assert out.splitlines()[1].split() == ["a", "1", "0", "0", "0", "0", "0", "no"]


def test_stats_on_the_damaged_queue_is_one_line(server: dict[str, bullpy.Queue], redis_url: str,
                                                redis_client: redis.Redis, prefix: str) -> None:
    before = keyspace(redis_client, prefix)
    code, out, err = _cli(redis_url, prefix, "stats", "c")
    assert code == 1 and out == ""
    assert err.splitlines() == [(f"Error: damaged: {prefix}:c:wait is a string, not a list (WRONGTYPE); "
                                 "`bullpy doctor c` explains it, and nothing was changed")]
    code, out, _ = _cli(redis_url, prefix, "stats", "a")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["a", "2", "0"]
    assert keyspace(redis_client, prefix) == before


def test_doctor_still_finds_the_damaged_key(server: dict[str, bullpy.Queue], redis_client: redis.Redis,
                                            prefix: str) -> None:
    from bullpy.doctor import diagnose

    before = keyspace(redis_client, prefix)
    report = diagnose(server["c"], recheck_delay=0.01, check_orphans=False)
    found = [f for f in report.findings if f.code == "wrong-key-type"]
    assert len(found) == 1 and report.exit_code == 2
    assert found[0].message.startswith("a key of the queue has the wrong type, so the job counts cannot be read: "
                                       f"WRONGTYPE: {prefix}:c:wait is a string")
    assert found[0].details["key"] == f"{prefix}:c:wait"
    assert keyspace(redis_client, prefix) == before


def test_a_wrong_type_outside_the_queue_keys_is_still_a_wrong_key_type(queue: bullpy.Queue,
                                                                        redis_client: redis.Redis) -> None:
    queue.add({"n": 1}, job_id="j1")
    redis_client.rpush(queue.keys("j1") + ":logs", "x")  # fine: a list
    redis_client.set(queue.keys("j1") + ":logs", "not a list")
    with pytest.raises(bullpy.WrongKeyType) as caught:
        queue.get_job_logs("j1")
    assert caught.value.key is None and "WRONGTYPE" in str(caught.value)
