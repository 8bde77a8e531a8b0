"""DataFrames in and out: validation before the first write, idempotent re-runs, interrupted loads,
reading a queue back as a frame. (Node sending a frame's campaign: tests/interop/test_campaign.py.)"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import redis

import bullpy

from .conftest import keyspace

pd = pytest.importorskip("pandas")
from bullpy.frames import FrameError, parse_rate, read_campaign  # noqa: E402


def campaign(n: int = 5) -> Any:
    return pd.DataFrame({
        "customer_id": range(100, 100 + n),
        "number": [f"55119999{i:05d}" for i in range(n)],
        "name": [f"Cliente {i}" for i in range(n)],
        "message": [f"Olá Cliente {i}, sua oferta chegou" for i in range(n)],
        "score": [0.5 + i for i in range(n)],
    }, index=[f"r{i}" for i in range(n)])


def test_add_frame_writes_one_job_per_row(queue: bullpy.Queue) -> None:
    df = campaign()
    result = queue.add_frame(df, data=["number", "message", "score"], name="send", attempts=3,
                             backoff={"type": "exponential", "delay": 2000}, progress=False)
    assert list(result.index) == list(df.index)
    assert (result["status"] == "added").all()
    job = queue.get_job(result.loc["r2", "job_id"])
    assert job is not None
    assert job.name == "send"
    assert job.data == {"number": "5511999900002", "message": "Olá Cliente 2, sua oferta chegou", "score": 2.5}
    assert job.opts["attempts"] == 3 and job.opts["backoff"] == {"type": "exponential", "delay": 2000}


def test_rerun_with_job_ids_adds_nothing(queue: bullpy.Queue, redis_client: redis.Redis, prefix: str) -> None:
    df = campaign()
    first = queue.add_frame(df, job_id="spring-{customer_id}", progress=False)
    assert list(first["job_id"]) == [f"spring-{i}" for i in range(100, 105)]
    before = keyspace(redis_client, prefix)
    again = queue.add_frame(df, job_id="spring-{customer_id}", progress=False)
    assert (again["status"] == "duplicate").all()
    after = keyspace(redis_client, prefix)
    after.pop(f"{queue.name}:id"), before.pop(f"{queue.name}:id")  # Bull counts every add attempt
    assert after == before
    more = pd.concat([df, campaign(7).iloc[5:]])
    third = queue.add_frame(more, job_id="customer_id", progress=False)
    assert list(third["status"]) == ["added"] * 7  # plain ids "100".. differ from "spring-100"..


def test_interrupted_load_rerun_queues_each_row_once(queue: bullpy.Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """A load cut mid-way (retries off, so the drop surfaces) says how far it got; re-run, each row lands once.
    Two chunks are in flight at a time: the connection drops as the third goes out, after the first was
    confirmed and while the second's reply is still on its way."""
    from bullpy import _loading
    from bullpy.frames import FrameLoadInterrupted
    from bullpy.retry import NO_RETRY

    df = campaign(25)
    calls = {"n": 0}
    real = _loading.ChunkWriter._send

    def flaky(self: Any, chunk: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise redis.ConnectionError("connection dropped mid-load")
        real(self, chunk)

    monkeypatch.setattr(_loading.ChunkWriter, "_send", flaky)
    with pytest.raises(FrameLoadInterrupted, match="stopped after 5 of 25 rows") as info:
        queue.add_frame(df, job_id="c-{customer_id}", chunk_size=5, progress=False, retry=NO_RETRY)
    assert "rows 5-9 may or may not be" in str(info.value) and info.value.uncertain == range(5, 10)
    monkeypatch.undo()
    assert queue.count() == 10
    rerun = queue.add_frame(df, job_id="c-{customer_id}", chunk_size=5, progress=False)
    assert list(rerun["status"]) == ["duplicate"] * 10 + ["added"] * 15
    assert queue.count() == 25
    assert sorted(j.id for j in queue.get_waiting()) == sorted(f"c-{i}" for i in range(100, 125))

BAD_FRAMES: list[tuple[str, Any, dict[str, Any], str, list[Any]]] = [
    ("missing column", lambda df: df, {"data": ["number", "phone"]}, "no column 'phone'", []),
    ("NaN in number", lambda df: df.assign(number=[None, "1", "2", math.nan, "4"]), {}, "'number' has missing", ["r0", "r3"]),
    ("unserialisable object", lambda df: df.assign(extra=[{1, 2}, None, None, None, None]),
     {"allow_null": ["extra"]}, "set is not JSON", ["r0"]),
    ("duplicate job ids", lambda df: df.assign(customer_id=[1, 2, 1, 3, 3]), {"job_id": "x-{customer_id}"},
     "repeat within the frame", ["r0", "r2", "r3", "r4"]),
    ("send_at in the past", lambda df: df.assign(at=pd.Timestamp("2020-01-01", tz="UTC")),
     {"send_at": "at", "strict": True}, "in the past", ["r0", "r1", "r2", "r3", "r4"]),
    ("bad priority column", lambda df: df.assign(p=[1, 2, -1, 3, 1]), {"priority": "p"}, "priority", ["r2"]),
    ("reserved id", lambda df: df.assign(k=["a", "b", "wait", "c", "d"]), {"job_id": "k"}, "reserved", ["r2"]),
    ("bad rate", lambda df: df, {"rate": "fast"}, "rate", []),
    ("unknown option", lambda df: df, {"atempts": 3}, "atempts", []),
]


@pytest.mark.parametrize(("case", "change", "options", "text", "rows"), BAD_FRAMES, ids=[c[0] for c in BAD_FRAMES])
def test_bad_frames_fail_naming_rows_and_write_nothing(
    queue: bullpy.Queue, redis_client: redis.Redis, prefix: str,
    case: str, change: Any, options: dict[str, Any], text: str, rows: list[Any],
) -> None:
    queue.add({"seed": 1})
    before = keyspace(redis_client, prefix)
    with pytest.raises((ValueError, TypeError), match=text) as info:
        queue.add_frame(change(campaign()), progress=False, **options)
    if rows:
        assert isinstance(info.value, FrameError) and info.value.rows == rows
    assert keyspace(redis_client, prefix) == before


def test_rate_and_send_at_become_delays(queue: bullpy.Queue) -> None:
    assert parse_rate("20/min") == 3000 and parse_rate("5/s") == 200 and parse_rate(2) == 500
    df = campaign(4)
    result = queue.add_frame(df, rate="10/s", progress=False)
    jobs = [queue.get_job(i) for i in result["job_id"]]
    dues = [j.timestamp + j.opts["delay"] for j in jobs]  # type: ignore[union-attr,operator]
    assert [d - dues[0] for d in dues] == [0, 100, 200, 300]
    assert jobs[0].opts["delay"] <= 5  # type: ignore[union-attr]
    soon = pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=10)
    timed = queue.add_frame(df.assign(at=[soon] * 4), send_at="at", progress=False)
    for job_id in timed["job_id"]:
        job = queue.get_job(job_id)
        assert job is not None and job.get_state() is bullpy.JobState.DELAYED
        assert abs(job.timestamp + job.opts["delay"] - soon.value // 1_000_000) < 50  # type: ignore[operator]


def test_values_are_converted_for_json(queue: bullpy.Queue) -> None:
    df = pd.DataFrame({
        "i": pd.array([1, None, 3], dtype="Int64"), "f": [1.0, 2.5, float("nan")],
        "t": pd.to_datetime(["2026-11-27T10:00:00Z"] * 3), "b": [True, False, True], "s": ["a", "ü", None],
    })
    result = queue.add_frame(df, allow_null=True, progress=False)
    data = [queue.get_job(i).data for i in result["job_id"]]  # type: ignore[union-attr]
    assert data[0] == {"i": 1, "f": 1, "t": "2026-11-27T10:00:00.000Z", "b": True, "s": "a"}
    assert data[1]["i"] is None and data[2]["f"] is None and data[2]["s"] is None


def test_jobs_frame_and_campaign_status(queue: bullpy.Queue) -> None:
    result = queue.add_frame(campaign(3), data=["number", "message"], job_id="c-{customer_id}", progress=False)
    queue.add({"x": 1}, delay=60_000)
    frame = queue.jobs_frame()
    assert len(frame) == 4
    assert set(frame["state"]) == {"waiting", "delayed"}
    assert str(frame["timestamp"].dtype).startswith("datetime64") and frame["timestamp"].dt.tz is not None
    assert "data.number" in frame.columns
    status = queue.campaign_status(result)
    assert list(status["state"]) == ["waiting"] * 3
    assert list(status.index) == list(result.index)
    counts = queue.counts_frame()
    assert counts.loc[queue.name, "waiting"] == 3 and counts.loc[queue.name, "delayed"] == 1


def test_read_campaign_formats(tmp_path: Path) -> None:
    df = pd.DataFrame({"number": ["0551199", "5511"], "message": ["oi", "olá"]})
    df.to_csv(tmp_path / "c.csv", index=False)
    df.to_json(tmp_path / "c.jsonl", orient="records", lines=True, force_ascii=False)
    assert read_campaign(tmp_path / "c.csv")["number"].tolist() == ["0551199", "5511"]  # leading zero kept
    assert read_campaign(tmp_path / "c.jsonl")["message"].tolist() == ["oi", "olá"]
    with pytest.raises(ValueError, match="format"):
        read_campaign(tmp_path / "c.xlsx")
    pytest.importorskip("pyarrow")
    df.to_parquet(tmp_path / "c.parquet")
    assert read_campaign(tmp_path / "c.parquet").equals(df)


def test_jobs_frame_rows_equal_the_full_parse_also_for_odd_hashes(queue: bullpy.Queue,
                                                                   redis_client: redis.Redis) -> None:
    """jobs_frame reads a few fields per job (HMGET) and parses the common case itself; every row must
    still equal what Node's fromJSON rules (parse_job_hash, behind get_jobs) give, odd hashes included."""
    queue.add({"number": "1", "nested": {"a": [1, 2]}}, priority=3, attempts=2)
    queue.add("plain string data", name="text", delay=60_000)
    raw = {  # hashes Node could leave behind, written as they are
        "odd-delay": {"name": "x", "data": "{}", "opts": '{"delay":"5"}', "timestamp": "1700000000000"},
        "prevent": {"data": "not json", "opts": '{"preventParsingData":true}', "timestamp": "1700000000001"},
        "bad-progress": {"data": '{"a":1}', "opts": "{}", "progress": "{oops", "returnvalue": "also{bad",
                         "attemptsMade": "2x", "processedOn": "1700000000100", "finishedOn": "0",
                         "failedReason": "boom", "timestamp": " 1700000000002"},
        "array-opts": {"data": "[1,2]", "opts": "[3]", "timestamp": "1700000000003"},
        "no-name": {"data": '{"k":"v"}', "opts": '{"priority":7,"delay":2.5}'},
    }
    for job_id, fields in raw.items():
        redis_client.hset(queue.keys.job(job_id), mapping=fields)
        redis_client.rpush(queue.keys("wait"), job_id)
    frame = queue.jobs_frame(["waiting", "delayed"], expand_data=False)
    expected = [
        (j.id, j.name, j.data, j.opts.get("priority", 0), j.opts.get("delay", 0), j.attempts_made, j.progress,
         j.timestamp, j.processed_on, j.finished_on, j.failed_reason, j.returnvalue)
        for j in queue.get_jobs(["waiting"], asc=True) + queue.get_jobs(["delayed"], asc=True)
    ]
    got = []
    for row in frame.itertuples(index=False):
        times = [None if pd.isna(t) else int(t.value // 1_000_000) for t in (row.timestamp, row.processed_on,
                                                                             row.finished_on)]
        got.append((row.id, row.name, row.data, None if pd.isna(row.priority) else int(row.priority),
                    None if pd.isna(row.delay) else row.delay, None if pd.isna(row.attempts_made)
                    else int(row.attempts_made), row.progress, *times,
                    None if pd.isna(row.failed_reason) else row.failed_reason, row.returnvalue))
    assert len(got) == len(expected) == 7
    assert got == expected
    assert frame["parse_error"].isna().all()


def test_damaged_jobs_show_a_parse_error_beside_healthy_ones(queue: bullpy.Queue, redis_url: str) -> None:
    """A job Node could not read (get_jobs refuses it) is one row with parse_error, not a failed frame."""
    queue.add({"n": 1})
    raw_client = redis.Redis.from_url(redis_url)  # bytes: a value that is not UTF-8 goes in as it is
    damaged = {
        "null-opts": {b"data": b"{}", b"opts": b"null", b"timestamp": b"1700000000000"},
        "bad-data": {b"data": b"{oops", b"opts": b"{}", b"name": b"broken"},
        "not-utf8": {b"data": b'{"n":"\xff"}', b"opts": b"{}"},
    }
    for job_id, fields in damaged.items():
        raw_client.hset(queue.keys.job(job_id), mapping=fields)  # type: ignore[arg-type]
        raw_client.lpush(queue.keys("wait"), job_id)
    queue.add({"n": 2})
    raw_client.close()
    jobs = {job.id: job for job in queue.get_jobs(["waiting"])}  # Node's getJobs throws on "null-opts"
    assert [jobs[i].damaged for i in ("1", "2")] == [None, None]
    assert "JSON null" in str(jobs["null-opts"].damaged) and "not valid UTF-8" in str(jobs["not-utf8"].damaged)
    assert jobs["bad-data"].data == "{oops" and jobs["not-utf8"].data == {"n": "\ufffd"}
    frame = queue.jobs_frame(["waiting"]).set_index("id")
    assert list(frame.index) == ["1", "null-opts", "bad-data", "not-utf8", "2"]
    errors = frame["parse_error"]
    assert errors[["1", "2"]].isna().all()
    assert "JSON null" in errors["null-opts"] and "'data' is not valid JSON" in errors["bad-data"]
    assert "not valid UTF-8" in errors["not-utf8"] and frame.loc["not-utf8", "data.n"] == "\ufffd"
    assert list(frame["data.n"][["1", "2"]]) == [1, 2] and frame["data.n"][["null-opts", "bad-data"]].isna().all()
    assert frame.loc["bad-data", "name"] == "broken" and pd.isna(frame.loc["bad-data", "delay"])
    assert frame.loc["null-opts", "timestamp"] == pd.Timestamp(1700000000000, unit="ms", tz="UTC")


def test_time_columns_share_one_unit(queue: bullpy.Queue, redis_client: redis.Redis) -> None:
    queue.add({"n": 1})  # waiting: never processed, so processed_on and finished_on are all missing
    for states in (["waiting"], ["completed"], ["waiting", "completed"]):
        frame = queue.jobs_frame(states)
        assert {str(frame[f].dtype) for f in ("timestamp", "processed_on", "finished_on")} == {"datetime64[ms, UTC]"}
    redis_client.hset(queue.keys.job("done"), mapping={"data": "{}", "opts": "{}", "timestamp": "1700000000000",
                                                       "processedOn": "1700000000100", "finishedOn": "1700000000250"})
    redis_client.zadd(queue.keys("completed"), {"done": 1700000000250})
    row = queue.jobs_frame(["completed"]).iloc[0]
    assert row["finished_on"] - row["timestamp"] == pd.Timedelta(milliseconds=250)
    status = queue.campaign_status(pd.DataFrame({"job_id": ["done"]}))
    assert str(status["finished_on"].dtype) == "datetime64[ms, UTC]" and str(status["due"].dtype) == "datetime64[ms, UTC]"


def fill_states(queue: bullpy.Queue, redis_client: redis.Redis, n: int) -> None:
    """n jobs per state (waiting, delayed, completed, failed), written as Bull shapes them."""
    queue.add_bulk([{"data": {"i": i, "s": f"w{i}"}} for i in range(n)])
    queue.add_bulk([{"data": {"i": i, "s": f"d{i}"}, "opts": {"delay": 60_000 + i}} for i in range(n)])
    with redis_client.pipeline() as pipe:
        for state in ("completed", "failed"):
            for i in range(n):
                job_id = f"{state}-{i}"
                pipe.hset(queue.keys.job(job_id), mapping={
                    "name": "send", "data": json.dumps({"i": i, "s": f"{state[0]}{i}"}), "opts": "{}",
                    "timestamp": str(1700000000000 + i), "processedOn": str(1700000000100 + i),
                    "finishedOn": str(1700000000200 + i), "attemptsMade": "1",
                    **({"returnvalue": json.dumps({"ok": i})} if state == "completed" else {"failedReason": "boom"})})
                pipe.zadd(queue.keys(state), {job_id: 1700000000200 + i})
        pipe.execute()


def test_iter_jobs_frames_concatenate_to_jobs_frame(queue: bullpy.Queue, redis_client: redis.Redis) -> None:
    fill_states(queue, redis_client, 400)
    whole = queue.jobs_frame(chunk_size=150)
    assert len(whole) == 1600 and whole["parse_error"].isna().all()
    frames = list(queue.iter_jobs_frames(chunk_rows=500, chunk_size=150))
    sizes = [len(f) for f in frames]  # whole batches, until chunk_rows is reached
    assert sum(sizes) == 1600 and all(500 <= size < 650 for size in sizes[:-1]) and len(sizes) == 3
    pd.testing.assert_frame_equal(pd.concat(frames), whole)
    assert list(whole["state"].cat.categories) == list(bullpy.frames.ALL_STATES)
    # A state's range and order, as get_jobs gives them (finished jobs newest first).
    some = queue.jobs_frame(["completed", "waiting"], start=2, end=5)
    expected = [j.id for j in queue.get_jobs(["completed"], 2, 5)] + [j.id for j in queue.get_jobs(["waiting"], 2, 5, asc=True)]
    assert list(some["id"]) == expected
    assert list(queue.jobs_frame(["delayed"], start=-3)["id"]) == [j.id for j in queue.get_jobs(["delayed"], -3, -1, asc=True)]
    empty = list(queue.iter_jobs_frames(["active"]))
    assert len(empty) == 1 and empty[0].empty


def test_jobs_frame_without_sort_reads_the_same(queue: bullpy.Queue, redis_client: redis.Redis,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Where Redis refuses SORT ... GET (an ACL user without access to every key, a cluster before 7.0) the
    frame is read by ranges and HMGET, and comes out the same."""
    fill_states(queue, redis_client, 120)
    fast = queue.jobs_frame(chunk_size=50)
    original = redis.Redis.execute_command

    def refuse(self: redis.Redis, *args: Any, **options: Any) -> Any:
        if args[0] in ("SORT", "SORT_RO"):
            raise redis.ResponseError("NOPERM BY/GET option of SORT denied due to insufficient ACL permissions.")
        return original(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", refuse)
    pd.testing.assert_frame_equal(queue.jobs_frame(chunk_size=50), fast)
    redis_client.rpush(queue.keys.job("wrong"), "x")  # a job key that is not a hash: HMGET says WRONGTYPE
    redis_client.lpush(queue.keys("wait"), "wrong")
    frame = queue.jobs_frame(["waiting"])
    assert frame["id"].iloc[-1] == "wrong" and "WRONGTYPE" in frame["parse_error"].iloc[-1]
    assert frame["parse_error"].iloc[:-1].isna().all()
