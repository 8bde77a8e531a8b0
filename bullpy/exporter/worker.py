"""A running ``bullpy.Worker``'s own metrics: jobs processed by outcome, handler durations, jobs running."""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from ..worker import Worker
from .collector import PROCESSING_BUCKETS
from .http import MetricsServer


class WorkerMetrics:
    """Prometheus metrics of the workers on one Queue object, from its local events.

        worker = Worker(queue, send, concurrency=10)
        metrics = WorkerMetrics(worker).serve(9539)   # http://host:9539/metrics, /health
        worker.run()

    ``bullpy_worker_jobs_total{queue, prefix, status}`` (completed, failed), ``bullpy_worker_job_duration_seconds``
    (a histogram per status: from the job's ``active`` event to its finishing), ``bullpy_worker_active_jobs``,
    ``bullpy_worker_stalled_total``, ``bullpy_worker_errors_total`` and ``bullpy_worker_concurrency``. Local events
    are those of every worker on ``worker.queue``: give each worker its own Queue to tell them apart.
    ``/health`` answers 200 while the worker runs, else 503.
    """

    def __init__(self, worker: Worker, *, registry: CollectorRegistry | None = None) -> None:
        self.worker = worker
        self.queue = worker.queue
        self.registry = registry if registry is not None else CollectorRegistry()
        labels = {"queue": self.queue.name, "prefix": self.queue.prefix}
        names = ["queue", "prefix"]
        self._jobs = Counter("bullpy_worker_jobs", "Jobs this process's workers finished, by outcome",
                             [*names, "status"], registry=self.registry)
        self._durations = Histogram("bullpy_worker_job_duration_seconds",
                                    "How long handlers ran, from the job's active event to its finishing",
                                    [*names, "status"], buckets=PROCESSING_BUCKETS, registry=self.registry)
        self._active = Gauge("bullpy_worker_active_jobs", "Jobs running in this process's workers", names,
                             registry=self.registry).labels(**labels)
        self._stalled = Counter("bullpy_worker_stalled", "Jobs this process found stalled", names,
                                registry=self.registry).labels(**labels)
        self._errors = Counter("bullpy_worker_errors", "Errors the workers reported (the error event)", names,
                               registry=self.registry).labels(**labels)
        Gauge("bullpy_worker_concurrency", "Jobs the worker runs at once", names,
              registry=self.registry).labels(**labels).set(worker.concurrency)
        self._labels = labels
        for status in ("completed", "failed"):  # both series from the start, so rate() sees the first job
            self._jobs.labels(**labels, status=status)
            self._durations.labels(**labels, status=status)
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server: MetricsServer | None = None
        self._listeners = [("active", self._on_active), ("completed", self._on_completed),
                           ("failed", self._on_failed), ("stalled", self._on_stalled), ("error", self._on_error)]
        for event, callback in self._listeners:
            self.queue.on(event, callback)

    def _on_active(self, job: Any, *_: Any) -> None:
        with self._lock:
            self._started[job.id] = time.monotonic()
        self._active.inc()

    def _finished(self, job: Any, status: str) -> None:
        with self._lock:
            started = self._started.pop(job.id, None)
        self._jobs.labels(**self._labels, status=status).inc()
        if started is not None:
            self._active.dec()
            self._durations.labels(**self._labels, status=status).observe(time.monotonic() - started)

    def _on_completed(self, job: Any, *_: Any) -> None:
        self._finished(job, "completed")

    def _on_failed(self, job: Any, *_: Any) -> None:
        self._finished(job, "failed")

    def _on_stalled(self, *_: Any) -> None:
        self._stalled.inc()

    def _on_error(self, *_: Any) -> None:
        self._errors.inc()

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)

    def _health(self) -> None:
        if not self.worker.running:
            raise RuntimeError("the worker is not running")

    def serve(self, port: int, host: str = "0.0.0.0") -> WorkerMetrics:
        """Serve ``/metrics`` and ``/health`` on ``host:port`` from a daemon thread; returns self."""
        if self._server is None:
            self._server = MetricsServer(self.render, self._health, host=host, port=port).start()
        return self

    @property
    def port(self) -> int | None:
        """The port served on (None before ``serve``)."""
        return None if self._server is None else self._server.port

    def close(self) -> None:
        """Stop serving and listening to the worker's events."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for event, callback in self._listeners:
            self.queue.off(event, callback)
