"""bullpy.transfer without Node: export files (bad, truncated, altered), conflicts, dry runs, streaming.

Every test works on real Redis under its own prefixes; "unchanged" is checked with DUMP of every key,
so a target that must not be touched is compared byte for byte. Queues Node Bull filled are exported,
imported, copied and moved in tests/interop/test_transfer.py.
"""

from __future__ import annotations

import gc
import hashlib
import io
import os
import re
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
import redis

import bullpy
from bullpy import transfer
from bullpy.transfer import ExportFormatError, ImportConflict
from bullpy.worker import Worker

from . import damaged_corpus
from .conftest import keyspace, wait_until


@pytest.fixture
def raw_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()




def dumps(client: redis.Redis, prefix: str) -> dict[bytes, bytes | None]:
    """Every key under a prefix with its DUMP: equal dumps mean byte-identical values."""
    pattern = prefix.encode() + b":*"
    return {key: client.dump(key) for key in sorted(client.scan_iter(pattern, count=1000))}


def transferable(space: dict[str, Any]) -> dict[str, Any]:
    """A keyspace() result without what is never transferred: a worker's locks and stalled-check state."""
    return {key: value for key, value in space.items()
            if not key.endswith((":lock", ":stalled", ":stalled-check"))}


def renamed(space: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """A keyspace() result with the queue name in the keys replaced (hash fields never hold it)."""
    return {new + key[len(old):] if key.startswith(old + ":") else key: value for key, value in space.items()}


def fill(queue: bullpy.Queue) -> str:
    """Waiting jobs (one with logs and progress, one lifo), prioritised, delayed, debounced, custom ids.

    Returns the id of the job with logs."""
    ids = []
    for i in range(4):
        added = queue.add({"number": f"55119{i}", "message": f"hi {i}"}, name="send")
        assert added is not None
        ids.append(added.id)
    queue.add({"p": 2}, priority=2)
    queue.add({"p": 1}, priority=1, job_id="vip")
    queue.add({"later": True}, delay=3_600_000)
    queue.add({"lifo": True}, lifo=True)
    queue.add({"deb": 1}, debounce={"id": "d1", "ttl": 60_000})
    job = queue.get_job(ids[0])
    assert job is not None
    job.log("first row")
    job.log("second row")
    job.update_progress(40)
    return ids[0]


def finish_some(queue: bullpy.Queue) -> None:
    """Two completed jobs (returnvalue) and a failed one (stacktrace, attemptsMade) via bullpy's worker;
    call it on an empty queue (the worker takes whatever waits)."""
    queue.add({"ok": 1}, job_id="ok-1")
    queue.add({"ok": 2}, job_id="ok-2")
    queue.add({"fail": True}, job_id="bad-1", attempts=2)

    def handler(job: bullpy.Job) -> Any:
        if job.data.get("fail"):
            raise RuntimeError("whatsapp not ready")
        return {"sent": job.id}

    worker = Worker(queue, handler).start()
    try:
        wait_until(lambda: queue.get_completed_count() == 2 and queue.get_failed_count() == 1)
    finally:
        worker.close(timeout=5)


def export_bytes(queue: bullpy.Queue, **options: Any) -> bytes:
    buffer = io.BytesIO()
    transfer.export_queue(queue, buffer, **options)
    return buffer.getvalue()


def decode(data: bytes) -> list[dict[str, Any]]:
    return list(msgpack.Unpacker(io.BytesIO(data), raw=False))


def build(records: list[dict[str, Any]], *, header: dict[str, Any] | None = None,
          end: dict[str, Any] | None = None) -> bytes:
    """An export file from decoded records, with a correct trailer unless ``end`` overrides fields."""
    head = records[0] if header is None else header
    body = records[1:-1]
    data = b"".join(msgpack.packb(r, use_bin_type=True) for r in [head, *body])
    counts: dict[str, int] = {}
    for r in body:
        if r.get("t") == "job" and isinstance(r.get("state"), str):
            counts[r["state"]] = counts.get(r["state"], 0) + 1
    trailer = {"t": "end", "records": len(body), "counts": counts,
               "repeat": sum(1 for r in body if r.get("t") == "repeat"), "dangling": 0,
               "sha256": hashlib.sha256(data).hexdigest()}
    if head.get("version") != 1:  # version 2 also counts what was left out and the damaged jobs
        trailer |= {"not_hash": 0, "duplicates": 0,
                    "damaged": sum(1 for r in body if r.get("t") == "job" and "damaged" in r)}
    trailer |= end or {}
    packed: bytes = msgpack.packb(trailer, use_bin_type=True)
    return data + packed


# --- round trips ---------------------------------------------------------------------------------------

def test_round_trip_into_another_prefix_and_name(
    make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis, prefix: str, other_prefix: str,
    tmp_path: Path,
) -> None:
    source = make_queue("send q")
    finish_some(source)
    fill(source)
    source.pause()
    path = tmp_path / "queue.bullpy"
    seen: list[int] = []
    summary = transfer.export_queue(source, path, batch_size=3, progress=seen.append)
    assert summary.counts == {"delayed": 1, "wait": 0, "paused": 8, "active": 0, "completed": 2, "failed": 1}
    assert summary.paused and summary.id_counter == int(redis_client.get(f"{prefix}:send q:id") or 0)
    assert seen == sorted(seen) and seen[-1] == 12 and len(seen) >= 4  # batches of 3
    assert transfer.validate_export(path) == summary
    assert not list(tmp_path.glob(".*partial"))

    target = make_queue("other name", prefix=other_prefix)
    result = transfer.import_queue(path, target, batch_size=4)
    assert result.written == {"paused": 8, "delayed": 1, "completed": 2, "failed": 1}
    assert result.paused_target and result.conflicts == 0
    # Nothing differs but the prefix and the queue name in the key names.
    assert renamed(keyspace(redis_client, other_prefix), "other name", "send q") == transferable(
        keyspace(redis_client, prefix))
    assert "paused 8" in str(result) and "the target was paused" in str(result)


def test_import_reads_a_pipe(make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis, prefix: str,
                             other_prefix: str) -> None:
    source = make_queue()
    fill(source)
    data = export_bytes(source)
    read_fd, write_fd = os.pipe()
    writer = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"],
                              stdin=subprocess.PIPE, stdout=write_fd)
    os.close(write_fd)
    assert writer.stdin is not None
    writer.stdin.write(data)
    writer.stdin.close()
    with os.fdopen(read_fd, "rb") as pipe:
        assert not pipe.seekable()
        transfer.import_queue(pipe, make_queue(prefix=other_prefix))
    writer.wait(10)
    assert keyspace(redis_client, other_prefix) == keyspace(redis_client, prefix)


