"""Read-only commands: queues, stats, jobs, job, repeatable, workers. None of them writes to Redis."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import click

from .. import connection
from ..job import Job
from ..queue import DEFAULT_COUNT_TYPES, Queue, find_queues
from ..utils import now_ms
from . import main
from ._common import (
    clock,
    emit,
    emit_record,
    note,
    open_queue,
    parse_duration,
    settings,
)

# The order `bullpy jobs` walks states in when none is given: what needs attention first.
JOB_STATES = ("failed", "active", "waiting", "paused", "delayed", "completed")
# Lists and the delayed set are read next-to-run first; completed and failed newest first.
_NEWEST_FIRST = ("completed", "failed")
_WINDOW = 500


@main.command()
@click.pass_context
def queues(ctx: click.Context) -> None:
    """List the Bull queues under the prefix (found with SCAN, never KEYS, on every master of a Redis
    Cluster), with their counts."""
    opts = settings(ctx)
    prefix = opts.prefix
    source: Any
    if opts.is_cluster(opts.redis):
        source = connection.resolve_cluster(opts.redis)
        names = find_queues(source, prefix)
    else:
        try:
            source = connection.resolve(opts.redis)  # one connection, shared by every queue listed
            names = find_queues(source, prefix)
        except (ValueError, TypeError) as exc:  # a bad URL or prefix: reported as open_queue reports it
            raise click.BadParameter(str(exc), param_hint="QUEUE") from None
    rows = []
    for name in names:
        try:
            queue = Queue(name, source, prefix=prefix)
        except ValueError as exc:  # on a cluster: an id key without a hash tag, not a working Bull queue
            note(f"skipped {prefix}:{name}: {exc}")
            continue
        rows.append({"queue": name, **queue.get_job_counts(), "paused_flag": queue.is_paused()})
    emit(ctx, rows, ["queue", *DEFAULT_COUNT_TYPES, "paused_flag"])


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--watch", type=float, default=None, metavar="SECONDS", help="Refresh every SECONDS until Ctrl-C.")
@click.pass_context
def stats(ctx: click.Context, queue_name: str, watch: float | None) -> None:
    """Job counts per state, paused flag and workers of one queue (a constant number of round trips)."""
    queue = open_queue(ctx, queue_name)
    try:
        while True:
            row = {"queue": queue.name, **queue.get_job_counts(), "paused_flag": queue.is_paused(),
                   "workers": len(queue.get_workers())}
            if watch is not None and settings(ctx).output == "table" and sys.stdout.isatty():
                click.clear()  # redraw in place on a terminal; pipes get one row per refresh
                row["at"] = clock(now_ms())
            emit(ctx, [row])
            if watch is None:
                return
            time.sleep(watch)
    except KeyboardInterrupt:
        return


def _last_seen(job: Job) -> int:
    return job.finished_on or job.processed_on or job.timestamp or 0


def _matches(job: Job, needle: str | None) -> bool:
    if not needle:
        return True
    haystack = " ".join(
        [job.id, job.name, json.dumps(job.data, ensure_ascii=False), job.failed_reason or "",
         json.dumps(job.returnvalue, ensure_ascii=False)]
    )
    return needle.casefold() in haystack.casefold()


def find_jobs(queue: Queue, states: tuple[str, ...], *, since_ms: int | None = None, grep: str | None = None
              ) -> Iterator[tuple[str, Job]]:
    """(state, job) pairs, state by state, read in windows so a million-job state is never loaded whole."""
    cutoff = now_ms() - since_ms if since_ms is not None else None
    for state in states:
        newest_first = state in _NEWEST_FIRST
        start = 0
        while True:
            ids = queue.get_ranges([state], start, start + _WINDOW - 1, asc=not newest_first)
            if not ids:
                break
            jobs = queue.get_jobs_by_ids(ids)
            for job in jobs:
                if cutoff is not None and _last_seen(job) < cutoff:
                    continue
                if _matches(job, grep):
                    yield state, job
            # completed/failed are ordered by finish time: once a window is all older, so is the rest.
            if cutoff is not None and newest_first and jobs and all(_last_seen(j) < cutoff for j in jobs):
                break
            start += _WINDOW


def job_row(state: str, job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "state": state, "name": job.name, "attempts_made": job.attempts_made,
        "timestamp": job.timestamp, "processed_on": job.processed_on, "finished_on": job.finished_on,
        "failed_reason": job.failed_reason, "data": job.data,
    }


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--state", "-s", "states", multiple=True, type=click.Choice(JOB_STATES),
              help="States to list (repeatable) [default: all, failed first].")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many jobs.")
@click.option("--since", default=None, metavar="DURATION",
              help="Only jobs created, processed or finished within e.g. 1h, 30m, 2d.")
@click.option("--grep", default=None, metavar="TEXT", help="Only jobs whose id, name, data, failed reason "
              "or return value contain TEXT (case-insensitive).")
@click.pass_context
def jobs(ctx: click.Context, queue_name: str, states: tuple[str, ...], limit: int, since: str | None,
         grep: str | None) -> None:
    """List jobs with their state, attempts, times and failed reason."""
    since_ms = parse_duration(since, "--since") if since else None
    queue = open_queue(ctx, queue_name)
    rows = []
    for state, job in find_jobs(queue, states or JOB_STATES, since_ms=since_ms, grep=grep):
        rows.append(job_row(state, job))
        if len(rows) >= limit:
            break
    emit(ctx, rows, ["id", "state", "name", "attempts_made", "timestamp", "processed_on", "finished_on",
                     "failed_reason", "data"],
         widths={"failed_reason": 40, "data": 60}, times=("timestamp", "processed_on", "finished_on"))


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("job_id", metavar="ID")
@click.pass_context
def job(ctx: click.Context, queue_name: str, job_id: str) -> None:
    """Everything about one job: Node's toJSON fields, its state, lock holder and logs."""
    queue = open_queue(ctx, queue_name)
    found = queue.get_job(job_id)
    if found is None:
        raise click.ClickException(f"no job {job_id!r} in queue {queue.name!r}")
    logs = queue.get_job_logs(job_id)
    record = {**found.to_dict(), "state": str(found.get_state()),
              "lock_owner": queue.get_lock_owner(job_id), "logs": logs.logs}
    emit_record(ctx, record, title=f"job {job_id} of {queue.name}")


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.pass_context
def repeatable(ctx: click.Context, queue_name: str) -> None:
    """Repeatable job definitions (cron or every), with their next run."""
    queue = open_queue(ctx, queue_name)
    rows = [dataclasses.asdict(r) for r in queue.get_repeatable_jobs(asc=True)]
    emit(ctx, rows, ["key", "name", "id", "cron", "every", "tz", "end_date", "next"],
         times=("end_date", "next"))


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.pass_context
def workers(ctx: click.Context, queue_name: str) -> None:
    """Connected workers, Node or Python (Bull's client names, as Node's getWorkers sees them)."""
    queue = open_queue(ctx, queue_name)
    rows = queue.get_workers()
    if settings(ctx).output == "json" or not rows:
        emit(ctx, rows)
    else:
        emit(ctx, rows, ["id", "addr", "age", "idle", "db", "cmd"])


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--max-finished", type=click.IntRange(min=0), default=10_000, show_default=True,
              help="More completed (or failed) jobs kept than this is a warning.")
@click.option("--max-age", default=None, metavar="DURATION", help="Also warn when the oldest finished job is older.")
@click.option("--no-orphans", is_flag=True, help="Skip the orphan-job scan (it walks the whole keyspace with SCAN).")
@click.pass_context
def doctor(ctx: click.Context, queue_name: str, max_finished: int, max_age: str | None, no_orphans: bool) -> None:
    """Check a queue and its Redis: eviction policy, persistence, unbounded finished sets, active jobs
    without locks, job names no worker handles, orphan job hashes, memory per job. Read-only.

    Exit status: 0 healthy, 1 warnings, 2 errors.
    """
    from ..doctor import diagnose

    queue = open_queue(ctx, queue_name)
    report = diagnose(queue, max_finished=max_finished, check_orphans=not no_orphans,
                      max_finished_age_ms=parse_duration(max_age, "--max-age") if max_age else None)
    if settings(ctx).output == "json":
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, default=str))
    else:
        click.echo(report.render())
    ctx.exit(report.exit_code)
