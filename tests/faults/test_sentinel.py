"""Sentinel: a ``redis+sentinel://`` URL, and a failover (SENTINEL FAILOVER, one master and one replica) during a
20,000-row ``add_frame`` and during mixed-fleet processing (a bullpy Worker beside a Node Bull worker).

The failover is real: the replica is promoted, the Sentinel switches, and ~10 s later the old master is
demoted and resynced from the new one, discarding whatever it accepted after the promotion.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

import bullpy
from bullpy import connection
from bullpy.worker import Worker

from ..interop.peer import Peer, PeerQueue, node_available
from .conftest import SentinelGroup, wait_for

pd = pytest.importorskip("pandas")

PREFIX = "bullpy-faults"


def _fail_over_when(group: SentinelGroup, ready: Any, record: dict[str, float]) -> threading.Thread:
    """A thread that runs SENTINEL FAILOVER once ``ready()`` is true, recording when the switch happened."""

    def run() -> None:
        wait_for(ready, 60, "the moment to fail over", interval=0.005)
        record["failover_at"] = time.monotonic()
        record["old"], record["new"] = group.failover()
        record["switched_at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_sentinel_url_reaches_the_master_and_is_described_without_password(sentinel_group: SentinelGroup) -> None:
    queue = bullpy.Queue("q", sentinel_group.url, prefix=PREFIX)
    job = queue.add({"n": 1}, job_id="one")
    assert job is not None
    assert sentinel_group.master().client().hexists(f"{PREFIX}:q:one", "data")
    where = connection.describe(queue.client)
    assert where.startswith(f"sentinel service {sentinel_group.service!r} via 127.0.0.1:{sentinel_group.sentinel_port}")
    assert f"master 127.0.0.1:{sentinel_group.master_port()}" in where
    # url_for (what a Node worker is given) round-trips to the same service
    assert connection.url_for(queue.client) == sentinel_group.url
    assert "secret" not in connection.safe_url(sentinel_group.url.replace("redis+sentinel://", "redis+sentinel://:secret@"))
    queue.close()


def test_unknown_service_is_one_clear_error(sentinel_group: SentinelGroup) -> None:
    url = sentinel_group.url.replace(sentinel_group.service, "no-such-service")
    queue = bullpy.Queue("q", url, prefix=PREFIX)
    with pytest.raises(bullpy.errors.RedisUnavailable, match="No master found for 'no-such-service'") as info:
        queue.get_job_counts()
    assert "sentinel service 'no-such-service'" in str(info.value)


def test_failover_during_a_20000_row_add_frame_keeps_every_row_exactly_once(sentinel_group: SentinelGroup) -> None:
    """Every row once: 20,000 distinct jobs on the new master (and on the old one once it resynced), each with
    its own row's data, none missing; every row reported ``added``."""
    total = 20_000
    frame = pd.DataFrame({"row": range(total), "number": [f"5511{i:08d}" for i in range(total)], "message": "hi"})
    queue = bullpy.Queue("campaign", sentinel_group.url, prefix=PREFIX)
    retries: list[BaseException] = []
    queue.on("error", retries.append)
    first_master = sentinel_group.master().client()
    record: dict[str, float] = {}
    thread = _fail_over_when(sentinel_group, lambda: first_master.llen(f"{PREFIX}:campaign:wait") >= 3000, record)
    started = time.monotonic()
    result = queue.add_frame(frame, job_id="row-{row}", chunk_size=200, progress=False)
    ended = time.monotonic()
    thread.join(30)
    assert "switched_at" in record, "the failover did not happen"
    print(f"\nadd_frame {total} rows: {ended - started:.1f} s; failover at {record['failover_at'] - started:.1f} s, "
          f"switched at {record['switched_at'] - started:.1f} s; chunks sent again: {len(retries)}")
    assert record["failover_at"] < ended, "the failover must happen during the load"
    assert list(result["status"].unique()) == ["added"]
    assert list(result["job_id"]) == [f"row-{i}" for i in range(total)]

    expected = {f"row-{i}" for i in range(total)}
    new_master = sentinel_group.server(int(record["new"])).client()
    _assert_rows_once(new_master, expected)
    # The old master, demoted and resynced, holds the same: nothing it accepted alone survived.
    sentinel_group.settle()
    _assert_rows_once(sentinel_group.server(int(record["old"])).client(), expected)
    queue.close()


def _assert_rows_once(client: redis.Redis, expected: set[str]) -> None:
    waiting = client.lrange(f"{PREFIX}:campaign:wait", 0, -1)
    missing = sorted(expected - set(waiting), key=lambda i: int(i.split("-")[1]))
    assert len(waiting) == len(expected), f"{len(waiting)} jobs waiting, {len(expected)} rows; missing {missing[:3]}..{missing[-3:]}"
    assert set(waiting) == expected
    with client.pipeline(transaction=False) as pipe:
        for job_id in sorted(expected):
            pipe.hget(f"{PREFIX}:campaign:{job_id}", "data")
        datas = pipe.execute()
    assert all(d is not None for d in datas), "a waiting id without its job hash"
    rows = sorted(int(job_id.split("-")[1]) for job_id in expected)
    import json

    assert sorted(json.loads(d)["row"] for d in datas) == rows


