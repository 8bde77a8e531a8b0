"""Issue 12: names that could collide, URLs redis-py would misread, and values beyond what JavaScript and
Bull can hold are refused with an error naming the problem, and Redis is left exactly as it was."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from click.testing import CliRunner

import bullpy
import bullpy.aio as bullpy_aio
from bullpy import connection
from bullpy.cli import main as cli

from .conftest import keyspace


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = {"a": value} if i % 2 else [value]
    return value


BAD_VALUES: list[tuple[str, Any, dict[str, Any], str]] = [
    ("data nested 10,000 deep", nested(10_000), {}, "nested deeper than 256"),
    ("data nested 257 deep", nested(257), {}, "nested deeper than 256"),
    ("lone surrogate in name", {}, {"name": "send\ud800"}, "job name .* lone surrogate"),
    ("lone surrogate in job id", {}, {"job_id": "id-\udc80"}, "job_id .* lone surrogate"),
    ("delay 2**63", {}, {"delay": 2**63}, "delay must be between 0 and"),
    ("delay beyond a century", {}, {"delay": 3_155_760_000_001}, "delay must be between 0 and"),
    ("timestamp 10**20", {}, {"timestamp": 10**20}, "timestamp must be between 0 and"),
    ("attempts 2**40", {}, {"attempts": 2**40}, "attempts must be between 1 and"),
    ("timeout beyond setTimeout", {}, {"timeout": 2**31}, "timeout must be between 1 and"),
    ("backoff 1e300", {}, {"backoff": 1e300}, "backoff must be between 0 and"),
    ("backoff delay 2**60", {}, {"backoff": {"type": "fixed", "delay": 2**60}}, "backoff\\['delay'\\]"),
    ("backoff infinity", {}, {"backoff": float("inf")}, "backoff must be a finite"),
    ("remove_on_complete 2**60", {}, {"remove_on_complete": 2**60}, "remove_on_complete must be between"),
    ("job id of a sibling's paused list", {}, {"job_id": "b:paused"}, "sibling queue"),
    ("job id of a sibling's wait list", {}, {"job_id": "b:wait"}, "sibling queue"),
    ("job id of a sibling's limiter", {}, {"job_id": "b:limiter:x"}, "sibling queue"),
]


@pytest.mark.parametrize(("case", "data", "options", "text"), BAD_VALUES, ids=[c[0] for c in BAD_VALUES])
def test_values_beyond_bounds_are_refused(queue: bullpy.Queue, redis_client: redis.Redis, prefix: str,
                                          case: str, data: Any, options: dict[str, Any], text: str) -> None:
    queue.add({"seed": 1})
    before = keyspace(redis_client, prefix)
    with pytest.raises(ValueError, match=text):
        queue.add(data, **options)
    with pytest.raises(ValueError, match=text):
        queue.add_bulk([{"data": {}}, {"data": data, "name": options.pop("name", None), "opts": options}])
    assert keyspace(redis_client, prefix) == before


def test_values_at_the_bounds_are_accepted(queue: bullpy.Queue) -> None:
    job = queue.add(nested(256), attempts=2**31 - 1, delay=3_155_760_000_000, backoff=2**40, job_id="spring:1")
    assert job is not None and job.id == "spring:1"
    assert job.opts["attempts"] == 2**31 - 1


@pytest.mark.parametrize("name", ["\ud800", "ok\udfff"])
@pytest.mark.parametrize("field", ["name", "prefix"])
def test_unencodable_queue_names_are_refused(redis_url: str, name: str, field: str) -> None:
    args: dict[str, Any] = {"name": "q", "prefix": "bull", field: name}
    what = "prefix" if field == "prefix" else "queue name"
    for cls in (bullpy.Queue, bullpy_aio.Queue):
        with pytest.raises(ValueError, match=f"{what} .*lone surrogate"):
            cls(args["name"], redis_url, prefix=args["prefix"])


@pytest.mark.parametrize("field", ["name", "prefix"])
def test_a_queue_named_with_a_colon_is_read_only_without_the_opt_in(
    make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis, prefix: str, field: str
) -> None:
    writer = make_queue("a:b", allow_colon=True) if field == "name" else \
        make_queue("q", prefix=f"{prefix}:x", allow_colon=True)
    job = writer.add({"n": 1}, job_id="j1")
    assert job is not None
    before = keyspace(redis_client, prefix)
    reader = make_queue("a:b") if field == "name" else make_queue("q", prefix=f"{prefix}:x")
    what = "queue name 'a:b'" if field == "name" else f"prefix '{prefix}:x'"
    assert reader.get_job_counts()["waiting"] == 1
    assert [j.id for j in reader.get_waiting()] == ["j1"]
    assert reader.get_job("j1") is not None and reader.get_states(["j1"])
    writes: list[Callable[[], object]] = [
        lambda: reader.add({}), lambda: reader.add_bulk([{"data": {}}]), reader.pause, reader.resume,
        lambda: reader.clean(0, "wait"), reader.empty, lambda: reader.obliterate(force=True), reader.retry_jobs,
        lambda: reader.remove_jobs("*"), lambda: reader.get_job("j1").remove(),  # type: ignore[union-attr]
        lambda: reader.get_job("j1").update({"n": 2}),  # type: ignore[union-attr]
    ]
    for write in writes:
        with pytest.raises(ValueError, match=f"{what} contains ':'.*allow_colon=True"):
            write()
    assert keyspace(redis_client, prefix) == before


async def _aio_add(url: str, prefix: str) -> None:
    queue = bullpy_aio.Queue("a:b", url, prefix=prefix)
    try:
        assert (await queue.get_job_counts())["waiting"] == 0
        with pytest.raises(ValueError, match="allow_colon"):
            await queue.add({})
    finally:
        await queue.close()


def test_the_asyncio_queue_is_read_only_too(redis_url: str, redis_client: redis.Redis, prefix: str) -> None:
    import asyncio

    asyncio.run(_aio_add(redis_url, prefix))
    assert keyspace(redis_client, prefix) == {}


def test_colon_sibling_cannot_destroy_a_job(make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis,
                                            prefix: str) -> None:
    """The issue's scenario: queue 'a''s job 'b:paused' and queue 'a:b''s paused list are the same key."""
    a = make_queue("a")
    with pytest.raises(ValueError, match="sibling queue"):
        a.add({"x": 1}, job_id="b:paused")
    with pytest.raises(ValueError, match="allow_colon"):
        make_queue("a:b").pause()
    # An existing deployment opts in; the key it would share is then refused by the add script's TYPE check.
    ab = make_queue("a:b", allow_colon=True)
    ab.add({"y": 1})
    ab.pause()
    # A key beside queue 'a''s jobs that is not a job (made by Node or by hand): an error, not "duplicate".
    redis_client.lpush(f"{prefix}:a:c:other", "1")
    before = keyspace(redis_client, prefix)
    with pytest.raises(redis.ResponseError, match="not a job"):
        a.add({}, job_id="c:other")
    with pytest.raises(redis.ResponseError, match="not a job"):
        a.add_bulk([{"data": {}, "opts": {"job_id": "fine"}}, {"data": {}, "opts": {"job_id": "c:other"}}])
    with pytest.raises(redis.ResponseError, match="not a job"):
        a.add_bulk([{"data": {"n": i}, "opts": {"job_id": f"x{i}" if i else "c:other"}} for i in range(3)])
    assert keyspace(redis_client, prefix) == before
    # A real duplicate is still a duplicate.
    assert a.add({}, job_id="dup") is not None
    again = a.add({}, job_id="dup")
    assert again is not None and again.duplicate


