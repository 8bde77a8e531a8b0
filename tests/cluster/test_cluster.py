"""bullpy and real Node Bull (ioredis Cluster) sharing queues on a private three-master Redis Cluster.

Every outcome is read back from the cluster or from what Node Bull did: Python adds, Node's workers process;
Node adds, bullpy's Worker processes; getters, counts and workers agree with Node's; management and global
events cross; the CLI finds queues on every master; a prefix without a hash tag is refused before anything
is written; an export round-trips into another slot.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result

import bullpy
from bullpy.cli import main
from bullpy.errors import RedisRefused
from bullpy.transfer import export_queue, import_queue

from ..interop.peer import BRIDGE_DIR, Peer
from .conftest import Cluster

pytestmark = pytest.mark.node


def ran(bull: Peer, queue: bullpy.Queue) -> list[Any]:
    """The ``n`` of each job Node's handler ran, in the order it ran them."""
    return [r["data"]["n"] for r in bull.processed(queue) if r["outcome"] in ("completed", "failed")]


def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:g} s")
        time.sleep(0.05)


def names_on_every_master(cluster: Cluster, prefix: str) -> list[str]:
    """Queue names ``{q-i}`` whose slots lie on three different masters."""
    chosen: dict[int, str] = {}
    for i in range(200):
        name = f"{{q-{i}}}"
        chosen.setdefault(cluster.port_of(f"{prefix}:{name}:"), name)
        if len(chosen) == 3:
            return sorted(chosen.values())
    raise AssertionError("no names found on three masters")


# --- 1. Python adds, Node Bull (ioredis Cluster) processes ------------------------------------------------

def test_python_adds_node_workers_process_in_priority_order_and_on_time(cbull: Peer, cqueue: bullpy.Queue) -> None:
    assert cqueue.cluster is not None
    cqueue.add({"n": 1})
    cqueue.add({"n": 2}, priority=5)
    cqueue.add({"n": 3}, priority=1)
    cqueue.add_bulk([{"data": {"n": 4}, "opts": {"priority": 3}}, {"data": {"n": 5}, "opts": {"job_id": "five"}}])
    frame = cqueue.add_frame(pd.DataFrame({"n": [6, 7]}), priority=2, attempts=2, progress=False)
    assert list(frame["status"]) == ["added", "added"]
    delayed = cqueue.add({"n": 8}, delay=500)
    assert delayed is not None

    cbull.process(cqueue, count=8, timeout=15)
    # Lower priority numbers first, FIFO within one, plain jobs after; the delayed job once due.
    assert ran(cbull, cqueue) == [3, 6, 7, 4, 2, 1, 5, 8]
    assert cqueue.get_job_counts()["completed"] == 8
    done = cbull.get_job(cqueue, delayed.id)
    assert done is not None and done["processedOn"] >= done["timestamp"] + 500
    assert cbull.get_job(cqueue, "five")["returnvalue"] == {"processed": "five"}  # type: ignore[index]
    assert cbull.get_job(cqueue, frame["job_id"].iloc[0])["opts"]["attempts"] == 2  # type: ignore[index]


def test_the_whatsapp_worker_js_sends_a_campaign_queued_on_the_cluster(
        redis_cluster: Cluster, cqueue: bullpy.Queue, tmp_path: Path) -> None:
    rows = [{"number": f"+55 11 9999-{n:04d}", "message": f"Olá {n}", "delay": 0} for n in range(1, 5)]
    jobs = cqueue.add_bulk([{"data": r, "opts": {"attempts": 2}} for r in rows])
    sent_log = tmp_path / "sent.jsonl"
    env = {**os.environ, "REDIS_URL": redis_cluster.url, "REDIS_CLUSTER": "1", "QUEUE_NAME": cqueue.name,
           "BULL_PREFIX": cqueue.prefix, "DRY_RUN_LOG": str(sent_log), "EXIT_WHEN_DRAINED": "1"}
    worker = subprocess.run(["node", "worker.js"], cwd=BRIDGE_DIR, env=env, timeout=60, capture_output=True,
                            text=True, check=False)
    assert worker.returncode == 0, worker.stderr
    ready = json.loads(worker.stdout.splitlines()[0])
    assert ready["redis"] == f"redis-cluster://127.0.0.1:{redis_cluster.ports[0]}"
    sent = [json.loads(line) for line in sent_log.read_text().splitlines()]
    assert sorted(s["to"] for s in sent) == [f"55119999{n:04d}@c.us" for n in range(1, 5)]
    for job in jobs:
        done = cqueue.get_job(job.id)
        assert done is not None and done.get_state() is bullpy.JobState.COMPLETED
        assert done.returnvalue["success"] is True and done.progress == 100


