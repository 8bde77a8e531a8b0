"""The inspector's detail pane: one job's fields (long values fold open on a click) and what can be done to it."""

from __future__ import annotations

from typing import Any

from .. import _display as D
from ..job import Job
from ._common import W, hide

#: Per-job buttons: (label, icon, the states it applies to).
_BUTTONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "retry": ("Retry", "redo", ("failed", "completed")),
    "promote": ("Promote", "forward", ("delayed",)),
    "remove": ("Remove", "trash", ("waiting", "active", "delayed", "paused", "completed", "failed", "missing")),
    "duplicate": ("Duplicate…", "copy", ("waiting", "active", "delayed", "paused", "completed", "failed")),
    "edit": ("Edit data & retry…", "edit", ("failed",)),
}


class JobDetail(W.VBox):  # type: ignore[misc]
    """Hidden until a job is shown; ``body`` holds the job's HTML."""

    def __init__(self, read_only: bool) -> None:
        self.read_only = read_only
        self.job: Job | None = None
        self.state: str | None = None
        self.title = W.HTML()
        self.title.add_class("bullpy-detail-title")
        self.close_button = W.Button(icon="times", tooltip="close the detail")
        self.close_button.add_class("bullpy-icon")
        self.buttons: dict[str, Any] = {}
        for action, (label, icon, _states) in _BUTTONS.items():
            button = W.Button(description=label, icon=icon)
            button.add_class(f"bullpy-detail-{action}")
            self.buttons[action] = button
        self.buttons["remove"].button_style = "warning"
        self.actions = W.HBox(list(self.buttons.values()))
        self.actions.add_class("bullpy-toolbar")
        self.body = W.HTML()
        self.body.add_class("bullpy-detail")
        head = W.HBox([self.title, self.close_button])
        head.add_class("bullpy-detail-head")
        super().__init__([head, self.actions, self.body])
        self.add_class("bullpy-side-pane")
        hide(self, True)
        self.close_button.on_click(lambda _b: self.clear())

    def show(self, job: Job, state: str, logs: list[str], log_count: int) -> None:
        self.job, self.state = job, state
        self.title.value = (f"<b>Job</b> <code>{D.esc(job.id)}</code> {D.badge(state)} "
                            f"<code style='{D.MUTED}'>{D.esc(job.name)}</code>")
        self.body.value = f"<table class='bullpy-detail-table'>{D.job_rows(job, state, logs, log_count)}</table>"
        for action, button in self.buttons.items():
            hide(button, self.read_only or state not in _BUTTONS[action][2])
        hide(self.actions, self.read_only)
        hide(self, False)

    def message(self, html: str) -> None:
        """Show a line instead of a job (the job is gone, Redis failed)."""
        self.job, self.state = None, None
        self.title.value = "<b>Job</b>"
        self.body.value = html
        hide(self.actions, True)
        hide(self, False)

    def clear(self) -> None:
        self.job, self.state = None, None
        self.body.value = ""
        hide(self, True)
