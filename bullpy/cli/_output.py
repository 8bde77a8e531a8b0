"""How ``bullpy`` prints: tables that fit the terminal, JSON, CSV, and times that say their zone.

One rule wherever stdout goes (a terminal, a pipe, a file): the format is ``--format``, else ``table``.
Tables are as wide as ``$COLUMNS``, else the terminal the command runs in, else 80 columns; they are
coloured only on a terminal. Each row is one line: columns that identify (ids, states, names of queues)
are never cut, long values (data, reasons) are cut with an ellipsis to what fits. JSON and CSV keep
Bull's raw values (epoch milliseconds, JSON data) and always end with a newline.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from .._display import deep_json

GAP = "  "
_MIN_ELASTIC = 8  # narrower than this, a cut value says nothing: the column is left out instead
#: What ends a damaged job's state in a table (``waiting!``): the job's hash is not what Bull writes.
DAMAGED_MARK = "!"
_STATE_COLOURS = {"failed": "red", "completed": "green", "active": "cyan", "delayed": "yellow", "paused": "magenta",
                  "missing": "red", "stuck": "red"}


# --- values -----------------------------------------------------------------------------------------------

def compact(value: Any) -> str:
    """A value on one line: text as is, JSON for the rest (``None`` is empty)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    return json_text(value)