# --- 2. Node adds, bullpy's Worker processes -----------------------------------------------------------------

def test_node_adds_python_worker_processes_with_retries_and_backoff(cbull: Peer, cqueue: bullpy.Queue) -> None:
    ids = [cbull.call(cqueue, "add", {"n": n}, {"attempts": 3, "backoff": 200})["id"] for n in range(3)]
    later = cbull.call(cqueue, "add", {"n": 3}, {"delay": 300})["id"]
    runs: list[tuple[int, int, float]] = []

    def handler(job: bullpy.Job) -> dict[str, int]:
        runs.append((job.data["n"], job.attempts_made, time.monotonic()))
        if job.data["n"] == 0 and job.attempts_made < 2:
            raise RuntimeError(f"flaky {job.attempts_made}")
        return {"done": job.data["n"]}

    worker = cqueue.process(handler)
    try:
        cbull.wait_for_counts(cqueue, completed=4, failed=0, delayed=0, timeout=15)
    finally:
        worker.close()
    flaky = [at for n, _, at in runs if n == 0]
    assert [a for n, a, _ in runs if n == 0] == [0, 1, 2]
    assert all(b - a >= 0.2 - 0.01 for a, b in itertools.pairwise(flaky))  # the fixed 200 ms backoff
    first = cbull.get_job(cqueue, ids[0])
    assert first is not None
    assert first["attemptsMade"] == 2 and first["returnvalue"] == {"done": 0}
    assert len(first["stacktrace"]) == 2 and first["failedReason"] == "flaky 1"
    assert cbull.get_job(cqueue, later)["returnvalue"] == {"done": 3}  # type: ignore[index]


# --- 3. getters, counts and workers agree with Node's ----------------------------------------------------

def test_getters_counts_and_workers_equal_nodes(cbull: Peer, cqueue: bullpy.Queue) -> None:
    for n in range(4):
        cqueue.add({"n": n, "__peer": {"fail": "no"} if n == 3 else {"return": f"r{n}"}}, job_id=f"j{n}")
    cbull.process(cqueue, count=4)
    cbull.close(cqueue)
    cqueue.add({"n": 10}, job_id="w1")
    cqueue.add({"n": 11}, job_id="w2", priority=2)
    cqueue.add({"n": 12}, job_id="d1", delay=60_000)

    assert cqueue.get_job_counts() == cbull.call(cqueue, "getJobCounts")
    for states in (["completed"], ["failed"], ["waiting"], ["delayed"], ["completed", "failed", "waiting"]):
        node_ids = [j["id"] for j in cbull.call(cqueue, "getJobs", states)]
        assert [j.id for j in cqueue.get_jobs(states)] == node_ids, states
    for job_id in ("j0", "j3", "w2", "d1"):
        ours, theirs = cqueue.get_job(job_id), cbull.get_job(cqueue, job_id)
        assert ours is not None and theirs is not None
        assert (ours.data, ours.opts, ours.attempts_made, ours.returnvalue, ours.failed_reason, ours.delay) == (
            theirs["data"], theirs["opts"], theirs["attemptsMade"], theirs["returnvalue"], theirs.get("failedReason"),
            theirs["delay"])
    assert cqueue.get_count_per_priority([0, 2]) == {int(k): v for k, v in
                                                      cbull.call(cqueue, "getCountsPerPriority", [0, 2]).items()}

    # Workers: one bullpy Worker (its blocking connection is on the queue's master) and one Node worker
    # (ioredis names a connection to a random master): both found by asking every master, as Node's
    # getWorkers would find them if it asked every master.
    worker = cqueue.process(lambda job: None)
    try:
        cbull.process(cqueue)

        def both() -> Any:
            ours = sorted((w["addr"], w["name"]) for w in cqueue.get_workers())
            theirs = sorted((w["addr"], w["name"]) for w in cbull.workers_on_every_node(cqueue))
            return ours if len(ours) == 2 and ours == theirs else None

        assert [name for _, name in wait_until(both)] == [cqueue.name, cqueue.name]
    finally:
        worker.close()


# --- 4. management ----------------------------------------------------------------------------------------