def test_move_a_whole_queue_and_back(make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis,
                                     prefix: str, other_prefix: str) -> None:
    source = make_queue()
    finish_some(source)
    fill(source)
    before = transferable(keyspace(redis_client, prefix))
    target = make_queue(prefix=other_prefix)
    moved = transfer.move_jobs(source, target, batch_size=2)
    assert moved.removed == moved.jobs == 12 and moved.changed == 0
    # The source keeps its id counter (Bull never lowers it); the target has everything else.
    assert transferable(keyspace(redis_client, prefix)) == {"message-queue:id": before["message-queue:id"]}
    back = transfer.move_jobs(target, source, batch_size=5)
    assert back.removed == 12
    assert transferable(keyspace(redis_client, prefix)) == before
    assert set(keyspace(redis_client, other_prefix)) == {"message-queue:id"}


def test_jobs_moving_during_an_export_are_exported_once(make_queue: Callable[..., bullpy.Queue]) -> None:
    queue = make_queue()
    queue.add({"d": 1}, delay=3_600_000, job_id="d")
    ids = [job.id for job in queue.add_bulk([{"data": {"i": i}} for i in range(10)])]
    buffer = io.BytesIO()
    calls: list[int] = []

    def meanwhile(done: int) -> None:
        calls.append(done)
        if len(calls) == 1:  # the delayed job was exported; promoting it puts it at the tail of wait, read next
            queue.get_job("d").promote()  # type: ignore[union-attr]
        if len(calls) == 2:  # the first wait batch was exported; a worker takes the head job meanwhile
            queue.client.lmove(queue.keys("wait"), queue.keys("active"), "RIGHT", "LEFT")

    summary = transfer.export_queue(queue, buffer, batch_size=3, progress=meanwhile)
    buffer.seek(0)
    with transfer.read_export(buffer) as reader:
        jobs = [(e.id, e.state) for e in reader if isinstance(e, transfer.JobEntry)]
    assert len(jobs) == len({job_id for job_id, _ in jobs}) == 11
    assert dict(jobs) == {"d": "delayed", ids[0]: "active", **{i: "wait" for i in ids[1:]}}
    assert summary.counts == {"delayed": 1, "wait": 9, "paused": 0, "active": 1, "completed": 0, "failed": 0}
    assert calls[:2] == [1, 3]  # the promoted job, met again at the tail of wait, was not exported twice


