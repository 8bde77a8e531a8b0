"""CampaignMonitor: how far the jobs of one ``add_frame`` call have got: send rate, time left, failures by reason."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .. import _display as D
from ..queue import Queue
from . import _style
from ._common import Refresher, RefreshingBox, W, check_interval, now_ms

_REASONS_SHOWN = 10
#: The send rate is measured over the jobs that finished in this last stretch of time.
RATE_WINDOW_MS = 5 * 60_000


@dataclass(frozen=True)
class CampaignSummary:
    """Where the jobs of a campaign are: ``sent`` is completed, ``pending`` waiting, active or paused."""

    total: int
    sent: int = 0
    failed: int = 0
    pending: int = 0
    active: int = 0
    delayed: int = 0
    missing: int = 0
    next_due: int | None = None
    last_due: int | None = None
    #: failed reason -> (count, a few job ids), most frequent first
    failures: list[tuple[str, int, list[str]]] = field(default_factory=list)
    #: jobs finished per minute over the last ``RATE_WINDOW_MS`` (None before any finished)
    rate_per_min: float | None = None
    #: how long the pending jobs take at that rate (with none pending: until the last delayed job is due)
    time_left_ms: int | None = None

    @property
    def finished(self) -> int:
        return self.sent + self.failed

    @property
    def done(self) -> bool:
        """Every job completed, failed for good, or gone (removed on completion, cleaned)."""
        return self.sent + self.failed + self.missing == self.total


def summarize(status: Any, now: int) -> CampaignSummary:
    """A ``campaign_status`` frame -> counts, delayed window and failures."""
    states = status["state"].astype(str)
    counts = states.value_counts().to_dict()
    delayed = status[states == "delayed"]
    dues = [int(ts.value // 1_000_000) for ts in delayed["due"].dropna()] if len(delayed) else []
    failures: list[tuple[str, int, list[str]]] = []
    failed = status[states == "failed"]
    if len(failed):
        reasons = failed["failed_reason"].fillna("(no reason)").astype(str)
        for reason, group in failed.groupby(reasons, sort=False):
            failures.append((str(reason), len(group), [str(i) for i in group["job_id"].head(3)]))
        failures.sort(key=lambda r: (-r[1], r[0]))
    finished = [int(ts.value // 1_000_000) for ts in status["finished_on"].dropna()]
    started = [int(ts.value // 1_000_000) for ts in status["processed_on"].dropna()]
    pending = int(counts.get("waiting", 0) + counts.get("paused", 0) + counts.get("active", 0)
                  + counts.get("stuck", 0))
    rate, left = _rate(finished, started, now, pending, max(dues) if dues else None)
    return CampaignSummary(
        total=len(status),
        sent=int(counts.get("completed", 0)),
        failed=int(counts.get("failed", 0)),
        pending=pending,
        active=int(counts.get("active", 0)),
        delayed=int(counts.get("delayed", 0)),
        missing=int(counts.get("missing", 0)),
        next_due=min(dues) if dues else None,
        last_due=max(dues) if dues else None,
        failures=failures,
        rate_per_min=rate,
        time_left_ms=left,
    )


def _rate(finished: list[int], started: list[int], now: int, pending: int, last_due: int | None
          ) -> tuple[float | None, int | None]:
    """Jobs finished per minute lately, and the time left: the pending jobs at that rate, or, with none
    pending, until the last delayed job is due."""
    due = max(last_due - now, 0) if last_due is not None else 0
    if not finished:
        return None, (due if last_due is not None and not pending else None)
    recent = [t for t in finished if t >= now - RATE_WINDOW_MS]
    begin = max(now - RATE_WINDOW_MS, min(started + finished))
    rate = len(recent) * 60_000 / max(now - begin, 1000)
    if not pending:
        return rate, due
    if not rate:
        return rate, None
    return rate, int(pending / rate * 60_000)


class CampaignMonitor(RefreshingBox):
    """Progress of the jobs an ``add_frame`` call created, refreshed every ``refresh`` seconds.

    Shows sent (completed), failed, pending and delayed jobs (until when), a progress bar and the
    failures grouped by reason. With ``stop_when_done`` the refresh stops once every job has finished.

    Args:
        result_frame: what ``queue.add_frame`` returned (its ``job_id`` column is what is followed).
    """

    def __init__(self, queue: Queue, result_frame: Any, refresh: float | None = 2.0, *,
                 stop_when_done: bool = True) -> None:
        if not isinstance(queue, Queue):
            raise TypeError(f"CampaignMonitor needs a bullpy.Queue, got {type(queue).__name__}")
        if not hasattr(result_frame, "columns") or "job_id" not in result_frame.columns:
            raise ValueError("CampaignMonitor needs the frame add_frame returned (with a job_id column)")
        interval = check_interval(refresh)
        self.queue = queue
        self.result_frame = result_frame
        self.stop_when_done = stop_when_done
        self.summary = CampaignSummary(total=len(result_frame))
        self.status_frame: Any = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self.title = W.HTML(f"<b>Campaign</b> on {D.queue_title(queue)} · {len(result_frame):,} jobs")
        self.bar = W.IntProgress(min=0, max=max(len(result_frame), 1), value=0, description="finished",
                                 layout=W.Layout(width="min(60%, 520px)"))
        self.bar.add_class("bullpy-campaign-bar")
        self.bar_label = W.HTML()
        self.counts_html = W.HTML()
        self.counts_html.add_class("bullpy-campaign-counts")
        self.rate_html = W.HTML()
        self.rate_html.add_class("bullpy-campaign-rate")
        self.failures_html = W.HTML()
        self.failures_html.add_class("bullpy-campaign-failures")
        self.status = W.HTML()
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="auto"))
        head = W.HBox([self.title, self.refresh_button, self.status])
        head.add_class("bullpy-header")
        progress = W.HBox([self.bar, self.bar_label])
        progress.add_class("bullpy-toolbar")
        super().__init__([_style.stylesheet(), head, progress, self.counts_html, self.rate_html, self.failures_html])
        self.add_class("bullpy-widget")
        self.add_class("bullpy-campaign")
        self.refresh_button.on_click(lambda _b: self.refresh_now())
        self.interval = interval
        self.refresh_now()
        self._refresher = (Refresher(self, interval, "bullpy-campaign").start()
                           if interval and not (stop_when_done and self.summary.done) else None)

    def refresh_now(self) -> CampaignSummary:
        """Read where every job of the campaign is and update the display."""
        with self._lock:
            try:
                self.status_frame = self.queue.campaign_status(self.result_frame)
                self.summary = summarize(self.status_frame, now_ms())
                self.error = None
            except D.REDIS_ERRORS as exc:
                self.error = exc
            self._render()
            return self.summary

    def _tick(self) -> None:
        if not self._visible():
            return
        summary = self.refresh_now()
        if self.stop_when_done and summary.done and self._refresher is not None:
            self._refresher.stop()

    def _render(self) -> None:
        s, now = self.summary, now_ms()
        self.bar.value = s.finished
        self.bar.bar_style = ("danger" if s.failed else "success") if s.done else ("warning" if s.failed else "info")
        pct = 100 * s.finished / s.total if s.total else 100.0
        self.bar_label.value = f"{s.finished:,} / {s.total:,} ({pct:.0f}%)" + (" · done" if s.done else "")
        delayed = ""
        if s.delayed and s.next_due == s.last_due:
            delayed = f" (due {D.esc(D.format_time(s.next_due, now))})"
        elif s.delayed:
            delayed = f" (next {D.esc(D.format_time(s.next_due, now))}, last {D.esc(D.format_time(s.last_due, now))})"
        cells = [
            ("sent", s.sent, "completed"), ("failed", s.failed, "failed"), ("pending", s.pending, "waiting"),
            ("delayed", s.delayed, "delayed"), ("missing", s.missing, "missing"),
        ]
        row = " · ".join(
            f"<span style='color:{D.STATE_COLORS[color]}'>{label}</span> <b data-bullpy-campaign='{label}'>{n:,}</b>"
            + (delayed if label == "delayed" else "")
            for label, n, color in cells if n or label in ("sent", "failed", "pending")
        )
        missing = (f"<div style='{D.MUTED}'>missing: jobs no longer in Redis (removed on completion or cleaned)"
                   f"</div>") if s.missing else ""
        self.counts_html.value = f"<div>{row}</div>{missing}"
        self.rate_html.value = _rate_html(s, now)
        if s.failures:
            rows = [[D.expandable(reason, lines=2, chars=160, cls="bullpy-failed-reason"),
                     f"<b>{n:,}</b>", f"{100 * n / max(s.failed, 1):.0f}%", D.esc(", ".join(ids))]
                    for reason, n, ids in s.failures[:_REASONS_SHOWN]]
            more = (f"<div style='{D.MUTED}'>and {len(s.failures) - _REASONS_SHOWN} more reasons</div>"
                    if len(s.failures) > _REASONS_SHOWN else "")
            self.failures_html.value = ("<b>Failures by reason</b>"
                                        + D.table(["reason", "jobs", "share", "e.g."], rows,
                                                  "style='width:100%;max-width:900px'"
                                                  " class='bullpy-failures-table'") + more)
        else:
            self.failures_html.value = ""
        when = D.short_time(now)
        if self.error is not None:
            self.status.value = f"{D.error_line(self.error)} <span style='{D.MUTED}'>({when} UTC; retrying)</span>"
        else:
            self.status.value = f"<span style='{D.MUTED}'>updated {when} UTC</span>"



def _rate_html(s: CampaignSummary, now: int) -> str:
    if s.rate_per_min is None:
        rate = f"<span style='{D.MUTED}'>nothing finished yet</span>"
    else:
        rate = (f"<b data-bullpy-campaign='rate'>{s.rate_per_min:,.1f}</b> jobs/min "
                f"<span style='{D.MUTED}'>(last {RATE_WINDOW_MS // 60_000} min)</span>")
    if s.done:
        left = "<b data-bullpy-campaign='time-left'>done</b>"
    elif s.time_left_ms is None:
        left = (f"<span data-bullpy-campaign='time-left' style='{D.MUTED}'>unknown (nothing finished in the last "
                f"{RATE_WINDOW_MS // 60_000} min)</span>")
    else:
        what = f"for {s.pending:,} pending" if s.pending else f"until the last of {s.delayed:,} delayed is due"
        left = (f"<b data-bullpy-campaign='time-left'>{D.esc(D.format_duration(s.time_left_ms))}</b> "
                f"<span style='{D.MUTED}'>{what} (ends about {D.esc(D.short_time(now + s.time_left_ms))} UTC)</span>")
        if s.pending and s.delayed and s.last_due is not None and s.last_due > now + s.time_left_ms:
            left += (f" · <span style='{D.MUTED}'>{s.delayed:,} delayed until "
                     f"{D.esc(D.short_time(s.last_due))} UTC</span>")
    return f"<div>send rate {rate} · time left {left}</div>"
