"""Commands that change a queue: add, load, retry, promote, remove, pause, resume, clean, empty, obliterate.

Destructive ones (remove, clean, empty, obliterate, and retry/promote of everything) say what they will
touch and ask first; without a terminal they need ``--yes``; ``--dry-run`` reports the count and changes
nothing.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..errors import BullError
from ..queue import Queue
from ..retry import DEFAULT_POLICY
from ..utils import option_keyword
from . import main
from ._common import (
    StateType,
    confirm,
    damage_of,
    dry_run_option,
    emit,
    emit_record,
    note,
    open_queue,
    parse_duration,
    parse_json,
    split_ids,
    yes_option,
)
from ._output import Column, span

# Bull's clean takes these states (``wait`` for waiting); bullpy names them as everywhere else.
_CLEANABLE = ("completed", "waiting", "active", "paused", "delayed", "failed")


def _keep(value: str | None, option: str) -> bool | int | None:
    """``--remove-on-complete``: true, false or a number of jobs to keep."""
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    try:
        return int(lowered)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use true, false or a number of jobs to keep", param_hint=option) from None


def _backoff(value: str | None) -> int | dict[str, Any] | None:
    """``--backoff exponential:2s`` / ``fixed:5000`` / ``3s`` (fixed)."""
    if value is None:
        return None
    kind, _, delay = value.partition(":")
    if not delay:
        return parse_duration(kind if not kind.isdigit() else kind + "ms", "--backoff")
    if not delay.isdigit():
        return {"type": kind, "delay": parse_duration(delay, "--backoff")}
    return {"type": kind, "delay": int(delay)}


def _ms_option(value: str | None, option: str) -> int | None:
    # Bull's own options are milliseconds: a bare number stays milliseconds, units are welcome.
    if value is None:
        return None
    return int(value) if value.isdigit() else parse_duration(value, option)


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--data", "data_json", required=True, metavar="JSON", help='The job data, e.g. \'{"number": "55...", "message": "hi"}\'.')
@click.option("--name", default=None, help="Job name [default: Bull's __default__].")
@click.option("--job-id", default=None, help="Custom job id (a job with that id already queued means no-op).")
@click.option("--delay", default=None, metavar="DURATION", help="Run after e.g. 30s, 5m (bare number: ms).")
@click.option("--priority", type=int, default=None, help="1 = highest.")
@click.option("--attempts", type=int, default=None, help="Tries before the job fails for good.")
@click.option("--backoff", default=None, metavar="TYPE:DELAY", help="e.g. exponential:2s or fixed:5000.")
@click.option("--lifo", is_flag=True, default=None, help="Put the job at the front of the queue.")
@click.option("--timeout", default=None, metavar="DURATION", help="Fail the attempt after this long.")
@click.option("--remove-on-complete", default=None, metavar="true|false|N")
@click.option("--remove-on-fail", default=None, metavar="true|false|N")
@click.option("--cron", default=None, help="Make it repeatable on a cron schedule (Bull's repeat.cron).")
@click.option("--every", default=None, metavar="DURATION", help="Make it repeatable every DURATION.")
@click.option("--tz", default=None, help="Time zone of --cron.")
@click.option("--opts", "opts_json", default=None, metavar="JSON",
              help="More job options as Bull's JSON (camelCase as in Node, or snake_case).")
@click.pass_context
def add(ctx: click.Context, queue_name: str, data_json: str, name: str | None, job_id: str | None, delay: str | None,
        priority: int | None, attempts: int | None, backoff: str | None, lifo: bool | None, timeout: str | None,
        remove_on_complete: str | None, remove_on_fail: str | None, cron: str | None, every: str | None,
        tz: str | None, opts_json: str | None) -> None:
    """Add one job, exactly as Node's queue.add would."""
    data = parse_json(data_json, "--data")
    options: dict[str, Any] = {}
    if opts_json is not None:
        extra = parse_json(opts_json, "--opts")
        if not isinstance(extra, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--opts")
        options.update({option_keyword(str(k)): v for k, v in extra.items()})
    given = {
        "job_id": job_id, "delay": _ms_option(delay, "--delay"), "priority": priority, "attempts": attempts,
        "backoff": _backoff(backoff), "lifo": lifo, "timeout": _ms_option(timeout, "--timeout"),
        "remove_on_complete": _keep(remove_on_complete, "--remove-on-complete"),
        "remove_on_fail": _keep(remove_on_fail, "--remove-on-fail"),
    }
    options.update({k: v for k, v in given.items() if v is not None})
    if cron or every:
        repeat: dict[str, Any] = {"cron": cron} if cron else {"every": _ms_option(every, "--every")}
        if tz:
            repeat["tz"] = tz
        options["repeat"] = repeat
    queue = open_queue(ctx, queue_name, must_exist=False)
    job = queue.add(data, name=name, **options)
    if job is None:
        note("the repeatable job's schedule has already ended: nothing was added")
        return
    emit_record(ctx, {"id": job.id, "name": job.name, "duplicate": job.duplicate, "state": str(job.get_state())})


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("--file-format", type=click.Choice(["csv", "parquet", "jsonl"]), default=None,
              help="Format of FILE [default: from its extension].")
@click.option("--data", "data_columns", default=None, metavar="COLS", help="Comma-separated columns that make the "
              "job data [default: all].")
@click.option("--job-id", default=None, metavar="TEMPLATE", help='A column or template, e.g. "spring-{customer_id}": '
              "re-running the load then adds only rows not queued yet.")
@click.option("--name", default=None, help="Job name for every row.")
@click.option("--rate", default=None, help="Pace the campaign, e.g. 20/min, 5/s.")
@click.option("--send-at", default=None, metavar="COLUMN", help="A column of times to send each row at.")
@click.option("--delay", default=None, metavar="COLUMN|DURATION")
@click.option("--priority", default=None, metavar="COLUMN|N")
@click.option("--attempts", default=None, metavar="COLUMN|N")
@click.option("--backoff", default=None, metavar="TYPE:DELAY", help="e.g. exponential:2s.")
@click.option("--remove-on-complete", default=None, metavar="true|false|N")
@click.option("--remove-on-fail", default=None, metavar="true|false|N")
@click.option("--allow-null", is_flag=True, help="Empty cells become JSON null instead of an error.")
@click.option("--schema", default=None, metavar="KEY=TYPE,...", help="JSON types the worker expects, checked per row "
              "before anything is written, e.g. number=str,message=str.")
@click.option("--window", default=None, metavar="HH:MM-HH:MM", help="Sending hours in each row's zone (--tz), "
              "e.g. 09:00-20:00.")
@click.option("--tz", default=None, metavar="ZONE|COLUMN", help="Zone of --window (and of --send-at times without "
              "one): an IANA name or a column of names.")
@dry_run_option
@click.pass_context
def load(ctx: click.Context, queue_name: str, path: str, file_format: str | None, data_columns: str | None,
         job_id: str | None, name: str | None, rate: str | None, send_at: str | None, delay: str | None,
         priority: str | None, attempts: str | None, backoff: str | None, remove_on_complete: str | None,
         remove_on_fail: str | None, allow_null: bool, schema: str | None, window: str | None, tz: str | None,
         dry_run: bool) -> None:
    """Queue one job per row of a CSV, Parquet or JSON-lines file (the DataFrame path), streamed in record
    batches: every row is checked first, then written, in bounded memory whatever the file's size."""
    from .. import frames

    columns = next(iter(frames.read_campaign(path, format=file_format, chunksize=1)), None)

    def number_or_column(value: str | None) -> str | int | None:
        return int(value) if value is not None and value.isdigit() else value

    delay_value: str | int | None = delay
    if delay is not None and (columns is None or delay not in columns.columns):
        delay_value = _ms_option(delay, "--delay")
    queue = open_queue(ctx, queue_name, must_exist=False)
    counts = frames.load_file(
        queue, path, format=file_format, data=data_columns.split(",") if data_columns else None, name=name,
        job_id=job_id, priority=number_or_column(priority), delay=delay_value, send_at=send_at,
        attempts=number_or_column(attempts), backoff=_backoff(backoff), rate=rate, allow_null=allow_null,
        schema=schema, window=window, tz=tz, progress=sys.stderr.isatty(), dry_run=dry_run,
        remove_on_complete=_keep(remove_on_complete, "--remove-on-complete"),
        remove_on_fail=_keep(remove_on_fail, "--remove-on-fail"),
    )
    emit_record(ctx, {"queue": queue.name, **{str(k): int(v) for k, v in counts.items()}, "dry_run": dry_run})


def _dry(ctx: click.Context, queue: Queue, states: dict[str, str], rows: list[dict[str, Any]]) -> None:
    """A dry run's per-id rows; when some of the jobs are damaged, a ``damaged`` column says why."""
    damage = damage_of(queue, states)
    columns: list[Column | str] = list(rows[0]) if rows else []
    if damage:
        for row in rows:
            row["damaged"] = damage.get(row["id"])
        columns.append(Column("damaged", elastic=True))
    emit(ctx, rows, columns)


def _report(ctx: click.Context, done: list[dict[str, Any]], verb: str) -> None:
    """Per-id outcomes; any id that could not be handled makes the command fail after the report."""
    emit(ctx, done, ["id", "result"])
    failed = [row for row in done if row["result"] != verb]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(done)} jobs could not be {verb}")


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--state", type=click.Choice(["failed", "completed"]), default="failed", show_default=True)
@click.option("--id", "ids", multiple=True, metavar="ID", help="Only these jobs (repeatable, or comma-separated).")
@yes_option
@dry_run_option
@click.pass_context
def retry(ctx: click.Context, queue_name: str, state: str, ids: tuple[str, ...], yes: bool, dry_run: bool) -> None:
    """Move failed (or completed) jobs back to waiting, as Node's job.retry / queue.retryJobs."""
    queue = open_queue(ctx, queue_name)
    wanted = split_ids(ids)
    if wanted:
        states = queue.get_states(wanted)
        if dry_run:
            _dry(ctx, queue, states, [{"id": i, "state": s, "would_retry": s == state} for i, s in states.items()])
            return
        outcome = {i: "not found" if s == "missing" else f"is {s}" for i, s in states.items()}
        for job in queue.get_jobs_by_ids([i for i in wanted if states[i] == state]):
            try:
                job.retry(state)
                outcome[job.id] = "retried"
            except BullError as exc:
                outcome[job.id] = str(exc)
        _report(ctx, [{"id": i, "result": outcome[i]} for i in wanted], "retried")
        return
    count = queue.get_job_counts(state)[state]
    if dry_run:
        emit_record(ctx, {"queue": queue.name, "state": state, "would_retry": count, "dry_run": True})
        return
    if count == 0:
        emit_record(ctx, {"queue": queue.name, "state": state, "retried": 0})
        return
    confirm(ctx, f"retry all {count} {state} jobs of queue {queue.name!r}", yes=yes)
    queue.retry_jobs(state=state)
    emit_record(ctx, {"queue": queue.name, "state": state, "retried": count - queue.get_job_counts(state)[state]})


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--id", "ids", multiple=True, metavar="ID", help="Jobs to promote (repeatable, or comma-separated).")
@click.option("--all", "every", is_flag=True, help="Promote every delayed job.")
@yes_option
@dry_run_option
@click.pass_context
def promote(ctx: click.Context, queue_name: str, ids: tuple[str, ...], every: bool, yes: bool, dry_run: bool) -> None:
    """Run delayed jobs now."""
    wanted = split_ids(ids)
    if bool(wanted) == every:
        raise click.UsageError("give --id ID... or --all")
    queue = open_queue(ctx, queue_name)
    if wanted:
        states = queue.get_states(wanted)
        if dry_run:
            _dry(ctx, queue, states, [{"id": i, "state": s, "would_promote": s == "delayed"} for i, s in states.items()])
            return
        promoted = set(queue.promote_jobs(wanted))
        _report(ctx, [{"id": i, "result": "promoted" if i in promoted else f"is {states[i]}"} for i in wanted],
                "promoted")
        return
    count = queue.get_delayed_count()
    if dry_run:
        emit_record(ctx, {"queue": queue.name, "would_promote": count, "dry_run": True})
        return
    if count:
        confirm(ctx, f"promote all {count} delayed jobs of queue {queue.name!r}", yes=yes)
    emit_record(ctx, {"queue": queue.name, "promoted": len(queue.promote_jobs())})


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--pattern", default=None, metavar="GLOB", help="Remove every job whose id matches, e.g. 'spring-*'.")
@yes_option
@dry_run_option
@click.pass_context
def remove(ctx: click.Context, queue_name: str, ids: tuple[str, ...], pattern: str | None, yes: bool,
           dry_run: bool) -> None:
    """Remove jobs (with their logs) by id or id pattern; jobs a worker holds are never removed."""
    wanted = split_ids(ids)
    if bool(wanted) == bool(pattern):
        raise click.UsageError("give job ids or --pattern GLOB (not both)")
    queue = open_queue(ctx, queue_name)
    if pattern:
        matching = queue.remove_jobs(pattern, dry_run=True)
        if dry_run or not matching:
            emit_record(ctx, {"queue": queue.name, "pattern": pattern, "would_remove": len(matching), "dry_run": dry_run})
            return
        confirm(ctx, f"remove {len(matching)} jobs matching {pattern!r} from queue {queue.name!r}", yes=yes)
        emit_record(ctx, {"queue": queue.name, "pattern": pattern, "removed": len(queue.remove_jobs(pattern))})
        return
    states = queue.get_states(wanted)
    if dry_run:
        _dry(ctx, queue, states,
             [{"id": i, "state": s, "would_remove": s not in ("missing", "active")} for i, s in states.items()])
        return
    confirm(ctx, f"remove {len(wanted)} job(s) from queue {queue.name!r}", yes=yes)
    done = []
    for job in queue.get_jobs_by_ids(wanted):
        try:
            job.remove()
            done.append({"id": job.id, "result": "removed"})
        except BullError as exc:
            done.append({"id": job.id, "result": str(exc)})
    seen = {row["id"] for row in done}
    done += [{"id": i, "result": "not found"} for i in wanted if i not in seen]
    _report(ctx, done, "removed")


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.pass_context
def pause(ctx: click.Context, queue_name: str) -> None:
    """Pause the queue for every worker, Node or Python (Bull's global pause)."""
    queue = open_queue(ctx, queue_name)
    queue.pause()
    emit_record(ctx, {"queue": queue.name, "paused": queue.is_paused()})


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.pass_context
def resume(ctx: click.Context, queue_name: str) -> None:
    """Resume a globally paused queue."""
    queue = open_queue(ctx, queue_name)
    queue.resume()
    emit_record(ctx, {"queue": queue.name, "paused": queue.is_paused()})


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--state", type=StateType(_CLEANABLE), default="completed", show_default=True,
              help="The state to clean (wait = waiting).")
