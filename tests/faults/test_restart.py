"""A Redis restarted (AOF on, ``appendfsync always``) in the middle of a load, a worker run, an export and a clean;
a master that briefly answers READONLY; and the refusals that no retry can cure.

"Nothing lost or doubled" is checked on what the server holds afterwards: every row or job exactly once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

import bullpy
from bullpy import transfer
from bullpy.cli import main as cli
from bullpy.errors import (
    RedisAuthenticationFailed,
    RedisOutOfMemory,
    RedisPermissionDenied,
    RedisUnavailable,
)
from bullpy.frames import FrameLoadInterrupted
from bullpy.retry import RetryPolicy
from bullpy.worker import Worker

from ..servers import RedisServer, redis_servers
from .conftest import wait_for

pd = pytest.importorskip("pandas")

P = "bullpy-faults"


def _restart_when(server: RedisServer, ready: Callable[[], Any], record: dict[str, float]) -> threading.Thread:
    """A thread that restarts ``server`` (SIGTERM: AOF flushed; then the same port and files) once ``ready()``."""

    def run() -> None:
        wait_for(ready, 60, "the moment to restart", interval=0.002)
        record["down"] = time.monotonic()
        server.restart()
        record["up"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _rows_in(client: redis.Redis, queue: str, key: str = "wait") -> list[int]:
    ids = client.lrange(f"{P}:{queue}:{key}", 0, -1)
    with client.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(f"{P}:{queue}:{job_id}", "data")
        return [json.loads(d)["row"] for d in pipe.execute()]


def test_restart_during_add_frame_with_job_ids_resumes_without_loss_or_duplicates(aof_server: RedisServer) -> None:
    total = 10_000
    frame = pd.DataFrame({"row": range(total), "message": "hi"})
    queue = bullpy.Queue("load", aof_server.url(), prefix=P)
    retries: list[BaseException] = []
    queue.on("error", retries.append)
    watcher = aof_server.client()
    record: dict[str, float] = {}
    thread = _restart_when(aof_server, lambda: watcher.llen(f"{P}:load:wait") >= 2000, record)
    started = time.monotonic()
    result = queue.add_frame(frame, job_id="row-{row}", chunk_size=200, progress=False)
    ended = time.monotonic()
    thread.join(30)
    print(f"\nadd_frame {total} rows: {ended - started:.1f} s, Redis down {record['down'] - started:.2f} s to "
          f"{record['up'] - started:.2f} s; chunks sent again: {len(retries)}")
    assert record["down"] < ended and retries, "the restart must cut the load"
    assert list(result["status"].unique()) == ["added"]
    rows = _rows_in(aof_server.client(), "load")
    assert len(rows) == total and sorted(rows) == list(range(total))
    queue.close()


def test_restart_during_add_frame_without_ids_resumes_or_stops_saying_which_rows_are_queued(
    aof_server: RedisServer,
) -> None:
    """Without job ids a chunk cut in flight is not sent again (it could be queued twice): either the outage
    fell between two chunks and the load resumed, or it stopped with a message naming the rows queued for sure
    and the rows in flight; then the documented way on (look, add what is missing) gives every row once."""
    total = 10_000
    frame = pd.DataFrame({"row": range(total), "message": "hi"})
    queue = bullpy.Queue("auto", aof_server.url(), prefix=P)
    watcher = aof_server.client()
    record: dict[str, float] = {}
    thread = _restart_when(aof_server, lambda: watcher.llen(f"{P}:auto:wait") >= 2000, record)
    try:
        queue.add_frame(frame, chunk_size=200, progress=False)
        outcome = "resumed"
    except FrameLoadInterrupted as exc:
        outcome = f"stopped: {exc}"
        thread.join(30)
        held = len(_rows_in(aof_server.client(), "auto"))
        assert exc.total == total and exc.written % 200 == 0 and 0 < exc.written < total
        upper = exc.uncertain.stop if len(exc.uncertain) else exc.written
        assert exc.written <= held <= upper, (exc.written, held, upper)
        assert f"add_frame stopped after {exc.written} of {total} rows" in str(exc)
        assert f"Rows 0-{exc.written - 1} (frame order) are queued" in str(exc)
        if len(exc.uncertain):
            assert f"rows {exc.uncertain.start}-{exc.uncertain.stop - 1} may or may not be" in str(exc)
            assert "would queue" in str(exc) and "job_id" in str(exc)
        assert isinstance(exc.__cause__, ConnectionError)
        present = set(_rows_in(aof_server.client(), "auto"))
        queue.add_frame(frame[~frame["row"].isin(present)], chunk_size=200, progress=False)
    thread.join(30)
    print(f"\nadd_frame without ids across a restart: {outcome}")
    rows = _rows_in(aof_server.client(), "auto")
    assert len(rows) == total and sorted(rows) == list(range(total))
    queue.close()


def test_restart_during_a_worker_run_completes_every_job_exactly_once(aof_server: RedisServer) -> None:
    """Completed exactly once: every job in ``completed`` and nowhere else, and the completed-metrics counter
    (one per completion Redis kept) equals the number of jobs. A job may run twice (its completion cut by the
    restart, its lock then lapsing); such re-runs are counted."""
    total = 1_000
    queue = bullpy.Queue("work", aof_server.url(), prefix=P)
    queue.add_frame(pd.DataFrame({"row": range(total)}), job_id="job-{row}", progress=False)
    runs: list[str] = []
    lock = threading.Lock()

    def handle(job: bullpy.Job) -> int:
        with lock:
            runs.append(job.id)
        time.sleep(0.001)
        return int(job.data["row"])

    worker = Worker(queue, handle, concurrency=4, lock_duration=2000, stalled_interval=1000, max_stalled_count=10,
                    metrics={"max_data_points": 60}, retry_process_delay=500)
    watcher = aof_server.client()
    record: dict[str, float] = {}
    worker.start()
    try:
        thread = _restart_when(aof_server, lambda: watcher.zcard(f"{P}:work:completed") >= 300, record)
        thread.join(30)
        assert watcher.zcard(f"{P}:work:completed") < total, "the restart must cut the run"
        client = aof_server.client()
        wait_for(lambda: client.zcard(f"{P}:work:completed") == total, 30, "every job completed", interval=0.05)
        time.sleep(1.2)  # a stalled-check period: a job wrongly left active would move now
    finally:
        worker.close(timeout=10)
    client = aof_server.client()
    assert sorted(client.zrange(f"{P}:work:completed", 0, -1)) == sorted(f"job-{i}" for i in range(total))
    for key in ("wait", "active", "paused"):
        assert client.llen(f"{P}:work:{key}") == 0
    for key in ("delayed", "failed"):
        assert client.zcard(f"{P}:work:{key}") == 0
    assert int(client.hget(f"{P}:work:metrics:completed", "count") or 0) == total, "a job was completed twice"
    assert set(runs) == {f"job-{i}" for i in range(total)}
    print(f"\nworker across a restart: {len(runs)} runs for {total} jobs")
    queue.close()


def _export_ids(path: Path) -> list[tuple[str, str]]:
    with transfer.read_export(path) as reader:
        return [(e.id, e.state) for e in reader if isinstance(e, transfer.JobEntry)]


def _fill_for_export(queue: bullpy.Queue) -> None:
    queue.add_bulk([{"data": {"row": i}, "opts": {"job_id": f"w-{i}"}} for i in range(2000)])
    queue.add_bulk([{"data": {"row": i}, "opts": {"job_id": f"d-{i}", "delay": 3_600_000 + i}} for i in range(1000)])


def test_restart_during_an_export_resumes_at_the_same_place(aof_server: RedisServer, tmp_path: Path) -> None:
    queue = bullpy.Queue("exp", aof_server.url(), prefix=P)
    _fill_for_export(queue)
    reference = tmp_path / "reference.bullpy"
    transfer.export_queue(queue, reference, batch_size=100)

    restarted: list[float] = []

    def progress(done: int) -> None:
        # Stop Redis between two batches, from inside the export, and start it again 1.5 s later: the next
        # batch meets the outage for sure (longer than redis-py's own reconnect attempts).
        if done >= 1000 and not restarted:
            restarted.append(time.monotonic())
            aof_server.stop()
            threading.Timer(1.5, aof_server.start).start()

    out = tmp_path / "during.bullpy"
    summary = transfer.export_queue(queue, out, batch_size=100, progress=progress)
    assert restarted
    got = _export_ids(out)
    assert got == _export_ids(reference)  # same jobs, same states, same order: none lost, none twice
    assert len(got) == len(set(got)) == 3000
    assert summary.counts["wait"] == 2000 and summary.counts["delayed"] == 1000
    transfer.validate_export(out)
    queue.close()


def test_export_that_cannot_reach_redis_fails_with_one_message_then_reruns(aof_server: RedisServer,
                                                                           tmp_path: Path) -> None:
    queue = bullpy.Queue("exp", aof_server.url(), prefix=P)
    _fill_for_export(queue)

    def progress(done: int) -> None:
        if done >= 1000 and aof_server.proc is not None and aof_server.proc.poll() is None:
            aof_server.stop()

    out = tmp_path / "q.bullpy"
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as info:
        transfer.export_queue(queue, out, batch_size=100, progress=progress,
                              retry=RetryPolicy(attempts=3, first_delay=0.1, deadline=1.0))
    message = str(info.value)
    print(f"\n{message} ({time.monotonic() - started:.1f} s)")
    assert message.startswith("export: gave up after trying ")
    assert f"cannot reach Redis at 127.0.0.1:{aof_server.port} db 0" in message
    assert "\n" not in message
    assert not out.exists() and not list(tmp_path.glob(".q.bullpy.*")), "no partial file is left"
    aof_server.start()
    summary = transfer.export_queue(queue, out, batch_size=100)
    assert summary.jobs == 3000 and len(set(_export_ids(out))) == 3000
    queue.close()


def test_cli_clean_rides_out_a_restart(aof_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = bullpy.Queue("cln", aof_server.url(), prefix=P)
    queue.add_bulk([{"data": {"n": i}} for i in range(200)])
    worker = Worker(queue, lambda job: None, concurrency=4).start()
    wait_for(lambda: queue.get_completed_count() == 200, 20, "jobs completed")
    worker.close()
    real_clean = bullpy.Queue.clean
    outages: list[float] = []

    def clean_after_an_outage(self: bullpy.Queue, *args: Any, **kwargs: Any) -> list[str]:
        # Fault injection at a fixed point: Redis goes down (for 1.5 s, longer than redis-py's own reconnect
        # attempts) just as the command, having found the queue, starts cleaning; the real clean then runs.
        if not outages:
            outages.append(time.monotonic())
            aof_server.stop()
            threading.Timer(1.5, aof_server.start).start()
        return real_clean(self, *args, **kwargs)

    monkeypatch.setattr(bullpy.Queue, "clean", clean_after_an_outage)
    result = CliRunner().invoke(cli, ["--redis", aof_server.url(), "--prefix", P, "--format", "json",
                                      "clean", "cln", "--state", "completed", "--grace", "0", "--yes"])
    assert outages and result.exit_code == 0, result.output
    assert json.loads(result.output) == {"queue": "cln", "state": "completed", "removed": 200}
    assert aof_server.client().zcard(f"{P}:cln:completed") == 0
    queue.close()


def test_a_master_answering_readonly_for_a_while_is_ridden_out(tmp_path: Path) -> None:
    """A coordinated FAILOVER makes the server the URL names a replica for ~1 s, then master again: a load
    (with job ids) and a worker keep going and end with every job exactly once."""
    with redis_servers(tmp_path) as make:
        options = ("--appendfsync", "always", "--repl-diskless-sync-delay", "0")
        primary = make(*options, appendonly=True)
        other = make("--replicaof", "127.0.0.1", str(primary.port), *options, appendonly=True)
        wait_for(lambda: other.client().info("replication").get("master_link_status") == "up", 10, "sync")
        queue = bullpy.Queue("ro", primary.url(), prefix=P)
        total = 6_000
        frame = pd.DataFrame({"row": range(total)})
        watcher = primary.client()
        done: list[str] = []
        worker = Worker(queue, lambda job: done.append(job.id), concurrency=2, retry_process_delay=200,
                        lock_duration=2000, stalled_interval=1000, max_stalled_count=10)
        worker.start()
        flipped: dict[str, float] = {}

        def flip() -> None:
            wait_for(lambda: watcher.llen(f"{P}:ro:wait") + watcher.zcard(f"{P}:ro:completed") >= 1500, 30, "load")
            watcher.execute_command("FAILOVER")  # primary -> replica of `other`, without losing a write
            wait_for(lambda: watcher.info("replication")["role"] == "slave", 10, "the demotion")
            flipped["readonly"] = time.monotonic()
            time.sleep(1.0)
            back = other.client()
            wait_for(lambda: back.info("replication")["connected_slaves"] >= 1, 10, "the old primary to sync")
            back.execute_command("FAILOVER")
            wait_for(lambda: watcher.info("replication")["role"] == "master", 10, "the promotion back")
            flipped["master"] = time.monotonic()

        thread = threading.Thread(target=flip, daemon=True)
        thread.start()
        errors: list[BaseException] = []
        queue.on("error", errors.append)
        try:
            result = queue.add_frame(frame, job_id="row-{row}", chunk_size=100, progress=False)
            thread.join(30)
            assert "master" in flipped
            wait_for(lambda: watcher.zcard(f"{P}:ro:completed") == total, 30, "every job completed", interval=0.05)
        finally:
            worker.close(timeout=10)
        assert any("READONLY" in str(e) or "read-only" in str(e) for e in errors), "READONLY was never met"
        assert list(result["status"].unique()) == ["added"]
        completed = watcher.zrange(f"{P}:ro:completed", 0, -1)
        assert sorted(completed) == sorted(f"row-{i}" for i in range(total))
        assert watcher.llen(f"{P}:ro:wait") == watcher.llen(f"{P}:ro:active") == 0
        assert set(done) == set(completed)
        queue.close()


@pytest.mark.parametrize("refusal", ["oom", "noperm", "wrong-password"])
def test_refusals_that_retrying_cannot_cure_stop_at_once_with_one_message(tmp_path: Path, refusal: str) -> None:
    with redis_servers(tmp_path) as make:
        server = make("--maxmemory-policy", "noeviction", password="right")
        admin = server.client()
        url = server.url()
        if refusal == "noperm":
            admin.acl_setuser("reader", enabled=True, passwords=["+pw"], keys=[f"{P}:*"],
                              commands=["+@read", "+ping", "+role", "+wait"])
            url = server.url(user="reader", password="pw")
        elif refusal == "wrong-password":
            url = server.url(password="wrong")
        elif refusal == "oom":
            admin.set("ballast", "x" * 3_000_000)
            admin.config_set("maxmemory", "2mb")
        queue = bullpy.Queue("nope", url, prefix=P)
        started = time.monotonic()
        with pytest.raises(FrameLoadInterrupted) as info:
            queue.add_frame(pd.DataFrame({"row": range(500)}), job_id="r-{row}", chunk_size=100, progress=False)
        took = time.monotonic() - started
        message = str(info.value)
        print(f"\n{refusal}: {message}")
        assert took < 3, "a refusal must not be retried"
        assert message.startswith("add_frame stopped after 0 of 500 rows: ") and "\n" not in message
        assert "No row is queued; rows 0-499 are not." in message and "may or may not" not in message
        assert "right" not in message and ":pw@" not in message
        cause = info.value.__cause__
        expected = {"oom": RedisOutOfMemory, "noperm": RedisPermissionDenied, "wrong-password": RedisAuthenticationFailed}
        assert isinstance(cause, expected[refusal]), repr(cause)
        assert {"oom": "out of memory (OOM)", "noperm": "permission denied (NOPERM)",
                "wrong-password": "refused the credentials"}[refusal] in message
        assert not admin.exists(f"{P}:nope:r-0")
        queue.close()
