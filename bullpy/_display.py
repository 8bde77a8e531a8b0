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
#: The longest value a detail pane shows in full (beyond it: the start and how much more there is).
LONG_LIMIT = 200_000
_PRE = "margin:0;white-space:pre-wrap;overflow-wrap:anywhere;font-family:var(--jp-code-font-family,monospace);font-size:12px;line-height:1.35"
#: What expandable values need to fold and unfold (also part of the widgets' stylesheet).
DETAIL_CSS = (
    ".bullpy-pre{display:block}.bullpy-failed-reason{color:#b00020}"
    ".bullpy-long>summary{list-style:none;cursor:pointer;display:block}"
    ".bullpy-long>summary::-webkit-details-marker{display:none}"
    ".bullpy-more,.bullpy-less{color:#1f77b4;font-size:90%;text-decoration:underline}"
    ".bullpy-less,.bullpy-long[open]>summary .bullpy-preview,.bullpy-long[open]>summary .bullpy-more{display:none}"
    ".bullpy-long[open]>summary .bullpy-less{display:inline}"
)


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
        except RecursionError:  # JSON nested deeper than Python prints (a job another program wrote)
            out = deep_json(value)
    return out if len(out) <= limit else out[:limit] + f"… ({len(out) - limit} more characters)"


class _Token(str):
    """Punctuation already written as JSON (pushed on ``deep_json``'s stack beside values)."""


def deep_json(value: Any) -> str:
    """Compact JSON of any depth, written with an explicit stack instead of recursion."""
    parts: list[str] = []
    work: list[Any] = [value]
    while work:
        item = work.pop()
        if isinstance(item, _Token):
            parts.append(item)
        elif isinstance(item, dict):
            parts.append("{")
            work.append(_Token("}"))
            entries = list(item.items())
            for n in range(len(entries) - 1, -1, -1):
                key, member = entries[n]
                work.append(member)
                name = key if isinstance(key, str) else json.dumps(key) if not isinstance(key, (int, float)) \
                    else str(key)
                work.append(_Token(("," if n else "") + json.dumps(name, ensure_ascii=False) + ":"))
        elif isinstance(item, (list, tuple)):
            parts.append("[")
            work.append(_Token("]"))
            for n in range(len(item) - 1, -1, -1):
                work.append(item[n])
                if n:
                    work.append(_Token(","))
        else:
            parts.append(json.dumps(item, ensure_ascii=False, default=str))
    return "".join(parts)



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
        parts.append(f"failed_reason={_cut(job.failed_reason, 80)!r}")
    if job.duplicate:
        parts.append("duplicate")
    if job.damaged:
        parts.append(f"damaged={_cut(job.damaged, 80)!r}")
    return " ".join(parts) + ">"


def _cut(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def _row(label: str, value: str) -> str:
    return f"<tr><th style='{_LEFT}'>{esc(label)}</th><td style='{_LEFT};min-width:0'>{value}</td></tr>"


def job_rows(job: Job, state: str | None = None, logs: Sequence[str] | None = None, log_count: int = 0) -> str:
    """The rows of a job's detail table: data, progress, attempts, times, outcome, options, logs; long values
    fold into an expandable block instead of being cut."""
    now = now_ms()
    rows = [_row("name", f"<code>{esc(job.name)}</code>")]
    if job.damaged:
        rows.append(_row("damaged", f"<span style='color:#b91c1c'>{esc(job.damaged)}</span>"))
    if state is not None:
        rows.append(_row("state", badge(state)))
    rows.append(_row("data", expandable(to_text(job.data, LONG_LIMIT, indent=2))))
    attempts = job.opts.get("attempts")
    made = job.attempts_made or 0
    rows.append(_row("attempts", f"{made}" + (f" of {attempts}" if attempts else "")))
    if job.progress not in (None, 0):
        rows.append(_row("progress", progress_bar(job.progress, 120)))
    rows.append(_row("created", esc(format_time(job.timestamp, now))))
    if job.delay and job.timestamp:
        rows.append(_row("due", esc(format_time(job.timestamp + job.delay, now))))
    if job.processed_on:
        waited = job.processed_on - (job.timestamp or job.processed_on) - (job.delay or 0)
        rows.append(_row("processed", esc(format_time(job.processed_on, now))
                         + (f" <span style='{MUTED}'>after waiting {esc(format_duration(waited))}</span>"
                            if job.timestamp and waited >= 0 else "")))
    if job.finished_on:
        took = (f" <span style='{MUTED}'>took {esc(format_duration(job.finished_on - job.processed_on))}</span>"
                if job.processed_on else "")
        rows.append(_row("finished", esc(format_time(job.finished_on, now)) + took))
    if job.failed_reason:
        rows.append(_row("failed reason", expandable(job.failed_reason, lines=4, chars=300, cls="bullpy-failed-reason")))
    if job.stacktrace:
        traces = "".join(expandable(to_text(t, LONG_LIMIT), lines=4, chars=400) for t in job.stacktrace)
        rows.append(_row("stacktrace", f"<details><summary>{len(job.stacktrace)} trace(s)</summary>{traces}</details>"))
    if job.returnvalue is not None:
        rows.append(_row("returnvalue", expandable(to_text(job.returnvalue, LONG_LIMIT, indent=2))))
    rows.append(_row("opts", expandable(to_text(job.opts, LONG_LIMIT, indent=2), lines=6)))
    if logs is not None:
        shown = "".join(expandable(to_text(r, LONG_LIMIT), lines=3, chars=300) for r in logs)
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
        f"<div class='bullpy-job'><style>{DETAIL_CSS}</style><b>Job</b> <code>{esc(job.id)}</code> of "
        f"<code>{esc(job.queue.name)}</code><table style='table-layout:fixed;width:100%'>"
        f"<colgroup><col style='width:8.5em'><col></colgroup>{job_rows(job, state, logs, log_count)}</table></div>"
    )


