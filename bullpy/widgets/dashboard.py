"""QueueDashboard: every queue under a prefix (or the ones given), live, with its Redis server, one card each."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import redis as _redis

from .. import _display as D
from .. import connection
from ..queue import Queue, find_queues
from . import _style
from ._common import Refresher, RefreshingBox, W, check_interval, hide, now_ms
from .chart import Throughput
from .inspector import JobInspector
from .queue_panel import QueuePanel
from .server_panel import ServerPanel

__all__ = ["QueueDashboard", "Throughput"]

Sources = Queue | Iterable[Queue | str] | None


class QueueDashboard(RefreshingBox):
    """Every Bull queue under ``prefix`` (found with ``bullpy.find_queues``), or the queues given, refreshed in
    the background every ``refresh`` seconds.

    Per queue: counts per state (click one to open the inspector on those jobs), the oldest waiting job's
    age, wait and processing times (p50/p95 of the newest ``recent`` completed jobs), the jobs running now
    with their progress, a chart of completed/failed jobs per minute over the last ``minutes`` minutes (Bull's
    metrics keys when workers record them, else the finish times of the newest ``recent`` completed and failed
    jobs, and sampled counts), connected workers and pause/resume. Per Redis
    server: version, memory, eviction policy (a warning unless ``noeviction``), clients and operations per
    second. A refresh costs a fixed number of round trips per queue, whatever the number of jobs; queues are
    looked for only when the dashboard starts and on ``rescan()``. ``close()`` stops the refresh.

    Args:
        queues: None (every queue under ``prefix`` on ``redis``), a Queue, or a list of Queues and/or names.
        redis: where to look for queues given by name or not given (a URL or a client; default: as ``Queue``).
        read_only: no pause/resume and an inspector without actions, for people who only watch.
    """

    def __init__(self, queues: Sources = None, refresh: float | None = 2.0, *, redis: str | _redis.Redis | None = None,
                 prefix: str = "bull", minutes: int = 60, recent: int = 100, read_only: bool = False) -> None:
        interval = check_interval(refresh)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 120:
            raise ValueError(f"minutes must be an integer from 1 to 120, got {minutes!r}")
        if isinstance(recent, bool) or not isinstance(recent, int) or not 1 <= recent <= 10_000:
            raise ValueError(f"recent must be an integer from 1 to 10000, got {recent!r}")
        self.prefix, self.minutes, self.recent, self.read_only = prefix, minutes, recent, bool(read_only)
        self.discovering = queues is None
        self._redis_arg = redis
        self._client: _redis.Redis | None = None
        self._owned: list[Queue] = []
        self.queues = self._queues_of(queues)
        self.interval = interval
        self.panels: list[QueuePanel] = []
        self.servers: dict[str, ServerPanel] = {}
        self.header = W.HTML()
        self.refresh_button = W.Button(description="Refresh", icon="refresh", tooltip="read every queue again")
        self.auto = W.Checkbox(value=interval is not None, description="auto-refresh", indent=False,
                               disabled=interval is None)
        self.rescan_button = W.Button(description="Find queues", icon="search",
                                      tooltip=f"look for queues under {prefix!r} again (SCAN)")
        hide(self.rescan_button, not self.discovering)
        self.warning = W.HTML()
        self.warning.add_class("bullpy-eviction-warning")
        self.servers_box = W.VBox()
        self.panels_box = W.VBox()
        self.inspector: JobInspector | None = None
        self.inspector_box = W.VBox()
        self.inspector_box.add_class("bullpy-dashboard-inspector")
        hide(self.inspector_box, True)
        self.status = W.HTML()
        self.status.add_class("bullpy-status")
        self.refreshes = 0
        self.error: BaseException | None = None
        self.policies: dict[str, str | None] = {}
        self._lock = threading.RLock()
        head = W.HBox([self.header, self.refresh_button, self.auto, self.rescan_button, self.status])
        head.add_class("bullpy-header")
        super().__init__([_style.stylesheet(), head, self.warning, self.servers_box, self.panels_box,
                          self.inspector_box])
        self.add_class("bullpy-widget")
        self.add_class("bullpy-dashboard")
        self.refresh_button.on_click(lambda _b: self.refresh_now())
        self.rescan_button.on_click(lambda _b: self.rescan())
        self._add_panels(self.queues)
        self.refresh_now()
        self._refresher = Refresher(self, interval, "bullpy-dashboard").start() if interval else None

    # --- queues ------------------------------------------------------------------------------------------
    def _queues_of(self, queues: Sources) -> list[Queue]:
        if queues is None:
            return [self._open(name) for name in find_queues(self._source(), self.prefix)]
        if isinstance(queues, Queue):
            return [queues]
        if isinstance(queues, (str, bytes)) or not isinstance(queues, Iterable):
            raise TypeError(f"expected a bullpy.Queue, a list of queues or queue names, or nothing (every queue "
                            f"under the prefix), got {type(queues).__name__}")
        out: list[Queue] = []
        for q in queues:
            if isinstance(q, Queue):
                out.append(q)
            elif isinstance(q, str):
                out.append(self._open(q))
            else:
                raise TypeError(f"expected bullpy.Queue objects or queue names, got {type(q).__name__}")
        if not out:
            raise ValueError("no queues given (pass None to show every queue under the prefix)")
        return out

    def _source(self) -> Any:
        if connection.wants_cluster(self._redis_arg, None):
            return self._redis_arg
        if self._client is None:
            self._client = connection.resolve(self._redis_arg)  # one connection shared by the queues it opens
        return self._client

    def _open(self, name: str) -> Queue:
        queue = Queue(name, self._source(), prefix=self.prefix)
        self._owned.append(queue)
        return queue

    def _add_panels(self, queues: list[Queue]) -> None:
        for q in queues:
            panel = QueuePanel(q, self.minutes, self.recent, self._count_clicked, self.read_only)
            panel.pause_button.on_click(self._toggle_pause_of(panel))
            self.panels.append(panel)
            where = q.server.describe()
            if where not in self.servers:
                self.servers[where] = ServerPanel(q)
        self.panels_box.children = tuple(self.panels)
        self.servers_box.children = tuple(self.servers.values())

    def rescan(self) -> list[str]:
        """Look for queues under the prefix again (SCAN: it walks the keyspace) and add the new ones."""
        if not self.discovering:
            return []
        with self._lock:
            try:
                names = find_queues(self._source(), self.prefix)
            except D.REDIS_ERRORS as exc:
                self.status.value = D.error_line(exc)
                return []
            known = {q.name for q in self.queues}
            new = [self._open(n) for n in names if n not in known]
            self.queues += new
            self._add_panels(new)
        self.refresh_now()
        return [q.name for q in new]

    # --- refreshing ------------------------------------------------------------------------------------------
    def refresh_now(self) -> None:
        """Read every queue and server again and update the display (what the background thread does)."""
        with self._lock:
            now = now_ms()
            try:
                for server in self.servers.values():
                    server.read(now)
                for panel in self.panels:
                    panel.read(now)
                self.policies = {D.esc(where): s.info.policy for where, s in self.servers.items()}
                self.error = None
            except D.REDIS_ERRORS as exc:
                self.error = exc
            self.refreshes += 1
            self._render(now)

    def _tick(self) -> None:
        if self.auto.value and self._visible():
            self.refresh_now()

    def _render(self, now: int) -> None:
        for server in self.servers.values():
            server.render()
        for panel in self.panels:
            if panel.counts:
                panel.render(now)
        every = f"every {self.interval:g} s" if self.interval else "on demand"
        n = len(self.queues)
        under = f" under <code>{D.esc(self.prefix)}</code>" if self.discovering else ""
        self.header.value = (f"<b>bullpy dashboard</b> <span style='{D.MUTED}'>· {n} queue{'s' if n != 1 else ''}"
                             f"{under} · refresh {every}</span>")
        if self.discovering and not self.queues:
            self.header.value += (f"<div style='{D.MUTED}'>No Bull queue under prefix {D.esc(self.prefix)!s} yet "
                                  f"(a queue appears once a job was added); Find queues looks again.</div>")
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
        when = D.short_time(now)
        if self.error is not None:
            self.status.value = f"{D.error_line(self.error)} <span style='{D.MUTED}'>({when} UTC; retrying)</span>"
        else:
            self.status.value = f"<span style='{D.MUTED}'>updated {when} UTC</span>"

    def _toggle_pause_of(self, panel: QueuePanel) -> Any:
        def toggle(_button: Any) -> None:
            if self.read_only:
                return
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

    # --- the inspector --------------------------------------------------------------------------------------
    def _count_clicked(self, queue: Queue, state: str) -> None:
        self.open_inspector(queue, state)

    def open_inspector(self, queue: Queue | str, state: str | None = None, **options: Any) -> JobInspector:
        """Open the inspector below the cards on one queue's jobs (what clicking a count does)."""
        if isinstance(queue, str):
            found = [q for q in self.queues if q.name == queue]
            if not found:
                raise ValueError(f"no queue {queue!r} on this dashboard")
            queue = found[0]
        self.close_inspector()
        options.setdefault("read_only", self.read_only)
        self.inspector = JobInspector(queue, state, **options)
        close = W.Button(description="Close", icon="times", tooltip="close the inspector")
        close.on_click(lambda _b: self.close_inspector())
        self.inspector_box.children = (close, self.inspector)
        hide(self.inspector_box, False)
        return self.inspector

    def close_inspector(self) -> None:
        if self.inspector is not None:
            self.inspector.close()
            self.inspector = None
        for child in self.inspector_box.children:
            child.close()
        self.inspector_box.children = ()
        hide(self.inspector_box, True)

    def close(self) -> None:
        """Stop refreshing, close the inspector and the queues this dashboard opened."""
        if hasattr(self, "inspector_box"):  # not when a failed __init__ is collected
            self.close_inspector()
        super().close()
        for queue in getattr(self, "_owned", ()):
            queue.close()
        self._owned = []

    # --- values, for code and tests --------------------------------------------------------------------------
    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """The counts shown, per queue name."""
        return {p.queue.name: dict(p.counts) for p in self.panels}
