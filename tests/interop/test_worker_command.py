"""``bullpy worker`` beside a Node Bull worker: jobs Node added are processed exactly once, whichever side
takes them, and the command stops cleanly on SIGTERM."""

from __future__ import annotations

import collections
import signal
import time
from collections.abc import Callable
from pathlib import Path

import bullpy

from ..test_worker_service import ServiceProcess, runs, service  # noqa: F401  (fixture)
from .peer import Peer, PeerQueue


def test_bullpy_worker_and_a_node_worker_process_node_jobs_exactly_once(
    bull: Peer, queue: bullpy.Queue, service: Callable[..., ServiceProcess], tmp_path: Path,  # noqa: F811
) -> None:
    total = 2000
    pq = PeerQueue(queue.name, queue.prefix)
    listener = PeerQueue(queue.name, queue.prefix, settings={"stalledInterval": 0})
    bull.listen(listener, ["global:completed"])
    bull.process(pq, concurrency=4)
    python = service(queue.name, "--concurrency", "8", "--processes", "2")
    python.wait_started(2)
    for start in range(0, total, 100):  # Node adds while both sides work
        bull.call(pq, "addBulk", [{"name": "send", "data": {"n": i}} for i in range(start, start + 100)])
    deadline = time.monotonic() + 60
    while queue.get_completed_count() < total and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queue.get_job_counts() == {"waiting": 0, "active": 0, "completed": total, "failed": 0, "delayed": 0,
                                      "paused": 0}
    node_done = [str(r["id"]) for r in bull.processed(pq) if r["outcome"] == "completed"]
    python_done = runs(tmp_path)
    assert set(python_done.values()) == {1} and not set(python_done) & set(node_done)
    assert len(node_done) + len(python_done) == total and len(set(node_done)) == len(node_done)
    assert len(node_done) >= total * 0.05 and len(python_done) >= total * 0.05, (len(node_done), len(python_done))
    # Both Python processes worked, and Node heard one global completed event per job.
    assert len({e["pid"] for e in python.events("completed")}) == 2
    deadline = time.monotonic() + 10
    while len(bull.events(listener)) < total and time.monotonic() < deadline:
        time.sleep(0.1)
    completed = collections.Counter(str(e["args"][0]) for e in bull.events(listener))
    assert len(completed) == total and set(completed.values()) == {1}
    for job in queue.get_jobs(["completed"])[:: total // 20]:
        node = bull.get_job(pq, job.id)
        assert node is not None and node["returnvalue"] == job.returnvalue
        assert node["timestamp"] <= node["processedOn"] <= node["finishedOn"] or str(job.id) in node_done
    python.signal(signal.SIGTERM)
    assert python.wait(30) == 0
