"""QueueDashboard: live counts, throughput, paused state and workers of one or several queues."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import _display as D
from ..queue import Queue
from ._common import (
    Refresher,
    RefreshingBox,
    W,
    check_interval,
    metrics_per_minute,
    now_ms,
    queues_of,
    read_metrics,
    sampled_per_minute,
)

#: How long a maxmemory-policy answer is trusted before it is asked again.
_POLICY_TTL_MS = 60_000
_WORKERS_SHOWN = 10


@dataclass
class Throughput:
    """Jobs finished per minute, index 0 the current (open) minute."""

    source: str  # "metrics" (Bull's metrics keys) or "samples" (differences of sampled counts)
    completed: list[int]
    failed: list[int]
    since: int | None = None  # for samples: when sampling started (epoch ms)


@dataclass
class _Samples:
    completed: collections.deque[tuple[int, int]] = field(default_factory=collections.deque)
    failed: collections.deque[tuple[int, int]] = field(default_factory=collections.deque)


class QueuePanel(W.VBox):  # type: ignore[misc]
    """One queue's part of the dashboard."""

    def __init__(self, queue: Queue, minutes: int) -> None:
        self.queue = queue
        self.minutes = minutes
        self.counts: dict[str, int] = {}
        self.paused = False
        self.workers: list[dict[str, str]] = []
        self.throughput = Throughput("samples", [0] * minutes, [0] * minutes)
        self._samples = _Samples()
        self.title = W.HTML()
        self.counts_html = W.HTML()
        self.counts_html.add_class("bullpy-dashboard-counts")
        self.pause_button = W.Button(description="Pause", icon="pause", tooltip="Pause the queue for every worker")
        self.pause_button.add_class("bullpy-pause")
        self.workers_html = W.HTML()
        self.throughput_html = W.HTML()
        super().__init__([
            W.HBox([self.title, self.pause_button], layout=W.Layout(align_items="center")),
            self.counts_html, self.throughput_html, self.workers_html,
        ], layout=W.Layout(border="1px solid #ddd", padding="4px 8px", margin="4px 0"))
        self.add_class("bullpy-queue-panel")

    def read(self) -> None:
        """Read everything this panel shows: four round trips, whatever the number of jobs."""
        now = now_ms()
        counts = self.queue.get_job_counts()
        paused = self.queue.is_paused()
        workers = self.queue.get_workers()
        metrics = read_metrics(self.queue, self.minutes)
        self._sample(now, counts)
        completed, failed = metrics["completed"], metrics["failed"]
        if completed is not None or failed is not None:
            zero: tuple[dict[str, int], list[int]] = ({"count": 0, "prevTS": now, "prevCount": 0}, [])
            c_meta, c_data = completed or zero
            f_meta, f_data = failed or zero
            self.throughput = Throughput(
                "metrics",
                metrics_per_minute(c_meta, c_data, now, self.minutes),
                metrics_per_minute(f_meta, f_data, now, self.minutes),
            )
        else:
            self.throughput = Throughput(
                "samples",
                sampled_per_minute(self._samples.completed, now, self.minutes),
                sampled_per_minute(self._samples.failed, now, self.minutes),
                since=self._samples.completed[0][0] if self._samples.completed else now,
            )
        self.counts, self.paused, self.workers = counts, paused, workers

    def _sample(self, now: int, counts: dict[str, int]) -> None:
        horizon = now - (self.minutes + 1) * 60_000
        for kind in ("completed", "failed"):
            samples: collections.deque[tuple[int, int]] = getattr(self._samples, kind)
            samples.append((now, counts[kind]))
            while len(samples) > 2 and samples[1][0] < horizon:
                samples.popleft()

    def render(self) -> None:
        flag = " " + D.badge("paused") if self.paused else ""
        self.title.value = f"{D.queue_title(self.queue)}{flag}"
        self.counts_html.value = D.counts_table(self.counts)
        self.pause_button.description = "Resume" if self.paused else "Pause"
        self.pause_button.icon = "play" if self.paused else "pause"
        self.pause_button.tooltip = ("Resume the queue for every worker" if self.paused
                                     else "Pause the queue for every worker")
        self.throughput_html.value = _throughput_html(self.throughput)
        self.workers_html.value = _workers_html(self.workers)


def _throughput_html(t: Throughput) -> str:
    peak = max([1, *t.completed, *t.failed])
    bars = []
    for age in reversed(range(len(t.completed))):
        c, f = t.completed[age], t.failed[age]
        label = "this minute" if age == 0 else f"{age} min ago"
        bars.append(
            f"<div title='{label}: {c} completed, {f} failed' style='display:inline-flex;flex-direction:column-reverse;"
            f"width:10px;height:30px;margin-right:2px;vertical-align:bottom;background:#f4f4f4'>"
            f"<div style='height:{30 * c / peak:.0f}px;background:{D.STATE_COLORS['completed']}'></div>"
            f"<div style='height:{30 * f / peak:.0f}px;background:{D.STATE_COLORS['failed']}'></div></div>"
        )
    where = "Bull's metrics" if t.source == "metrics" else "sampled counts"
    if t.source == "samples" and t.since is not None:
        where += f" since {D.short_time(t.since)} UTC"
    total_c, total_f = sum(t.completed), sum(t.failed)
    return (
        f"<div class='bullpy-throughput' data-bullpy-source='{t.source}'>{''.join(bars)} "
        f"<span>this minute: <b data-bullpy-rate='completed'>{t.completed[0]}</b> completed, "
        f"<b data-bullpy-rate='failed'>{t.failed[0]}</b> failed · last {len(t.completed)} min: "
        f"{total_c:,} completed, {total_f:,} failed</span> <span style='{D.MUTED}'>({D.esc(where)})</span></div>"
    )


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