def json_text(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON (compact, or indented by ``indent``); JSON nested deeper than Python's json writes
    (a damaged job's data, about 1,000 levels and more) is written on one line by a loop, never a
    RecursionError."""
    try:
        if indent is None:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        return json.dumps(value, ensure_ascii=False, indent=indent, default=str)
    except RecursionError:
        return deep_json(value)


def one_line(text: str) -> str:
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")


def _offset(delta: timedelta | None) -> str:
    seconds = int(delta.total_seconds()) if delta is not None else 0
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def when(ms: float | None, *, utc: bool = False, tz: str | None = None) -> str:
    """Epoch milliseconds as a time that says its zone: local with its offset (``2026-05-01 09:00:00 -03:00``),
    UTC with ``utc`` (``2026-05-01 12:00:00 UTC``), or in zone ``tz`` with its name."""
    if not ms:
        return ""
    if utc:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if tz:
        try:
            from zoneinfo import ZoneInfo

            at = datetime.fromtimestamp(ms / 1000, tz=ZoneInfo(tz))
            return f"{at:%Y-%m-%d %H:%M:%S} {_offset(at.utcoffset())} {tz}"
        except (ValueError, KeyError, OSError):
            pass  # an unknown zone: shown in local time below
    at = datetime.fromtimestamp(ms / 1000).astimezone()
    return f"{at:%Y-%m-%d %H:%M:%S} {_offset(at.utcoffset())}"


def span(ms: float | None) -> str:
    """A duration in at most two units: ``45s``, ``12m5s``, ``3h2m``, ``2d4h`` (``""`` for None)."""
    if ms is None:
        return ""
    seconds = max(0, int(ms // 1000))
    if seconds < 60:
        return f"{seconds}s"
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if seconds >= size:
            whole, rest = divmod(seconds, size)
            part = rest // sub_size
            return f"{whole}{unit}{part}{sub}" if part else f"{whole}{unit}"
    return f"{seconds}s"  # pragma: no cover


# --- tables -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """One column of a table.

    Columns are never cut (ids, states) unless ``cut``: those shrink to ``cut`` cells when the line is too
    long; ``elastic`` ones take what the others leave (data, reasons) and are left out below 8 cells. In an
    ``overflow`` column the rare cell much longer than the rest (a repeat job's id among numeric ids) is
    still shown whole, but pushes the rest of its own line right instead of widening every line.
    """

    key: str
    header: str = ""
    right: bool = False
    cut: int | None = None
    elastic: bool = False
    overflow: bool = False
    show: Callable[[Any], str] | None = None

    @property
    def title(self) -> str:
        return self.header or self.key


def width() -> int:
    """``$COLUMNS``, else the size of the terminal on stdout, stderr or stdin, else 80."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    for stream in (sys.stdout, sys.stderr, sys.stdin):
        try:
            if stream is not None and stream.isatty():
                return os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
            continue
    return 80


def coloured() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _cells(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _fit(text: str, size: int) -> str:
    """``text`` cut to ``size`` cells, ending with an ellipsis when cut."""
    if _cells(text) <= size:
        return text
    from rich.cells import set_cell_size

    return set_cell_size(text, max(size - 1, 0)) + "…"


def _natural(column: Column, values: Sequence[str]) -> int:
    sizes = sorted(_cells(v) for v in values)
    if not column.overflow or len(sizes) < 2:
        return max([_cells(column.title)] + sizes)
    # Up to one row in five (at least one) may stick out, and only if much longer than the rest.
    usual = sizes[len(sizes) - max(len(sizes) // 5, 1) - 1]
    return max([_cells(column.title)] + [n for n in sizes if n <= max(usual * 3 // 2, usual + 4)])


def layout(columns: Sequence[Column], cells: Sequence[Sequence[str]], total: int, drop: bool = True
           ) -> list[tuple[int, int]]:
    """(column index, width) of the columns shown, so that a line fits ``total`` cells when it can.

    With ``drop`` False (columns the user named) elastic columns stay, at least 8 cells wide.
    """
    natural = [_natural(c, [row[i] for row in cells]) for i, c in enumerate(columns)]
    shown = list(range(len(columns)))
    widths = dict(enumerate(natural))

    def used(indexes: list[int]) -> int:
        return sum(widths[i] for i in indexes) + len(GAP) * max(len(indexes) - 1, 0)

    if used(shown) <= total:
        return [(i, widths[i]) for i in shown]
    for i, column in enumerate(columns):
        if column.cut is not None and not column.elastic:
            widths[i] = min(natural[i], max(column.cut, _cells(column.title)))
    fixed = [i for i in shown if not columns[i].elastic]
    elastic = [i for i in shown if columns[i].elastic]
    # Each elastic column needs its header's width (at least 8 cells); what is left goes by water-filling:
    # narrow values keep their width, wide ones share the rest.
    least = {i: min(natural[i], max(_MIN_ELASTIC, _cells(columns[i].title))) for i in elastic}
    while elastic:
        room = total - used(fixed) - len(GAP) * len(elastic)
        need = sum(least[i] for i in elastic)
        if room >= need or not drop:
            extra = max(room, need) - need
            order = sorted(elastic, key=lambda k: natural[k] - least[k])
            for n, i in enumerate(order):
                grow = min(natural[i] - least[i], extra // (len(order) - n))
                widths[i] = least[i] + grow
                extra -= grow
            break
        elastic.pop()  # the last elastic column goes first
    kept = set(fixed) | set(elastic)
    return [(i, widths[i]) for i in shown if i in kept]


def table_lines(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]], total: int | None = None,
                colour: bool = False, drop: bool = True) -> list[str]:
    """The header and one line per row (``drop``: see ``layout``)."""
    cells = [[one_line(c.show(row.get(c.key)) if c.show else compact(row.get(c.key))) for c in columns]
             for row in rows]
    plan = layout(columns, cells, width() if total is None else total, drop)

    def line(values: Sequence[str], header: bool = False) -> str:
        sizes = dict(plan)
        # What overflow cells stick out is taken back from this line's elastic columns, last first.
        extra = sum(max(_cells(values[i]) - sizes[i], 0) for i, _ in plan if columns[i].overflow)
        for i, _ in reversed(plan):
            if extra > 0 and columns[i].elastic:
                take = min(extra, sizes[i])
                sizes[i] -= take
                extra -= take
        parts = []
        for i, _ in plan:
            size = sizes[i]
            text = values[i] if columns[i].overflow else _fit(values[i], size) if size > 0 else ""
            pad = " " * max(size - _cells(text), 0)
            text = pad + text if columns[i].right and not header else text + pad
            if colour and header:
                text = click.style(text, bold=True)
            elif colour and columns[i].key == "state" and values[i].endswith(DAMAGED_MARK):
                text = click.style(text, fg="red", bold=True)
            elif colour and columns[i].key == "state" and values[i] in _STATE_COLOURS:
                text = click.style(text, fg=_STATE_COLOURS[values[i]])
            parts.append(text)
        return GAP.join(parts).rstrip()

    return [line([c.title for c in columns], header=True)] + [line(row) for row in cells]


# --- emitting ---------------------------------------------------------------------------------------------

def dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except RecursionError:  # JSON deeper than Python's json writes: see json_text
        return deep_json(value)


def emit_rows(fmt: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *,
              empty: str | None = None) -> None:
    """Rows as a table, a JSON array or CSV (``columns`` name the CSV's and the table's columns)."""
    if fmt == "json":
        click.echo(dumps(list(rows)))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.key for c in columns])
        for row in rows:
            writer.writerow([compact(row.get(c.key)) for c in columns])
        click.echo(out.getvalue(), nl=False)
    elif not rows and empty:
        click.echo(empty, err=True)
    else:
        for text in table_lines(columns, rows, colour=coloured()):
            click.echo(text)


def emit_object(fmt: str, record: Mapping[str, Any], show: Mapping[str, Callable[[Any], str]] | None = None) -> None:
    """One object: JSON as is, CSV as a header and a row, else ``field  value`` lines."""
    if fmt == "json":
        click.echo(dumps(dict(record)))
        return
    if fmt == "csv":
        emit_rows(fmt, [record], [Column(k) for k in record])
        return
    size = max((len(k) for k in record), default=0)
    for key, value in record.items():
        text = (show or {}).get(key, compact)(value)
        click.echo(f"{key.ljust(size)}{GAP}{one_line(text)}".rstrip())
