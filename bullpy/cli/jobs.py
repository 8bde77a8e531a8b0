"""Commands on jobs: list (``jobs``), show (``job``), read and write logs (``logs``, ``log``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

import click

from ..job import Job
from ..queue import Queue
from ..utils import now_ms, text
from . import main
from ._common import (
    JOB_STATES,
    StateType,
    damaged_note,
    emit,
    emit_record,
    no_hash,
    note,
    open_queue,
    parse_duration,
    read_listed,
    settings,
    when,
)
from ._output import (
    DAMAGED_MARK,
    Column,
    coloured,
    compact,
    dumps,
    emit_rows,
    json_text,
    span,
    table_lines,
    width,
)

# completed and failed are listed newest first; lists and the delayed set next-to-run first.
_NEWEST_FIRST = ("completed", "failed")
_ID_WINDOW = 10_000  # ids per LRANGE/ZRANGE
_BATCH = 2000  # jobs per batch (read 500 a command: a few milliseconds of Redis time each)

#: The keys of a job row in JSON and CSV (Bull's raw values: epoch ms, parsed data).
#: ``damaged`` says why a job's hash is not what Bull writes (None for a healthy job).
ROW_KEYS = ("id", "state", "name", "attempts_made", "timestamp", "processed_on", "finished_on", "failed_reason",
            "data", "damaged")
#: What ``--columns`` may name; ``attempts`` is ``attempts_made`` (shown as made/allowed).
COLUMN_KEYS = ("id", "state", "name", "age", "timestamp", "processed_on", "finished_on", "attempts_made",
               "progress", "delay", "priority", "failed_reason", "returnvalue", "data", "opts", "damaged")
_WIDE = ("id", "state", "name", "timestamp", "delay", "processed_on", "finished_on", "attempts_made", "progress",
         "failed_reason", "returnvalue", "data", "damaged")


def _number(value: Any) -> int:
    try:
        return int(float(text(value))) if value is not None else 0
    except ValueError:
        return 0


def _batches(queue: Queue, state: str, fields: list[str], asc: bool) -> Iterator[tuple[list[str], list[list[Any]]]]:
    """(ids, per field its values as Redis holds them) batch after batch: ``queue.raw.iter_state_fields``, whose
    ``SORT_RO ... GET`` reads the fields in C (the next batch already on its way while the caller tests this one)."""
    with queue.raw as raw:
        for batch in raw.iter_state_fields(state, fields, asc=asc, batch_size=_BATCH):
            yield batch.ids, [list(column) for column in batch.columns]


def _blob(values: Iterable[bytes | str | None]) -> str:
    """Values joined by NULs (which no needle crosses) as one text, decoded in one step."""
    present = [v if isinstance(v, bytes) else str(v).encode() for v in values if v is not None]
    return b"\x00".join(present).decode("utf-8", "replace")


def find_ids(queue: Queue, states: Sequence[str], *, since_ms: int | None = None, grep: str | None = None
             ) -> Iterator[tuple[str, str]]:
    """(state, id) of the jobs that match, state by state, in each state's order.

    Without ``grep`` and ``since_ms`` only ids are read. With them, only the few hash fields they test, by
    ``SORT_RO ... GET`` of 500 jobs a command (a few milliseconds of Redis time each: Redis is never held for
    long; pipelined HMGETs where Redis refuses SORT), the next batch read while this one is tested.
    """
    cutoff = now_ms() - since_ms if since_ms is not None else None
    needle = grep.casefold() if grep else None
    for state in states:
        newest_first = state in _NEWEST_FIRST
        if needle is None and cutoff is None:
            start = 0
            while ids := queue.get_ranges([state], start, start + _ID_WINDOW - 1, asc=not newest_first):
                yield from ((state, i) for i in ids)
                start += _ID_WINDOW
            continue
        fields = ["name", "data", "returnvalue" if state == "completed" else "failedReason"]
        if cutoff is not None:
            fields += ["timestamp", "processedOn", "finishedOn"]
        for ids, columns in _batches(queue, state, fields, asc=not newest_first):
            # Most batches hold no match: one case-folded search over the whole batch rules them out.
            if needle is not None and needle not in ("\x00".join(ids) + "\x00" + _blob(
                    chain.from_iterable(columns[:3]))).casefold():
                continue
            older = 0
            for job_id, row in zip(ids, zip(*columns)):
                if row[0] is None and row[1] is None:
                    continue  # removed meanwhile, or not a job hash
                if cutoff is not None and (_number(row[5]) or _number(row[4]) or _number(row[3])) < cutoff:
                    older += 1
                    continue
                if needle is not None and needle not in (job_id + "\x00" + _blob(row[:3])).casefold():
                    continue
                yield state, job_id
            # completed/failed are ordered by finish time: once a batch is all older, so is the rest.
            if cutoff is not None and newest_first and older == len(ids):
                break


def plain_data(job: Job) -> Any:
    """The job's data for JSON and CSV: as read, or, for a damaged job whose JSON nests deeper than Python's
    json writes and reads (about 1,000 levels), that JSON as text."""
    if not job.damaged or not isinstance(job.data, (dict, list)):
        return job.data
    try:
        json.dumps(job.data)
        return job.data
    except RecursionError:
        return json_text(job.data)


def job_row(state: str, job: Job | None, damaged: str | None = None, job_id: str = "") -> dict[str, Any]:
    """A job as ``bullpy jobs`` gives it in JSON and CSV (``job`` None: an id listed with no hash)."""
    if job is None:
        return {"id": job_id, "state": state, "name": None, "attempts_made": None, "timestamp": None,
                "processed_on": None, "finished_on": None, "failed_reason": None, "data": None, "damaged": damaged}
    return {"id": job.id, "state": state, "name": job.name, "attempts_made": job.attempts_made,
            "timestamp": job.timestamp, "processed_on": job.processed_on, "finished_on": job.finished_on,
            "failed_reason": job.failed_reason, "data": plain_data(job), "damaged": damaged}


def _extra(job: Job | None, key: str, now: int) -> Any:
    if job is None:
        return None
    if key == "age":
        return now - job.timestamp if job.timestamp else None
    if key in ("progress", "delay", "returnvalue"):
        return getattr(job, key)
    if key == "opts":
        return job.opts
    if key == "priority":
        return job.opts.get("priority")
    return None


def _view(ctx: click.Context, state: str, job: Job | None, now: int, damaged: str | None = None,
          job_id: str = "") -> dict[str, str]:
    """The same job as table cells: times with their zone, ages, attempts as made/allowed; a damaged job's
    state ends with ``!`` (``waiting!``) and its ``damaged`` cell says why."""
    shown = state + DAMAGED_MARK if damaged else state
    if job is None:  # listed with no hash: nothing else to show
        return {**{k: "" for k in COLUMN_KEYS}, "id": job_id, "state": shown, "data": damaged or "",
                "damaged": damaged or ""}
    attempts = job.opts.get("attempts")
    data = compact(job.data) if job.data is not None or not damaged else damaged
    return {
        "id": job.id, "state": shown, "name": job.name, "age": span(now - job.timestamp) if job.timestamp else "",
        "timestamp": when(ctx, job.timestamp), "processed_on": when(ctx, job.processed_on),
        "finished_on": when(ctx, job.finished_on),
        "attempts_made": f"{job.attempts_made or 0}/{attempts}" if attempts else str(job.attempts_made or 0),
        "progress": compact(job.progress) if job.progress not in (0, None) else "",
        "delay": span(job.delay) if job.delay else "", "priority": compact(job.opts.get("priority")),
        "failed_reason": job.failed_reason or "", "returnvalue": compact(job.returnvalue), "data": data,
        "opts": compact(job.opts), "damaged": damaged or "",
    }


_TABLE = {"id": Column("id", overflow=True), "state": Column("state"), "name": Column("name", cut=16),
          "age": Column("age", right=True), "timestamp": Column("timestamp"),
          "processed_on": Column("processed_on"), "finished_on": Column("finished_on"),
          "attempts_made": Column("attempts_made", "attempts", right=True), "progress": Column("progress", cut=10),
          "delay": Column("delay", right=True), "priority": Column("priority", right=True),
          "failed_reason": Column("failed_reason", elastic=True), "returnvalue": Column("returnvalue", elastic=True),
          "data": Column("data", elastic=True), "opts": Column("opts", elastic=True),
          "damaged": Column("damaged", elastic=True)}


def _columns(value: str | None) -> list[str] | None:
    if value is None:
        return None
    keys = ["attempts_made" if k.strip() == "attempts" else k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in keys if k not in COLUMN_KEYS]
    if unknown or not keys:
        raise click.BadParameter(f"unknown column {', '.join(unknown) or '(none)'}; use some of "
                                 f"{', '.join(COLUMN_KEYS)}", param_hint="--columns")
    return keys


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--state", "-s", "states", multiple=True, type=StateType(),
              help="States to list (repeatable; wait = waiting) [default: all, failed first].")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many jobs.")
@click.option("--offset", type=click.IntRange(min=0), default=None, help="Skip this many matching jobs first.")
@click.option("--page", type=click.IntRange(min=1), default=None, help="Page N of --limit jobs (--page 2: jobs 21-40).")
@click.option("--since", default=None, metavar="DURATION",
              help="Only jobs created, processed or finished within e.g. 1h, 30m, 2d.")
@click.option("--grep", default=None, metavar="TEXT", help="Only jobs whose id, name, data, failed reason "
              "or return value contain TEXT (case-insensitive).")
@click.option("--wide", is_flag=True, help="Every column, with times, nothing cut (lines may be long).")
@click.option("--columns", "column_list", default=None, metavar="KEYS",
              help=f"Comma-separated columns, e.g. id,state,age,data; any of {', '.join(COLUMN_KEYS)}.")
@click.pass_context
def jobs(ctx: click.Context, queue_name: str, states: tuple[str, ...], limit: int, offset: int | None,
         page: int | None, since: str | None, grep: str | None, wide: bool, column_list: str | None) -> None:
    """List jobs, one line each: id, state, name, age, attempts, and as much of the failed reason and data
    as fits.

    A job another program damaged (data or opts Node cannot read, bytes not UTF-8, JSON nested too deep, a
    key that is not a hash, an id listed with no hash or in two states) is listed too, its state marked
    with ! (waiting!); --wide or --columns ...,damaged says why, and JSON and CSV have a damaged field.
    """
    if offset is not None and page is not None:
        raise click.UsageError("give --offset or --page, not both")
    skip = offset if offset is not None else (page - 1) * limit if page else 0
    keys = _columns(column_list)
    since_ms = parse_duration(since, "--since") if since else None
    queue = open_queue(ctx, queue_name)
    wanted: list[tuple[str, str]] = []
    for n, found in enumerate(find_ids(queue, states or JOB_STATES, since_ms=since_ms, grep=grep)):
        if n >= skip:
            wanted.append(found)
        if len(wanted) > limit:  # one more than shown: says whether there is a next page
            break
    more = len(wanted) > limit
    # A damaged job is listed too, marked: an id listed with no hash, or in two states, a hash Node cannot read.
    listed = read_listed(queue, wanted[:limit])
    damaged = sum(1 for *_, why in listed if why)
    now = now_ms()
    fmt = settings(ctx).output
    if fmt != "table":
        rows = []
        for state, job_id, job, why in listed:
            row = job_row(state, job, why, job_id)
            if keys is not None:
                row = {k: row[k] if k in row else _extra(job, k, now) for k in keys}
            rows.append(row)
        emit(ctx, rows, keys or ROW_KEYS)
        return
    views = [_view(ctx, state, job, now, why, job_id) for state, job_id, job, why in listed]
    named = keys is not None
    if keys is None:
        keys = list(_WIDE) if wide else ["id", "state", "name", "age", "attempts_made", "failed_reason", "data"]
        # Columns nobody in the listing fills only take room.
        keys = [k for k in keys if k in ("id", "state") or any(v[k] for v in views)]
    columns = [_TABLE[k] for k in keys]
    if not views:
        note(f"no matching jobs in queue {queue.name!r}" + (f" after the first {skip}" if skip else ""))
        return
    for line in table_lines(columns, views, total=10**6 if wide else width(), colour=coloured(),
                            drop=not named):
        click.echo(line)
    damaged_note(queue, damaged)
    if more:
        nxt = f"--page {(skip // limit) + 2}" if skip % limit == 0 else f"--offset {skip + limit}"
        note(f"jobs {skip + 1}-{skip + limit} shown; more with {nxt}")


def _pretty(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.splitlines() or [""]
    try:
        return json.dumps(value, ensure_ascii=False, indent=2, default=str).splitlines()
    except RecursionError:  # deeper than Python's json writes: its JSON on one line (cut by job_view)
        return [json_text(value)]


def job_view(ctx: click.Context, queue: Queue, job: Job, state: str, lock_owner: str | None, logs: list[str],
             log_count: int, damaged: str | None = None) -> list[str]:
    """One job for people: times with their zone, data and return value pretty-printed, the stack trace and
    log as lines; every label is the snake_case name of Bull's field. A damaged job says why under its state
    (``damaged``), and shows the stored text of a field Node cannot read."""
    now = now_ms()
    lines = [f"job {job.id} of queue {queue.name}"]

    def field(label: str, value: str) -> None:
        first, *rest = value.splitlines() or [""]
        lines.append(f"  {label:<15}{first}")
        lines.extend(f"  {'':<15}{r}" for r in rest)

    def block(label: str, rows: list[str]) -> None:
        lines.append(f"  {label}")
        lines.extend(f"    {r}" for r in rows)

    def at(ms: int | None, relation: str = "ago") -> str:
        if not ms:
            return ""
        delta = now - ms if relation == "ago" else ms - now
        return f"{when(ctx, ms)}  ({span(delta)} {relation})" if delta >= 0 else when(ctx, ms)

    field("state", state)
    if damaged:
        field("damaged", damaged)
    field("name", job.name)
    field("timestamp", at(job.timestamp))
    if job.delay and job.timestamp:
        field("delay", f"{span(job.delay)} (due {when(ctx, job.timestamp + job.delay)})")
    if job.processed_on:
        field("processed_on", at(job.processed_on))
    if job.finished_on:
        field("finished_on", at(job.finished_on))
    attempts = job.opts.get("attempts")
    field("attempts_made", f"{job.attempts_made or 0} of {attempts}" if attempts else str(job.attempts_made or 0))
    if job.progress not in (0, None):
        field("progress", compact(job.progress))
    if state == "active" or lock_owner:
        field("lock_owner", lock_owner or "(none: no worker holds it; stuck? see `bullpy fail`)")
    if job.failed_reason:
        field("failed_reason", job.failed_reason)
    stored_opts = job.record.raw.get("opts") if damaged else None
    # opts Node cannot read: the stored text, not the defaults Node's reading would give
    field("opts", stored_opts if stored_opts is not None and "'opts'" in (damaged or "") else compact(job.opts))
    data = _pretty(job.data)
    if damaged:  # a damaged job's stored text may be one enormous line (JSON nested 50,000 deep): cut
        room = max(width() - 4, 20)
        data = [r if len(r) <= room else r[: room - 1] + "…" for r in data]
    block("data", data)
    if job.returnvalue is not None:
        block("returnvalue", _pretty(job.returnvalue))
    if job.stacktrace:
        rows: list[str] = []
        for n, trace in enumerate(job.stacktrace, 1):
            rows.append(f"[{n}] " + (text(trace).splitlines() or [""])[0] if trace else f"[{n}] (no stack)")
            rows.extend(text(trace).splitlines()[1:] if trace else [])
        block(f"stacktrace ({len(job.stacktrace)})", rows)
    block(f"logs ({log_count})", logs)
    return lines


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@click.pass_context
def job(ctx: click.Context, queue_name: str, ids: tuple[str, ...]) -> None:
    """Show jobs in full: state, times, attempts, lock owner, data, return value, stack trace and logs.

    With --format json, one object per line per job: Node's toJSON fields (raw: epoch ms, camelCase)
    with state, lock_owner and logs.
    """
    queue = open_queue(ctx, queue_name)
    fmt = settings(ctx).output
    missing = []
    for n, job_id in enumerate(dict.fromkeys(ids)):
        found = queue.get_job(job_id)
        logs = queue.get_job_logs(job_id)
        if found is None:
            state = queue.get_states([job_id])[job_id]
            if state == "missing":
                missing.append(job_id)
                continue
            # Listed with no hash behind it: shown as such, with its logs.
            record: dict[str, Any] = {"id": job_id, "state": state, "damaged": no_hash(state), "logs": logs.logs}
            if fmt == "table":
                if n:
                    click.echo()
                click.echo(f"job {job_id} of queue {queue.name}")
                click.echo(f"  {'state':<15}{state}")
                click.echo(f"  {'damaged':<15}{record['damaged']}")
                for line in [f"  logs ({logs.count})", *(f"    {r}" for r in logs.logs)]:
                    click.echo(line)
            elif fmt == "json":
                click.echo(dumps(record))
            else:
                emit_rows("csv", [record], [Column(k) for k in record])
            continue
        try:
            state = str(found.get_state())
        except LookupError:  # removed between the two reads
            missing.append(job_id)
            continue
        owner = queue.get_lock_owner(job_id)
        if fmt == "table":
            if n:
                click.echo()
            for line in job_view(ctx, queue, found, state, owner, logs.logs, logs.count, found.damaged):
                click.echo(line)
        else:
            record = {**found.to_dict(), "state": state, "lock_owner": owner, "logs": logs.logs,
                      "damaged": found.damaged}
            record["data"] = plain_data(found) if found.damaged else record["data"]
            if fmt == "json":
                click.echo(dumps(record))
            else:
                emit_rows("csv", [record], [Column(k) for k in record])
    if missing:
        raise click.ClickException(f"no job {', '.join(repr(i) for i in missing)} in queue {queue.name!r}")


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("job_id", metavar="ID")
@click.option("--tail", "-n", type=click.IntRange(min=1), default=None, help="Only the last N rows.")
@click.pass_context
def logs(ctx: click.Context, queue_name: str, job_id: str, tail: int | None) -> None:
    """A job's log rows (what job.log / job.log() wrote), oldest first."""
    queue = open_queue(ctx, queue_name)
    job = queue.get_job(job_id)
    if job is None and queue.get_states([job_id])[job_id] == "missing":
        raise click.ClickException(f"no job {job_id!r} in queue {queue.name!r}")
    if job is None or job.damaged:
        note(f"job {job_id!r} is damaged: {job.damaged if job is not None else 'listed with no job hash'}")
    found = queue.get_job_logs(job_id, 0, tail - 1, asc=False) if tail else queue.get_job_logs(job_id)
    fmt = settings(ctx).output
    if fmt == "json":
        click.echo(dumps({"id": job_id, "count": found.count, "logs": found.logs}))
    elif fmt == "csv":
        emit_rows("csv", [{"row": r} for r in found.logs], [Column("row")])
    elif not found.logs:
        note(f"job {job_id!r} has no log rows")
    else:
        for row in found.logs:
            click.echo(row)


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("job_id", metavar="ID")
@click.argument("row", metavar="TEXT")
@click.option("--keep", type=click.IntRange(min=1), default=None, help="Keep only the last N rows.")
@click.pass_context
def log(ctx: click.Context, queue_name: str, job_id: str, row: str, keep: int | None) -> None:
    """Append a row to a job's log, as job.log() in a Node or Python worker does."""
    queue = open_queue(ctx, queue_name)
    found = queue.get_job(job_id)
    if found is None:
        raise click.ClickException(f"no job {job_id!r} in queue {queue.name!r}")
    if found.damaged:
        note(f"job {job_id!r} is damaged: {found.damaged}")
    emit_record(ctx, {"id": job_id, "rows": found.log(row, keep_logs=keep)})
