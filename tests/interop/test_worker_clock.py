"""Job times under load in a mixed fleet, on one clock: timestamp <= processedOn <= finishedOn for every job.

Node and Python producers add small batches while Node and Python workers race for each new job, so jobs
are taken by BLMOVE, by the non-blocking move_to_active and by finishing scripts (batched ones too) the
moment they are added. A stamp read before the script runs (or before a batch waits its turn) could then
precede the job's own timestamp; bullpy's scripts read the clock when they run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import bullpy
from bullpy.worker import Worker

from .peer import Peer, PeerQueue
from .pyworker import make_handler
from .test_mixed_fleet import PyWorkerProcess, spawn_pyworker  # noqa: F401  (fixture)

TOTAL = 6000
CHUNK = 20


def _spec(i: int) -> dict[str, Any]:
    behaviour: dict[str, Any] = {"failTimes": 1} if i % 10 == 1 else {}
    if i % 7 == 0:
        behaviour["sleep"] = 2
    return {"name": "clock", "data": {"n": i, "__peer": behaviour}, "opts": {"attempts": 2}}


def _order_problems(jobs: list[bullpy.Job]) -> list[tuple[str, str]]:
    problems = []
    for job in jobs:
        ts, processed, finished = job.timestamp, job.processed_on, job.finished_on
        if ts is None or processed is None or finished is None or not ts <= processed <= finished:
            problems.append((job.id, (f"job {job.id}: timestamp {ts}, processedOn {processed} "
                                      f"({(processed or 0) - (ts or 0):+d} ms), finishedOn {finished}")))
    return problems


def _produce(queue: bullpy.Queue, bull: Peer, pq: PeerQueue) -> None:
    """Node addBulk and Python add_bulk, each from its own thread, in small batches as fast as they go."""
    specs = [_spec(i) for i in range(TOTAL)]
    halves = [specs[k : k + CHUNK] for k in range(0, TOTAL, CHUNK)]
    failures: list[BaseException] = []

    def node_side() -> None:
        try:
            for part in halves[0::2]:
                bull.call(pq, "addBulk", part)
        except BaseException as exc:
            failures.append(exc)

    def python_side() -> None:
        try:
            for part in halves[1::2]:
                queue.add_bulk(part)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=node_side), threading.Thread(target=python_side)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures


def _wait_finished(queue: bullpy.Queue, timeout: float = 120) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = queue.get_job_counts()
        if counts["completed"] + counts["failed"] >= TOTAL and counts["active"] == 0:
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"not all {TOTAL} jobs finished: {counts}")
        time.sleep(0.1)


def test_no_job_is_shown_processed_before_it_was_created_in_a_mixed_fleet_under_load(
    bull: Peer, queue: bullpy.Queue, spawn_pyworker: Callable[..., PyWorkerProcess],  # noqa: F811
) -> None:
    pq = PeerQueue(queue.name, queue.prefix)
    bull.process(pq, concurrency=10)
    worker = Worker(queue, make_handler(), concurrency=50).start()
    spawn_pyworker(queue.name, CONCURRENCY="8")
    _produce(queue, bull, pq)
    counts = _wait_finished(queue)
    assert counts["completed"] == TOTAL
    worker.close()

    jobs = queue.get_jobs(["completed", "failed"])
    assert len(jobs) == TOTAL
    node_ids = {str(r["id"]) for r in bull.processed(pq) if r["outcome"] == "completed"}
    problems = _order_problems(jobs)
    python = [text for job_id, text in problems if job_id not in node_ids]
    node = [text for job_id, text in problems if job_id in node_ids]
    # Node Bull reads Date.now() before it sends moveToActive/moveToFinished, so under this load a few of the
    # Node worker's own jobs can show it (measured: 0 to 2 of 6000, by up to 6 ms); bullpy's never may.
    print(f"out of order: {len(python)} taken by Python workers, {len(node)} by the Node worker: {node[:3]}")
    assert not python, f"{len(python)} of {TOTAL} jobs out of order:\n" + "\n".join(python[:20])
    # Node reads the same times.
    sample = [j for j in jobs][:: TOTAL // 50]
    for job in sample:
        node = bull.get_job(pq, job.id)
        assert node is not None
        assert (node["timestamp"], node["processedOn"], node["finishedOn"]) == (
            job.timestamp, job.processed_on, job.finished_on)