# --- values: one line, expandable, progress, durations -------------------------------------------------

def one_line(value: Any, limit: int = 300) -> str:
    """A value as one line of text (JSON for non-strings, line breaks as spaces), cut at ``limit`` with an
    ellipsis: for table cells whose full value is a click away."""
    out = " ".join(to_text(value, limit * 2 + 100).split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def expandable(text: str, *, lines: int = 12, chars: int = 1200, cls: str = "") -> str:
    """Preformatted text; past ``lines`` lines or ``chars`` characters it shows the start and folds the rest
    into a ``<details>`` that opens on a click (see ``DETAIL_CSS``)."""
    klass = f"bullpy-pre {cls}".strip()
    if len(text) <= chars and text.count("\n") < lines:
        return f"<span class='{klass}' style='{_PRE}'>{esc(text)}</span>"
    head = "\n".join(text.split("\n")[:lines])[:chars]
    return (
        f"<details class='bullpy-long'><summary><span class='{klass} bullpy-preview' style='{_PRE}'>{esc(head)}…"
        f"</span><span class='bullpy-more'>show all {len(text):,} characters</span>"
        f"<span class='bullpy-less'>show less</span></summary>"
        f"<span class='{klass}' style='{_PRE}'>{esc(text)}</span></details>"
    )


def progress_value(progress: Any) -> float | None:
    """A job's progress as a percentage when it is a number (Bull allows any JSON), else None."""
    if isinstance(progress, bool) or not isinstance(progress, (int, float)):
        return None
    return float(min(max(progress, 0), 100))


def progress_bar(progress: Any, width: int = 60) -> str:
    """A small bar for a numeric progress (0-100), the value as text for any other; empty for none."""
    pct = progress_value(progress)
    if pct is None:
        return "" if progress in (None, 0) else f"<code>{esc(one_line(progress, 40))}</code>"
    return (
        f"<span class='bullpy-progress' title='{pct:g}%' style='display:inline-block;width:{width}px;height:8px;"
        f"background:#e6e6e6;border-radius:4px;overflow:hidden;vertical-align:middle'><span style='display:block;"
        f"height:100%;width:{pct:g}%;background:{STATE_COLORS['active']}'></span></span>"
        f"<span style='font-size:90%'> {pct:.0f}%</span>"
    )


def format_duration(ms: float | None) -> str:
    """``850 ms``, ``4.2 s``, ``3.5 min``, ``2.0 h``, ``1.5 d``; a dash for None."""
    if ms is None:
        return "–"
    ms = max(float(ms), 0.0)
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    if s < 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def format_bytes(n: float | None) -> str:
    """``512 B``, ``1.2 MB``, ``3.4 GB`` (powers of 1024)."""
    if n is None:
        return "–"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], attrs: str = "") -> str:
    """A plain HTML table; cells are HTML already escaped by the caller."""
    head = "".join(f"<th style='{_LEFT}'>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='{_LEFT}'>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table {attrs}><tr>{head}</tr>{body}</table>"