@click.option("--grace", required=True, metavar="DURATION",
              help="Keep jobs younger than this, e.g. 1d, 12h (bare number: ms; 0: remove them whatever their age).")
@click.option("--limit", type=click.IntRange(min=0), default=0, show_default=True, help="At most N jobs (0: all).")
@yes_option
@dry_run_option
@click.pass_context
def clean(ctx: click.Context, queue_name: str, state: str, grace: str, limit: int, yes: bool, dry_run: bool) -> None:
    """Remove the jobs of one state older than --grace (Bull's queue.clean); locked jobs are never removed."""
    grace_ms = _ms_option(grace, "--grace") or 0
    queue = open_queue(ctx, queue_name)
    bull_state = "wait" if state == "waiting" else state  # the name Bull's clean takes
    # Bull's clean removes what still matches when run again, so a run cut by a Redis restart or failover is
    # retried (bullpy.retry); the count then covers the final run only.
    matching = queue.clean(grace_ms, bull_state, limit, dry_run=True, retry=DEFAULT_POLICY)
    if dry_run or not matching:
        emit_record(ctx, {"queue": queue.name, "state": state, "would_remove": len(matching), "dry_run": dry_run})
        return
    age = f"older than {span(grace_ms)}" if grace_ms else "(any age: --grace 0)"
    confirm(ctx, f"remove {len(matching)} {state} jobs {age} from queue {queue.name!r}", yes=yes)
    removed = queue.clean(grace_ms, bull_state, limit, retry=DEFAULT_POLICY)
    emit_record(ctx, {"queue": queue.name, "state": state, "removed": len(removed)})


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@yes_option
@dry_run_option
@click.pass_context
def empty(ctx: click.Context, queue_name: str, yes: bool, dry_run: bool) -> None:
    """Remove every waiting, paused and delayed job (active, completed and failed ones stay)."""
    queue = open_queue(ctx, queue_name)
    counts = queue.get_job_counts("waiting", "paused", "delayed")
    total = sum(counts.values())
    if dry_run or total == 0:
        emit_record(ctx, {"queue": queue.name, **counts, "would_remove": total, "dry_run": dry_run})
        return
    confirm(ctx, f"remove {total} jobs ({', '.join(f'{v} {k}' for k, v in counts.items())}) from queue "
                 f"{queue.name!r}", yes=yes)
    emit_record(ctx, {"queue": queue.name, "removed": queue.empty()})


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--force", is_flag=True, help="Even while jobs are active (their workers will fail to finish them).")
@yes_option
@dry_run_option
@click.pass_context
def obliterate(ctx: click.Context, queue_name: str, force: bool, yes: bool, dry_run: bool) -> None:
    """Delete the whole queue: every job, log, repeatable definition and setting."""
    queue = open_queue(ctx, queue_name)
    counts = queue.get_job_counts()
    jobs = sum(counts.values())
    if dry_run:
        emit_record(ctx, {"queue": queue.name, **counts, "would_remove_jobs": jobs,
                          "repeatable": queue.get_repeatable_count(), "dry_run": True})
        return
    if counts["active"] and not force:
        raise click.ClickException(f"queue {queue.name!r} has {counts['active']} active jobs: stop its workers "
                                   "or use --force")
    confirm(ctx, f"delete queue {queue.name!r} with all its {jobs} jobs", yes=yes)
    queue.obliterate(force=force)
    emit_record(ctx, {"queue": queue.name, "obliterated": True, "removed_jobs": jobs})


@main.command()
@click.option("--queue", "queue_name", default="message-queue", show_default=True, help="Queue name.")
@click.option("--bridge", default=None, help="Path to bridge/ (the Node worker).")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the worker.")
@click.pass_context
def demo(ctx: click.Context, queue_name: str, bridge: str | None, timeout: float) -> None:
    """Queue a small WhatsApp campaign and let the real Node Bull worker send it (dry run)."""
    from ..demo import run_demo
    from ._common import settings

    opts = settings(ctx)
    raise SystemExit(run_demo(queue_name=queue_name, prefix=opts.key_prefix, redis=opts.redis, bridge=bridge,
                              timeout=timeout, echo=click.echo))
