"""The inspector's job editor: add a job, duplicate one with edited data, or edit a failed job's data and retry it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import _display as D
from ..job import Job
from ..queue import Queue
from ..utils import option_keyword
from ._common import W, hide

if TYPE_CHECKING:
    from .job_detail import JobDetail

#: What the editor reports on the widget instead of raising: bad input, a job gone, Redis.
EDIT_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, LookupError, *D.REDIS_ERRORS)

#: The options a duplicate copies from the original (the keyword names of ``Queue.add``).
COPIED_OPTIONS = ("priority", "attempts", "backoff", "lifo", "timeout", "remove_on_complete", "remove_on_fail",
                  "stack_trace_limit")
MODES = {
    # mode: (title, submit label)
    "add": ("Add a job", "Add job"),
    "duplicate": ("Duplicate job {id} (edit, then add)", "Add copy"),
    "edit": ("Edit the data of failed job {id}, then retry it", "Save & retry"),
}


def options_of(job: Job) -> dict[str, Any]:
    """The options of ``job`` a copy would take, as ``Queue.add`` keywords (a delay only when it had one)."""
    out: dict[str, Any] = {}
    for camel, value in job.opts.items():
        name = option_keyword(camel)
        if name in COPIED_OPTIONS and value is not None:
            out[name] = value
    if job.delay:
        out["delay"] = job.delay
    return out


@dataclass(frozen=True)
class Draft:
    """What the editor holds, parsed."""

    mode: str
    job_id: str | None
    name: str | None
    data: Any
    options: dict[str, Any]


class JobEditor(W.VBox):  # type: ignore[misc]
    """Name, data (JSON) and options (JSON of ``Queue.add`` keywords); hidden until opened."""

    def __init__(self) -> None:
        self.mode = "add"
        self.job_id: str | None = None
        self.title = W.HTML()
        self.name_box = W.Text(description="name", placeholder="__default__")
        self.data_box = W.Textarea(description="data", placeholder='{"number": "5511999", "message": "hi"}', rows=9)
        self.options_box = W.Textarea(description="options", rows=3,
                                      placeholder='{"attempts": 3, "delay": 60000, "backoff": {"type": "fixed", "delay": 2000}}')
        for box in (self.name_box, self.data_box, self.options_box):
            box.add_class("bullpy-editor-field")
        self.hint = W.HTML(f"<span style='{D.MUTED}'>data and options are JSON; options are the keywords of "
                           f"<code>Queue.add</code> (attempts, delay, priority, backoff, lifo, timeout, "
                           f"remove_on_complete, remove_on_fail, job_id)</span>")
        self.submit_button = W.Button(description="Add job", button_style="primary", icon="check")
        self.submit_button.add_class("bullpy-editor-submit")
        self.cancel_button = W.Button(description="Cancel")
        self.error = W.HTML()
        self.error.add_class("bullpy-editor-error")
        buttons = W.HBox([self.submit_button, self.cancel_button])
        buttons.add_class("bullpy-toolbar")
        super().__init__([self.title, self.name_box, self.data_box, self.options_box, self.hint, buttons, self.error])
        self.add_class("bullpy-side-pane")
        self.add_class("bullpy-editor")
        hide(self, True)
        self.cancel_button.on_click(lambda _b: self.close_editor())

    def start(self, mode: str, *, job: Job | None = None, data: Any = None, name: str = "",
             options: Mapping[str, Any] | None = None) -> None:
        """Fill the editor (from ``job`` when given) and show it."""
        if mode not in MODES:
            raise ValueError(f"unknown editor mode {mode!r}; use one of {', '.join(MODES)}")
        if mode != "add" and job is None:
            raise ValueError(f"{mode} needs the job it starts from")
        self.mode, self.job_id = mode, None if job is None else job.id
        title, label = MODES[mode]
        self.title.value = f"<b>{D.esc(title.format(id=self.job_id))}</b>"
        self.submit_button.description = label
        if job is not None:
            data, name = job.data, job.name
            options = options_of(job) if mode == "duplicate" else None
        self.name_box.value = "" if name in ("", "__default__") else name
        self.name_box.disabled = mode == "edit"
        self.data_box.value = "" if data is None else json.dumps(data, ensure_ascii=False, indent=2, default=str)
        self.options_box.value = json.dumps(dict(options), ensure_ascii=False) if options else ""
        hide(self.options_box, mode == "edit")
        hide(self.hint, mode == "edit")
        self.error.value = ""
        hide(self, False)

    def close_editor(self) -> None:
        self.error.value = ""
        hide(self, True)

    @property
    def is_open(self) -> bool:
        return bool(self.layout.display != "none")

    def draft(self) -> Draft:
        """The parsed contents; ``ValueError`` saying which box is not valid JSON."""
        data = _json("data", self.data_box.value)
        options = _json("options", self.options_box.value) if self.mode != "edit" else None
        if options is not None and not isinstance(options, dict):
            raise ValueError("options must be a JSON object of Queue.add keywords")
        name = self.name_box.value.strip() or None
        return Draft(self.mode, self.job_id, name, data, dict(options or {}))


def _json(what: str, value: str) -> Any:
    if not value.strip():
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None


class InspectorEditing:
    """Adding, duplicating and editing jobs from the inspector (mixed into ``JobInspector``)."""

    if TYPE_CHECKING:
        queue: Queue
        read_only: bool
        editor: JobEditor
        detail_pane: JobDetail
        report: Any

        def show(self, job_id: str) -> Job | None: ...
        def reload(self) -> None: ...
        def _say(self, text: str) -> None: ...

    def new_job(self, data: Any = None, name: str = "", **options: Any) -> None:
        """Open the editor on a new job (``submit()`` adds it)."""
        if self._editable():
            self.editor.start("add", data=data, name=name, options=options)
            hide(self.detail_pane, True)

    def duplicate(self, job_id: str | None = None) -> None:
        """Open the editor on a copy of a job (default: the one shown) to edit, then add."""
        job = self._job_for_editor(job_id)
        if job is not None:
            self.editor.start("duplicate", job=job)
            hide(self.detail_pane, True)

    def edit_and_retry(self, job_id: str | None = None) -> None:
        """Open the editor on a failed job's data (default: the one shown); ``submit()`` saves it and retries."""
        job = self._job_for_editor(job_id)
        if job is not None:
            self.editor.start("edit", job=job)
            hide(self.detail_pane, True)

    def _editable(self) -> bool:
        if self.read_only:
            self._say("this inspector is read-only")
        return not self.read_only

    def _job_for_editor(self, job_id: str | None) -> Job | None:
        if not self._editable():
            return None
        if job_id is None:
            return self.detail_pane.job
        try:
            job = self.queue.get_job(job_id)
        except D.REDIS_ERRORS as exc:
            self.report.value = D.error_line(exc)
            return None
        if job is None:
            self._say(f"job {job_id} no longer exists")
        return job

    def submit(self) -> Job | None:
        """Do what the editor holds: add the job (or the copy), or save a failed job's data and retry it."""
        try:
            draft = self.editor.draft()
            if draft.mode == "edit":
                job = self.queue.get_job(draft.job_id or "")
                if job is None:
                    raise LookupError(f"job {draft.job_id} no longer exists")
                state = str(job.get_state())
                if state != "failed":
                    raise LookupError(f"job {job.id} is {state} now, no longer failed: nothing was changed")
                job.update({} if draft.data is None else draft.data)
                job.retry("failed")
                done = f"Saved the data of job {job.id} and retried it."
            else:
                added = self.queue.add({} if draft.data is None else draft.data, name=draft.name, **draft.options)
                if added is None:
                    raise LookupError("the job was not added (a debounced job already exists)")
                job = added
                done = (f"Job {job.id} already exists: nothing was added." if job.duplicate
                        else f"Added job {job.id}" + (f" (copy of {draft.job_id})." if draft.job_id else "."))
        except EDIT_ERRORS as exc:
            self.editor.error.value = D.error_line(exc)
            return None
        self.editor.close_editor()
        self.report.value = f"<span style='color:#2ca02c'>{D.esc(done)}</span>"
        self.reload()
        self.show(job.id)
        return job