def test_move_back_to_waiting_within_a_queue(make_queue: Callable[..., bullpy.Queue], other_prefix: str) -> None:
    queue = make_queue()
    finish_some(queue)  # ok-1, ok-2 completed; bad-1 failed
    queue.add({"n": 1}, job_id="w")
    queue.add({"p": 1}, priority=1, job_id="p")
    queue.add({"later": 1}, delay=3_600_000, job_id="d", priority=5)
    queue.add({"stalled": 1}, job_id="s")
    # "s" is active without a lock, as after a worker died; "w" is active and locked by a live worker.
    queue.client.lrem(queue.keys("wait"), 1, "s")
    queue.client.lpush(queue.keys("active"), "s")
    queue.client.lrem(queue.keys("wait"), 1, "w")
    queue.client.lpush(queue.keys("active"), "w")
    queue.client.set(queue.keys.lock("w"), "a-worker", px=60_000)
    before = {job_id: queue.client.hgetall(queue.keys.job(job_id)) for job_id in ("ok-1", "bad-1", "d")}

    result = transfer.move_jobs(queue, queue, to_state="wait", ids=["ok-1", "bad-1", "d", "s", "w", "p", "nope"])
    assert result.written == {"wait": 4} and result.locked_in_source == 1 and result.already_waiting == 1
    assert result.missing_ids == ("nope",)
    wait = queue.client.lrange(queue.keys("wait"), 0, -1)
    assert wait[-1] == "s"  # requeued at the head, as Bull's stalled-job recovery does
    assert queue.client.lrange(queue.keys("active"), 0, -1) == ["w"]
    for job_id in ("ok-1", "bad-1"):  # Bull's job.retry(): three fields go, retriedOn comes, the rest stays
        fields = queue.client.hgetall(queue.keys.job(job_id))
        gone = {"finishedOn", "processedOn", "failedReason"}
        assert {k: v for k, v in before[job_id].items() if k not in gone} == {
            k: v for k, v in fields.items() if k != "retriedOn"}
        assert int(fields["retriedOn"]) > 0
    # Bull's promote: delay 0, placed by priority: behind (left of) the priority-1 job, which runs first.
    assert queue.client.hget(queue.keys.job("d"), "delay") == "0"
    assert queue.client.zscore(queue.keys("priority"), "d") == 5
    assert wait.index("d") < wait.index("p")
    assert queue.get_failed_count() == queue.get_delayed_count() == 0 and queue.get_completed_count() == 1


# --- bad files -----------------------------------------------------------------------------------------

@pytest.fixture
def good_file(make_queue: Callable[..., bullpy.Queue]) -> bytes:
    source = make_queue("src")
    fill(source)
    return export_bytes(source)


