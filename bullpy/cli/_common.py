"""What every ``bullpy`` command shares: the global settings, opening a queue, output, confirmation.

Kept free of pandas and ipywidgets so that ``bullpy --help`` and the inspection commands stay light.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import click

from .. import connection
from ..queue import Queue

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "json", "csv")


@dataclass
class Settings:
    """The global options, kept on ``ctx.obj``."""

    redis: str | None
    prefix: str
    format: str | None
    yes: bool
    verbose: int
    cluster: bool | None = None  # --cluster/--no-cluster; None: ask each server once
    detected: dict[str, bool] = field(default_factory=dict)

    def is_cluster(self, redis: str | None) -> bool:
        """Whether ``redis`` (a URL, or None for the environment's) names a Redis Cluster node."""
        if self.cluster is not None:
            return self.cluster
        url = redis if redis is not None else connection.env_url()
        if url is None:  # the embedded server is never a cluster
            return False
        if url not in self.detected:
            self.detected[url] = connection.is_cluster_url(url)
        return self.detected[url]

    @property
    def output(self) -> str:
        # Tables for people at a terminal, JSON for pipes and scripts.
        return self.format or ("table" if sys.stdout.isatty() else "json")


def settings(ctx: click.Context) -> Settings:
    obj = ctx.find_object(Settings)
    if obj is None:
        raise RuntimeError("bullpy's commands run under the bullpy group, which sets ctx.obj")
    return obj


def open_queue(ctx: click.Context, name: str, *, must_exist: bool = True, prefix: str | None = None,
               redis: str | None = None) -> Queue:
    """A Queue from the global options; an unknown queue is an error unless ``must_exist`` is False."""
    opts = settings(ctx)
    url = redis if redis is not None else opts.redis
    try:
        queue = Queue(name, url, prefix=prefix or opts.prefix, cluster=opts.is_cluster(url))
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc), param_hint="QUEUE") from None
    if must_exist:
        require_queue(queue)
    return queue


def require_queue(queue: Queue) -> None:
    """No key under ``prefix:name:`` means a typo or the wrong Redis: say so instead of showing zeros."""
    if not queue.exists():
        raise click.ClickException(
            f"no queue {queue.name!r} under prefix {queue.prefix!r} on {queue.server.describe()}"
            " (check --redis, --prefix and the name; `bullpy queues` lists what is there)"
        )


# --- output ----------------------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def clock(ms: int | None) -> str:
    """Epoch milliseconds as UTC time for tables (JSON and CSV keep Bull's milliseconds)."""
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def emit(ctx: click.Context, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, *,
         title: str | None = None, widths: dict[str, int] | None = None, times: Collection[str] = ()) -> None:
    """Rows as a rich table (terminal), JSON (an array of objects) or CSV, as ``--format`` says.

    ``times`` names columns holding epoch milliseconds, shown as UTC times in tables only.
    """
    fmt = settings(ctx).output
    columns = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    if fmt == "json":
        click.echo(json.dumps(list(rows), ensure_ascii=False, default=str))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
        click.echo(out.getvalue(), nl=False)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False, header_style="bold")
        for column in columns:
            numeric = column not in times and bool(rows) and all(isinstance(r.get(column), (int, float)) for r in rows)
            # Columns given a width (data, reasons) are cut with an ellipsis: one line per job.
            cut = column in (widths or {})
            table.add_column(column, justify="right" if numeric else "left", overflow="ellipsis" if cut else "fold",
                             no_wrap=cut, max_width=(widths or {}).get(column))
        for row in rows:
            table.add_row(*(clock(row.get(c)) if c in times else _cell(row.get(c)) for c in columns))
        # Off a terminal (e.g. `--format table | less`) rich would wrap at 80 columns.
        console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
        console.print(table)


def emit_record(ctx: click.Context, record: dict[str, Any], *, title: str | None = None) -> None:
    """One object: JSON as is, else a two-column field/value table."""
    if settings(ctx).output == "json":
        click.echo(json.dumps(record, ensure_ascii=False, default=str))
        return
    rows = [{"field": k, "value": _cell(v)} for k, v in record.items()]
    emit(ctx, rows, ["field", "value"], title=title)


def note(message: str) -> None:
    """Human-facing remarks go to stderr so that stdout stays machine-readable."""
    click.echo(message, err=True)


# --- safety ----------------------------------------------------------------------------------------------

def yes_option(f: F) -> F:
    return click.option("--yes", "-y", "yes", is_flag=True, help="Do it without asking.")(f)


def dry_run_option(f: F) -> F:
    return click.option("--dry-run", is_flag=True, help="Only show what would be touched; change nothing.")(f)


def confirm(ctx: click.Context, what: str, *, yes: bool = False) -> None:
    """Ask before a destructive step; without a terminal to ask on, only ``--yes`` lets it through."""
    if yes or settings(ctx).yes:
        return
    if not sys.stdin.isatty():
        raise click.ClickException(f"refusing to {what} without --yes (no terminal to confirm on)")
    click.confirm(f"{what[0].upper()}{what[1:]}?", abort=True, err=True)


# --- parsing ---------------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration(text: str, option: str) -> int:
    """``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"``, ``"500ms"`` (or ``"0"``) -> milliseconds."""
    value = text.strip().lower()
    if value == "0":
        return 0
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise click.BadParameter(f"{text!r} is not a duration; use e.g. 500ms, 30s, 15m, 1h30m, 2d, 1w",
                                 param_hint=option)
    return int(sum(float(n) * _UNIT_MS[u] for n, u in parts))


def parse_json(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON ({exc.msg} at character {exc.pos})", param_hint=option) from None


def split_ids(values: Iterable[str]) -> list[str]:
    """``--id 1 --id 2,3`` -> ["1", "2", "3"], order kept, duplicates dropped."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def progress_bar(total: int, label: str) -> Any:
    """A tqdm bar on stderr when it is a terminal, else None (pipes and CI logs stay clean)."""
    if total <= 0 or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="job", file=sys.stderr)
