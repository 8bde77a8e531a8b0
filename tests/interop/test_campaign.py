"""A DataFrame campaign queued from Python is sent by the unchanged Node WhatsApp worker (bridge/worker.js,
dry-run sender), paced as asked; the results come back as DataFrames."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import bullpy

pd = pytest.importorskip("pandas")

BRIDGE = Path(__file__).resolve().parents[2] / "bridge"


def run_worker(queue: bullpy.Queue, redis_url: str, log: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "REDIS_URL": redis_url, "QUEUE_NAME": queue.name, "BULL_PREFIX": queue.prefix,
               "DRY_RUN_LOG": str(log), "EXIT_WHEN_DRAINED": "1", **env}
    return subprocess.run(["node", "worker.js"], cwd=BRIDGE, env=environ, timeout=90, capture_output=True, text=True)


def campaign(n: int) -> Any:
    return pd.DataFrame({
        "customer_id": [f"C{i:04d}" for i in range(n)],
        "number": [f"+55 (11) 9{i:04d}-{i:04d}" for i in range(n)],
        "message": [f"Olá {i}! Seu cupom: PROMO{i}" for i in range(n)],
    })


def test_frame_campaign_sent_by_node_and_read_back(queue: bullpy.Queue, redis_url: str, tmp_path: Path) -> None:
    df = campaign(40)
    result = queue.add_frame(df, data=["number", "message"], job_id="spring-{customer_id}", attempts=3,
                             backoff={"type": "exponential", "delay": 2000}, progress=False)
    again = queue.add_frame(df, data=["number", "message"], job_id="spring-{customer_id}", progress=False)
    assert (again["status"] == "duplicate").all()

    log = tmp_path / "sent.jsonl"
    worker = run_worker(queue, redis_url, log)
    assert worker.returncode == 0, worker.stderr
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(sent) == 40  # each row messaged exactly once
    assert sorted(s["jobId"] for s in sent) == sorted(result["job_id"])

    frame = queue.jobs_frame(["completed"])
    assert len(frame) == 40 and set(frame["state"]) == {"completed"}
    by_id = frame.set_index("id")
    for s in sent:
        row = by_id.loc[s["jobId"]]
        assert row["returnvalue"] == {"success": True, "messageId": s["messageId"]}
        assert row["data.message"] == s["message"]
    status = queue.campaign_status(result)
    assert (status["state"] == "completed").all()
    assert status["returnvalue"].map(lambda r: r["success"]).all()
    assert list(status["job_id"]) == list(result["job_id"])


def test_rate_and_send_at_are_honoured_by_node(queue: bullpy.Queue, redis_url: str, tmp_path: Path) -> None:
    paced = queue.add_frame(campaign(6), data=["number", "message"], rate="10/s", progress=False)
    start = pd.Timestamp.now(tz="UTC") + pd.Timedelta(milliseconds=1500)
    timed = queue.add_frame(campaign(3).assign(at=[start + pd.Timedelta(milliseconds=300 * i) for i in range(3)]),
                            data=["number", "message"], send_at="at", progress=False)
    worker = run_worker(queue, redis_url, tmp_path / "sent.jsonl")
    assert worker.returncode == 0, worker.stderr
    paced_jobs = [queue.get_job(i) for i in paced["job_id"]]
    created = paced_jobs[0].timestamp  # type: ignore[union-attr]
    for i, job in enumerate(paced_jobs):
        assert job is not None and job.processed_on is not None
        due = created + 100 * i  # type: ignore[operator]
        assert due <= job.processed_on < due + 1000, (i, job.processed_on - due)
    for i, job_id in enumerate(timed["job_id"]):
        job = queue.get_job(job_id)
        assert job is not None and job.processed_on is not None
        due = start.value // 1_000_000 + 300 * i
        assert due <= job.processed_on < due + 1000, (i, job.processed_on - due)


def test_windowed_rate_limited_campaign_is_sent_only_inside_each_recipients_window(
    queue: bullpy.Queue, redis_url: str, tmp_path: Path
) -> None:
    """Sending hours per recipient, with rate, as the Node WhatsApp worker sends them: a window that opened a
    minute ago and closes in 25 s (wall clock) is open in London (daylight saving) and in a zone that has the
    same clock now but none (Abidjan or Lagos): their rows go out at once, paced, and are sent inside it.
    Tokyo (none) and New York (daylight saving) rows are due at their next opening, checked from the stored
    timestamp and delay rather than waited for."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    now = pd.Timestamp.now(tz="UTC").floor("s")
    london = now.tz_convert("Europe/London")
    steady = {0: "Africa/Abidjan", 3600: "Africa/Lagos"}[int(london.utcoffset().total_seconds())]
    opens, closes = now - pd.Timedelta(seconds=60), now + pd.Timedelta(seconds=25)
    window = (opens.tz_convert("Europe/London").strftime("%H:%M:%S"), closes.tz_convert("Europe/London").strftime("%H:%M:%S"))
    zones = ["Europe/London", "Asia/Tokyo", steady, "America/New_York"] * 6
    df = pd.DataFrame({"customer_id": range(len(zones)), "number": [f"+55 11 9{i:04d}-0000" for i in range(len(zones))],
                       "message": [f"Olá {i}" for i in range(len(zones))], "zone": zones})
    result = queue.add_frame(df, data=["number", "message"], job_id="w-{customer_id}", window=window, tz="zone",
                             rate="4/s", schema={"number": str, "message": str}, progress=False)
    open_rows = [i for i, z in enumerate(zones) if z in ("Europe/London", steady)]
    worker = run_worker(queue, redis_url, tmp_path / "sent.jsonl", MAX_JOBS=str(len(open_rows)))
    assert worker.returncode == 0, worker.stderr
    sent = [json.loads(line) for line in (tmp_path / "sent.jsonl").read_text().splitlines()]
    assert sorted(s["jobId"] for s in sent) == sorted(result["job_id"][open_rows])

    open_ms, close_ms = opens.value // 1_000_000, closes.value // 1_000_000
    dues = []
    for i in open_rows:
        job = queue.get_job(result["job_id"][i])
        assert job is not None and job.processed_on is not None and job.timestamp is not None
        due = job.timestamp + job.opts["delay"]
        dues.append(due)
        assert open_ms <= job.processed_on < close_ms, (zones[i], job.processed_on - close_ms)
        assert due <= job.processed_on and due == max(result["send_at"][i].value // 1_000_000, job.timestamp)
        local = dt.datetime.fromtimestamp(job.processed_on / 1000, ZoneInfo(zones[i]))
        assert local.strftime("%H:%M:%S") >= window[0] or window[0] > window[1]
    planned = [result["send_at"][i].value // 1_000_000 for i in open_rows]
    assert [b - a for a, b in itertools.pairwise(planned)] == [250] * (len(planned) - 1)  # 4/s, in frame order
    assert dues == sorted(dues)

    start_clock = dt.time.fromisoformat(window[0])
    for i, zone in enumerate(zones):
        if i in open_rows:
            continue
        job = queue.get_job(result["job_id"][i])
        assert job is not None and job.get_state() is bullpy.JobState.DELAYED and job.timestamp is not None
        due = job.timestamp + job.opts["delay"]
        local = dt.datetime.fromtimestamp(due / 1000, ZoneInfo(zone))
        opening = dt.datetime.combine(local.date(), start_clock, tzinfo=ZoneInfo(zone))
        # At its zone's next opening (rate slots are 250 ms apart), hours away.
        assert 0 <= (local - opening).total_seconds() < 10, (zone, local)
        assert due > now.value // 1_000_000 + 3_600_000
