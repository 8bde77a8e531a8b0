"""CampaignMonitor: how far the jobs of one ``add_frame`` call have got, with a failure breakdown."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .. import _display as D
from ..queue import Queue
from ._common import Refresher, RefreshingBox, W, check_interval, now_ms

_REASONS_SHOWN = 10


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
    return CampaignSummary(
        total=len(status),
        sent=int(counts.get("completed", 0)),
        failed=int(counts.get("failed", 0)),
        pending=int(counts.get("waiting", 0) + counts.get("paused", 0) + counts.get("active", 0)
                    + counts.get("stuck", 0)),
        active=int(counts.get("active", 0)),
        delayed=int(counts.get("delayed", 0)),
        missing=int(counts.get("missing", 0)),
        next_due=min(dues) if dues else None,
        last_due=max(dues) if dues else None,
        failures=failures,
    )


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
                                 layout=W.Layout(width="60%"))
        self.bar.add_class("bullpy-campaign-bar")
        self.bar_label = W.HTML()
        self.counts_html = W.HTML()
        self.counts_html.add_class("bullpy-campaign-counts")
        self.failures_html = W.HTML()
        self.failures_html.add_class("bullpy-campaign-failures")
        self.status = W.HTML()
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="auto"))
        super().__init__([
            W.HBox([self.title, self.refresh_button], layout=W.Layout(align_items="center")),
            W.HBox([self.bar, self.bar_label], layout=W.Layout(align_items="center")),
            self.counts_html, self.failures_html, self.status,
        ])
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
        if self.comm is None:
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
        if s.failures:
            rows = [[f"<span class='bullpy-failed-reason' style='color:#b00020'>{D.esc(D.to_text(reason, 200))}</span>",
                     f"{n:,}", D.esc(", ".join(ids))] for reason, n, ids in s.failures[:_REASONS_SHOWN]]
            more = (f"<div style='{D.MUTED}'>and {len(s.failures) - _REASONS_SHOWN} more reasons</div>"
                    if len(s.failures) > _REASONS_SHOWN else "")
            self.failures_html.value = "<b>Failures by reason</b>" + D.table(["reason", "jobs", "e.g."], rows) + more
        else:
            self.failures_html.value = ""
        when = D.short_time(now)
        if self.error is not None:
            self.status.value = f"{D.error_line(self.error)} <span style='{D.MUTED}'>({when} UTC; retrying)</span>"
        else:
            self.status.value = f"<span style='{D.MUTED}'>updated {when} UTC</span>"

