"""JobInspector: a queue's jobs by state, a page at a time, filtered, one in detail beside the list, acted on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from .. import _display as D
from ..job import Job
from ..queue import Queue
from . import _style
from ._common import Refresher, RefreshingBox, W, check_interval, hide, now_ms
from .actions import ACTIONS, CLEAN_AGES, ActionReport, InspectorActions, Pending
from .job_detail import JobDetail
from .job_editor import InspectorEditing, JobEditor
from .job_filter import ASC, STATES, WINDOWS, JobFilter, MatchCount, scan
from .job_list import JobList

__all__ = ["STATES", "WINDOWS", "ActionReport", "JobFilter", "JobInspector"]


def _button(description: str = "", icon: str = "", tooltip: str = "", cls: str = "", **kw: Any) -> Any:
    button = W.Button(description=description, icon=icon, tooltip=tooltip or description, **kw)
    if cls:
        button.add_class(cls)
    return button


def _bar(children: Sequence[Any], cls: str = "bullpy-toolbar") -> Any:
    box = W.HBox(list(children))
    box.add_class(cls)
    return box


class JobInspector(InspectorActions, InspectorEditing, RefreshingBox):
    """Jobs of one state, ``page_size`` at a time: tabs per state with live counts, filters with their total,
    one compact line per job, the clicked job's detail beside the list (above it when the page is narrow),
    and actions that ask first: retry/promote/remove the selection, every match or one job, clean a state,
    add a job, duplicate one with edited data, edit a failed job's data and retry it.

    Pages are windows of the state's list or sorted set, so a page costs the same for a million jobs as for
    ten. With a filter, jobs are read forward in chunks of five fields each until the page is full or
    ``max_scan`` were read (Next goes on from there); the total of matches is counted the same way, up to
    ``count_limit`` jobs a time ("count on" reads further).

    Args:
        state: the state shown first; default the first of failed, active, waiting, delayed, paused,
            completed that has jobs.
        fields: data fields the data preview shows (default: the whole data, as one line of JSON).
        refresh: seconds between two reads of the tab counts (None: on demand only).
        read_only: no action buttons, no editor: for people who only watch.
    """

    def __init__(self, queue: Queue, state: str | None = None, *, page_size: int = 20,
                 fields: Sequence[str] | None = None, max_scan: int = 10_000, chunk_size: int = 500,
                 count_limit: int = 10_000, refresh: float | None = 5.0, read_only: bool = False) -> None:
        if not isinstance(queue, Queue):
            raise TypeError(f"JobInspector needs a bullpy.Queue, got {type(queue).__name__}")
        if state is not None and state not in STATES:
            raise ValueError(f"unknown state {state!r}; use one of {', '.join(STATES)}")
        for name, value in (("page_size", page_size), ("max_scan", max_scan), ("chunk_size", chunk_size),
                            ("count_limit", count_limit)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if page_size > 500:
            raise ValueError(f"page_size must be at most 500, got {page_size}")
        if fields is not None and (isinstance(fields, str) or not all(isinstance(f, str) for f in fields)):
            raise TypeError("fields must be a list of data field names")
        interval = check_interval(refresh)
        self.queue = queue
        self.page_size, self.max_scan, self.chunk_size, self.count_limit = page_size, max_scan, chunk_size, count_limit
        self.fields = list(fields) if fields is not None else None
        self.read_only = bool(read_only)
        self.filter = JobFilter()
        self.counts: dict[str, int] = {}
        self.jobs: list[Job] = []
        self.page = 0
        self.total = 0
        self.selected: list[str] = []
        self.last_report: ActionReport | None = None
        self.scan_info: dict[str, int] | None = None
        self.match_count: MatchCount | None = None
        self._page_starts = [0]
        self._more = False
        self._pending: Pending | None = None
        self._rendering = False
        self._lock = threading.RLock()
        self._state = state or self._first_state()
        self.interval = interval
        self._build()
        self._wire()
        self._load(0, recount=True)
        self._refresher = Refresher(self, interval, "bullpy-inspector").start() if interval else None

    # --- building -----------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.title = W.HTML(f"<b>Jobs</b> of {D.queue_title(self.queue)}"
                            + (" <span class='bullpy-chip'>read-only</span>" if self.read_only else ""))
        self.refresh_button = _button("Refresh", "refresh", "read the counts and this page again")
        self.add_button = _button("Add job…", "plus", "add a job to this queue", "bullpy-add")
        self.status = W.HTML()
        self.status.add_class("bullpy-status")
        self.tabs = {s: _button(s, tooltip=f"show {s} jobs", cls=f"bullpy-tab-{s}") for s in STATES}
        for tab in self.tabs.values():
            tab.add_class("bullpy-tab")
        self.text_box = W.Text(placeholder="search id, name, data, failed reason", continuous_update=False)
        self.text_box.add_class("bullpy-search")
        self.field_box = W.Text(placeholder="data field", continuous_update=False)
        self.value_box = W.Text(placeholder="value (globs: * ?)", continuous_update=False)
        self.window_dropdown = W.Dropdown(options=list(WINDOWS), value="any time")
        self.apply_button = _button("Apply", "filter", "show only jobs matching the filter")
        self.clear_button = _button("Clear", tooltip="show every job of the state")
        self.first_button = _button(icon="step-backward", tooltip="first page", cls="bullpy-icon")
        self.prev_button = _button(icon="chevron-left", tooltip="previous page", cls="bullpy-icon")
        self.next_button = _button(icon="chevron-right", tooltip="next page", cls="bullpy-icon")
        self.last_button = _button(icon="step-forward", tooltip="last page", cls="bullpy-icon")
        self.page_html = W.HTML()
        self.page_html.add_class("bullpy-page")
        self.count_more_button = _button("count on", tooltip="count matches further into the state")
        self.select_page = W.Checkbox(description="page", indent=False, tooltip="select every job of this page")
        self.select_page.add_class("bullpy-select-page")
        self.scope_dropdown = W.Dropdown(options=[("on selected jobs", "selected"), ("on all matching", "all")],
                                         value="selected")
        self.action_buttons = {
            "retry": _button("Retry", "redo", "retry the selected (or all matching) jobs"),
            "promote": _button("Promote", "forward", "run the selected (or all matching) delayed jobs now"),
            "remove": _button("Remove", "trash", "remove the selected (or all matching) jobs", button_style="warning"),
        }
        self.clean_age = W.Dropdown(options=CLEAN_AGES, value=0)
        self.clean_button = _button("Clean…", "eraser", "count, then remove, every job of this state of an age",
                                    "bullpy-clean")
        self.confirm_html = W.HTML()
        self.confirm_button = _button("Confirm", button_style="danger", cls="bullpy-confirm-button")
        self.cancel_button = _button("Cancel")
        self.confirm_bar = _bar([self.confirm_html, self.confirm_button, self.cancel_button], "bullpy-confirm")
        hide(self.confirm_bar, True)
        self.report = W.HTML()
        self.report.add_class("bullpy-report")
        self.job_list = JobList(self.page_size, self.show, self._on_check)
        self.rows = self.job_list.rows
        self.detail_pane = JobDetail(self.read_only)
        self.detail = self.detail_pane.body
        self.editor = JobEditor()
        self.action_bar = _bar([self.select_page, *self.action_buttons.values(), self.scope_dropdown,
                                self.clean_age, self.clean_button])
        hide(self.action_bar, self.read_only)
        hide(self.add_button, self.read_only)
        list_pane = W.VBox([
            _bar([self.first_button, self.prev_button, self.next_button, self.last_button, self.page_html,
                  self.count_more_button]),
            self.action_bar, self.job_list,
        ])
        list_pane.add_class("bullpy-list")
        # Row-reverse (bullpy-split): the list on the left, the side pane on its right; when the two do not
        # fit side by side, the side pane wraps onto the first line, above the list.
        split = W.HBox([self.editor, self.detail_pane, list_pane])
        split.add_class("bullpy-split")
        super().__init__([
            _style.stylesheet(),
            _bar([self.title, self.refresh_button, self.add_button, self.status], "bullpy-header"),
            _bar(list(self.tabs.values()), "bullpy-tabs"),
            _bar([self.text_box, self.field_box, self.value_box, self.window_dropdown, self.apply_button,
                  self.clear_button]),
            self.confirm_bar, self.report, split,
        ])
        self.add_class("bullpy-widget")
        self.add_class("bullpy-inspector")
        if self.read_only:
            self.add_class("bullpy-readonly")

    def _wire(self) -> None:
        for state, tab in self.tabs.items():
            tab.on_click(self._tab_click(state))
        self.refresh_button.on_click(lambda _b: self.reload())
        self.add_button.on_click(lambda _b: self.new_job())
        self.apply_button.on_click(lambda _b: self._apply_boxes())
        self.text_box.observe(lambda _c: None if self._rendering else self._apply_boxes(), names="value")
        self.clear_button.on_click(lambda _b: self.clear_filter())
        self.first_button.on_click(lambda _b: self.first_page())
        self.prev_button.on_click(lambda _b: self.prev_page())
        self.next_button.on_click(lambda _b: self.next_page())
        self.last_button.on_click(lambda _b: self.last_page())
        self.count_more_button.on_click(lambda _b: self.count_on())
        self.select_page.observe(self._on_select_page, names="value")
        for action, button in self.action_buttons.items():
            button.on_click(self._requester(action))
        self.clean_button.on_click(lambda _b: self.request_clean(int(self.clean_age.value)))
        self.confirm_button.on_click(lambda _b: self.confirm())
        self.cancel_button.on_click(lambda _b: self.cancel())
        buttons = self.detail_pane.buttons
        for action in ("retry", "promote", "remove"):
            buttons[action].on_click(self._requester(action, "job"))
        buttons["duplicate"].on_click(lambda _b: self.duplicate())
        buttons["edit"].on_click(lambda _b: self.edit_and_retry())
        self.detail_pane.close_button.on_click(lambda _b: self._render_table())
        self.editor.submit_button.on_click(lambda _b: self.submit())
        self.editor.cancel_button.on_click(lambda _b: hide(self.detail_pane, self.detail_pane.job is None))

    def _tab_click(self, state: str) -> Callable[[Any], None]:
        def on_click(_button: Any) -> None:
            self.state = state
        return on_click

    def _requester(self, action: str, scope: str | None = None) -> Callable[[Any], None]:
        def on_click(_button: Any) -> None:
            self.request(action, scope or str(self.scope_dropdown.value))
        return on_click

    # --- state and paging -----------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """The state shown; set it to show another."""
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        if value not in STATES:
            raise ValueError(f"unknown state {value!r}; use one of {', '.join(STATES)}")
        if value != self._state:
            self._state = value
            self._reset()

    @property
    def shown(self) -> Job | None:
        """The job in the detail pane."""
        return self.detail_pane.job

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
        self.cancel(quiet=True)
        self._load(0, recount=True)

    def reload(self) -> None:
        """Read the counts and the current page again (and count a filter's matches again)."""
        self._load(self.page, recount=True)

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

    def _load(self, page: int, recount: bool = False) -> None:
        state, now = self.state, now_ms()
        with self._lock:
            try:
                self.counts = self.queue.get_job_counts(*STATES)
                self.total = self.counts[state]
                if self.filter.active:
                    page = min(page, len(self._page_starts) - 1)
                    start = self._page_starts[page]
                    found = scan(self.queue, state, self.filter, now, start=start, keep=self.page_size,
                                 limit=self.max_scan, chunk=self.chunk_size)
                    del self._page_starts[page + 1 :]
                    self._page_starts.append(found.end)
                    self._more = not found.exhausted
                    self.scan_info = {"start": start, "end": found.end, "scanned": found.scanned}
                    jobs = self.queue.get_jobs_by_ids(found.ids)
                    if recount or self.match_count is None:
                        self.match_count = MatchCount()
                        self._count_batch(now)
                else:
                    start = page * self.page_size
                    # get_jobs, not ranges + get_jobs_by_ids: an id listed with no hash is shown as damaged.
                    jobs = self.queue.get_jobs([state], start, start + self.page_size - 1, asc=ASC[state])
                    self._more = start + self.page_size < self.total
                    self.scan_info = None
                    self.match_count = None
                self.page, self.jobs = page, jobs
            except D.REDIS_ERRORS as exc:
                self.report.value = D.error_line(exc)
                self._render_status(exc)
                return
            self._render_tabs()
            self._render_table()
            self._render_status(None)

    def _count_batch(self, now: int) -> None:
        counted = self.match_count
        if counted is None or counted.exact:
            return
        counted.add(scan(self.queue, self.state, self.filter, now, start=counted.read, keep=0,
                         limit=self.count_limit, chunk=self.chunk_size, count=True))

    def count_on(self) -> MatchCount | None:
        """Count a filter's matches ``count_limit`` jobs further (the total says how far it got)."""
        with self._lock:
            try:
                self._count_batch(now_ms())
            except D.REDIS_ERRORS as exc:
                self.report.value = D.error_line(exc)
            self._render_page_info()
            return self.match_count

    def _tick(self) -> None:
        """The background refresh: the tab counts only (one round trip), never the page under the reader."""
        if not self._visible():
            return
        with self._lock:
            try:
                self.counts = self.queue.get_job_counts(*STATES)
            except D.REDIS_ERRORS as exc:
                self._render_status(exc)
                return
            self._render_tabs()
            self._render_status(None)

    # --- rendering -------------------------------------------------------------------------------------------
    def _render_tabs(self) -> None:
        for state, tab in self.tabs.items():
            tab.description = f"{state} {self.counts.get(state, 0):,}"
            tab.add_class("bullpy-tab-current") if state == self.state else tab.remove_class("bullpy-tab-current")

    def _render_status(self, error: BaseException | None) -> None:
        when = D.short_time(now_ms())
        live = f"counts every {self.interval:g} s" if self.interval else "counts on refresh"
        self.status.value = (f"{D.error_line(error)} <span style='{D.MUTED}'>({when} UTC)</span>" if error else
                             f"<span style='{D.MUTED}'>updated {when} UTC · {live}</span>")

    def _render_table(self) -> None:
        self._rendering = True
        try:
            shown = self.detail_pane.job.id if self.detail_pane.job is not None else None
            empty = (f"no {self.state} jobs match {self.filter.describe()} here" if self.filter.active
                     else f"no {self.state} jobs")
            self.job_list.render(self.jobs, self.state, selected=self.selected, shown=shown, fields=self.fields,
                                 read_only=self.read_only, empty=empty)
            self.select_page.value = bool(self.jobs) and all(j.id in self.selected for j in self.jobs)
        finally:
            self._rendering = False
        self._render_page_info()

    def _render_page_info(self) -> None:
        n = len(self.jobs)
        counted = self.match_count
        if self.scan_info is not None:
            info = self.scan_info
            total = counted.text(self.total) if counted is not None else ""
            text = (f"page {self.page + 1}: {n} job{'s' if n != 1 else ''} matching {D.esc(self.filter.describe())}"
                    f" · <b class='bullpy-match-count'>{D.esc(total)}</b> <span style='{D.MUTED}'>(read "
                    f"{info['scanned']:,} jobs, positions {info['start'] + 1:,}–{info['end']:,} of {self.total:,}"
                    f"{'' if self._more else '; no more'})</span>")
        elif n:
            first = self.page * self.page_size + 1
            text = f"jobs {first:,}–{first + n - 1:,} of {self.total:,}"
        else:
            text = f"no {self.state} jobs"
        if self.selected:
            text += f" · <b>{len(self.selected)} selected</b>"
        self.page_html.value = text
        hide(self.count_more_button, counted is None or counted.exact)
        self.prev_button.disabled = self.first_button.disabled = self.page == 0
        self.next_button.disabled = not self._more
        self.last_button.disabled = self.filter.active or not self._more
        for action, button in self.action_buttons.items():
            button.disabled = self.state not in ACTIONS[action][1]
        self.clean_button.tooltip = f"count, then remove, {self.state} jobs of the age on the left (Bull's clean)"

    # --- filtering ---------------------------------------------------------------------------------------
    def set_filter(self, text: str = "", field: str = "", value: str = "", window: str = "any time") -> None:
        """Show only matching jobs (see ``JobFilter``), with how many match in total; the boxes show it too."""
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

    def matching_ids(self) -> list[str]:
        """Ids of every job of the state that matches the filter (reads the whole state)."""
        if not self.filter.active:
            return self.queue.get_ranges([self.state], 0, -1, asc=ASC[self.state])
        found = scan(self.queue, self.state, self.filter, now_ms(), start=0, keep=1 << 62, limit=None,
                     chunk=self.chunk_size, count=True)
        return found.ids

    # --- selection and detail --------------------------------------------------------------------------------
    def select(self, ids: Sequence[str] | str) -> None:
        """Select jobs by id (replacing the selection); they need not be on the page."""
        self.selected = [ids] if isinstance(ids, str) else [str(i) for i in dict.fromkeys(ids)]
        self._render_table()

    def _on_check(self, job_id: str, on: bool) -> None:
        if on and job_id not in self.selected:
            self.selected.append(job_id)
        elif not on and job_id in self.selected:
            self.selected.remove(job_id)
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

    def show(self, job_id: str) -> Job | None:
        """Show one job in the detail pane: data, options, progress, result, failure, stacktrace, logs."""
        self.editor.close_editor()
        try:
            job = self.queue.get_job(job_id)
            if job is None:
                listed = next((j for j in self.jobs if j.id == job_id and j.damaged), None)
                why = (f"<b class='bullpy-damaged' style='color:#b91c1c'>damaged</b>: {D.esc(listed.damaged or '')}"
                       if listed is not None else f"job {D.esc(job_id)} no longer exists")
                self.detail_pane.message(f"<span style='{D.MUTED}'>{why}</span>")
                self._render_table()
                return None
            try:
                state = str(job.get_state())
            except LookupError:
                state = "missing"
            logs = self.queue.get_job_logs(job_id, 0, 49)
        except D.REDIS_ERRORS as exc:
            self.detail_pane.message(D.error_line(exc))
            return None
        self.detail_pane.show(job, state, logs.logs, logs.count)
        self._render_table()
        return job

    def _say(self, text: str) -> None:
        self.report.value = f"<span style='{D.MUTED}'>{D.esc(text)}</span>"