def test_management_pause_clean_retry_remove_obliterate_as_node_sees_it(
        redis_cluster: Cluster, cbull: Peer, cqueue: bullpy.Queue) -> None:
    cqueue.pause()
    assert cbull.call(cqueue, "isPaused") is True
    cbull.call(cqueue, "add", {"n": 1}, {"jobId": "p1"})
    assert cbull.call(cqueue, "getJobCounts")["paused"] == 1
    cqueue.resume()
    assert cbull.call(cqueue, "isPaused") is False and cqueue.get_waiting_count() == 1

    for n in range(2, 5):
        cqueue.add({"n": n, "__peer": {"failTimes": 1}}, job_id=f"f{n}")  # fails once, then succeeds
    cbull.process(cqueue)
    cbull.wait_for_counts(cqueue, completed=1, failed=3)
    assert sorted(cqueue.clean(0, "completed")) == ["p1"]
    cqueue.retry_jobs()
    cbull.wait_for_counts(cqueue, completed=3, failed=0)
    cbull.close(cqueue)

    cqueue.add({"n": 5}, job_id="x-1")
    cqueue.add({"n": 6}, job_id="x-2")
    assert sorted(cqueue.remove_jobs("x-*")) == ["x-1", "x-2"]
    assert cbull.get_job(cqueue, "x-1") is None
    assert cbull.call(cqueue, "getJobCounts")["completed"] == 3

    cqueue.obliterate()
    assert set(cbull.call(cqueue, "getJobCounts").values()) == {0}
    assert redis_cluster.keys(cqueue.prefix.replace("{", "\\{").replace("}", "\\}") + ":*") == []


# --- 5. global events cross ---------------------------------------------------------------------------------

def test_global_completed_events_cross_both_ways(cbull: Peer, make_cluster_queue: Callable[..., bullpy.Queue]) -> None:
    queue = make_cluster_queue()
    cbull.listen(queue, ["global:completed"])
    worker = queue.process(lambda job: {"py": job.data["n"]})
    try:
        job = queue.add({"n": 1})
        assert job is not None
        event = cbull.wait_for_events(queue, "global:completed")[0]
        assert event["args"][:2] == [job.id, json.dumps({"py": 1}, separators=(",", ":"))]
    finally:
        worker.close()

    listener = make_cluster_queue()  # another client, pinned to the same master; PUBLISH reaches every node
    with listener.events("global:completed", timeout=10) as stream:
        node_job = cbull.call(queue, "add", {"n": 2, "__peer": {"return": {"node": 2}}})
        cbull.process(queue, count=1)
        got = next(stream)
    assert (got.name, got.job_id, got.value) == ("global:completed", node_job["id"], {"node": 2})


# --- 6. the CLI -------------------------------------------------------------------------------------------

def test_cli_detects_the_cluster_finds_queues_on_every_master_and_reads_them(
        redis_cluster: Cluster, cbull: Peer) -> None:
    prefix = f"bullpy-cl-cli-{os.urandom(4).hex()}"  # no tag in the prefix: each name carries its own
    names = names_on_every_master(redis_cluster, prefix)
    queues = [bullpy.Queue(name, redis_cluster.url, prefix=prefix, cluster=True) for name in names]
    try:
        assert len({q.client.connection_pool.connection_kwargs["port"] for q in queues}) == 3
        for i, queue in enumerate(queues):
            for n in range(i + 1):
                queue.add({"n": n}, job_id=f"{i}-{n}")
        queues[0].add({"n": 9}, job_id="later", delay=60_000)

        def cli(*args: str) -> Result:
            return CliRunner().invoke(main, ["--redis", redis_cluster.url, "--prefix", prefix, "--format", "json",
                                             *args])

        listed = cli("queues")  # no --cluster: the CLI asks the server (INFO cluster)
        assert listed.exit_code == 0, listed.output
        rows = {r["queue"]: r for r in json.loads(listed.stdout)}
        assert sorted(rows) == names
        assert [rows[n]["waiting"] for n in names] == [1, 2, 3]
        assert json.loads(cli("--cluster", "queues").stdout) == json.loads(listed.stdout)
        from bullpy.widgets import find_queues

        assert find_queues(redis_cluster.url, prefix, cluster=True) == names

        stats = cli("stats", names[0])
        assert stats.exit_code == 0, stats.output
        row = json.loads(stats.stdout)[0]
        assert (row["waiting"], row["delayed"], row["workers"]) == (1, 1, 0)
        jobs = cli("jobs", names[2])
        assert jobs.exit_code == 0, jobs.output
        assert sorted(j["id"] for j in json.loads(jobs.stdout)) == ["2-0", "2-1", "2-2"]

        cbull.process(queues[1], count=2)  # a Node worker on the cluster, as `workers` shows it
        workers = cli("workers", names[1])
        assert workers.exit_code == 0, workers.output
        assert [w["name"] for w in json.loads(workers.stdout)] == [names[1]]
    finally:
        for queue in queues:
            queue.obliterate(force=True)
            queue.close()


# --- 7. a prefix without a hash tag ---------------------------------------------------------------------------

