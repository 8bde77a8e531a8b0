"""Import's two ways of writing a batch leave the same keys, and the transaction gives way to the script.

A batch of jobs the target does not have is written as one WATCH-guarded MULTI/EXEC of plain commands
(``bullpy._core.new_jobs``); any other batch, and any batch whose checks fail or whose watched keys change
before EXEC, goes through ``lua/import_jobs.lua``. Each test runs on a private redis-server, so the
command counts it reads (INFO commandstats) are its own. Node Bull reading imported queues is in
tests/interop/test_transfer.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

import bullpy
from bullpy import transfer
from bullpy.raw import ImportRow

from .conftest import keyspace
from .test_transfer import fill, finish_some


def calls(client: redis.Redis, command: str, what: str = "calls") -> int:
    stats = client.info("commandstats").get(f"cmdstat_{command}")
    return int(stats.get(what, 0)) if stats else 0


def dumps(client: redis.Redis, prefix: str) -> dict[str, bytes | None]:
    """Every key under a prefix (the prefix cut off) with its DUMP: equal dumps are byte-identical values, hash
    field order included."""
    cut = len(prefix) + 1
    return {key[cut:]: client.dump(key) for key in sorted(client.scan_iter(prefix + ":*", count=1000))}


def rows(ids: range, placement: str = "head") -> list[ImportRow]:
    return [ImportRow(str(i), placement, [b"name", b"__default__", b"data", b'{"i":%d}' % i, b"opts", b"{}",
                                          b"timestamp", b"1", b"delay", b"0", b"priority", b"0"]) for i in ids]


@pytest.mark.parametrize("paused", [False, True])
def test_transaction_and_script_write_byte_identical_keys(make_redis_server: Callable[..., Any], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, paused: bool) -> None:
    server = make_redis_server()
    client = server.client()
    source = bullpy.Queue("src", server.url(), prefix="src")
    finish_some(source)
    fill(source)  # priorities, lifo, delayed, debounce, logs, custom ids; completed and failed jobs
    if paused:
        source.pause()
    path = tmp_path / "q.bullpy"
    transfer.export_queue(source, path)

    before = calls(client, "watch")
    fast = transfer.import_queue(path, bullpy.Queue("dst", server.url(), prefix="tx"), batch_size=2)
    assert calls(client, "watch") - before >= 3, "the batches of new jobs were not written as transactions"

    # The same import with every batch through the script.
    monkeypatch.setattr("bullpy._core.new_jobs.eligible", lambda rows: False)
    before = calls(client, "watch")
    slow = transfer.import_queue(path, bullpy.Queue("dst", server.url(), prefix="lua"), batch_size=2)
    assert calls(client, "watch") == before
    assert str(fast).replace("tx:", "lua:") == str(slow)
    assert dumps(client, "tx") == dumps(client, "lua")
    assert client.exists("tx:dst:paused" if paused else "tx:dst:wait")
    source.close()


def test_a_pause_between_the_checks_and_the_writes_is_seen(make_redis_server: Callable[..., Any]) -> None:
    """meta-paused is watched: set after a batch's checks ran, EXEC writes nothing and the script sends the
    batch to ``paused``, as it sends every later one."""
    server = make_redis_server()
    client = server.client()
    queue = bullpy.Queue("q", server.url(), prefix="r")
    with queue.raw as raw, raw.import_stream() as stream:
        first = raw.pack_import(rows(range(1, 6)))
        assert first.new is not None
        assert stream.push(first, "a") == []
        time.sleep(0.2)  # its checks ran: the queue was not paused then
        client.set("r:q:meta-paused", "1")
        done = stream.push(raw.pack_import(rows(range(6, 11))), "b") + stream.flush()
    assert [(tag, reply.statuses) for tag, reply in done] == [("a", ["added"] * 5), ("b", ["added"] * 5)]
    assert client.lrange("r:q:paused", 0, -1) == [str(i) for i in range(1, 11)]
    assert not client.exists("r:q:wait")
    queue.close()


@pytest.mark.parametrize("on_conflict", ["error", "skip"])
def test_a_job_added_between_the_checks_and_the_writes_is_a_conflict(make_redis_server: Callable[..., Any],
                                                                      on_conflict: str) -> None:
    server = make_redis_server()
    client = server.client()
    queue = bullpy.Queue("q", server.url(), prefix="r")
    with queue.raw as raw, raw.import_stream() as stream:
        assert stream.push(raw.pack_import(rows(range(1, 6)), on_conflict=on_conflict), "a") == []
        time.sleep(0.2)
        client.hset("r:q:3", mapping={"data": "theirs"})
        done = stream.flush()
    reply = done[0][1]
    if on_conflict == "error":
        assert (reply.statuses, reply.conflicts) == ([], ["3"])
        assert not client.exists("r:q:wait", "r:q:1", "r:q:5")
    else:
        assert reply.statuses == ["added", "added", "skipped", "added", "added"]
        assert client.lrange("r:q:wait", 0, -1) == ["1", "2", "4", "5"]
    assert client.hgetall("r:q:3") == {"data": "theirs"}
    queue.close()


def test_leftover_log_rows_and_a_low_id_counter_go_through_the_script(make_redis_server: Callable[..., Any]) -> None:
    server = make_redis_server()
    client = server.client()
    client.rpush("r:q:2:logs", "a row of a removed job")  # Node's empty() leaves log rows behind
    queue = bullpy.Queue("q", server.url(), prefix="r")
    with queue.raw as raw:
        logged = [row._replace(logs=[b"ours"]) if row.id == "2" else row for row in rows(range(1, 4))]
        before = calls(client, "exec")
        assert raw.import_rows(logged).statuses == ["added"] * 3
        assert calls(client, "exec") == before  # the logs key existed: the script deleted it first
        assert client.lrange("r:q:2:logs", 0, -1) == ["ours"]
        assert raw.import_rows(rows(range(4, 6)), id_floor=100).statuses == ["added"] * 2
        assert client.get("r:q:id") == "100"  # raised by the script
        assert raw.import_rows(rows(range(6, 8)), id_floor=100).statuses == ["added"] * 2
        assert calls(client, "exec") == before + 1  # the counter was high enough: a transaction
    assert client.lrange("r:q:wait", 0, -1) == [str(i) for i in range(1, 8)]
    queue.close()


def test_without_transactions_every_batch_goes_through_the_script(make_redis_server: Callable[..., Any],
                                                                  tmp_path: Path) -> None:
    """An ACL user refused WATCH (as some proxies refuse it) imports the same keys, by the script."""
    server = make_redis_server()
    admin = server.client()
    admin.acl_setuser("nowatch", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                      commands=["+@all", "-watch"])
    source = bullpy.Queue("src", server.url(), prefix="src")
    fill(source)
    path = tmp_path / "q.bullpy"
    transfer.export_queue(source, path)
    transfer.import_queue(path, bullpy.Queue("dst", server.url(), prefix="tx"), batch_size=2)
    target = bullpy.Queue("dst", server.url(user="nowatch", password="pw"), prefix="acl")
    summary = transfer.import_queue(path, target, batch_size=2)
    assert summary.jobs == 9
    assert calls(admin, "watch", "rejected_calls") == 1  # tried once; the later batches went to the script at once
    assert dumps(admin, "acl") == dumps(admin, "tx")
    source.close()
    target.close()


def test_batches_of_big_hashes_are_split_by_size(make_redis_server: Callable[..., Any], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_redis_server()
    client = server.client()
    source = bullpy.Queue("src", server.url(), prefix="src")
    source.add_bulk([{"data": {"text": "x" * 1000, "i": i}} for i in range(40)])
    path = tmp_path / "q.bullpy"
    transfer.export_queue(source, path)
    monkeypatch.setattr("bullpy.transfer.target._BATCH_BYTES", 5_000)  # about four of these jobs
    before = calls(client, "watch")
    summary = transfer.import_queue(path, bullpy.Queue("src", server.url(), prefix="dst"), batch_size=20)
    assert summary.written == {"wait": 40}
    assert calls(client, "watch") - before >= 8  # 40 jobs of ~1 kB in pieces of at most ~5 kB
    # Hashes with values this long are hash tables in Redis: their DUMP follows the table's order, so the values
    # are compared instead.
    assert keyspace(client, "dst") == keyspace(client, "src")
    source.close()


def test_without_hiredis_the_script_writes_the_same_keys(make_redis_server: Callable[..., Any], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """redis-py without hiredis packs nothing ahead: conflicts are counted by plain EXISTS and every batch goes
    through the script, with the same result."""
    server = make_redis_server()
    client = server.client()
    source = bullpy.Queue("src", server.url(), prefix="src")
    fill(source)
    path = tmp_path / "q.bullpy"
    transfer.export_queue(source, path)
    transfer.import_queue(path, bullpy.Queue("dst", server.url(), prefix="tx"), batch_size=2)
    for module in ("bullpy._import_stream", "bullpy._raw_import", "bullpy.raw"):
        monkeypatch.setattr(f"{module}._pack_command", None)
    target = bullpy.Queue("dst", server.url(), prefix="plain")
    before = calls(client, "watch")
    assert transfer.import_queue(path, target, batch_size=2, dry_run=True).jobs == 9
    summary = transfer.import_queue(path, target, batch_size=2)
    assert summary.jobs == 9 and calls(client, "watch") == before
    assert dumps(client, "plain") == dumps(client, "tx")
    with pytest.raises(transfer.ImportConflict):
        transfer.import_queue(path, target, batch_size=2)  # the ids exist now: counted without hiredis too
    source.close()
    target.close()
