"""What every ``bullpy`` command shares: the global settings, opening a queue, output, confirmation.

Kept free of pandas and ipywidgets so that ``bullpy --help`` and the inspection commands stay light.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from .. import connection
from ..job import Job
from ..queue import Queue
from . import _output
from ._output import Column

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "json", "csv")
#: Job states as every command names them; ``wait`` is accepted for ``waiting`` (Bull's key name).
JOB_STATES = ("failed", "active", "waiting", "paused", "delayed", "completed")


@dataclass
class Settings:
    """The global options, kept on ``ctx.obj``; given before or after the command (after wins)."""

    redis: str | None
    prefix: str | None
    format: str | None
    yes: bool
    verbose: int
    cluster: bool | None = None  # --cluster/--no-cluster; None: ask each server once
    profile: str | None = None
    utc: bool = False
    detected: dict[str, bool] = field(default_factory=dict)
    resolved: bool = False

    def resolve(self) -> None:
        """Fill what the command line left open from ``--profile``, then Bull's defaults (once)."""
        if self.resolved:
            return
        self.resolved = True
        if self.profile:
            from ._profiles import load_profile

            profile = load_profile(self.profile)
            if self.redis is None:
                self.redis = profile.url()
            if self.prefix is None:
                self.prefix = profile.prefix
            if self.cluster is None:
                self.cluster = profile.cluster
        if self.prefix is None:
            self.prefix = "bull"

    @property
    def key_prefix(self) -> str:
        self.resolve()
        return self.prefix or "bull"

    def is_cluster(self, redis: str | None) -> bool:
        """Whether ``redis`` (a URL, or None for the environment's) names a Redis Cluster node."""
        self.resolve()
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
        # One rule wherever stdout goes: --format, else a table (see _output).
        return self.format or "table"


def settings(ctx: click.Context) -> Settings:
    obj = ctx.find_object(Settings)
    if obj is None:
        raise RuntimeError("bullpy's commands run under the bullpy group, which sets ctx.obj")
    return obj


# --- global options, accepted after the command too -------------------------------------------------------

def _global_options() -> list[click.Option]:
    return [
        click.Option(["--redis", "g_redis"], default=None, metavar="URL", help="Redis URL (global option)."),
        click.Option(["--profile", "g_profile"], default=None, metavar="NAME",
                     help="A saved connection, see `bullpy profiles` (global option)."),
        click.Option(["--prefix", "g_prefix"], default=None, help="Bull key prefix (global option)."),
        click.Option(["--format", "g_format"], type=click.Choice(FORMATS), default=None,
                     help="Output format [default: table] (global option)."),
        click.Option(["--utc", "g_utc"], is_flag=True, default=False, help="Times in UTC (global option)."),
        click.Option(["--yes", "-y", "g_yes"], is_flag=True, default=False,
                     help="Answer yes to every confirmation (global option)."),
    ]


_GLOBAL_KEYS = ("g_redis", "g_profile", "g_prefix", "g_format", "g_utc", "g_yes")


