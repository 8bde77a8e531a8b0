"""The queues' Prometheus metrics: bull_exporter's gauges and summary, plus counters, histograms and gauges
it lacks, read through ``Queue.get_stats`` (a constant number of round trips per queue, whatever its size)."""

from __future__ import annotations

import bisect
import collections
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis as _redis

from .. import connection
from ..errors import BullError
from ..queue import Queue, QueueStats, find_queues
from ..server import Server
from ..utils import now_ms

try:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
        SummaryMetricFamily,
    )
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - the extra is missing
    from ..errors import MissingDependency

    raise MissingDependency("prometheus_client", "prometheus") from exc

#: bull_exporter's default metric prefix (its METRIC_PREFIX) and port.
DEFAULT_METRIC_PREFIX = "bull_queue_"
DEFAULT_PORT = 9538
#: prom-client's default Summary quantiles, which bull_exporter's complete_duration reports.
QUANTILES = (0.01, 0.05, 0.5, 0.9, 0.95, 0.99, 0.999)
#: bull_exporter's summary window (maxAgeSeconds).
SUMMARY_WINDOW_S = 300.0
PROCESSING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
                      1800.0, 3600.0)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0,
                86400.0)
#: Errors that mean "Redis did not answer as it should": the scrape fails, the exporter keeps running.
REDIS_ERRORS = (BullError, _redis.RedisError, ConnectionError, OSError)
_STATES = ("completed", "failed")


