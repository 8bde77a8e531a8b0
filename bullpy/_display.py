"""How a Queue and a Job look: HTML for notebooks (``_repr_html_``, the widgets) and one-line text.

Only the public attributes of Queue and Job are read here, so the widgets can reuse these helpers.
Rendering never raises for a Redis that went away: a notebook cell shows the problem instead of a
traceback from inside IPython's formatter.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis as _redis

from .errors import BullError
from .utils import now_ms

if TYPE_CHECKING:
    from .job import Job
    from .queue import Queue

#: What reading Redis may raise: redis-py's errors and bullpy's wrappers of them (unreachable, refused).
REDIS_ERRORS: tuple[type[BaseException], ...] = (_redis.RedisError, ConnectionError, BullError)

#: One colour per state, shared by the reprs and the widgets.
STATE_COLORS: dict[str, str] = {
    "waiting": "#1f77b4", "active": "#ff7f0e", "completed": "#2ca02c", "failed": "#d62728",
    "delayed": "#9467bd", "paused": "#7f7f7f", "stuck": "#8c564b", "missing": "#7f7f7f",
}
MUTED = "color:#777"
_CELL = "padding:2px 8px;text-align:right"
_LEFT = "padding:2px 8px;text-align:left;vertical-align:top"
_TEXT_LIMIT = 2000


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)



def format_time(ms: int | None, now: int | None = None) -> str:
    """``2024-05-01 12:03:04 UTC (3 min ago)``; empty for a missing time."""
    if not ms:
        return ""
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp} ({format_ago(ms, now)})"


def format_ago(ms: int, now: int | None = None) -> str:
    delta = ((now if now is not None else now_ms()) - ms) / 1000
    ahead = delta < 0
    delta = abs(delta)
    if delta < 60:
        text = f"{delta:.0f} s"
    elif delta < 3600:
        text = f"{delta / 60:.0f} min"
    elif delta < 86400:
        text = f"{delta / 3600:.1f} h"
    else:
        text = f"{delta / 86400:.1f} d"
    return f"in {text}" if ahead else f"{text} ago"


def short_time(ms: int | None) -> str:
    """``05-01 12:03:04`` (UTC), for table cells."""
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%m-%d %H:%M:%S")


def to_text(value: Any, limit: int = _TEXT_LIMIT, indent: int | None = None) -> str:
    """A value as JSON text (strings as they are), cut at ``limit`` characters."""
    if isinstance(value, str):
        out = value
    else:
        try:
            out = json.dumps(value, ensure_ascii=False, indent=indent, default=str)
        except (TypeError, ValueError):
            out = repr(value)
    return out if len(out) <= limit else out[:limit] + f"… ({len(out) - limit} more characters)"


def badge(state: str) -> str:
    color = STATE_COLORS.get(state, "#555")
    return (f"<span class='bullpy-badge' data-bullpy-badge='{esc(state)}' style='background:{color};color:#fff;"
            f"border-radius:3px;padding:0 5px;font-size:90%'>{esc(state)}</span>")


def counts_table(counts: Mapping[str, int]) -> str:
    """Counts per state as one table; each number cell carries ``data-bullpy-state``."""
    heads = "".join(
        f"<th style='{_CELL};color:{STATE_COLORS.get(k, '#333')}'>{esc(k)}</th>" for k in counts
    )
    cells = "".join(
        f"<td style='{_CELL};font-variant-numeric:tabular-nums' data-bullpy-state='{esc(k)}'>{v:,}</td>"
        for k, v in counts.items()
    )
    return f"<table class='bullpy-counts'><tr>{heads}</tr><tr>{cells}</tr></table>"


def error_line(exc: BaseException) -> str:
    return f"<span style='color:#b00020'>{esc(type(exc).__name__)}: {esc(exc)}</span>"


# --- Queue -------------------------------------------------------------------------------------------

def queue_title(queue: Queue) -> str:
    return f"<b>Queue</b> <code>{esc(queue.prefix)}:{esc(queue.name)}</code>"


def queue_html(queue: Queue) -> str:
    """Counts per state, paused flag and workers: what evaluating ``queue`` in a cell shows."""
    where = f"<span style='{MUTED}'> on {esc(queue.server.describe())}</span>"
    try:
        counts = queue.get_job_counts()
        paused = queue.is_paused()
        workers = len(queue.get_workers())
    except (_redis.RedisError, ConnectionError, BullError) as exc:
        return f"<div class='bullpy-queue'>{queue_title(queue)}{where}<br>{error_line(exc)}</div>"
    flag = " " + badge("paused") if paused else ""
    plural = "" if workers == 1 else "s"
    return (
        f"<div class='bullpy-queue'>{queue_title(queue)}{flag}{where}{counts_table(counts)}"
        f"<div style='{MUTED}'>{workers} worker{plural} connected · live view: "
        f"<code>bullpy.widgets.QueueDashboard(queue)</code>, jobs: <code>bullpy.widgets.JobInspector(queue)</code>"
        f"</div></div>"
    )


# --- Job ---------------------------------------------------------------------------------------------

def job_text(job: Job) -> str:
    """``<Job message-queue:5 name='__default__' attempts_made=2 failed_reason='boom'>``, without I/O."""
    parts = [f"<Job {job.queue.name}:{job.id} name={job.name!r}"]
    if job.attempts_made:
        parts.append(f"attempts_made={job.attempts_made}")
    if job.progress not in (None, 0):
        parts.append(f"progress={job.progress!r}")
    if job.failed_reason:
        reason = job.failed_reason if len(job.failed_reason) <= 80 else job.failed_reason[:79] + "…"
        parts.append(f"failed_reason={reason!r}")
    if job.duplicate:
        parts.append("duplicate")
    return " ".join(parts) + ">"


def _row(label: str, value: str) -> str:
    return f"<tr><th style='{_LEFT}'>{esc(label)}</th><td style='{_LEFT}'>{value}</td></tr>"


def _pre(value: Any) -> str:
    return f"<pre style='margin:0;line-height:1.3;white-space:pre-wrap;max-height:20em;overflow:auto'>{esc(to_text(value, indent=2))}</pre>"


def job_rows(job: Job, state: str | None = None, logs: Sequence[str] | None = None, log_count: int = 0) -> str:
    """The rows of a job's detail table: data, options, attempts, times, outcome, logs."""
    now = now_ms()
    rows = [_row("name", f"<code>{esc(job.name)}</code>")]
    if state is not None:
        rows.append(_row("state", badge(state)))
    rows.append(_row("data", _pre(job.data)))
    attempts = job.opts.get("attempts")
    made = job.attempts_made or 0
    rows.append(_row("attempts", f"{made}" + (f" of {attempts}" if attempts else "")))
    if job.progress not in (None, 0):
        rows.append(_row("progress", f"<code>{esc(to_text(job.progress))}</code>"))
    rows.append(_row("created", esc(format_time(job.timestamp, now))))
    if job.delay and job.timestamp:
        rows.append(_row("due", esc(format_time(job.timestamp + job.delay, now))))
    if job.processed_on:
        rows.append(_row("processed", esc(format_time(job.processed_on, now))))
    if job.finished_on:
        rows.append(_row("finished", esc(format_time(job.finished_on, now))))
    if job.failed_reason:
        rows.append(_row("failed reason", f"<span class='bullpy-failed-reason' style='color:#b00020'>"
                                          f"{esc(job.failed_reason)}</span>"))
    if job.stacktrace:
        traces = "".join(f"<pre style='margin:0;line-height:1.3;white-space:pre-wrap'>{esc(to_text(t))}</pre>" for t in job.stacktrace)
        rows.append(_row("stacktrace", f"<details><summary>{len(job.stacktrace)} trace(s)</summary>{traces}</details>"))
    if job.returnvalue is not None:
        rows.append(_row("returnvalue", _pre(job.returnvalue)))
    rows.append(_row("opts", _pre(job.opts)))
    if logs is not None:
        shown = "".join(f"<div><code>{esc(to_text(r, 500))}</code></div>" for r in logs)
        more = f"<div style='{MUTED}'>{log_count - len(logs)} more rows</div>" if log_count > len(logs) else ""
        rows.append(_row(f"logs ({log_count})", (shown + more) or f"<span style='{MUTED}'>none</span>"))
    return "".join(rows)


def job_html(job: Job, *, state: str | None = None, logs: Sequence[str] | None = None, log_count: int = 0) -> str:
    """A job's fields as a table; ``state`` is read from Redis when not given (shown as unknown if it fails)."""
    if state is None:
        try:
            state = str(job.get_state())
        except (_redis.RedisError, ConnectionError, BullError):
            state = "missing"
    return (
        f"<div class='bullpy-job'><b>Job</b> <code>{esc(job.id)}</code> of <code>{esc(job.queue.name)}</code>"
        f"<table>{job_rows(job, state, logs, log_count)}</table></div>"
    )


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], attrs: str = "") -> str:
    """A plain HTML table; cells are HTML already escaped by the caller."""
    head = "".join(f"<th style='{_LEFT}'>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='{_LEFT}'>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table {attrs}><tr>{head}</tr>{body}</table>"