def _mutations(good: bytes) -> dict[str, tuple[bytes, str]]:
    records = decode(good)
    head, jobs = records[0], [r for r in records if r.get("t") == "job"]
    data_job = next(r for r in jobs if r["id"] == "1")

    def with_job(**changes: Any) -> bytes:
        changed = [dict(r, **changes) if r is data_job else r for r in records]
        return build(changed)

    def replace_field(name: bytes, value: bytes) -> bytes:
        flat = list(data_job["hash"])
        flat[flat.index(name) + 1] = value
        return with_job(hash=flat)

    digit = good.index(b'"message":"hi 0"') + len(b'"message":"hi ')
    altered = good[:digit] + b"7" + good[digit + 1:]
    queue_rec = next(r for r in records if r.get("t") == "queue")
    return {
        "garbage": (b"hello, this is not an export\n", "not a bullpy export"),
        "empty": (b"", "empty file"),
        "random": (bytes(range(256)) * 4, "not"),
        "json": (b'{"format": "bullpy-export", "version": 1}', "not a bullpy export"),
        "huge array header": (b"\xdd\xff\xff\xff\xff", "exceeds max_array_len"),
        "wrong version": (build(records, header=dict(head, version=3)), "unsupported bullpy-export version 3"),
        "truncated": (good[: len(good) // 2], "truncated"),
        "no trailer": (good[: good.rindex(msgpack.packb(records[-1], use_bin_type=True))], "without the end record"),
        "altered byte": (altered, "checksum mismatch"),
        "trailing data": (good + b"\x00", "data after the end record"),
        "bad state": (with_job(state="bogus"), "unknown state 'bogus'"),
        "data not JSON": (replace_field(b"data", b"{not json"), "field 'data' is not JSON"),
        "opts not an object": (replace_field(b"opts", b"null"), "'opts' is not a JSON object"),
        "reserved id": (with_job(id="wait"), "reserved"),
        "odd hash": (with_job(hash=data_job["hash"][:-1]), "'hash' must be"),
        "text hash": (with_job(hash=[x.decode() for x in data_job["hash"]]), "'hash' must be"),
        "score on a waiting job": (with_job(score=1.5), "has no score"),
        "unknown field": (with_job(colour="red"), "job '1' record: unknown ['colour']"),
        "duplicate id": (build([*records[:-2], data_job, *records[-2:]]), "appears twice"),
        "delayed without score": (
            build([dict(r, score=None) if r.get("state") == "delayed" else r for r in records]), "needs a numeric"),
        "unknown record": (build([*records[:-2], {"t": "mystery"}, *records[-2:]]), "unknown record type 'mystery'"),
        "damaged without why": (with_job(damaged=5), "'damaged' must say why"),
        "damaged count": (build(records, end={"damaged": 2}), "counts 2 damaged jobs, the file holds 0"),
        "deep data unmarked": (replace_field(b"data", b"[" * 5000 + b"]" * 5000), "nests deeper than bullpy checks"),
        "job after queue": (build([*records[:-1], data_job | {"id": "late"}, records[-1]]), "after the queue record"),
        "no queue record": (build([r for r in records if r is not queue_rec]), "before the queue record"),
        "count mismatch": (build(records, end={"records": 3}), "end record counts 3 records"),
        "state counts": (build(records, end={"counts": {"wait": 1}}), "job counts differ"),
    }


def test_bad_files_are_rejected_and_the_target_is_unchanged(
    good_file: bytes, make_queue: Callable[..., bullpy.Queue], raw_client: redis.Redis, other_prefix: str,
) -> None:
    target = make_queue("dst", prefix=other_prefix)
    target.add({"already": "here"})  # a target with content: "unchanged" must mean something
    before = dumps(raw_client, other_prefix)
    for name, (data, message) in _mutations(good_file).items():
        with pytest.raises(ExportFormatError, match=re.escape(message)) as caught:
            transfer.import_queue(io.BytesIO(data), target, on_conflict="replace")
        assert dumps(raw_client, other_prefix) == before, name
        with pytest.raises(ExportFormatError):
            transfer.validate_export(io.BytesIO(data))
        if name in ("bad state", "data not JSON", "duplicate id"):
            assert caught.value.record is not None and "record" in str(caught.value), name
    # The unmodified file imports fine into the same target (whose job 1 is kept).
    result = transfer.import_queue(io.BytesIO(good_file), target, on_conflict="skip")
    assert (result.jobs, result.skipped) == (8, 1)


def test_every_truncation_is_detected(good_file: bytes, tmp_path: Path) -> None:
    for cut in range(len(good_file)):
        with pytest.raises(ExportFormatError):
            transfer.validate_export(io.BytesIO(good_file[:cut]))
    path = tmp_path / "cut.bullpy"
    path.write_bytes(good_file[:-3])
    with pytest.raises(ExportFormatError, match=rf"{path}.*truncated: the file ends inside record"):
        transfer.validate_export(path)


# --- conflicts -----------------------------------------------------------------------------------------

def test_conflicts_error_skip_replace(make_queue: Callable[..., bullpy.Queue], raw_client: redis.Redis,
                                      redis_client: redis.Redis, prefix: str, other_prefix: str) -> None:
    source = make_queue()
    fill(source)
    data = export_bytes(source)
    target = make_queue(prefix=other_prefix)
    target.add({"theirs": True}, job_id="vip")  # same id as the source's prioritised job
    target.add({"theirs": 2}, job_id="1")  # the id of the source's first job
    before = dumps(raw_client, other_prefix)

    with pytest.raises(ImportConflict) as caught:
        transfer.import_queue(io.BytesIO(data), target)
    assert caught.value.count == 2 and set(caught.value.ids) == {"1", "vip"}
    assert "nothing was written" in str(caught.value)
    assert dumps(raw_client, other_prefix) == before

    skipped = transfer.import_queue(io.BytesIO(data), target, on_conflict="skip")
    assert (skipped.conflicts, skipped.skipped, skipped.jobs) == (2, 2, 7)
    assert target.get_job("vip").data == {"theirs": True}  # type: ignore[union-attr]
    assert target.get_job("1").data == {"theirs": 2}  # type: ignore[union-attr]
    assert target.get_job("2").data == source.get_job("2").data  # type: ignore[union-attr]
    # The counter is raised to the source's, so new auto ids cannot hit imported jobs.
    assert int(redis_client.get(f"{other_prefix}:message-queue:id") or 0) >= int(
        redis_client.get(f"{prefix}:message-queue:id") or 0)
    new = target.add({"new": True})
    assert new is not None and new.id == str(int(source.client.get(source.keys("id")) or 0) + 1)

    replaced = transfer.import_queue(io.BytesIO(data), target, on_conflict="replace")
    assert replaced.replaced == 9 and replaced.jobs == 9
    src, dst = keyspace(redis_client, prefix), keyspace(redis_client, other_prefix)
    for job_id in ("1", "vip", "2"):
        assert dst[f"message-queue:{job_id}"] == src[f"message-queue:{job_id}"]
    assert dst["message-queue:1:logs"] == src["message-queue:1:logs"]
    # Each id is in exactly one place: the replaced jobs left their old list positions.
    wait = dst["message-queue:wait"][1]
    assert sorted(wait) == sorted(set(wait)) and "vip" in wait and new.id in wait


def test_replace_never_touches_a_locked_job(make_queue: Callable[..., bullpy.Queue], raw_client: redis.Redis,
                                            other_prefix: str) -> None:
    source = make_queue()
    source.add({"mine": True}, job_id="busy")
    data = export_bytes(source)
    target = make_queue(prefix=other_prefix)
    target.add({"theirs": True}, job_id="busy")
    # A worker holds the job: it is active with a lock.
    target.client.lmove(target.keys("wait"), target.keys("active"), "RIGHT", "LEFT")
    target.client.set(target.keys.lock("busy"), "token-of-a-worker", px=60_000)
    before = dumps(raw_client, other_prefix)
    result = transfer.import_queue(io.BytesIO(data), target, on_conflict="replace")
    assert (result.locked, result.replaced, result.jobs) == (1, 0, 0)
    assert "locked by a worker" in str(result)
    after = dumps(raw_client, other_prefix)
    assert {k: v for k, v in after.items() if not k.endswith(b":lock")} == {
        k: v for k, v in before.items() if not k.endswith(b":lock")}


def test_interrupted_import_completes_when_run_again(
    make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis, prefix: str, other_prefix: str,
    tmp_path: Path,
) -> None:
    source = make_queue()
    for i in range(25):
        source.add({"i": i})
    path = tmp_path / "q.bullpy"
    transfer.export_queue(source, path)
    target = make_queue(prefix=other_prefix)

    def stop(done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        transfer.import_queue(path, target, batch_size=10, progress=stop)
    # Stopped once the first batch was written; the batch sent after it may have been written too (its EXEC was
    # on its way), but whole batches only.
    written = target.get_waiting_count()
    assert written in (10, 20)
    assert len(redis_client.keys(f"{other_prefix}:message-queue:[0-9]*")) == written
    with pytest.raises(ImportConflict):
        transfer.import_queue(path, target, batch_size=10)
    again = transfer.import_queue(path, target, batch_size=10, on_conflict="skip")
    assert (again.skipped, again.jobs) == (written, 25 - written)
    assert keyspace(redis_client, other_prefix) == keyspace(redis_client, prefix)


class ChangedOnRewind(io.RawIOBase):
    """A seekable file whose bytes are ``first`` until it is rewound to 0, and ``second`` afterwards."""

    def __init__(self, first: bytes, second: bytes) -> None:
        self.inner, self.second = io.BytesIO(first), second

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.inner.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset == 0 and whence == 0 and self.inner.tell() > 0:
            self.inner = io.BytesIO(self.second)
        return self.inner.seek(offset, whence)

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def test_a_file_changed_between_the_passes_is_caught_before_its_records_are_written(
    make_queue: Callable[..., bullpy.Queue], other_prefix: str,
) -> None:
    """Import checks the whole file, then reads it again to write it: the second reading compares each piece
    with the first before its records are used, so a change in between writes nothing from that piece on."""
    source = make_queue()
    source.add_bulk([{"data": {"i": i, "pad": "x" * 150}} for i in range(4000)])
    data = export_bytes(source)
    assert len(data) > 3 * transfer.format.CHUNK
    changed = data.replace(b'{"i":10,', b'{"i":11,')  # job 11, near the end of the file (lists go tail first)
    assert changed != data and len(changed) == len(data)
    target = make_queue(prefix=other_prefix)
    with pytest.raises(ExportFormatError, match="changed since it was checked"):
        transfer.import_queue(ChangedOnRewind(data, changed), target, batch_size=500)  # type: ignore[arg-type]
    written = target.get_waiting_count()
    assert 0 < written < 4000
    assert target.get_job("11") is None and target.get_job("4000") is not None


def test_import_reloads_its_scripts_after_redis_lost_them(make_redis_server: Callable[..., Any],
                                                         tmp_path: Path) -> None:
    """Import packs its big script calls itself (EVALSHA by hand): a Redis that forgot the scripts (restart,
    SCRIPT FLUSH) answers NOSCRIPT, and the script is loaded again. A private server: SCRIPT FLUSH is global."""
    server = make_redis_server()
    source = bullpy.Queue("q", server.url(), prefix="src")
    source.add_bulk([{"data": {"i": i}} for i in range(30)])
    path = tmp_path / "q.bullpy"
    transfer.export_queue(source, path)
    first = bullpy.Queue("q", server.url(), prefix="one")
    transfer.import_queue(path, first, batch_size=10)
    server.client().script_flush()
    second = bullpy.Queue("q", server.url(), prefix="two")
    assert transfer.import_queue(path, second, batch_size=10).jobs == 30
    assert second.get_waiting_count() == first.get_waiting_count() == 30
    for queue in (source, first, second):
        queue.close()


# --- dry runs ------------------------------------------------------------------------------------------

def test_dry_runs_change_nothing_and_predict_the_result(
    make_queue: Callable[..., bullpy.Queue], raw_client: redis.Redis, prefix: str, other_prefix: str,
) -> None:
    source = make_queue()
    finish_some(source)
    fill(source)
    source.pause()
    data = export_bytes(source)
    target = make_queue(prefix=other_prefix)
    target.add({"theirs": True}, job_id="ok-1")
    before_src, before_dst = dumps(raw_client, prefix), dumps(raw_client, other_prefix)

    plans: dict[str, Callable[[bool], transfer.ImportSummary]] = {
        "import": lambda dry: transfer.import_queue(io.BytesIO(data), target, on_conflict="skip", dry_run=dry),
        "copy": lambda dry: transfer.copy_jobs(source, target, on_conflict="replace", dry_run=dry,
                                               states=["paused", "failed"], to_state="wait"),
        "move": lambda dry: transfer.move_jobs(source, target, on_conflict="skip", dry_run=dry),
        "requeue": lambda dry: transfer.move_jobs(source, source, states=["completed", "failed"], to_state="wait",
                                                  dry_run=dry),
    }
    predicted = {name: plan(True) for name, plan in plans.items()}
    assert dumps(raw_client, prefix) == before_src and dumps(raw_client, other_prefix) == before_dst
    assert predicted["import"].written == {"paused": 8, "delayed": 1, "completed": 1, "failed": 1}
    assert predicted["import"].skipped == 1 and predicted["import"].paused_target
    assert str(predicted["import"]).startswith("dry run: would import 11 jobs")
    assert predicted["copy"].written == {"wait": 9}
    assert predicted["requeue"].written == {"paused": 3}

    for name in ("import", "requeue"):  # the real runs do what the dry runs said
        real = plans[name](False)
        assert real.written == predicted[name].written, name
        assert (real.skipped, real.conflicts) == (predicted[name].skipped, predicted[name].conflicts), name


# --- streaming -----------------------------------------------------------------------------------------

def test_export_streams_batch_by_batch(make_queue: Callable[..., bullpy.Queue], tmp_path: Path) -> None:
    queue = make_queue()
    message = "x" * 1000
    for start in range(0, 20_000, 5_000):
        queue.add_bulk([{"data": {"n": i, "message": message}} for i in range(start, start + 5_000)])
    path = tmp_path / "big.bullpy"
    written: list[tuple[int, int]] = []

    def progress(done: int) -> None:
        (partial,) = tmp_path.glob(".big.bullpy.*.partial")  # written under a temporary name until complete
        written.append((done, partial.stat().st_size))

    gc.collect()
    tracemalloc.start()
    try:
        summary = transfer.export_queue(queue, path, batch_size=250, progress=progress)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = path.stat().st_size
    assert summary.jobs == 20_000 and summary.bytes == size and size > 20_000_000
    assert [done for done, _ in written] == list(range(250, 20_001, 250))
    # The file grows batch by batch: after k of 80 batches, about k/80 of it is on disk already.
    for done, on_disk in written:
        assert on_disk >= size * (done - 250) / 20_000 - 65_536, (done, on_disk)
    # Memory holds a batch and the ids already exported (to report each job once), not the file.
    assert peak < size / 4, (peak, size)
    with transfer.read_export(path) as reader:
        first = next(iter(reader))
        assert isinstance(first, transfer.JobEntry) and first.state == "wait"


# --- arguments -----------------------------------------------------------------------------------------

def test_bad_arguments_are_refused_before_anything_happens(make_queue: Callable[..., bullpy.Queue],
                                                           other_prefix: str) -> None:
    source, target = make_queue(), make_queue(prefix=other_prefix)
    buffer = io.BytesIO()
    with pytest.raises(ValueError, match="unknown state 'done'"):
        transfer.export_queue(source, buffer, states=["done"])
    with pytest.raises(ValueError, match="on_conflict"):
        transfer.copy_jobs(source, target, on_conflict="merge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="to_state"):
        transfer.move_jobs(source, target, to_state="completed")
    with pytest.raises(ValueError, match="batch_size"):
        transfer.copy_jobs(source, target, batch_size=0)
    same = make_queue()
    with pytest.raises(ValueError, match="same queue"):
        transfer.copy_jobs(source, same)
    with pytest.raises(ValueError, match="to_state"):
        transfer.move_jobs(source, same)
    assert buffer.getvalue() == b""


# --- damaged queues and old files ----------------------------------------------------------------------

#: Corpus cases whose key is exported as it is but marked damaged (data or opts bullpy cannot read or check).
_MARKED = {"opts-null", "opts-truncated", "data-truncated", "data-not-utf8", "data-deep", "data-too-deep"}


def test_export_of_a_damaged_queue_keeps_every_hash_and_import_restores_them(
    make_queue: Callable[..., bullpy.Queue], raw_client: redis.Redis, prefix: str, other_prefix: str,
    tmp_path: Path,
) -> None:
    """A backup of a queue other programs damaged: every hash byte for byte (damaged ones marked), keys that
    are not hashes and ids without a hash left out and counted; imported, the healthy jobs are identical."""
    source = make_queue("dmg")
    corpus = damaged_corpus.write(source, raw_client)
    base = f"{prefix}:dmg"
    before = damaged_corpus.digest(raw_client, base)
    path = tmp_path / "dmg.bullpy"
    summary = transfer.export_queue(source, path)
    assert damaged_corpus.digest(raw_client, base) == before  # reading changed nothing

    left_out = {f"damaged-{kind}" for kind in ("key-is-string", "key-is-list", "hash-missing")}
    marked = {i for i, kind in corpus.damaged.items() if kind in _MARKED or kind.startswith("random:")}
    exported = {*corpus.healthy, corpus.twice, *(set(corpus.damaged) - left_out)}
    assert summary.counts == {"delayed": 0, "wait": len(exported), "paused": 0, "active": 0, "completed": 0,
                              "failed": 0}
    assert (summary.not_hash, summary.dangling, summary.duplicates, summary.damaged) == (2, 1, 1, len(marked))
    text = str(summary)
    for part in (f"{len(marked)} damaged jobs", "2 ids whose key is not a hash left out",
                 "1 ids without a job hash left out", "1 ids met more than once"):
        assert part in text, text
    assert transfer.validate_export(path) == summary
    # Batches with log rows are read by the script (lua/read_jobs.lua): the same jobs, the same counts.
    logged = source.get_job(corpus.healthy[0])
    assert logged is not None
    logged.log("a row")
    again = transfer.export_queue(source, tmp_path / "again.bullpy", batch_size=4)
    assert (again.counts, again.not_hash, again.dangling, again.duplicates, again.damaged) == (
        summary.counts, 2, 1, 1, len(marked))
    raw_client.delete(f"{base}:{corpus.healthy[0]}:logs")

    with transfer.read_export(path) as reader:
        entries = {e.id: e for e in reader if isinstance(e, transfer.JobEntry)}
    assert set(entries) == exported
    for job_id, entry in entries.items():
        assert dict(entry.fields) == raw_client.hgetall(f"{base}:{job_id}"), job_id  # byte for byte
        assert (entry.damaged is not None) == (job_id in marked), job_id

    target = make_queue("dmg", prefix=other_prefix)
    result = transfer.import_queue(path, target)
    assert result.written == {"wait": len(exported)} and result.damaged == len(marked)
    assert f"{len(marked)} damaged jobs" in str(result)
    for job_id in exported:
        assert raw_client.hgetall(f"{other_prefix}:dmg:{job_id}") == raw_client.hgetall(f"{base}:{job_id}"), job_id
    # The waiting list in the same order, without the ids that were left out.
    assert raw_client.lrange(f"{other_prefix}:dmg:wait", 0, -1) == [
        i for i in raw_client.lrange(f"{base}:wait", 0, -1) if i.decode() not in left_out]
    for job_id in left_out:
        assert not raw_client.exists(f"{other_prefix}:dmg:{job_id}")
    # Healthy jobs read back as the source's do.
    for job_id in corpus.healthy:
        copy, original = target.get_job(job_id), source.get_job(job_id)
        assert copy is not None and original is not None and copy.data == original.data


def test_files_of_version_1_are_still_read(good_file: bytes, make_queue: Callable[..., bullpy.Queue],
                                           raw_client: redis.Redis, prefix: str, other_prefix: str) -> None:
    """Version 1 (before damaged jobs were marked): no ``damaged`` records, no counts of what was left out."""
    records = decode(good_file)
    assert records[0]["version"] == transfer.VERSION == 2
    body = [r for r in records[1:-1]]
    v1 = build([dict(records[0], version=1), *body, records[-1]])
    assert b"not_hash" not in v1[-200:]
    summary = transfer.validate_export(io.BytesIO(v1))
    assert summary.version == 1 and summary.jobs == transfer.validate_export(io.BytesIO(good_file)).jobs
    target = make_queue("dst", prefix=other_prefix)
    assert transfer.import_queue(io.BytesIO(v1), target).jobs == summary.jobs
    # A version 1 file knows no damaged mark: a record with one is refused.
    job = next(r for r in body if r.get("t") == "job")
    marked = build([dict(records[0], version=1), *[dict(r, damaged="x") if r is job else r for r in body],
                    records[-1]])
    with pytest.raises(ExportFormatError, match="unknown \\['damaged'\\]"):
        transfer.validate_export(io.BytesIO(marked))


def test_export_restores_the_interpreters_switch_interval(make_queue: Callable[..., bullpy.Queue]) -> None:
    """A prefetching export lowers the GIL switch interval while it runs (its reader thread would otherwise
    wait up to 5 ms per batch) and puts the caller's back, also after an error."""
    queue = make_queue()
    queue.add_bulk([{"data": {"i": i}} for i in range(30)])
    sys.setswitchinterval(0.007)
    try:
        seen: list[float] = []
        transfer.export_queue(queue, io.BytesIO(), batch_size=10, progress=lambda n: seen.append(sys.getswitchinterval()))
        assert seen and max(seen) <= 0.0005
        assert sys.getswitchinterval() == pytest.approx(0.007, abs=1e-5)

        def stop(n: int) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            transfer.export_queue(queue, io.BytesIO(), batch_size=10, progress=stop)
        assert sys.getswitchinterval() == pytest.approx(0.007, abs=1e-5)
    finally:
        sys.setswitchinterval(0.005)


@pytest.mark.parametrize("damage", ["duplicate id", "data not JSON", "unknown state", "no score", "bad custom id",
                                    "log row not bytes", "unmarked damage after marked"])
def test_a_bad_job_deep_in_a_big_file_is_named_by_record_and_offset(
    make_queue: Callable[..., bullpy.Queue], damage: str,
) -> None:
    """Job records are checked a piece (~256 kB) at a time; a bad one is still named exactly, wherever it is."""
    queue = make_queue()
    queue.add_bulk([{"data": {"i": i, "pad": "x" * 300}} for i in range(2000)])
    records = decode(export_bytes(queue))
    k = 1700  # the header is records[0] (record 1), so this is record 1701, well past the first piece
    bad = records[k]
    flat = bad["hash"]

    def with_field(flat: list[bytes], name: bytes, value: bytes) -> list[bytes]:
        at = flat[0::2].index(name) * 2
        return [*flat[: at + 1], value, *flat[at + 2 :]]

    if damage == "duplicate id":
        bad["id"] = records[20]["id"]
    elif damage == "data not JSON":
        bad["hash"] = with_field(flat, b"data", b"{oops")
    elif damage == "unknown state":
        bad["state"] = "limbo"
    elif damage == "no score":
        bad["state"] = "delayed"
    elif damage == "bad custom id":
        bad["id"] = "wait"
    elif damage == "log row not bytes":
        bad["logs"] = ["text, not bin"]
    else:  # a marked damaged job before it reads; the unmarked bad one after it does not
        records[k - 1]["hash"] = with_field(records[k - 1]["hash"], b"data", b"{oops")
        records[k - 1]["damaged"] = "field 'data' is not JSON"
        bad["hash"] = with_field(flat, b"opts", b"null")
    data = build(records)
    with pytest.raises(ExportFormatError) as info:
        transfer.validate_export(io.BytesIO(data))
    assert info.value.record == k + 1, str(info.value)
    assert info.value.offset == sum(len(msgpack.packb(r, use_bin_type=True)) for r in records[:k])
    assert repr(bad["id"]) in str(info.value) or damage == "bad custom id"