class Histogram:
    """A cumulative histogram's state: bucket counts, sum and count (it never empties)."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip([*self.bounds, math.inf], self.counts):
            running += count
            out.append(("+Inf" if bound == math.inf else _float(bound), float(running)))
        return out

    @property
    def count(self) -> int:
        return sum(self.counts)


class Window:
    """Observations of the last ``seconds`` for quantiles (prom-client's sliding Summary), plus the
    cumulative count and sum."""

    def __init__(self, seconds: float = SUMMARY_WINDOW_S, cap: int = 10_000) -> None:
        self.seconds = seconds
        self.values: collections.deque[tuple[float, float]] = collections.deque(maxlen=cap)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float, at: float) -> None:
        self.values.append((at, value))
        self.count += 1
        self.sum += value

    def quantiles(self, at: float) -> list[tuple[float, float]]:
        while self.values and self.values[0][0] < at - self.seconds:
            self.values.popleft()
        ordered = sorted(v for _, v in self.values)
        if not ordered:
            return [(q, math.nan) for q in QUANTILES]
        return [(q, ordered[min(len(ordered) - 1, int(q * len(ordered)))]) for q in QUANTILES]


@dataclass
class QueueState:
    """What the exporter remembers of one queue between scrapes."""

    queue: Queue
    started_ms: int
    stats: QueueStats | None = None
    workers: int | None = None
    newest: dict[str, float] = field(default_factory=dict)  # the high-water mark of finishedOn per state
    bull_counts: dict[str, int | None] = field(default_factory=dict)  # Bull's metrics count at the last scrape
    totals: dict[str, float] = field(default_factory=dict)
    processing: dict[str, Histogram] = field(default_factory=dict)
    waiting: Histogram = field(default_factory=lambda: Histogram(WAIT_BUCKETS))
    complete_duration: Window = field(default_factory=Window)

    def update(self, stats: QueueStats, at: float) -> None:
        """Fold one scrape into the counters and histograms."""
        first = self.stats is None
        for state in _STATES:
            bull = stats.metrics_counts.get(state)
            seen = stats.finished_counts.get(state, 0)
            if first:
                # Workers that record metrics give the total since the queue began: start there, so the counter
                # carries on across exporter restarts; else count what finished since the exporter started.
                self.totals[state] = float(bull if bull is not None else seen)
            else:
                before = self.bull_counts.get(state)
                if bull is not None and before is not None:
                    delta = bull - before if bull >= before else bull  # a metrics key deleted and begun again
                elif bull is not None:
                    delta = max(bull, seen)  # workers began recording metrics since the last scrape
                else:
                    delta = seen
                self.totals[state] = self.totals.get(state, 0.0) + max(0, delta)
            self.bull_counts[state] = bull
            newest = stats.newest_finished.get(state)
            if newest is not None:
                self.newest[state] = newest
            for job in stats.finished.get(state, ()):
                if job.processing_ms is not None:
                    self.processing.setdefault(state, Histogram(PROCESSING_BUCKETS)).observe(job.processing_ms / 1000)
                    if state == "completed":
                        self.complete_duration.observe(job.processing_ms, at)
                if job.waited_ms is not None:
                    self.waiting.observe(job.waited_ms / 1000)
        self.stats = stats

    def finished_after(self) -> dict[str, float]:
        return {state: self.newest.get(state, float(self.started_ms)) for state in _STATES}


def _float(value: float) -> str:
    return repr(float(value))


class QueueExporter(Collector):
    """Prometheus metrics of every Bull queue under a prefix (or of the queues named), for ``/metrics``.

    Register it in a ``prometheus_client`` registry (each collection reads Redis: ``scrape()``), or serve it
    with ``serve()``. Metric names and labels (``queue``, ``prefix``) follow bull_exporter, so its Grafana
    dashboard works unchanged; see the README ("Prometheus metrics") for every metric.

    Args:
        redis: a URL, a ``redis.Redis``/``RedisCluster``, or None for the environment (as ``Queue``).
        prefix: Bull's key prefix.
        queues: the queue names to export; None discovers every queue under the prefix with SCAN (at start,
            every ``rediscover`` seconds in the background, and on demand: ``discover()``).
        metric_prefix: bull_exporter's ``METRIC_PREFIX``.
        rediscover: seconds between background discoveries (0: only at start and on demand).
        sample_limit: at most this many newly finished jobs per state and queue feed the histograms at each
            scrape (the counters count them all).
    """

    def __init__(self, redis: str | _redis.Redis | Any | None = None, *, prefix: str = "bull",
                 queues: Iterable[str] | None = None, metric_prefix: str = DEFAULT_METRIC_PREFIX,
                 rediscover: float = 300.0, sample_limit: int = 1000, cluster: bool | None = None) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
        if isinstance(sample_limit, bool) or not isinstance(sample_limit, int) or sample_limit < 1:
            raise ValueError(f"sample_limit must be a positive integer, got {sample_limit!r}")
        if not isinstance(rediscover, (int, float)) or rediscover < 0:
            raise ValueError(f"rediscover must be a number of seconds >= 0, got {rediscover!r}")
        self.prefix, self.metric_prefix = prefix, metric_prefix
        self.sample_limit, self.rediscover = sample_limit, float(rediscover)
        self.discovering = queues is None
        self._cluster = connection.wants_cluster(redis, cluster)
        # One connection shared by every queue the exporter opens (a cluster: each queue pins its own master).
        self._client: Any = connection.resolve_cluster(redis) if self._cluster else connection.resolve(redis)
        self._owns_client = redis is None or isinstance(redis, str)
        self._states: dict[str, QueueState] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.up = 0.0
        self.scrape_seconds = 0.0
        self.server_info: dict[str, Any] = {}
        if queues is None:
            self.discover()
        else:
            self._set_queues([str(q) for q in queues])

    # --- queues ------------------------------------------------------------------------------------------
    def _open(self, name: str) -> Queue:
        return Queue(name, self._client, prefix=self.prefix, cluster=self._cluster or None)

    def _set_queues(self, names: Sequence[str]) -> None:
        with self._lock:
            for name in names:
                if name not in self._states:
                    self._states[name] = QueueState(self._open(name), now_ms())

    @property
    def queues(self) -> list[str]:
        with self._lock:
            return sorted(self._states)

    def discover(self) -> list[str]:
        """Look for queues under the prefix (SCAN, never KEYS); queues gone are dropped. Returns the names."""
        names = find_queues(self._client, self.prefix, cluster=self._cluster or None)
        with self._lock:
            for gone in set(self._states) - set(names):
                del self._states[gone]
            self._set_queues(names)
        return names

    def start(self) -> QueueExporter:
        """Rediscover queues in a background thread every ``rediscover`` seconds (when discovering)."""
        if self.discovering and self.rediscover and self._thread is None:
            self._thread = threading.Thread(target=self._rediscover, name="bullpy-exporter-discovery", daemon=True)
            self._thread.start()
        return self

    def _rediscover(self) -> None:
        while not self._stop.wait(self.rediscover):
            try:
                self.discover()
            except REDIS_ERRORS:
                continue  # Redis is away: /health says so; the next round tries again

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._owns_client:
            self._client.close()

    # --- reading ----------------------------------------------------------------------------------------
    def _server(self) -> Server | None:
        with self._lock:
            first = next(iter(self._states.values()), None)
        if first is not None:
            return first.queue.server
        return None if self._cluster else Server(self._client)

    def ping(self) -> float:
        """Seconds one PING took; raises when Redis does not answer (what ``/health`` asks)."""
        return (self._server() or Server(self._client)).ping()

    def scrape(self) -> None:
        """Read every queue (``Queue.get_stats``: two round trips each) and the server (INFO clients and CLIENT
        LIST: two round trips in all) and fold them into the metrics. Raises when Redis does not answer."""
        start = time.perf_counter()
        with self._lock:
            try:
                server = self._server()
                self.server_info = server.info("clients") if server is not None else {}
                clients = server.clients() if server is not None else None
                at = time.monotonic()
                for state in self._states.values():
                    stats = state.queue.get_stats(state.finished_after(), limit=self.sample_limit)
                    state.update(stats, at)
                    state.workers = state.queue.count_workers(clients) if clients is not None else None
            except BaseException:
                self.up = 0.0
                raise
            self.up = 1.0
            self.scrape_seconds = time.perf_counter() - start

    def collect(self) -> Iterator[Metric]:
        """Read Redis now and yield every metric (what a registry calls on each scrape)."""
        self.scrape()
        yield from self.families()

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names depend on the queues found: no registry-time check (and no Redis read)

    def families(self) -> Iterator[Metric]:
        """The metrics as of the last scrape."""
        p, labels = self.metric_prefix, ["queue", "prefix"]
        with self._lock:
            states = sorted(self._states.items())
            info = dict(self.server_info)
        now_wall, now_mono = now_ms(), time.monotonic()

        def gauge(name: str, doc: str, value_of: Any) -> Metric:
            family = GaugeMetricFamily(p + name, doc, labels=labels)
            for queue_name, state in states:
                value = value_of(state)
                if value is not None:
                    family.add_metric([queue_name, self.prefix], float(value))
            return family

        def count(key: str) -> Any:
            return lambda s: None if s.stats is None else s.stats.counts[key]

        # bull_exporter's gauges (getJobCounts), summary and Redis client gauges, with its names and labels.
        yield gauge("completed", "Number of completed messages", count("completed"))
        yield gauge("failed", "Number of failed messages", count("failed"))
        yield gauge("delayed", "Number of delayed messages", count("delayed"))
        yield gauge("active", "Number of active messages", count("active"))
        yield gauge("waiting", "Number of waiting messages", count("waiting"))
        summary = SummaryMetricFamily(p + "complete_duration", "Time to complete jobs", labels=labels)
        for queue_name, state in states:
            window = state.complete_duration
            summary.add_metric([queue_name, self.prefix], count_value=window.count, sum_value=window.sum)
            for q, value in window.quantiles(now_mono):
                summary.add_sample(p + "complete_duration",
                                   {"queue": queue_name, "prefix": self.prefix, "quantile": _float(q)}, value)
        yield summary
        for key, doc in (("connected_clients", "Connected clients"), ("blocked_clients", "Blocked clients")):
            server_value = info.get(key)
            yield gauge(key, doc, lambda s, v=server_value: v)
        # What bull_exporter's users ask for.
        yield gauge("paused", "Number of jobs waiting in the paused list (getJobCounts' paused)", count("paused"))
        yield gauge("is_paused", "1 when the queue is globally paused, else 0",
                    lambda s: None if s.stats is None else int(s.stats.paused))
        for state_name in _STATES:
            total = CounterMetricFamily(
                p + f"{state_name}_total",
                f"Jobs {state_name} (from Bull's metrics keys when workers record them, else observed "
                "finishing since the exporter started); only goes up", labels=labels)
            for queue_name, state in states:
                if state.stats is not None:
                    total.add_metric([queue_name, self.prefix], state.totals.get(state_name, 0.0))
            yield total
        yield gauge("metrics_recorded", "1 when workers record Bull's metrics (the _total counters then come "
                    "from them), else 0",
                    lambda s: None if s.stats is None else int(any(s.bull_counts.get(t) is not None for t in _STATES)))
        processing = HistogramMetricFamily(p + "processing_duration_seconds",
                                           "How long jobs took, from processedOn to finishedOn (their last attempt)",
                                           labels=[*labels, "status"])
        for queue_name, state in states:
            for state_name in _STATES:
                histogram = state.processing.get(state_name) or Histogram(PROCESSING_BUCKETS)
                processing.add_metric([queue_name, self.prefix, state_name], histogram.buckets(), histogram.sum)
        yield processing
        waited = HistogramMetricFamily(p + "wait_duration_seconds",
                                       "How long finished jobs waited, from ready (created plus delay) to processedOn",
                                       labels=labels)
        for queue_name, state in states:
            waited.add_metric([queue_name, self.prefix], state.waiting.buckets(), state.waiting.sum)
        yield waited

        def oldest(s: QueueState) -> float | None:
            if s.stats is None:
                return None
            since = s.stats.oldest_waiting_since
            return 0.0 if since is None else max(0.0, (now_wall - since) / 1000)

        yield gauge("oldest_waiting_age_seconds", "Age of the longest-waiting job at either end of the wait "
                    "(or paused) list, since it became ready; 0 when none waits", oldest)
        yield gauge("workers", "Connected workers (Node or Python; Bull's getWorkers)", lambda s: s.workers)
        exporter = GaugeMetricFamily("bull_exporter_up", "1 when the last scrape read Redis, else 0",
                                     value=self.up)
        yield exporter
        yield GaugeMetricFamily("bull_exporter_queues", "Queues exported", value=float(len(states)))
        yield GaugeMetricFamily("bull_exporter_scrape_duration_seconds", "How long reading Redis took",
                                value=self.scrape_seconds)
