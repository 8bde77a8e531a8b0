"""On a Redis Cluster (one clock, this host): Node adds jobs while a bullpy Worker takes them as they come;
no job is shown processed before it was created, nor finished before it was processed."""

from __future__ import annotations

import time

import bullpy
from bullpy.worker import Worker

from ..interop.peer import Peer


def test_python_worker_never_stamps_a_job_before_its_timestamp_on_the_cluster(cbull: Peer, cqueue: bullpy.Queue) -> None:
    total = 1000
    worker = Worker(cqueue, lambda job: job.data["n"], concurrency=50).start()
    try:
        for start in range(0, total, 10):  # small batches, so the worker races each add
            cbull.call(cqueue, "addBulk", [{"data": {"n": n}} for n in range(start, start + 10)])
        deadline = time.monotonic() + 30
        while cqueue.get_completed_count() < total and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.close()
    jobs = cqueue.get_jobs(["completed"])
    assert len(jobs) == total
    wrong = [(j.id, j.timestamp, j.processed_on, j.finished_on) for j in jobs
             if not (j.timestamp or 0) <= (j.processed_on or 0) <= (j.finished_on or 0)]
    assert not wrong, f"{len(wrong)} of {total} out of order, e.g. {wrong[:5]}"