class QueueDashboard(RefreshingBox):
    """Counts per state of one or several queues, refreshed in the background every ``refresh`` seconds.

    Shows throughput over the last ``minutes`` minutes (from Bull's metrics keys when a worker records
    them, else from the sampled counts), the paused state with a pause/resume button, the connected
    workers (Bull's client names) and a warning when Redis may evict keys. Each refresh costs a fixed
    number of round trips per queue, whatever the number of jobs. ``close()`` stops the refresh;
    ``refresh=None`` refreshes only on ``refresh_now()`` or the button.
    """

    def __init__(self, queue_or_queues: Queue | Iterable[Queue], refresh: float | None = 2.0, *,
                 minutes: int = 10) -> None:
        queues = queues_of(queue_or_queues)
        interval = check_interval(refresh)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 120:
            raise ValueError(f"minutes must be an integer from 1 to 120, got {minutes!r}")
        self.queues = queues
        self.panels = [QueuePanel(q, minutes) for q in queues]
        self.header = W.HTML()
        self.warning = W.HTML()
        self.warning.add_class("bullpy-eviction-warning")
        self.status = W.HTML()
        self.status.add_class("bullpy-status")
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="auto"))
        self.auto = W.Checkbox(value=interval is not None, description="auto-refresh", indent=False,
                               disabled=interval is None, layout=W.Layout(width="auto"))
        self.refreshes = 0
        self.error: BaseException | None = None
        self.policies: dict[str, str | None] = {}
        self._policy_checked: dict[str, tuple[int, str | None]] = {}
        self._lock = threading.Lock()
        self._hidden = False
        super().__init__([
            W.HBox([self.header, self.refresh_button, self.auto], layout=W.Layout(align_items="center")),
            self.warning, *self.panels, self.status,
        ])
        self.add_class("bullpy-dashboard")
        self.refresh_button.on_click(lambda _b: self.refresh_now())
        for panel in self.panels:
            panel.pause_button.on_click(self._toggle_pause_of(panel))
        # Track the views the front end shows: a dashboard whose output was cleared stops reading Redis
        # until it is displayed again (None, the default, would mean "not tracked").
        self._view_count = 0
        self.observe(self._on_views, names="_view_count")
        self.interval = interval
        self.refresh_now()
        self._refresher = Refresher(self, interval, "bullpy-dashboard").start() if interval else None

    # --- refreshing ------------------------------------------------------------------------------------
    def refresh_now(self) -> None:
        """Read every queue again and update the display (what the background thread does)."""
        with self._lock:
            try:
                for panel in self.panels:
                    panel.read()
                self._check_policies()
                self.error = None
            except D.REDIS_ERRORS as exc:
                self.error = exc
            self.refreshes += 1
            self._render()

    def _tick(self) -> None:
        if self.auto.value and not self._hidden and self.comm is not None:
            self.refresh_now()

    def _on_views(self, change: dict[str, Any]) -> None:
        self._hidden = bool(change["old"]) and not change["new"]

    def _check_policies(self) -> None:
        now = now_ms()
        seen: set[str] = set()
        for q in self.queues:
            # Keyed by where the server is (no round trip): the warnings are shown per place anyway.
            where = _where(q)
            if where in seen:
                continue
            seen.add(where)
            checked = self._policy_checked.get(where)
            if checked is None or now - checked[0] > _POLICY_TTL_MS:
                checked = (now, q.server.eviction_policy())
                self._policy_checked[where] = checked
            self.policies[D.esc(where)] = checked[1]

    def _render(self) -> None:
        for panel in self.panels:
            if panel.counts:
                panel.render()
        every = f"every {self.interval:g} s" if self.interval else "on demand"
        self.header.value = (f"<b>bullpy dashboard</b> <span style='{D.MUTED}'>· {len(self.queues)} "
                             f"queue{'s' if len(self.queues) != 1 else ''} · refresh {every}</span>")
        warnings = []
        for where, policy in self.policies.items():
            if policy is None:
                warnings.append(f"<div style='{D.MUTED}'>Redis at {where}: eviction policy unknown "
                                f"(INFO and CONFIG are not allowed); Bull needs <code>maxmemory-policy noeviction</code>."
                                f"</div>")
            elif policy != "noeviction":
                warnings.append(
                    f"<div style='color:#b00020' data-bullpy-policy='{D.esc(policy)}'>⚠ Redis at {where} has "
                    f"<code>maxmemory-policy {D.esc(policy)}</code>: it may evict Bull's keys (jobs, locks) "
                    f"when memory runs out. Bull needs <code>noeviction</code>.</div>"
                )
        self.warning.value = "".join(warnings)
        when = D.short_time(now_ms())
        if self.error is not None:
            self.status.value = f"{D.error_line(self.error)} <span style='{D.MUTED}'>({when} UTC; retrying)</span>"
        else:
            self.status.value = f"<span style='{D.MUTED}'>updated {when} UTC</span>"

    def _toggle_pause_of(self, panel: QueuePanel) -> Any:
        def toggle(_button: Any) -> None:
            try:
                if panel.queue.is_paused():
                    panel.queue.resume()
                else:
                    panel.queue.pause()
            except D.REDIS_ERRORS as exc:
                self.status.value = D.error_line(exc)
                return
            self.refresh_now()
        return toggle

    # --- values, for code and tests ------------------------------------------------------------------------
    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """The counts shown, per queue name."""
        return {p.queue.name: dict(p.counts) for p in self.panels}



def _where(queue: Queue) -> str:
    return queue.server.describe()
