"""The exporter on queues real Node Bull workers are using (its figures equal get_job_counts() and Node's
getJobCounts(); its counters equal the metrics Node's workers record), and the README's FastAPI app
(bullpy.aio) queues jobs the Node WhatsApp worker sends."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bullpy

from .peer import Peer, PeerQueue

pytest.importorskip("prometheus_client")
from bullpy.exporter import QueueExporter, render

from ..test_exporter import samples, value

ROOT = Path(__file__).resolve().parents[2]
STATES = ("waiting", "active", "completed", "failed", "delayed", "paused")


@pytest.fixture
def exporter(redis_url: str, prefix: str) -> Iterator[QueueExporter]:
    made = QueueExporter(redis_url, prefix=prefix, queues=["sender", "paused-q"])
    yield made
    made.close()


def test_figures_equal_get_job_counts_on_queues_node_workers_use(
    make_queue: Any, exporter: QueueExporter, bull: Peer, prefix: str,
) -> None:
    sender, paused = make_queue("sender"), make_queue("paused-q")
    q = PeerQueue("sender", prefix=prefix, metrics={"maxDataPoints": 60})
    render(exporter)  # the exporter runs before the workers start
    sender.add_bulk([{"data": {"number": f"55119{i:04d}", "message": "hi", "delay": 0,
                               **({"__peer": {"fail": "not on WhatsApp"}} if i % 5 == 4 else {})}}
                     for i in range(20)])
    sender.add({"later": True}, delay=3_600_000)
    bull.process(q, concurrency=2, behaviour={"sleep": 20})

    # Mid-flight: one snapshot, so the six counts always add up to every job.
    labels = {"queue": "sender", "prefix": prefix}
    found = samples(render(exporter))
    assert sum(value(found, f"bull_queue_{s}", **labels) for s in STATES) == 21
    assert value(found, "bull_queue_active", **labels) <= 2

    bull.wait_for_counts(q, completed=16, failed=4, timeout=30)
    p = PeerQueue("paused-q", prefix=prefix)
    for i in range(3):
        bull.call(p, "add", {"i": i})
    bull.call(p, "pause")
    found = samples(render(exporter))
    for queue, peer_queue in ((sender, q), (paused, p)):
        labels = {"queue": queue.name, "prefix": prefix}
        ours, nodes = queue.get_job_counts(), bull.call(peer_queue, "getJobCounts")
        assert ours == nodes
        for state in STATES:
            assert value(found, f"bull_queue_{state}", **labels) == ours[state], (queue.name, state)
        assert value(found, "bull_queue_is_paused", **labels) == int(bull.call(peer_queue, "isPaused"))
        assert value(found, "bull_queue_workers", **labels) == len(bull.call(peer_queue, "getWorkers"))
    labels = {"queue": "sender", "prefix": prefix}
    assert value(found, "bull_queue_workers", **labels) >= 1
    # Node's workers record Bull's metrics: the counters are theirs, and every finished job was timed.
    assert value(found, "bull_queue_metrics_recorded", **labels) == 1
    assert value(found, "bull_queue_completed_total", **labels) == bull.call(q, "getMetrics", "completed")["meta"][
        "count"] == 16
    assert value(found, "bull_queue_failed_total", **labels) == 4
    assert value(found, "bull_queue_processing_duration_seconds_count", **labels, status="completed") == 16
    assert value(found, "bull_queue_processing_duration_seconds_sum", **labels, status="completed") >= 16 * 0.02
    assert value(found, "bull_queue_wait_duration_seconds_count", **labels) == 20
    assert value(found, "bull_queue_complete_duration_count", **labels) == 16
    assert value(found, "bull_queue_complete_duration", **labels, quantile="0.5") >= 20  # ms
    assert value(found, "bull_queue_oldest_waiting_age_seconds", queue="paused-q", prefix=prefix) >= 0


# --- the README's FastAPI example -------------------------------------------------------------------------

def _load_example(env: dict[str, str]) -> Any:
    os.environ.update(env)
    name = f"fastapi_app_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "fastapi_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_readme_shows_the_fastapi_example_verbatim() -> None:
    source = (ROOT / "examples" / "fastapi_app.py").read_text()
    body = source.split('"""', 2)[2].lstrip("\n")  # the module docstring is the README's prose
    assert body in (ROOT / "README.md").read_text()


def test_fastapi_example_queues_jobs_the_node_worker_sends(
    redis_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    testclient = pytest.importorskip("fastapi.testclient")
    for key in ("REDIS_URL", "QUEUE_NAME", "BULL_PREFIX"):
        monkeypatch.delenv(key, raising=False)
    example = _load_example({"REDIS_URL": redis_url, "QUEUE_NAME": "message-queue", "BULL_PREFIX": prefix})
    messages = [{"number": f"+55 11 9{i:04d}-0000", "message": f"Olá {i}!"} for i in range(3)]
    with testclient.TestClient(example.app) as client:
        ids = [client.post("/messages", json=m).json()["id"] for m in messages]
        assert ids == ["1", "2", "3"]
        reply = client.post("/campaigns", json=[{"number": "+55 11 98888-0000", "message": "promo", "delay": 0}] * 2)
        assert reply.json() == {"queued": 2}
        assert client.get("/stats").json()["waiting"] == 5

        log = tmp_path / "sent.jsonl"
        environ = {**os.environ, "REDIS_URL": redis_url, "QUEUE_NAME": "message-queue", "BULL_PREFIX": prefix,
                   "DRY_RUN_LOG": str(log), "EXIT_WHEN_DRAINED": "1"}
        worker = subprocess.run(["node", "worker.js"], cwd=ROOT / "bridge", env=environ, timeout=90,
                                capture_output=True, text=True, check=False)
        assert worker.returncode == 0, worker.stderr
        sent = [json.loads(line) for line in log.read_text().splitlines()]
        assert sorted(s["message"] for s in sent) == ["Olá 0!", "Olá 1!", "Olá 2!", "promo", "promo"]
        assert client.get("/stats").json() == {"waiting": 0, "active": 0, "completed": 5, "failed": 0,
                                               "delayed": 0, "paused": 0}
    queue = bullpy.Queue("message-queue", redis_url, prefix=prefix)
    try:
        job = queue.get_job("1")
        assert job is not None and job.opts["attempts"] == 3 and job.returnvalue["success"] is True
        assert job.data == {"number": "+55 11 90000-0000", "message": "Olá 0!", "delay": 0}
    finally:
        queue.close()