@pytest.mark.parametrize(("url", "text"), [
    ("redis://127.0.0.1:6379/1x", "db \\(path '1x'\\) must be a non-negative integer"),
    ("redis://127.0.0.1:6379/-1", "must be a non-negative integer"),
    ("redis://127.0.0.1:6379/0?db=two", "db \\(\\?db= 'two'\\)"),
    ("redis://:s3cret@127.0.0.1:99999/0", "not a valid Redis URL"),
    ("::garbage", "scheme must be one of"),
])
def test_bad_urls_are_refused_before_any_command(url: str, text: str) -> None:
    with pytest.raises(connection.RedisURLError, match=text) as info:
        bullpy.Queue("q", url)
    assert isinstance(info.value, ValueError)
    assert "s3cret" not in str(info.value)


def test_bad_redis_url_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/1x")
    with pytest.raises(ValueError, match="REDIS_URL"):
        bullpy.Queue("q")
    for value in ("::garbage", "redis://127.0.0.1:6379/1x"):
        result = CliRunner().invoke(cli, ["stats", "q"], env={"REDIS_URL": value})
        assert result.exit_code == 2
        assert "REDIS_URL" in result.output and "QUEUE" not in result.output.split("Error:")[-1]
    monkeypatch.delenv("REDIS_URL")
    with pytest.raises(ValueError, match="REDIS_DB"):
        connection.env_url({"REDIS_HOST": "h", "REDIS_DB": "1x"})
    with pytest.raises(ValueError, match="REDIS_PORT"):
        connection.env_url({"REDIS_HOST": "h", "REDIS_PORT": "99999"})


def test_db_out_of_range_names_the_server_and_db(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    kwargs = client.connection_pool.connection_kwargs
    queue = bullpy.Queue("q", f"redis://{kwargs['host']}:{kwargs['port']}/99999")
    with pytest.raises(bullpy.BullError, match="has no db 99999: DB index is out of range"):
        queue.get_job_counts()
    with pytest.raises(bullpy.BullError, match="has no db 99999"):
        queue.add({})


@pytest.fixture
def not_redis() -> Iterator[int]:
    """A TCP server that answers every connection like a web server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_a_server_that_is_not_redis_is_unavailable(not_redis: int) -> None:
    queue = bullpy.Queue("q", f"redis://:pw-s3cret@127.0.0.1:{not_redis}/0")
    for call in (queue.get_job_counts, lambda: queue.add({})):
        with pytest.raises(bullpy.RedisUnavailable) as info:
            call()
        assert f"127.0.0.1:{not_redis}" in str(info.value) and "not answer as Redis" in str(info.value)
        assert "pw-s3cret" not in str(info.value)