@pytest.mark.node
def test_failover_during_mixed_fleet_processing_completes_every_job_exactly_once(
    sentinel_group: SentinelGroup,
) -> None:
    """A bullpy Worker and a Node Bull worker, both through the Sentinels, process 2,000 jobs; the master fails
    over after about a quarter of them.

    What "exactly once" means here, precisely:

    * completed exactly once: at the end every job is in ``completed`` and in no other state, and the
      queue's completed-metrics counter, incremented by every completion Redis accepted and kept, equals the
      number of jobs: no job was completed twice;
    * none lost: every job id added is among them;
    * processed at least once: a job may legitimately *run* twice (Bull is at-least-once for handler runs):
      a completion written to the old master after the replica's promotion is lost with it, and a job whose
      lock lapsed during the failover is recovered by the stalled check; such re-runs are counted (printed),
      and each re-run job still has exactly one completion that Redis kept.
    """
    if not node_available():
        pytest.skip("Node.js or bridge/node_modules is missing: run `npm ci` in bridge/")
    total = 2_000
    name = "fleet"
    settings = {"lockDuration": 3000, "stalledInterval": 1000, "maxStalledCount": 100}
    queue = bullpy.Queue(name, sentinel_group.url, prefix=PREFIX)
    frame = pd.DataFrame({"n": range(total)})
    queue.add_frame(frame, job_id="job-{n}", chunk_size=500, progress=False)

    py_runs: list[str] = []
    runs_lock = threading.Lock()

    def handle(job: bullpy.Job) -> dict[str, Any]:
        with runs_lock:
            py_runs.append(job.id)
        # 10 ms a job (Node's too): 2,000 jobs take about 2.5 s, so the promotion, about a second after the
        # trigger, lands while both fleets are still working (at 2 ms they often finished on the old master).
        time.sleep(0.01)
        return {"by": "python", "n": job.data["n"]}

    worker = Worker(queue, handle, concurrency=4, lock_duration=3000, stalled_interval=1000, max_stalled_count=100,
                    metrics={"max_data_points": 60}, retry_process_delay=200)
    node_queue = PeerQueue(name, prefix=PREFIX, settings=settings, metrics={"maxDataPoints": 60})
    first_master = sentinel_group.master().client()
    record: dict[str, float] = {}
    with Peer(sentinel_group.url, request_timeout=60) as peer:
        peer.process(node_queue, concurrency=4, behaviour={"sleep": 10})
        worker.start()
        thread = _fail_over_when(sentinel_group, lambda: first_master.zcard(f"{PREFIX}:{name}:completed") >= total // 4,
                                 record)
        try:
            thread.join(60)
            assert "switched_at" in record, "the failover did not happen"
            new_master = sentinel_group.server(int(record["new"])).client()
            wait_for(lambda: new_master.zcard(f"{PREFIX}:{name}:completed") == total, 60,
                     "every job completed on the new master", interval=0.1)
            # Let the old master rejoin: nothing it still held may come back.
            sentinel_group.settle()
            time.sleep(1.5)  # a stalled-check period: any job still wrongly active would move now
        finally:
            worker.close(timeout=10)
            node_runs = peer.processed(node_queue)
            peer.close(do_not_wait_jobs=True)

    master = sentinel_group.master().client()
    keys = f"{PREFIX}:{name}"
    completed = master.zrange(f"{keys}:completed", 0, -1)
    expected = {f"job-{i}" for i in range(total)}
    assert set(completed) == expected and len(completed) == total  # none lost
    for state in ("wait", "active", "paused"):
        assert master.llen(f"{keys}:{state}") == 0, f"jobs left in {state}"
    for state in ("delayed", "failed"):
        assert master.zcard(f"{keys}:{state}") == 0, f"jobs left in {state}"
    assert int(master.hget(f"{keys}:metrics:completed", "count") or 0) == total, "a job was completed twice"
    with master.pipeline(transaction=False) as pipe:
        for job_id in sorted(expected):
            pipe.hmget(f"{keys}:{job_id}", ["finishedOn", "returnvalue"])
        finals = pipe.execute()
    assert all(f and r for f, r in finals), "a completed job without finishedOn/returnvalue"

    runs: dict[str, int] = {}
    for job_id in py_runs + [str(r["id"]) for r in node_runs if r.get("start") is not None]:
        runs[job_id] = runs.get(job_id, 0) + 1
    assert set(runs) == expected, "a completed job that no handler ran"
    again = sorted(j for j, n in runs.items() if n > 1)
    print(f"\nfailover after {total // 4} completions: {len(py_runs)} Python runs, {len(node_runs)} Node runs, "
          f"{len(again)} jobs run more than once (completion lost with the old master, or lock lapsed)")
    queue.close()
