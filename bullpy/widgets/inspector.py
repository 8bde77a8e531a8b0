"""JobInspector: browse a queue's jobs by state, page by page, filter them, look at one, act on many."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import _display as D
from ..errors import BullError
from ..job import Job
from ..queue import Queue
from ._common import W, close_tree, hide, now_ms

STATES = ("waiting", "active", "delayed", "paused", "completed", "failed")
#: Page order per state, as Bull's getters read them: next to run / soonest due first, newest finished first.
_ASC = {"waiting": True, "active": True, "delayed": True, "paused": True, "completed": False, "failed": False}
#: The state names ``Queue.clean`` takes.
_CLEAN = {"waiting": "wait", "active": "active", "delayed": "delayed", "paused": "paused",
          "completed": "completed", "failed": "failed"}
#: Time windows: (comparison, milliseconds back from now).
WINDOWS: dict[str, tuple[str, int] | None] = {
    "any time": None,
    "last 15 min": (">=", 15 * 60_000), "last hour": (">=", 3_600_000), "last 24 h": (">=", 86_400_000),
    "last 7 days": (">=", 7 * 86_400_000),
    "older than 1 h": ("<", 3_600_000), "older than 24 h": ("<", 86_400_000),
    "older than 7 days": ("<", 7 * 86_400_000),
}
ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    # action: (past tense, the states it applies to)
    "retry": ("retried", ("failed", "completed")),
    "promote": ("promoted", ("delayed",)),
    "remove": ("removed", STATES),
}
_COLUMNS = ("", "id", "name", "data", "attempts", "created", "", "failed reason")
_WHEN = {"completed": "finished", "failed": "finished", "delayed": "due", "active": "started",
         "waiting": "", "paused": ""}


def time_of(job: Job, state: str) -> int | None:
    """The time a window filters on: when it finished for completed/failed jobs, else when it was created."""
    if state in ("completed", "failed"):
        return job.finished_on or job.timestamp
    return job.timestamp


def _lookup(data: Any, path: str) -> tuple[bool, Any]:
    value = data
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


@dataclass(frozen=True)
class JobFilter:
    """Which jobs of a state to show.

    Args:
        text: a case-insensitive substring of the id, name, data (as JSON) or failed reason.
        field: a data field (``number``, or ``customer.id`` for nested ones) the job must have...
        value: ...equal to this (as text; JSON for numbers and booleans), or matching it as a glob
            when it holds ``*``, ``?`` or ``[``.
        window: one of ``WINDOWS``: on the finished time for completed/failed jobs, else the created time.
    """

    text: str = ""
    field: str = ""
    value: str = ""
    window: str = "any time"

    def __post_init__(self) -> None:
        for name in ("text", "field", "value"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"filter {name} must be a string, got {getattr(self, name)!r}")
        if self.window not in WINDOWS:
            raise ValueError(f"unknown time window {self.window!r}; use one of {', '.join(WINDOWS)}")
        if self.value and not self.field:
            raise ValueError("a filter value needs the data field it applies to")

    @property
    def active(self) -> bool:
        return bool(self.text or self.field or WINDOWS[self.window])

    def describe(self) -> str:
        parts = []
        if self.text:
            parts.append(f"text {self.text!r}")
        if self.field:
            parts.append(f"data.{self.field}" + (f" = {self.value!r}" if self.value else " present"))
        if WINDOWS[self.window]:
            parts.append(self.window)
        return ", ".join(parts)

    def matches(self, job: Job, state: str, now: int) -> bool:
        if self.text:
            needle = self.text.casefold()
            haystack = " ".join([job.id, job.name, job.failed_reason or "", D.to_text(job.data, 100_000)])
            if needle not in haystack.casefold():
                return False
        if self.field:
            found, value = _lookup(job.data, self.field)
            if not found:
                return False
            if self.value:
                shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
                if any(c in self.value for c in "*?["):
                    if not fnmatch.fnmatchcase(shown, self.value):
                        return False
                elif shown != self.value:
                    return False
        window = WINDOWS[self.window]
        if window:
            at = time_of(job, state)
            if at is None:
                return False
            op, span = window
            if (at >= now - span) != (op == ">="):
                return False
        return True

    def past_window(self, job: Job, state: str, now: int) -> bool:
        """True when no later job of the page order can match: completed and failed jobs come newest
        finished first, so once one finished before a "last ..." window, every next one did too."""
        window = WINDOWS[self.window]
        if not window or window[0] != ">=" or state not in ("completed", "failed"):
            return False
        at = time_of(job, state)
        return at is not None and at < now - window[1]


@dataclass(frozen=True)
class ActionReport:
    """What an action did: the ids it changed and the ids it skipped, with why."""

    action: str
    state: str
    scope: str
    done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    moved: int | None = None  # bulk actions that report a number, not ids

    @property
    def count(self) -> int:
        return self.moved if self.moved is not None else len(self.done)

    def text(self) -> str:
        verb = ACTIONS[self.action][0]
        n = self.count
        out = f"{verb.capitalize()} {n:,} {self.state} job{'s' if n != 1 else ''}"
        if self.done:
            out += ": " + _preview(self.done)
        if self.skipped:
            reasons = "; ".join(f"{i} ({why})" for i, why in list(self.skipped.items())[:10])
            more = f" and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
            out += f". Skipped {len(self.skipped):,}: {reasons}{more}"
        return out + "."


def _preview(ids: Sequence[str], shown: int = 10) -> str:
    head = ", ".join(ids[:shown])
    return head + (f" and {len(ids) - shown:,} more" if len(ids) > shown else "")


@dataclass
class _Pending:
    action: str
    scope: str
    state: str
    targets: list[str] | None  # None: every job of the state (no filter), done with a bulk call
    count: int


class JobInspector(W.VBox):  # type: ignore[misc]
    """Jobs of one state, ``page_size`` at a time, with filters, a detail pane and confirmed actions.

    Pages are windows of the state's list or sorted set (LRANGE/ZRANGE), so a page costs the same for
    a million jobs as for ten. With a filter, jobs are read in chunks from the page's start until the
    page is full or ``max_scan`` jobs were read (Next goes on from there). Actions apply to the
    selected jobs or to every job matching the filter; each asks for confirmation and reports.

    Args:
        state: the state shown first; default the first of failed, active, waiting, delayed, paused,
            completed that has jobs.
        fields: data fields shown in the table (default: the most common ones of the page, up to 3).
    """

    def __init__(self, queue: Queue, state: str | None = None, *, page_size: int = 20,
                 fields: Sequence[str] | None = None, max_scan: int = 10_000, chunk_size: int = 500) -> None:
        if not isinstance(queue, Queue):
            raise TypeError(f"JobInspector needs a bullpy.Queue, got {type(queue).__name__}")
        if state is not None and state not in STATES:
            raise ValueError(f"unknown state {state!r}; use one of {', '.join(STATES)}")
        for name, value, low in (("page_size", page_size, 1), ("max_scan", max_scan, 1), ("chunk_size", chunk_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if page_size > 500:
            raise ValueError(f"page_size must be at most 500, got {page_size}")
        if fields is not None and (isinstance(fields, str) or not all(isinstance(f, str) for f in fields)):
            raise TypeError("fields must be a list of data field names")
        self.queue = queue
        self.page_size = page_size
        self.max_scan = max_scan
        self.chunk_size = chunk_size
        self.fields = list(fields) if fields is not None else None
        self.filter = JobFilter()
        self.counts: dict[str, int] = {}
        self.jobs: list[Job] = []
        self.page = 0
        self.total = 0
        self.selected: list[str] = []
        self.shown: Job | None = None
        self.last_report: ActionReport | None = None
        self.scan_info: dict[str, int] | None = None
        self._page_starts = [0]
        self._more = False
        self._pending: _Pending | None = None
        self._rendering = False

        first = state or self._first_state()
        self.counts_html = W.HTML()
        self.counts_html.add_class("bullpy-inspector-counts")
        self.state_dropdown = W.Dropdown(options=list(STATES), value=first, description="state",
                                         layout=W.Layout(width="200px"))
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="auto"))
        self.text_box = W.Text(placeholder="text in id, name, data or failed reason", description="search",
                               layout=W.Layout(width="320px"))
        self.field_box = W.Text(placeholder="data field", layout=W.Layout(width="140px"))
        self.value_box = W.Text(placeholder="value (globs: * ?)", layout=W.Layout(width="160px"))
        self.window_dropdown = W.Dropdown(options=list(WINDOWS), value="any time", layout=W.Layout(width="150px"))
        self.apply_button = W.Button(description="Apply", icon="filter", layout=W.Layout(width="auto"))
        self.clear_button = W.Button(description="Clear", layout=W.Layout(width="auto"))
        self.first_button = W.Button(description="First", icon="step-backward", layout=W.Layout(width="auto"))
        self.prev_button = W.Button(description="Prev", icon="chevron-left", layout=W.Layout(width="auto"))
        self.next_button = W.Button(description="Next", icon="chevron-right", layout=W.Layout(width="auto"))
        self.last_button = W.Button(description="Last", icon="step-forward", layout=W.Layout(width="auto"))
        self.page_html = W.HTML()
        self.page_html.add_class("bullpy-page")
        self.select_page = W.Checkbox(description="select page", indent=False, layout=W.Layout(width="auto"))
        self.scope_dropdown = W.Dropdown(options=[("on selected jobs", "selected"), ("on all matching jobs", "all")],
                                         value="selected", layout=W.Layout(width="190px"))
        self.action_buttons = {
            "retry": W.Button(description="Retry", icon="redo", layout=W.Layout(width="auto")),
            "promote": W.Button(description="Promote", icon="forward", layout=W.Layout(width="auto")),
            "remove": W.Button(description="Remove", icon="trash", button_style="warning", layout=W.Layout(width="auto")),
        }
        self.confirm_html = W.HTML()
        self.confirm_button = W.Button(description="Confirm", button_style="danger", layout=W.Layout(width="auto"))
        self.cancel_button = W.Button(description="Cancel", layout=W.Layout(width="auto"))
        self.confirm_bar = W.HBox([self.confirm_html, self.confirm_button, self.cancel_button],
                                  layout=W.Layout(align_items="center", border="1px solid #d62728", padding="2px 6px"))
        self.confirm_bar.add_class("bullpy-confirm")
        self.report = W.HTML()
        self.report.add_class("bullpy-report")
        self.detail = W.HTML()
        self.detail.add_class("bullpy-detail")
        self._build_grid()
        hide(self.confirm_bar, True)

        super().__init__([
            W.HBox([self.state_dropdown, self.counts_html, self.refresh_button], layout=W.Layout(align_items="center")),
            W.HBox([self.text_box, self.field_box, self.value_box, self.window_dropdown, self.apply_button,
                    self.clear_button], layout=W.Layout(flex_flow="row wrap")),
            W.HBox([self.first_button, self.prev_button, self.next_button, self.last_button, self.page_html],
                   layout=W.Layout(align_items="center")),
            self.grid,
            W.HBox([self.select_page, *self.action_buttons.values(), self.scope_dropdown],
                   layout=W.Layout(align_items="center")),
            self.confirm_bar, self.report, self.detail,
        ])
        self.add_class("bullpy-inspector")

        self.state_dropdown.observe(lambda _c: self._reset(), names="value")
        self.refresh_button.on_click(lambda _b: self.reload())
        self.apply_button.on_click(lambda _b: self._apply_boxes())
        self.clear_button.on_click(lambda _b: self.clear_filter())
        self.first_button.on_click(lambda _b: self.first_page())
        self.prev_button.on_click(lambda _b: self.prev_page())
        self.next_button.on_click(lambda _b: self.next_page())
        self.last_button.on_click(lambda _b: self.last_page())
        self.select_page.observe(self._on_select_page, names="value")
        for action, button in self.action_buttons.items():
            button.on_click(self._requester(action))
        self.confirm_button.on_click(lambda _b: self.confirm())
        self.cancel_button.on_click(lambda _b: self.cancel())
        self._load(0)

    # --- the table ------------------------------------------------------------------------------------
    def _build_grid(self) -> None:
        self.header_cells = [W.HTML(f"<b>{c}</b>") for c in _COLUMNS]
        self.rows: list[tuple[Any, Any, list[Any]]] = []
        children: list[Any] = list(self.header_cells)
        for i in range(self.page_size):
            check = W.Checkbox(indent=False, layout=W.Layout(width="24px"))
            check.observe(self._checker(i), names="value")
            button = W.Button(layout=W.Layout(width="auto", max_width="160px", height="auto"))
            button.add_class("bullpy-job-id")
            button.on_click(self._shower(i))
            cells = [W.HTML(layout=W.Layout(overflow="hidden")) for _ in range(len(_COLUMNS) - 2)]
            self.rows.append((check, button, cells))
            children.extend([check, button, *cells])
        self.grid = W.GridBox(children, layout=W.Layout(
            grid_template_columns="26px minmax(40px,max-content) minmax(60px,140px) minmax(120px,2fr) 70px 130px "
                                  "130px minmax(120px,2fr)",
            grid_gap="1px 8px", align_items="center"))
        self.grid.add_class("bullpy-jobs")
        self._row_ids: list[str | None] = [None] * self.page_size

    def _checker(self, i: int) -> Callable[[dict[str, Any]], None]:
        def on_check(change: dict[str, Any]) -> None:
            if self._rendering:
                return
            job_id = self._row_ids[i]
            if job_id is None:
                return
            if change["new"] and job_id not in self.selected:
                self.selected.append(job_id)
            elif not change["new"] and job_id in self.selected:
                self.selected.remove(job_id)
            self._render_page_info()
        return on_check

    def _shower(self, i: int) -> Callable[[Any], None]:
        def on_click(_button: Any) -> None:
            job_id = self._row_ids[i]
            if job_id is not None:
                self.show(job_id)
        return on_click

    def _page_fields(self) -> list[str]:
        if self.fields is not None:
            return self.fields
        seen: dict[str, int] = {}
        for job in self.jobs:
            if isinstance(job.data, dict):
                for key in job.data:
                    seen[key] = seen.get(key, 0) + 1
        return sorted(seen, key=lambda k: -seen[k])[:3]

    def _render_table(self) -> None:
        state = self.state
        fields = self._page_fields()
        self.header_cells[3].value = "<b>data</b>" + (f" <span style='{D.MUTED}'>({D.esc(', '.join(fields))})</span>"
                                                      if fields else "")
        self.header_cells[6].value = f"<b>{_WHEN[state]}</b>"
        now = now_ms()
        self._rendering = True
        try:
            for i, (check, button, cells) in enumerate(self.rows):
                job = self.jobs[i] if i < len(self.jobs) else None
                self._row_ids[i] = None if job is None else job.id
                for widget in (check, button, *cells):
                    hide(widget, job is None)
                if job is None:
                    continue
                check.value = job.id in self.selected
                button.description = job.id if len(job.id) <= 24 else job.id[:23] + "…"
                button.tooltip = f"show job {job.id}"
                name, data, attempts, created, when, reason = cells
                name.value = f"<code>{D.esc(job.name)}</code>"
                data.value = _data_cell(job.data, fields)
                limit = job.opts.get("attempts")
                attempts.value = f"{job.attempts_made or 0}" + (f"/{limit}" if limit else "")
                created.value = f"<span title='{D.esc(D.format_time(job.timestamp, now))}'>{D.short_time(job.timestamp)}</span>"
                at = {"completed": job.finished_on, "failed": job.finished_on, "active": job.processed_on,
                      "delayed": (job.timestamp or 0) + (job.delay or 0) if job.delay else None}.get(state)
                when.value = f"<span title='{D.esc(D.format_time(at, now))}'>{D.short_time(at)}</span>" if at else ""
                reason.value = (f"<span class='bullpy-failed-reason' style='color:#b00020'>"
                                f"{D.esc(D.to_text(job.failed_reason, 200))}</span>") if job.failed_reason else ""
            self.select_page.value = bool(self.jobs) and all(j.id in self.selected for j in self.jobs)
        finally:
            self._rendering = False

    # --- loading ---------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """The state shown; set it to show another."""
        return str(self.state_dropdown.value)

    @state.setter
    def state(self, value: str) -> None:
        if value not in STATES:
            raise ValueError(f"unknown state {value!r}; use one of {', '.join(STATES)}")
        self.state_dropdown.value = value

    def _first_state(self) -> str:
        try:
            counts = self.queue.get_job_counts(*STATES)
        except D.REDIS_ERRORS:
            return "waiting"  # the first load shows the error
        for state in ("failed", "active", "waiting", "delayed", "paused", "completed"):
            if counts[state]:
                return state
        return "waiting"

    def _reset(self) -> None:
        self.selected = []
        self._page_starts = [0]
        self.cancel()
        self._load(0)

    def reload(self) -> None:
        """Read the current page again (and the counts)."""
        self._load(self.page)

    def first_page(self) -> None:
        self._load(0)

    def next_page(self) -> None:
        if self._more:
            self._load(self.page + 1)

    def prev_page(self) -> None:
        if self.page > 0:
            self._load(self.page - 1)

    def last_page(self) -> None:
        """The last page (without a filter; with one, pages are found by reading forward)."""
        if not self.filter.active:
            self._load(max((self.total - 1) // self.page_size, 0))

    def _load(self, page: int) -> None:
        state = self.state
        try:
            self.counts = self.queue.get_job_counts(*STATES)
            self.total = self.counts[state]
            if self.filter.active:
                page = min(page, len(self._page_starts) - 1)
                start = self._page_starts[page]
                jobs, end, scanned, exhausted = self._scan(start, self.page_size, self.max_scan)
                del self._page_starts[page + 1 :]
                self._page_starts.append(end)
                self._more = not exhausted
                self.scan_info = {"start": start, "end": end, "scanned": scanned}
            else:
                start = page * self.page_size
                ids = self.queue.get_ranges([state], start, start + self.page_size - 1, asc=_ASC[state])
                jobs = self.queue.get_jobs_by_ids(ids)
                self._more = start + self.page_size < self.total
                self.scan_info = None
            self.page = page
            self.jobs = jobs
        except D.REDIS_ERRORS as exc:
            self.report.value = D.error_line(exc)
            return
        self.counts_html.value = D.counts_table({s: self.counts[s] for s in STATES})
        self._render_table()
        self._render_page_info()

    def _render_page_info(self) -> None:
        n = len(self.jobs)
        if self.scan_info is not None:
            info = self.scan_info
            text = (f"page {self.page + 1}: {n} job{'s' if n != 1 else ''} matching {D.esc(self.filter.describe())} "
                    f"<span style='{D.MUTED}'>(read {info['scanned']:,} jobs, positions {info['start'] + 1:,}–"
                    f"{info['end']:,} of {self.total:,}{'' if self._more else '; no more'})</span>")
        elif n:
            first = self.page * self.page_size + 1
            text = f"jobs {first:,}–{first + n - 1:,} of {self.total:,}"
        else:
            text = f"no {self.state} jobs"
        if self.selected:
            text += f" · <b>{len(self.selected)} selected</b>"
        self.page_html.value = text
        self.prev_button.disabled = self.page == 0
        self.first_button.disabled = self.page == 0
        self.next_button.disabled = not self._more
        self.last_button.disabled = self.filter.active or not self._more
        allowed = {a: self.state in states for a, (_v, states) in ACTIONS.items()}
        for action, button in self.action_buttons.items():
            button.disabled = not allowed[action]

    def _scan(self, start: int, want: int, limit: int | None) -> tuple[list[Job], int, int, bool]:
        """Read jobs from position ``start`` in chunks, keeping those that match the filter.

        Returns (matching jobs, the position after the last one read, how many were read, whether the
        end of the state was reached).
        """
        state, now, flt = self.state, now_ms(), self.filter
        found: list[Job] = []
        pos, scanned = start, 0
        while len(found) < want and (limit is None or scanned < limit):
            n = self.chunk_size if limit is None else min(self.chunk_size, limit - scanned)
            ids = self.queue.get_ranges([state], pos, pos + n - 1, asc=_ASC[state])
            if not ids:
                return found, pos, scanned, True
            by_id = {job.id: job for job in self.queue.get_jobs_by_ids(ids)}
            for offset, job_id in enumerate(ids):
                scanned += 1
                job = by_id.get(job_id)
                if job is None:
                    continue  # removed since the ids were read
                if flt.past_window(job, state, now):
                    return found, pos + offset + 1, scanned, True
                if flt.matches(job, state, now):
                    found.append(job)
                    if len(found) == want:
                        return found, pos + offset + 1, scanned, False
            pos += len(ids)
            if len(ids) < n:
                return found, pos, scanned, True
        return found, pos, scanned, False

    def matching_ids(self) -> list[str]:
        """Ids of every job of the state that matches the filter (reads the whole state)."""
        if not self.filter.active:
            return self.queue.get_ranges([self.state], 0, -1, asc=_ASC[self.state])
        jobs, _end, _scanned, _exhausted = self._scan(0, 1 << 62, None)
        return [job.id for job in jobs]

    # --- filtering -------------------------------------------------------------------------------------
    def set_filter(self, text: str = "", field: str = "", value: str = "", window: str = "any time") -> None:
        """Show only matching jobs (see ``JobFilter``); the boxes show the filter too."""
        self.filter = JobFilter(text.strip(), field.strip(), value, window)
        self._rendering = True
        try:
            self.text_box.value, self.field_box.value = self.filter.text, self.filter.field
            self.value_box.value, self.window_dropdown.value = self.filter.value, self.filter.window
        finally:
            self._rendering = False
        self._reset()

    def clear_filter(self) -> None:
        self.set_filter()

    def _apply_boxes(self) -> None:
        try:
            self.set_filter(self.text_box.value, self.field_box.value, self.value_box.value, self.window_dropdown.value)
        except (TypeError, ValueError) as exc:
            self.report.value = D.error_line(exc)

    # --- selection and detail ------------------------------------------------------------------------------
    def select(self, ids: Sequence[str] | str) -> None:
        """Select jobs by id (replacing the selection); they need not be on the page."""
        self.selected = [ids] if isinstance(ids, str) else [str(i) for i in dict.fromkeys(ids)]
        self._render_table()
        self._render_page_info()

    def _on_select_page(self, change: dict[str, Any]) -> None:
        if self._rendering:
            return
        page_ids = [job.id for job in self.jobs]
        if change["new"]:
            self.selected += [i for i in page_ids if i not in self.selected]
        else:
            self.selected = [i for i in self.selected if i not in page_ids]
        self._render_table()
        self._render_page_info()

    def show(self, job_id: str) -> Job | None:
        """Show one job in the detail pane: data, options, progress, result, failure, stacktrace, logs."""
        try:
            job = self.queue.get_job(job_id)
            if job is None:
                self.shown = None
                self.detail.value = f"<span style='{D.MUTED}'>job {D.esc(job_id)} no longer exists</span>"
                return None
            try:
                state = str(job.get_state())
            except LookupError:
                state = "missing"
            logs = self.queue.get_job_logs(job_id, 0, 49)
        except D.REDIS_ERRORS as exc:
            self.detail.value = D.error_line(exc)
            return None
        self.shown = job
        self.detail.value = D.job_html(job, state=state, logs=logs.logs, log_count=logs.count)
        return job

    # --- actions ---------------------------------------------------------------------------------------------
    def _requester(self, action: str) -> Callable[[Any], None]:
        def on_click(_button: Any) -> None:
            self.request(action, self.scope_dropdown.value)
        return on_click

    def request(self, action: str, scope: str = "selected") -> str | None:
        """Ask to ``retry``/``promote``/``remove`` the selected jobs (``scope="selected"``) or every
        job matching the filter (``"all"``); nothing happens until ``confirm()``. Returns the question."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
        if scope not in ("selected", "all"):
            raise ValueError(f"scope must be 'selected' or 'all', got {scope!r}")
        state = self.state
        if state not in ACTIONS[action][1]:
            self._say(f"{action} applies to {' or '.join(ACTIONS[action][1])} jobs, not {state} ones")
            return None
        targets: list[str] | None
        if scope == "selected":
            targets = list(self.selected)
            if not targets:
                self._say("select jobs first (tick them in the table), or choose 'on all matching jobs'")
                return None
            count = len(targets)
            question = f"{action.capitalize()} {count:,} selected {state} job{'s' if count != 1 else ''}: {_preview(targets)}?"
        else:
            try:
                targets = self.matching_ids() if self.filter.active else None
                count = len(targets) if targets is not None else self.queue.get_job_counts(state)[state]
            except D.REDIS_ERRORS as exc:
                self.report.value = D.error_line(exc)
                return None
            if not count:
                self._say(f"no {state} jobs match: nothing to {action}")
                return None
            which = f" matching {self.filter.describe()}" if self.filter.active else ""
            question = f"{action.capitalize()} ALL {count:,} {state} job{'s' if count != 1 else ''}{which}?"
        self._pending = _Pending(action, scope, state, targets, count)
        self.confirm_html.value = f"<b>{D.esc(question)}</b>"
        self.confirm_button.description = f"{action.capitalize()} {count:,}"
        hide(self.confirm_bar, False)
        return question

    def cancel(self) -> None:
        """Drop the pending action."""
        if self._pending is not None:
            self._say(f"{self._pending.action} cancelled")
        self._pending = None
        hide(self.confirm_bar, True)

    def confirm(self) -> ActionReport | None:
        """Carry out the pending action; the report says what it did and what it skipped."""
        pending = self._pending
        self._pending = None
        hide(self.confirm_bar, True)
        if pending is None:
            return None
        try:
            report = self._execute(pending)
        except D.REDIS_ERRORS as exc:
            self.report.value = D.error_line(exc)
            return None
        self.last_report = report
        color = "#b00020" if report.skipped and not report.count else "#2ca02c"
        self.report.value = f"<span style='color:{color}'>{D.esc(report.text())}</span>"
        self.selected = [i for i in self.selected if i not in report.done]
        self._load(min(self.page, len(self._page_starts) - 1) if self.filter.active else self.page)
        return report

    def _execute(self, p: _Pending) -> ActionReport:
        queue, state = self.queue, p.state
        if p.targets is None:
            if p.action == "retry":
                before = queue.get_job_counts(state)[state]
                queue.retry_jobs(state=state)
                return ActionReport(p.action, state, p.scope, moved=before - queue.get_job_counts(state)[state])
            if p.action == "remove":
                return ActionReport(p.action, state, p.scope, done=queue.clean(0, _CLEAN[state]))
            p.targets = queue.get_ranges([state], 0, -1, asc=True)
        done: list[str] = []
        skipped: dict[str, str] = {}
        for start in range(0, len(p.targets), self.chunk_size):
            chunk = p.targets[start : start + self.chunk_size]
            by_id = {job.id: job for job in queue.get_jobs_by_ids(chunk)}
            for job_id in chunk:
                job = by_id.get(job_id)
                if job is None:
                    skipped[job_id] = "the job no longer exists"
                    continue
                try:
                    if p.action == "retry":
                        job.retry(state)
                    elif p.action == "promote":
                        job.promote()
                    else:
                        job.remove()
                except BullError as exc:
                    skipped[job_id] = getattr(exc, "reason", str(exc))
                else:
                    done.append(job_id)
        return ActionReport(p.action, state, p.scope, done=done, skipped=skipped)

    def _say(self, text: str) -> None:
        self.report.value = f"<span style='{D.MUTED}'>{D.esc(text)}</span>"

    def close(self) -> None:
        for child in self.children:
            close_tree(child)
        super().close()


def _data_cell(data: Any, fields: list[str]) -> str:
    if isinstance(data, dict) and fields:
        parts = [f"<b>{D.esc(k)}</b>={D.esc(D.to_text(data[k], 40))}" for k in fields if k in data]
        return "<br>".join(parts)
    return f"<code>{D.esc(D.to_text(data, 80))}</code>"
