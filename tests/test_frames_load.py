"""add_frame's write side: every row checked before the first write (a bad value anywhere leaves Redis as it
was), schemas and the numeric-identifier warning, sending windows per time zone with rate, streaming loads
from files, and the row layout writing what add_bulk writes. (Node sending a windowed campaign:
tests/interop/test_campaign.py.)"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import warnings
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

import bullpy
from bullpy.errors import NumericIdentifierWarning

from .conftest import keyspace

pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")
from bullpy.frames import FrameError, load_file, read_campaign
from bullpy.frames.schedule import Scheduler, parse_window

N = 20_000


def big(n: int = N) -> Any:
    return pd.DataFrame({
        "customer_id": range(n),
        "number": [f"55119{i:08d}" for i in range(n)],
        "message": [f"Olá {i}" for i in range(n)],
        "score": [i / 7 for i in range(n)],
    })


def _last(df: Any, column: str, value: Any) -> Any:
    df = df.copy()
    if not (isinstance(value, float) and df[column].dtype.kind == "f"):
        df[column] = df[column].astype(object)
    df.at[df.index[-1], column] = value
    return df


BAD_LAST_ROW: list[tuple[str, Any, dict[str, Any], str]] = [
    ("inf in a float column", lambda df: _last(df, "score", math.inf), {}, "±inf"),
    ("-inf, with job ids", lambda df: _last(df, "score", -math.inf), {"job_id": "c-{customer_id}"}, "±inf"),
    ("a set in an object column", lambda df: _last(df, "message", {1, 2}), {}, "set is not JSON"),
    ("a data function returning a set", lambda df: df,
     {"data": lambda row: {"n": row["number"]} if row["customer_id"] < N - 1 else {"n", "x"}}, "set"),
    ("a data function raising", lambda df: df, {"data": lambda row: {"n": 1 / (N - 1 - row["customer_id"])}},
     "ZeroDivisionError"),
    ("a naive datetime object", lambda df: _last(df, "message", dt.datetime(2026, 1, 1)), {}, "naive datetime"),
    ("the schema", lambda df: _last(df, "number", 5511), {"schema": {"number": str}}, "schema wants str"),
    ("a reserved job id", lambda df: _last(df, "number", "wait"), {"job_id": "number"}, "reserved"),
    ("a bad priority", lambda df: df.assign(p=[1] * (N - 1) + [-1]), {"priority": "p"}, "priority"),
    ("a missing value", lambda df: _last(df, "number", None), {}, "missing values"),
    ("an unknown zone", lambda df: df.assign(z=["UTC"] * (N - 1) + ["Mars/Base"]),
     {"window": ("09:00", "17:00"), "tz": "z"}, "unknown time zone"),
]


@pytest.mark.parametrize(("case", "change", "options", "text"), BAD_LAST_ROW, ids=[c[0] for c in BAD_LAST_ROW])
def test_a_bad_last_row_leaves_redis_unchanged(queue: bullpy.Queue, redis_client: redis.Redis, prefix: str,
                                               case: str, change: Any, options: dict[str, Any], text: str) -> None:
    queue.add({"seed": 1})
    before = keyspace(redis_client, prefix)
    with pytest.raises(FrameError, match=text) as info:
        queue.add_frame(change(big()), progress=False, **options)
    assert info.value.rows == [N - 1]
    assert keyspace(redis_client, prefix) == before


def test_naive_datetime_columns_are_refused_as_add_refuses_them(queue: bullpy.Queue) -> None:
    df = pd.DataFrame({"at": pd.to_datetime(["2026-01-01 10:00", "2026-01-02 10:00"])})
    with pytest.raises(FrameError, match="without a time zone.*tz_localize") as info:
        queue.add_frame(df, progress=False)
    assert info.value.rows == [0, 1]
    with pytest.raises(TypeError, match="naive datetime"):
        queue.add({"at": dt.datetime(2026, 1, 1)})
    result = queue.add_frame(df.assign(at=df["at"].dt.tz_localize("America/Sao_Paulo")), progress=False)
    assert queue.get_job(result["job_id"][0]).data == {"at": "2026-01-01T13:00:00.000Z"}  # type: ignore[union-attr]


def test_schema_in_add_add_bulk_and_add_frame(queue: bullpy.Queue) -> None:
    schema = {"number": str, "message": str}
    with pytest.raises(TypeError, match=r"data\['number'\]: the schema wants str, got int 5511"):
        queue.add({"number": 5511, "message": "hi"}, schema=schema)
    with pytest.raises(TypeError, match="add_bulk item 1: data: no 'message'"):
        queue.add_bulk([{"data": {"number": "1", "message": "a"}}, {"data": {"number": "2"}}], schema=schema)
    assert queue.count() == 0
    df = pd.DataFrame({"number": [5511999990001, 5511999990002], "message": ["a", "b"]})
    with pytest.raises(FrameError, match=r"column 'number' is int64.*schema wants str.*astype\(str\)") as info:
        queue.add_frame(df, schema=schema, progress=False)
    assert info.value.rows == [0, 1]
    with pytest.raises(FrameError, match="not data columns"):
        queue.add_frame(df, data=["message"], schema=schema, progress=False)
    ok = queue.add_frame(df.assign(number=df["number"].astype(str)), schema="number=str,message=str", progress=False)
    assert (ok["status"] == "added").all()
    mixed = pd.DataFrame({"v": ["a", 1, None]})
    with pytest.raises(FrameError, match="schema wants str | None, got int") as info:
        queue.add_frame(mixed, schema={"v": str | None}, allow_null=True, progress=False)
    assert info.value.rows == [1]
    with pytest.raises(FrameError, match=r"data\['number'\]: the schema wants str") as info:
        queue.add_frame(df, data=lambda row: {"number": row["number"]}, schema=schema | {"message": None},
                        progress=False)
    assert info.value.rows == [0]
    assert queue.count() == 2


def test_integer_identifiers_warn_unless_declared(queue: bullpy.Queue) -> None:
    df = pd.DataFrame({"number": [5511999990001, 5511999990002], "qty": [1, 2]})
    with pytest.warns(NumericIdentifierWarning, match=r"column 'number' holds integers with 8 or more digits"):
        queue.add_frame(df, dry_run=True, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumericIdentifierWarning)
        queue.add_frame(df, schema={"number": int}, dry_run=True, progress=False)
        queue.add_frame(df[["qty"]], dry_run=True, progress=False)
    assert issubclass(NumericIdentifierWarning, UserWarning)


def test_rows_written_equal_add_bulk_byte_for_byte(queue: bullpy.Queue, redis_client: redis.Redis) -> None:
    """The row layout (add_frame) and the job layout (add_bulk) store the same hashes for the same jobs."""
    df = pd.DataFrame({"number": pd.Series(["5511", "ü\ud800"], dtype=object), "n": [1, 2], "f": [0.5, 2.5e-7], "b": [True, False],
                       "t": pd.to_datetime(["2026-11-27T10:00:00Z"] * 2), "o": [{"a": [1]}, None]})
    frame = queue.add_frame(df, allow_null=["o"], job_id="n", name="send", priority=3, attempts=2, lifo=True,
                            backoff={"type": "fixed", "delay": 5}, progress=False)
    other = bullpy.Queue("other", queue.client, prefix=queue.prefix)
    records = [{"number": "5511", "n": 1, "f": 0.5, "b": True, "t": "2026-11-27T10:00:00.000Z", "o": {"a": [1]}},
               {"number": "ü\ud800", "n": 2, "f": 2.5e-7, "b": False, "t": "2026-11-27T10:00:00.000Z", "o": None}]
    other.add_bulk([{"data": r, "name": "send", "opts": {"priority": 3, "attempts": 2,
                                                         "backoff": {"type": "fixed", "delay": 5}, "lifo": True,
                                                         "job_id": str(r["n"])}} for r in records])
    for job_id in frame["job_id"]:
        mine, theirs = (redis_client.hgetall(q.keys.job(job_id)) for q in (queue, other))
        mine.pop("timestamp"), theirs.pop("timestamp")
        strip = lambda h: h["opts"].split(',"timestamp"')[0]
        assert strip(mine) == strip(theirs)
        mine.pop("opts"), theirs.pop("opts")
        assert mine == theirs
    assert redis_client.lrange(queue.keys("wait"), 0, -1) == redis_client.lrange(other.keys("wait"), 0, -1)


# --- sending windows -------------------------------------------------------------------------------------

def _local(ms: int, zone: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, ZoneInfo(zone))


@pytest.mark.parametrize("zone", ["America/Sao_Paulo", "America/New_York", "Europe/Berlin", "Asia/Kolkata"])
def test_windowed_rate_sends_inside_each_zones_window_in_order(zone: str) -> None:
    # Start in the week of a daylight-saving change (New York: 2026-03-08; Berlin: 2026-03-29).
    start = int(dt.datetime(2026, 3, 7, 18, 0, tzinfo=dt.timezone.utc).timestamp() * 1000)
    scheduler = Scheduler(start_ms=start, interval=60_000.0, window=parse_window(("09:00", "11:00")))
    dues = scheduler.dues(None, zone, 500).tolist()
    assert dues == sorted(dues) and len(set(dues)) == 500
    assert all(dt.time(9) <= _local(d, zone).time() < dt.time(11) for d in dues)
    assert all(b - a >= 60_000 for a, b in itertools.pairwise(dues))
    days = pd.Series([_local(d, zone).date() for d in dues]).value_counts()
    assert days.max() == 120  # two hours at one a minute fill each window, then the next day's


def test_windows_of_several_zones_share_one_rate() -> None:
    start = int(dt.datetime(2026, 6, 1, 13, 0, tzinfo=dt.timezone.utc).timestamp() * 1000)  # 10:00 in São Paulo
    zones = ["America/Sao_Paulo", "Asia/Tokyo"] * 50  # Tokyo: 22:00, closed
    scheduler = Scheduler(start_ms=start, interval=1000.0, window=parse_window("09:00-20:00"))
    dues = scheduler.dues(None, zones, 100).tolist()
    sp = [d for d, z in zip(dues, zones) if z == "America/Sao_Paulo"]
    tokyo = [d for d, z in zip(dues, zones) if z == "Asia/Tokyo"]
    assert sp == [start + 1000 * i for i in range(50)]  # São Paulo's rows are not held up by Tokyo's
    assert all(_local(d, "Asia/Tokyo").time() >= dt.time(9) for d in tokyo)
    assert tokyo == sorted(tokyo) and tokyo[0] == int(dt.datetime(2026, 6, 2, 0, 0, tzinfo=dt.timezone.utc
                                                                  ).timestamp() * 1000)
    overnight = Scheduler(start_ms=start, interval=None, window=parse_window(("22:00", "06:00")))
    (due,) = overnight.dues(None, "America/Sao_Paulo", 1).tolist()
    assert _local(due, "America/Sao_Paulo") == dt.datetime(2026, 6, 1, 22, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))
    for bad in [("9", "10"), ("09:00", "09:00"), "09:00", ("25:00", "26:00")]:
        with pytest.raises(ValueError):
            parse_window(bad)


def test_dry_run_shows_the_planned_send_times(queue: bullpy.Queue) -> None:
    df = pd.DataFrame({"number": ["1", "2", "3"], "zone": ["America/Sao_Paulo", "Asia/Tokyo", "Europe/Berlin"]})
    plan = queue.add_frame(df, data=["number"], window=("09:00", "20:00"), tz="zone", rate="1/s", dry_run=True,
                           progress=False)
    assert list(plan.columns) == ["job_id", "status", "send_at"] and str(plan["send_at"].dt.tz) == "UTC"
    for when, zone in zip(plan["send_at"], df["zone"]):
        assert dt.time(9) <= when.tz_convert(zone).time() < dt.time(20)
    assert queue.count() == 0
    with pytest.raises(ValueError, match="tz says where"):
        queue.add_frame(df, tz="UTC", progress=False)
    naive = df.assign(at=["2030-01-01 10:00"] * 3)
    with pytest.raises(FrameError, match="without a time zone"):
        queue.add_frame(naive, data=["number"], send_at="at", dry_run=True, progress=False)
    local = queue.add_frame(naive, data=["number"], send_at="at", tz="zone", dry_run=True, progress=False)
    assert [t.tz_convert(z).hour for t, z in zip(local["send_at"], df["zone"])] == [10, 10, 10]


# --- streaming loads -------------------------------------------------------------------------------------

def test_load_file_streams_batches_and_checks_the_whole_file_first(queue: bullpy.Queue, tmp_path: Path,
                                                                   redis_client: redis.Redis, prefix: str) -> None:
    df = big(2_500)[["customer_id", "number", "message"]]
    csv = tmp_path / "c.csv"
    df.to_csv(csv, index=False)
    batches = list(read_campaign(csv, chunksize=1000))
    assert [len(b) for b in batches] == [1000, 1000, 500] and list(batches[2].index) == list(range(2000, 2500))
    bad = df.copy()
    bad.loc[2400, "customer_id"] = 7  # repeats row 7's id, two batches apart
    bad.to_csv(tmp_path / "bad.csv", index=False)
    before = keyspace(redis_client, prefix)
    with pytest.raises(FrameError, match="repeat within the file") as info:
        load_file(queue, tmp_path / "bad.csv", job_id="c-{customer_id}", batch_rows=1000, progress=False)
    assert info.value.rows == [7, 2400]
    assert keyspace(redis_client, prefix) == before
    counts = load_file(queue, csv, job_id="c-{customer_id}", schema={"number": str}, batch_rows=1000, rate="1000/s",
                       attempts=3, progress=False)
    assert counts == {"rows": 2500, "added": 2500}
    assert load_file(queue, csv, job_id="c-{customer_id}", batch_rows=700, progress=False) == {
        "rows": 2500, "duplicate": 2500}
    job = queue.get_job("c-2499")
    assert job is not None and job.data == {"customer_id": "2499", "number": "5511900002499", "message": "Olá 2499"}
    first = queue.get_job("c-0")
    assert first is not None and job.opts["attempts"] == 3
    assert 2_400 < job.opts["delay"] + job.timestamp - first.opts["delay"] - first.timestamp < 2_600  # row 2499 at 1/ms
    pq = tmp_path / "c.parquet"
    df.to_parquet(pq)
    other = bullpy.Queue("parquet", queue.client, prefix=queue.prefix)
    assert load_file(other, pq, batch_rows=999, progress=False) == {"rows": 2500, "added": 2500}
    assert other.get_job("2500").data["customer_id"] == 2499  # type: ignore[union-attr]


def test_cli_load_streams_with_schema_and_window(redis_url: str, prefix: str, tmp_path: Path,
                                                 redis_client: redis.Redis) -> None:
    import json

    from click.testing import CliRunner

    from bullpy.cli import main

    campaign = tmp_path / "c.parquet"
    pd.DataFrame({"customer_id": [1, 2], "number": [5511999990001, 5511999990002], "message": ["oi", "olá"],
                  "zone": ["America/Sao_Paulo", "Asia/Tokyo"]}).to_parquet(campaign)
    base = ["--redis", redis_url, "--prefix", prefix, "--format", "json", "load", "q", str(campaign)]
    runner = CliRunner()
    refused = runner.invoke(main, [*base, "--schema", "number=str,message=str"])
    assert refused.exit_code == 1 and "schema wants str" in refused.output and "Traceback" not in refused.output
    assert keyspace(redis_client, prefix) == {}
    planned = runner.invoke(main, [*base, "--data", "number,message", "--schema", "number=int,message=str",
                                   "--window", "09:00-20:00", "--tz", "zone", "--rate", "10/s", "--dry-run"])
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout) == {"queue": "q", "rows": 2, "would_add": 2, "dry_run": True}
    done = runner.invoke(main, [*base, "--data", "number,message", "--schema", "number=int,message=str",
                                "--window", "09:00-20:00", "--tz", "zone", "--job-id", "c-{customer_id}"])
    assert json.loads(done.stdout) == {"queue": "q", "rows": 2, "added": 2, "dry_run": False}
    queue = bullpy.Queue("q", redis_url, prefix=prefix)
    for job_id, zone in (("c-1", "America/Sao_Paulo"), ("c-2", "Asia/Tokyo")):
        job = queue.get_job(job_id)
        assert job is not None and job.timestamp is not None
        due = pd.Timestamp(job.timestamp + job.opts["delay"], unit="ms", tz="UTC").tz_convert(zone)
        assert dt.time(9) <= due.time() < dt.time(20) or job.opts["delay"] == 0
