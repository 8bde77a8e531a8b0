"""One queue on the dashboard: counts to click, wait and processing times, the oldest waiting job, the jobs
running now with their progress, throughput, workers, pause/resume."""

from __future__ import annotations

import collections
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import _display as D
from ..queue import Queue
from ..utils import text
from ._common import (
    W,
    finished_per_minute,
    hide,
    metrics_per_minute,
    read_metrics,
    sampled_per_minute,
)
from .chart import Throughput
from .chart import html as chart_html

STATES = ("waiting", "active", "delayed", "paused", "completed", "failed")
_WORKERS_SHOWN = 10
_ACTIVE_SHOWN = 5
_FIELDS = ("timestamp", "delay", "processedOn", "finishedOn", "progress", "name")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile (``q`` from 0 to 100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


@dataclass(frozen=True)
class Latency:
    """Wait (created or due -> started) and processing (started -> finished) times of recent completed jobs."""

    jobs: int = 0
    wait_p50: float | None = None
    wait_p95: float | None = None
    run_p50: float | None = None
    run_p95: float | None = None


@dataclass(frozen=True)
class Running:
    """A job running now."""

    id: str
    name: str
    progress: Any
    started: int | None


@dataclass
class _Samples:
    completed: collections.deque[tuple[int, int]] = field(default_factory=collections.deque)
    failed: collections.deque[tuple[int, int]] = field(default_factory=collections.deque)


def _int(value: Any) -> int | None:
    try:
        return int(float(text(value))) if value not in (None, b"", "") else None
    except ValueError:
        return None


class QueuePanel(W.VBox):  # type: ignore[misc]
    """One queue's card on the dashboard; ``read()`` costs the same round trips whatever the queue's size."""

    def __init__(self, queue: Queue, minutes: int, recent: int, on_count: Callable[[Queue, str], None],
                 read_only: bool = False) -> None:
        self.queue, self.minutes, self.recent = queue, minutes, recent
        self.counts: dict[str, int] = {}
        self.paused = False
        self.workers: list[dict[str, str]] = []
        self.throughput = Throughput("samples", [0] * minutes, [0] * minutes)
        self.latency = Latency()
        self.oldest_waiting: tuple[str, int] | None = None  # (job id, waiting since, epoch ms)
        self.running: list[Running] = []
        self._samples = _Samples()
        self.title = W.HTML()
        self.pause_button = W.Button(description="Pause", icon="pause", tooltip="Pause the queue for every worker")
        self.pause_button.add_class("bullpy-pause")
        hide(self.pause_button, read_only)
        self.count_buttons = {s: W.Button(description=s, tooltip=f"open the {s} jobs in the inspector") for s in STATES}
        for state, button in self.count_buttons.items():
            button.add_class("bullpy-count")
            button.add_class(f"bullpy-count-{state}")
            button.on_click(lambda _b, s=state: on_count(self.queue, s))
        self.counts_box = W.HBox(list(self.count_buttons.values()))
        self.counts_box.add_class("bullpy-counts-row")
        self.counts_box.add_class("bullpy-dashboard-counts")
        self.stats_html = W.HTML()
        self.stats_html.add_class("bullpy-stats")
        self.running_html = W.HTML()
        self.workers_html = W.HTML()
        self.throughput_html = W.HTML()
        stats = W.VBox([self.counts_box, self.stats_html, self.running_html, self.workers_html])
        stats.add_class("bullpy-panel-stats")
        chart = W.VBox([self.throughput_html])
        chart.add_class("bullpy-panel-chart")
        head = W.HBox([self.title, self.pause_button])
        head.add_class("bullpy-toolbar")
        body = W.HBox([stats, chart])
        body.add_class("bullpy-panel-body")
        super().__init__([head, body])
        self.add_class("bullpy-queue-panel")

    def read(self, now: int) -> None:
        """Read everything this panel shows: nine round trips, whatever the number of jobs."""
        q = self.queue
        counts = q.get_job_counts()
        paused = q.is_paused()
        workers = q.get_workers()
        metrics = read_metrics(q, self.minutes)
        head = q.get_ranges(["wait", "paused"], 0, 0, asc=True)[:1]  # next to run: the longest waiting
        active = q.get_ranges(["active"], 0, _ACTIVE_SHOWN - 1, asc=True)
        recent = q.get_ranges(["completed"], 0, self.recent - 1)  # newest finished first
        failed = q.get_ranges(["failed"], 0, self.recent - 1)
        ids = [*head, *active, *recent, *failed]
        rows = dict(zip(ids, q.get_job_fields(ids, _FIELDS))) if ids else {}
        self._sample(now, counts)
        finishes = {kind: ([t for t in (_int(rows[i][3]) for i in found if i in rows) if t is not None],
                           len(found) >= self.recent)
                    for kind, found in (("completed", recent), ("failed", failed))}
        self.throughput = self._throughput(now, metrics, finishes)
        self.latency = _latency([rows[i] for i in recent if i in rows])
        self.oldest_waiting = None
        if head and head[0] in rows:
            created, delay = _int(rows[head[0]][0]), _int(rows[head[0]][1]) or 0
            if created is not None:
                self.oldest_waiting = (head[0], min(created + delay, now) if delay else created)
        self.running = [_running(i, rows[i]) for i in active if i in rows and any(v is not None for v in rows[i])]
        self.counts, self.paused, self.workers = counts, paused, workers

    def _throughput(self, now: int, metrics: dict[str, tuple[dict[str, int], list[int]] | None],
                    finishes: dict[str, tuple[list[int], bool]]) -> Throughput:
        """Bull's metrics when a worker records them; else the finish times of the newest jobs read, and,
        for the minutes those do not cover (more jobs finished than were read), the sampled counts."""
        completed, failed = metrics["completed"], metrics["failed"]
        if completed is not None or failed is not None:
            zero: tuple[dict[str, int], list[int]] = ({"count": 0, "prevTS": now, "prevCount": 0}, [])
            c_meta, c_data = completed or zero
            f_meta, f_data = failed or zero
            return Throughput("metrics", metrics_per_minute(c_meta, c_data, now, self.minutes),
                              metrics_per_minute(f_meta, f_data, now, self.minutes))
        out: dict[str, list[int]] = {}
        covered: list[int] = []
        for kind in ("completed", "failed"):
            times, full = finishes[kind]
            cutoff = min(times) if full and times else None
            if cutoff is not None:
                covered.append(cutoff)
            seen = finished_per_minute(times, now, self.minutes, cutoff)
            sampled = sampled_per_minute(getattr(self._samples, kind), now, self.minutes)
            out[kind] = [s if n is None else n for n, s in zip(seen, sampled)]
        return Throughput("samples", out["completed"], out["failed"],
                          since=self._samples.completed[0][0] if self._samples.completed else now,
                          covered_since=max(covered) if covered else None, recent=self.recent, at=now)

    def _sample(self, now: int, counts: dict[str, int]) -> None:
        horizon = now - (self.minutes + 1) * 60_000
        for kind in ("completed", "failed"):
            samples: collections.deque[tuple[int, int]] = getattr(self._samples, kind)
            samples.append((now, counts[kind]))
            while len(samples) > 2 and samples[1][0] < horizon:
                samples.popleft()

    def render(self, now: int) -> None:
        flag = " " + D.badge("paused") if self.paused else ""
        self.title.value = f"{D.queue_title(self.queue)}{flag}"
        for state, button in self.count_buttons.items():
            button.description = f"{state} {self.counts.get(state, 0):,}"
        self.pause_button.description = "Resume" if self.paused else "Pause"
        self.pause_button.icon = "play" if self.paused else "pause"
        self.pause_button.tooltip = ("Resume the queue for every worker" if self.paused
                                     else "Pause the queue for every worker")
        self.stats_html.value = self._stats_html(now)
        self.running_html.value = _running_html(self.running, now)
        self.throughput_html.value = chart_html(self.throughput)
        self.workers_html.value = _workers_html(self.workers)

    def _stats_html(self, now: int) -> str:
        lat = self.latency
        if self.oldest_waiting is not None:
            job_id, since = self.oldest_waiting
            oldest = (f"<span data-bullpy-stat='oldest-waiting'>{D.esc(D.format_duration(now - since))}</span> "
                      f"<span style='{D.MUTED}'>(job {D.esc(job_id)})</span>")
        else:
            oldest = f"<span data-bullpy-stat='oldest-waiting' style='{D.MUTED}'>nothing waiting</span>"

        def pair(kind: str, p50: float | None, p95: float | None) -> str:
            if not lat.jobs:
                return f"<span style='{D.MUTED}'>no completed jobs yet</span>"
            return (f"p50 <b data-bullpy-stat='{kind}-p50'>{D.esc(D.format_duration(p50))}</b> · "
                    f"p95 <b data-bullpy-stat='{kind}-p95'>{D.esc(D.format_duration(p95))}</b>")

        of = f" <span style='{D.MUTED}'>(last {lat.jobs:,} completed)</span>" if lat.jobs else ""
        return (f"<table class='bullpy-kv'><tr><th>oldest waiting</th><td>{oldest}</td></tr>"
                f"<tr><th>wait time</th><td>{pair('wait', lat.wait_p50, lat.wait_p95)}{of}</td></tr>"
                f"<tr><th>processing</th><td>{pair('run', lat.run_p50, lat.run_p95)}</td></tr></table>")


def _latency(rows: list[list[Any]]) -> Latency:
    waits: list[float] = []
    runs: list[float] = []
    for row in rows:
        created, delay, started, finished = (_int(v) for v in row[:4])
        if created is not None and started is not None:
            waits.append(max(started - created - (delay or 0), 0))
        if started is not None and finished is not None:
            runs.append(max(finished - started, 0))
    return Latency(max(len(waits), len(runs)), percentile(waits, 50), percentile(waits, 95),
                   percentile(runs, 50), percentile(runs, 95))


def _running(job_id: str, row: list[Any]) -> Running:
    raw = row[4]
    try:
        progress: Any = json.loads(text(raw)) if raw is not None else 0
    except ValueError:
        progress = text(raw)
    return Running(job_id, text(row[5]) if row[5] is not None else "__default__", progress, _int(row[2]))


def _running_html(running: list[Running], now: int) -> str:
    if not running:
        return ""
    lines = []
    for r in running:
        bar = D.progress_bar(r.progress, 80) or f"<span style='{D.MUTED}'>no progress yet</span>"
        took = D.format_duration(now - r.started) if r.started else ""
        lines.append(f"<div class='bullpy-running' style='white-space:nowrap;overflow:hidden;text-overflow:ellipsis'>"
                     f"<code>{D.esc(r.id)}</code> {D.esc(r.name)} {bar} <span style='{D.MUTED}'>{D.esc(took)}</span></div>")
    return f"<div><b>Running now</b> <span style='{D.MUTED}'>(longest first)</span>{''.join(lines)}</div>"


def _workers_html(workers: list[dict[str, str]]) -> str:
    n = len(workers)
    head = f"<span data-bullpy-workers='{n}'>{n} worker{'s' if n != 1 else ''} connected</span>"
    if not workers:
        return f"<div style='{D.MUTED}'>{head}</div>"
    rows = [[D.esc(w.get("addr", "?")), D.esc(w.get("age", "")), D.esc(w.get("idle", "")), D.esc(w.get("cmd", ""))]
            for w in workers[:_WORKERS_SHOWN]]
    more = f"<div style='{D.MUTED}'>and {n - _WORKERS_SHOWN} more</div>" if n > _WORKERS_SHOWN else ""
    table = D.table(["address", "age (s)", "idle (s)", "last command"], rows)
    return f"<details><summary>{head}</summary>{table}{more}</details>"