class Command(click.Command):
    """A bullpy command: the global options work after its name too (``bullpy jobs Q --format json``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        taken = {opt for param in self.params for opt in param.opts}
        self.params.extend(o for o in _global_options() if not taken & set(o.opts))

    def invoke(self, ctx: click.Context) -> Any:
        apply_globals(ctx)
        return super().invoke(ctx)


def apply_globals(ctx: click.Context) -> None:
    """Move the global options given after a command onto the settings (they win over those before it)."""
    given = {k: ctx.params.pop(k) for k in _GLOBAL_KEYS if k in ctx.params}
    opts = settings(ctx)
    for key in ("redis", "profile", "prefix", "format"):
        if given.get(f"g_{key}") is not None:
            setattr(opts, key, given[f"g_{key}"])
    opts.utc = opts.utc or bool(given.get("g_utc"))
    opts.yes = opts.yes or bool(given.get("g_yes"))
    opts.resolve()


class Group(click.Group):
    """A group of bullpy commands (their global options work after the command name)."""

    command_class = Command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Click cuts each description to fit one line ("..."); bullpy wraps the whole first sentence instead.
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


Group.group_class = Group


# --- queues -----------------------------------------------------------------------------------------------

def open_queue(ctx: click.Context, name: str, *, must_exist: bool = True, prefix: str | None = None,
               redis: str | None = None) -> Queue:
    """A Queue from the global options; an unknown queue is an error unless ``must_exist`` is False.

    A name or prefix with ``:`` (whose keys could be another queue's) may be written only when the queue
    already exists (an existing deployment), or with ``BULLPY_ALLOW_COLON=1`` in the environment.
    """
    opts = settings(ctx)
    url = redis if redis is not None else opts.redis
    key_prefix = prefix or opts.key_prefix
    try:
        queue = Queue(name, url, prefix=key_prefix, cluster=opts.is_cluster(url), allow_colon=True)
        if (not must_exist and ":" in name + key_prefix and os.environ.get("BULLPY_ALLOW_COLON") != "1"
                and not queue.exists()):
            queue.close()
            queue = Queue(name, url, prefix=key_prefix, cluster=opts.is_cluster(url))
    except connection.RedisURLError as exc:
        raise click.UsageError(str(exc)) from None
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


class StateType(click.Choice):  # type: ignore[type-arg]
    """A job state from ``states``; ``wait`` and ``waiting`` both name the waiting list (given as ``waiting``)."""

    def __init__(self, states: Sequence[str] = JOB_STATES) -> None:
        super().__init__(list(states), case_sensitive=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip().lower() == "wait" and "waiting" in self.choices:
            return "waiting"
        return super().convert(value, param, ctx)


# --- damaged jobs -----------------------------------------------------------------------------------------

def no_hash(state: str) -> str:
    """What a reader says of an id listed in ``state`` with no job hash behind it."""
    return f"listed in {state}, but no job hash exists (Node's getJob returns null for it)"


def read_listed(queue: Queue, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str, Job | None, str | None]]:
    """(state, id, job, why it is damaged or None) for (state, id) pairs as listed, in one read of the hashes.

    An id listed with no hash has job None and says so; one listed in two of the states has both rows marked;
    an id whose hash and listing are both gone (removed meanwhile) is left out.
    """
    ids = list(dict.fromkeys(job_id for _, job_id in pairs))
    found = {job.id: job for job in queue.get_jobs_by_ids(ids)} if ids else {}
    gone = [i for i in ids if i not in found]
    still = queue.get_states(gone) if gone else {}
    listed: dict[str, list[str]] = {}
    for state, job_id in pairs:
        listed.setdefault(job_id, []).append(state)
    out: list[tuple[str, str, Job | None, str | None]] = []
    for state, job_id in pairs:
        job = found.get(job_id)
        reasons: list[str] = []
        if job is None:
            if still.get(job_id, "missing") == "missing":
                continue  # removed meanwhile
            reasons.append(no_hash(state))
        elif job.damaged:
            reasons.append(job.damaged)
        states = list(dict.fromkeys(listed[job_id]))
        if len(states) > 1 and not any("more than one state" in r for r in reasons):
            reasons.append(f"listed in more than one state ({', '.join(states)})")
        out.append((state, job_id, job, "; ".join(reasons) or None))
    return out


def damage_of(queue: Queue, states: Mapping[str, str]) -> dict[str, str]:
    """Of ids with their state (``queue.get_states``), the damaged ones, each with why."""
    listed = [(s, i) for i, s in states.items() if s != "missing"]
    return {job_id: why for _, job_id, _, why in read_listed(queue, listed) if why}


def damaged_note(queue: Queue, count: int) -> None:
    """The one line under a listing that marked ``count`` damaged jobs."""
    if count:
        prefix = "" if queue.prefix == "bull" else f" --prefix {shlex.quote(queue.prefix)}"
        note(f"{count} damaged job{'s' if count != 1 else ''} (state marked {_output.DAMAGED_MARK}): "
             f"`bullpy{prefix} doctor {shlex.quote(queue.name)}` explains")


# --- output -----------------------------------------------------------------------------------------------

def when(ctx: click.Context, ms: float | None, tz: str | None = None) -> str:
    """A time for people: local with its offset, or UTC with ``--utc`` (or in ``tz`` when given)."""
    return _output.when(ms, utc=settings(ctx).utc, tz=tz)


def emit(ctx: click.Context, rows: Sequence[Mapping[str, Any]], columns: Sequence[Column | str] | None = None, *,
         empty: str | None = None) -> None:
    """Rows as a table, a JSON array or CSV, as ``--format`` says (``empty``: said on stderr for no rows)."""
    keys: Sequence[Column | str] = columns if columns is not None else (list(rows[0]) if rows else [])
    cols = [c if isinstance(c, Column) else Column(c) for c in keys]
    _output.emit_rows(settings(ctx).output, rows, cols, empty=empty)


def emit_record(ctx: click.Context, record: Mapping[str, Any], *, title: str | None = None) -> None:
    """One object: a JSON object, CSV, or ``field  value`` lines."""
    del title
    _output.emit_object(settings(ctx).output, record)


def note(message: str) -> None:
    """Human-facing remarks go to stderr so that stdout stays machine-readable."""
    click.echo(message, err=True)


# --- safety -----------------------------------------------------------------------------------------------

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


# --- parsing ----------------------------------------------------------------------------------------------

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
    import json

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
