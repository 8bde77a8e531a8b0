"""Prometheus metrics of Bull queues (``pip install 'bullpy[prometheus]'``): bull_exporter's, and more.

    from bullpy.exporter import QueueExporter, serve
    server = serve(QueueExporter("redis://prod:6379/0"), port=9538)   # /metrics, /health; bullpy exporter

``QueueExporter`` reads every queue under a prefix (found with SCAN) through ``Queue.get_stats``: two round
trips per queue and two for the server per scrape, whatever the queues' sizes. Its metric names and labels
are bull_exporter's (``bull_queue_waiting{queue, prefix}``...), so bull_exporter's Grafana dashboard works
unchanged. ``WorkerMetrics(worker).serve(port)`` exposes a running ``bullpy.Worker``'s own metrics.
"""

from __future__ import annotations

# The collector first: without the extra it raises MissingDependency naming `pip install 'bullpy[prometheus]'`.
from .collector import DEFAULT_METRIC_PREFIX, DEFAULT_PORT, QueueExporter  # isort: skip
from prometheus_client import CollectorRegistry, generate_latest  # isort: skip

from .http import MetricsServer
from .worker import WorkerMetrics

__all__ = ["DEFAULT_METRIC_PREFIX", "DEFAULT_PORT", "MetricsServer", "QueueExporter", "WorkerMetrics", "render",
           "serve"]


def render(exporter: QueueExporter) -> bytes:
    """One scrape in Prometheus' text format (reads Redis now; raises when Redis does not answer)."""
    registry = CollectorRegistry()
    registry.register(exporter)
    return generate_latest(registry)


def serve(exporter: QueueExporter, port: int = DEFAULT_PORT, host: str = "0.0.0.0") -> MetricsServer:
    """Serve ``/metrics``, ``/health`` (``/healthz``) and ``POST /discover_queues`` from a daemon thread, and
    start the exporter's background discovery; ``close()`` the server to stop serving."""
    server = MetricsServer(lambda: render(exporter), exporter.ping, host=host, port=port, discover=exporter.discover)
    exporter.start()
    return server.start()
