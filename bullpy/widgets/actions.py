"""What the inspector does to jobs: retry, promote, remove and clean, asked first, then reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import _display as D
from ..errors import BullError
from ..queue import Queue
from ._common import hide
from .job_filter import ASC, STATES

if TYPE_CHECKING:
    from ..job import Job
    from .job_detail import JobDetail
    from .job_filter import JobFilter

ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    # action: (past tense, the states it applies to)
    "retry": ("retried", ("failed", "completed")),
    "promote": ("promoted", ("delayed",)),
    "remove": ("removed", STATES),
    "clean": ("cleaned", STATES),
}
#: The state names ``Queue.clean`` takes.
CLEAN_STATE = {"waiting": "wait", "active": "active", "delayed": "delayed", "paused": "paused",
               "completed": "completed", "failed": "failed"}
#: What asking for a clean reports on the widget instead of raising.
_REFUSED: tuple[type[BaseException], ...] = (ValueError, TypeError, *D.REDIS_ERRORS)
#: The ages a clean may keep: (label, grace in ms).
CLEAN_AGES: list[tuple[str, int]] = [
    ("any age", 0), ("older than 1 h", 3_600_000), ("older than 24 h", 86_400_000),
    ("older than 7 days", 7 * 86_400_000),
]


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
            out += ": " + preview(self.done)
        if self.skipped:
            reasons = "; ".join(f"{i} ({why})" for i, why in list(self.skipped.items())[:10])
            more = f" and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
            out += f". Skipped {len(self.skipped):,}: {reasons}{more}"
        return out + "."


def preview(ids: Sequence[str], shown: int = 10) -> str:
    head = ", ".join(ids[:shown])
    return head + (f" and {len(ids) - shown:,} more" if len(ids) > shown else "")


@dataclass
class Pending:
    """An action asked for and not yet confirmed."""

    action: str
    scope: str  # "selected", "all" (matching the filter), "job" (the one in the detail pane), "clean"
    state: str
    targets: list[str] | None  # None: every job of the state (no filter), done with a bulk call
    count: int
    grace_ms: int = 0  # clean: keep jobs younger than this


def question(p: Pending, which: str = "") -> str:
    """The confirmation text of a pending action."""
    plural = "s" if p.count != 1 else ""
    if p.action == "clean":
        age = {g: label for label, g in CLEAN_AGES}.get(p.grace_ms, f"older than {p.grace_ms:,} ms")
        return (f"Clean {p.count:,} {p.state} job{plural} ({age})? They are removed with their logs "
                f"(Bull's clean; locked active jobs are kept).")
    if p.scope in ("selected", "job") and p.targets is not None:
        kind = "selected " if p.scope == "selected" else ""
        return f"{p.action.capitalize()} {p.count:,} {kind}{p.state} job{plural}: {preview(p.targets)}?"
    return f"{p.action.capitalize()} ALL {p.count:,} {p.state} job{plural}{which}?"


def execute(queue: Queue, p: Pending, chunk_size: int) -> ActionReport:
    """Carry out a confirmed action: bulk calls where Bull has one, else job by job, skipping (with the
    reason) jobs that are gone or moved on."""
    state = p.state
    if p.action == "clean":
        return ActionReport(p.action, state, p.scope, done=queue.clean(p.grace_ms, CLEAN_STATE[state]))
    if p.targets is None:
        if p.action == "retry":
            before = queue.get_job_counts(state)[state]
            queue.retry_jobs(state=state)
            return ActionReport(p.action, state, p.scope, moved=before - queue.get_job_counts(state)[state])
        if p.action == "remove":
            return ActionReport(p.action, state, p.scope, done=queue.clean(0, CLEAN_STATE[state]))
        p.targets = queue.get_ranges([state], 0, -1, asc=ASC[state])
    done: list[str] = []
    skipped: dict[str, str] = {}
    for start in range(0, len(p.targets), chunk_size):
        chunk = p.targets[start : start + chunk_size]
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


class InspectorActions:
    """The inspector's actions (mixed into ``JobInspector``): ask, show the question, carry out on confirm."""

    if TYPE_CHECKING:
        queue: Queue
        read_only: bool
        selected: list[str]
        filter: JobFilter
        detail_pane: JobDetail
        report: Any
        confirm_bar: Any
        confirm_html: Any
        confirm_button: Any
        chunk_size: int
        page: int
        last_report: ActionReport | None
        _pending: Pending | None
        _page_starts: list[int]

        @property
        def state(self) -> str: ...
        def matching_ids(self) -> list[str]: ...
        def show(self, job_id: str) -> Job | None: ...
        def _load(self, page: int, recount: bool = False) -> None: ...
        def _say(self, text: str) -> None: ...

    def request(self, action: str, scope: str = "selected") -> str | None:
        """Ask to ``retry``/``promote``/``remove`` the selected jobs (``scope="selected"``), every job matching
        the filter (``"all"``) or the job in the detail pane (``"job"``); nothing happens until ``confirm()``.
        Returns the question."""
        if action not in ("retry", "promote", "remove"):
            raise ValueError(f"unknown action {action!r}; use one of retry, promote, remove")
        if scope not in ("selected", "all", "job"):
            raise ValueError(f"scope must be 'selected', 'all' or 'job', got {scope!r}")
        if self.read_only:
            self._say("this inspector is read-only")
            return None
        state = self.state
        if scope == "job":
            shown = self.detail_pane.job
            if shown is None:
                self._say("show a job first (click its id)")
                return None
            state = self.detail_pane.state or state
        if state not in ACTIONS[action][1]:
            self._say(f"{action} applies to {' or '.join(ACTIONS[action][1])} jobs, not {state} ones")
            return None
        targets: list[str] | None
        which = ""
        if scope in ("selected", "job"):
            targets = [self.detail_pane.job.id] if scope == "job" and self.detail_pane.job else list(self.selected)
            if not targets:
                self._say("select jobs first (tick them in the list), or choose 'on all matching'")
                return None
            count = len(targets)
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
        return self._ask(Pending(action, scope, state, targets, count), which)

    def request_clean(self, grace_ms: int = 0) -> str | None:
        """Ask to clean the state shown (Bull's ``clean``: remove its jobs older than ``grace_ms``): counts
        them first with a dry run; nothing happens until ``confirm()``. Returns the question."""
        if self.read_only:
            self._say("this inspector is read-only")
            return None
        state = self.state
        try:
            count = len(self.queue.clean(grace_ms, CLEAN_STATE[state], dry_run=True))
        except _REFUSED as exc:
            self.report.value = D.error_line(exc)
            return None
        if not count:
            self._say(f"no {state} jobs to clean at that age")
            return None
        return self._ask(Pending("clean", "clean", state, None, count, grace_ms=grace_ms))

    def _ask(self, pending: Pending, which: str = "") -> str:
        self._pending = pending
        text = question(pending, which)
        self.confirm_html.value = f"<b>{D.esc(text)}</b>"
        self.confirm_button.description = f"{pending.action.capitalize()} {pending.count:,}"
        hide(self.confirm_bar, False)
        return text

    def cancel(self, quiet: bool = False) -> None:
        """Drop the pending action."""
        if self._pending is not None and not quiet:
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
            report = execute(self.queue, pending, self.chunk_size)
        except D.REDIS_ERRORS as exc:
            self.report.value = D.error_line(exc)
            return None
        self.last_report = report
        color = "#b00020" if report.skipped and not report.count else "#2ca02c"
        self.report.value = f"<span style='color:{color}'>{D.esc(report.text())}</span>"
        self.selected = [i for i in self.selected if i not in report.done]
        self._load(min(self.page, len(self._page_starts) - 1) if self.filter.active else self.page, recount=True)
        shown = self.detail_pane.job
        if shown is not None and shown.id in report.done:
            self.show(shown.id)
        return report