def test_a_prefix_without_hash_tag_is_a_clear_error_and_nothing_is_written(redis_cluster: Cluster,
                                                                          redis_url: str) -> None:
    prefix = f"bullpy-cl-untagged-{os.urandom(4).hex()}"
    with pytest.raises(ValueError, match="would spread over Redis Cluster slots") as raised:
        bullpy.Queue("message-queue", redis_cluster.url, prefix=prefix, cluster=True)
    assert f"prefix='{{{prefix}}}'" in str(raised.value) and "'{message-queue}'" in str(raised.value)
    with pytest.raises(ValueError, match="hash tag"):
        bullpy.Queue("{open", redis_cluster.url, prefix=prefix, cluster=True)  # a tag a job id would close

    result = CliRunner().invoke(main, ["--redis", redis_cluster.url, "--prefix", prefix, "add", "message-queue",
                                       "--data", "{}"])
    assert result.exit_code != 0 and "would spread over Redis Cluster slots" in result.output
    assert redis_cluster.keys(f"{prefix}*") == []
    with pytest.raises(ValueError, match="not a Redis Cluster node"):
        bullpy.Queue("{q}", redis_url, prefix=prefix, cluster=True)  # the suite's single server

    # A node's URL without cluster=True: the first key on another master says what to do.
    elsewhere = next(name for name in (f"{{q-{i}}}" for i in range(100))
                     if redis_cluster.port_of(f"{prefix}:{name}:") != redis_cluster.ports[0])
    queue = bullpy.Queue(elsewhere, redis_cluster.url, prefix=prefix, cluster=False)
    with pytest.raises(RedisRefused, match="cluster=True"):
        queue.add({"n": 1})
    queue.close()
    assert redis_cluster.keys(f"{prefix}*") == []


# --- 8. export / import -----------------------------------------------------------------------------------

def test_export_then_import_into_another_slot_round_trips(
        redis_cluster: Cluster, cbull: Peer, make_cluster_queue: Callable[..., bullpy.Queue], tmp_path: Path) -> None:
    source = make_cluster_queue("{source}", prefix="bullpy-cl-x")
    target = make_cluster_queue("{target}", prefix="bullpy-cl-x")
    try:
        for n in range(3):
            source.add({"n": n}, job_id=f"s{n}", priority=n + 1)
        source.add({"n": 9}, job_id="later", delay=60_000)
        cbull.process(source, count=3)
        cbull.close(source)
        source.add({"n": 4}, job_id="s4")
        path = tmp_path / "queue.bullpy"
        exported = export_queue(source, path)
        assert exported.jobs == 5
        imported = import_queue(path, target)
        assert imported.jobs == 5
        assert target.get_job_counts() == source.get_job_counts() == cbull.call(target, "getJobCounts")
        for job_id in ("s0", "s4", "later"):
            ours, theirs = source.get_job(job_id), cbull.get_job(target, job_id)
            assert ours is not None and theirs is not None
            assert (ours.data, ours.opts, ours.returnvalue) == (theirs["data"], theirs["opts"], theirs["returnvalue"])
        cbull.process(target, count=1)  # Node takes the imported waiting job
        assert cbull.get_job(target, "s4")["returnvalue"] == {"processed": "s4"}  # type: ignore[index]
    finally:
        for queue in (source, target):
            queue.obliterate(force=True)


# --- the other ways in ------------------------------------------------------------------------------------

def test_a_redis_cluster_client_and_the_environment_open_cluster_queues(
        redis_cluster: Cluster, cluster_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    given = redis_cluster.client()
    queue = bullpy.Queue("message-queue", given, prefix=cluster_prefix)
    job = queue.add({"n": 1})
    assert queue.cluster is given and job is not None
    queue.close()
    assert given.get(f"{cluster_prefix}:message-queue:id") == "1"  # the caller's client still works

    monkeypatch.setenv("REDIS_URL", redis_cluster.url)
    monkeypatch.setenv("REDIS_CLUSTER", "1")
    from_env = bullpy.Queue("message-queue", prefix=cluster_prefix)
    try:
        assert from_env.cluster is not None and from_env.get_job(job.id) is not None
        assert "Redis Cluster node 127.0.0.1:" in repr(from_env)
        # A client pinned to one master opens the cluster again for another queue (another slot).
        other = bullpy.Queue("{other}", from_env.client, prefix="bullpy-cl-y")
        assert other.cluster is from_env.cluster
        other.add({"n": 2})
        assert other.get_job_counts()["waiting"] == 1
        other.obliterate()
    finally:
        from_env.obliterate(force=True)
        from_env.close()
