"""The inspector's page of jobs: one compact line per job (a tick box, the id to click, then one line of HTML
with state, name, age, attempts, progress, a data preview and the failed reason)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .. import _display as D
from ..job import Job
from ._common import W, hide, now_ms

#: What the "when" column shows per state.
_WHEN = {"completed": "finished", "failed": "finished", "delayed": "due", "active": "started"}
_TITLE_LIMIT = 1000


def _when(job: Job, state: str) -> int | None:
    if state in ("completed", "failed"):
        return job.finished_on
    if state == "active":
        return job.processed_on
    if state == "delayed" and job.delay and job.timestamp:
        return job.timestamp + job.delay
    return None


def _cell(kind: str, html: str, title: str = "") -> str:
    tip = f" title='{D.esc(title[:_TITLE_LIMIT])}'" if title else ""
    return f"<span class='bc bc-{kind}'{tip}>{html}</span>"


def data_preview(data: Any, fields: Sequence[str] | None) -> str:
    """One line: ``k=v · k=v`` for the given fields of a dict, else the whole value as compact JSON."""
    if fields and isinstance(data, dict):
        parts = [f"{k}={D.one_line(data[k], 80)}" for k in fields if k in data]
        if parts:
            return " · ".join(parts)
    return D.one_line(data, 400)


class JobList(W.VBox):  # type: ignore[misc]
    """``page_size`` rows, each hidden until a job fills it; the column set follows the state and page."""

    def __init__(self, page_size: int, on_show: Callable[[str], object],
                 on_check: Callable[[str, bool], None]) -> None:
        self.page_size = page_size
        self._on_show = on_show
        self._on_check = on_check
        self._rendering = False
        self.row_ids: list[str | None] = [None] * page_size
        self.head = W.HTML()
        self.head.add_class("bullpy-row-head")
        self.empty = W.HTML()
        self.empty.add_class("bullpy-empty")
        #: Per row: (tick box, id button, [the line]).
        self.rows: list[tuple[Any, Any, list[Any]]] = []
        self.boxes: list[Any] = []
        for i in range(page_size):
            check = W.Checkbox(indent=False)
            check.add_class("bullpy-check")
            check.observe(self._checker(i), names="value")
            button = W.Button(tooltip="show this job")
            button.add_class("bullpy-job-id")
            button.on_click(self._shower(i))
            line = W.HTML()
            line.add_class("bullpy-line")
            self.rows.append((check, button, [line]))
            box = W.HBox([check, button, line])
            box.add_class("bullpy-row")
            hide(box, True)
            self.boxes.append(box)
        super().__init__([self.head, *self.boxes, self.empty])
        self.add_class("bullpy-jobs")

    def _checker(self, i: int) -> Callable[[dict[str, Any]], None]:
        def on_check(change: dict[str, Any]) -> None:
            job_id = self.row_ids[i]
            if not self._rendering and job_id is not None:
                self._on_check(job_id, bool(change["new"]))
        return on_check

    def _shower(self, i: int) -> Callable[[Any], None]:
        def on_click(_button: Any) -> None:
            job_id = self.row_ids[i]
            if job_id is not None:
                self._on_show(job_id)
        return on_click

    def render(self, jobs: Sequence[Job], state: str, *, selected: Sequence[str], shown: str | None,
               fields: Sequence[str] | None, read_only: bool, empty: str) -> None:
        """Fill the rows with ``jobs`` (the rest hidden) and the header with the columns they need."""
        now = now_ms()
        progress = state == "active" or any(j.progress not in (None, 0) for j in jobs)
        reason = state == "failed" or any(j.failed_reason for j in jobs)
        when = _WHEN.get(state)
        heads = [("state", "state"), ("name", "name"), ("age", "age")]
        if when:
            heads.append(("when", when))
        heads.append(("att", "tries"))
        if progress:
            heads.append(("prog", "progress"))
        heads.append(("data", "data" + (f" ({', '.join(fields)})" if fields else "")))
        if reason:
            heads.append(("reason", "failed reason"))
        self.head.value = ("<div class='bullpy-line-box'><span class='bc bc-gap'></span>"
                           + "".join(_cell(k, D.esc(label)) for k, label in heads) + "</div>")
        hide(self.head, not jobs)
        self.empty.value = f"<span style='{D.MUTED}'>{D.esc(empty)}</span>"
        hide(self.empty, bool(jobs))
        picked = set(selected)
        self._rendering = True
        try:
            for i, (check, button, (line,)) in enumerate(self.rows):
                job = jobs[i] if i < len(jobs) else None
                self.row_ids[i] = None if job is None else job.id
                box = self.boxes[i]
                hide(box, job is None)
                if job is None:
                    continue
                hide(check, read_only)
                check.value = job.id in picked
                button.description = job.id
                button.tooltip = f"show job {job.id}"
                for name, on in (("bullpy-row-shown", job.id == shown), ("bullpy-row-picked", job.id in picked)):
                    box.add_class(name) if on else box.remove_class(name)
                line.value = self._line(job, state, now, when, progress, reason, fields)
        finally:
            self._rendering = False

    @staticmethod
    def _line(job: Job, state: str, now: int, when: str | None, progress: bool, reason: bool,
              fields: Sequence[str] | None) -> str:
        cells = [
            _cell("state", D.badge(state) + (" <b class='bullpy-damaged' style='color:#b91c1c'>damaged</b>"
                                             if job.damaged else ""), job.damaged or ""),
            _cell("name", D.esc(job.name), job.name),
            _cell("age", D.esc(D.format_ago(job.timestamp, now).replace(" ago", "")) if job.timestamp else "",
                  f"created {D.format_time(job.timestamp, now)}"),
        ]
        if when:
            at = _when(job, state)
            cells.append(_cell("when", D.esc(D.format_ago(at, now)) if at else "", D.format_time(at, now)))
        limit = job.opts.get("attempts")
        cells.append(_cell("att", f"{job.attempts_made or 0}" + (f"/{limit}" if limit else ""),
                           f"{job.attempts_made or 0} attempts made" + (f" of {limit}" if limit else "")))
        if progress:
            cells.append(_cell("prog", D.progress_bar(job.progress, 40)))
        preview = data_preview(job.data, fields)
        cells.append(_cell("data", f"<code>{D.esc(preview)}</code>", D.one_line(job.data, _TITLE_LIMIT)))
        if reason:
            text = job.failed_reason or ""
            cells.append(_cell("reason", f"<span class='bullpy-failed-reason'>{D.esc(D.one_line(text, 300))}</span>"
                               if text else "", text))
        return "<div class='bullpy-line-box'>" + "".join(cells) + "</div>"
