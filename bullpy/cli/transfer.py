"""Commands that move jobs: export/import files, copy/move between queues or states, and to BullMQ."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import click

from . import main
from ._common import (
    confirm,
    dry_run_option,
    emit_record,
    note,
    open_queue,
    progress_bar,
    split_ids,
    yes_option,
)


@contextmanager
def _progress(total: int, label: str, *, cumulative: bool = False) -> Iterator[Callable[[int], None] | None]:
    """A progress callback drawing a bar on a terminal (None off one). It takes increments, or with
    ``cumulative`` the running total (bullpy.transfer reports jobs done so far)."""
    bar = progress_bar(total, label)
    if bar is None:
        yield None
        return
    done = [0]

    def advance(n: int) -> None:
        step = n - done[0] if cumulative else n
        done[0] += step
        bar.update(step)

    try:
        yield advance
    finally:
        bar.close()


_STATES = click.Choice(["delayed", "wait", "waiting", "paused", "active", "completed", "failed", "repeat"])
_CONFLICT = click.Choice(["error", "skip", "replace"])


def _summary_record(summary: Any) -> dict[str, Any]:
    """A summary dataclass as one JSON object (its fields plus the job total)."""
    return {**{k: (dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v)
               for k, v in dataclasses.asdict(summary).items()}, "jobs": summary.jobs}


@main.command("export")
@click.argument("queue_name", metavar="QUEUE")
@click.option("-o", "--output", "path", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The file to write (created with mode 0600: job data is often personal).")
@click.option("--state", "states", multiple=True, type=_STATES, help="Only these states (repeatable) [default: all, "
              "with repeatable definitions].")
@yes_option
@click.pass_context
def export(ctx: click.Context, queue_name: str, path: str, states: tuple[str, ...], yes: bool) -> None:
    """Write a queue to a versioned, streamed msgpack file: ids, states, order, hashes, logs, repeatables.

    For an exact copy, pause the queue and let active jobs finish first.
    """
    from .. import transfer

    queue = open_queue(ctx, queue_name)
    if os.path.exists(path):
        confirm(ctx, f"overwrite {path}", yes=yes)
    total = sum(queue.get_job_counts().values())
    with _progress(total, f"exporting {queue.name}", cumulative=True) as progress:
        summary = transfer.export_queue(queue, path, states=states or None, progress=progress)
    note(str(summary))
    emit_record(ctx, {"file": path, **_summary_record(summary)})


@main.command("import")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("--queue", "queue_name", default=None, help="Target queue name [default: the name in the file].")
@click.option("--on-conflict", type=_CONFLICT, default="error", show_default=True,
              help="For job ids the target already has: stop and change nothing, keep theirs, or overwrite.")
@click.option("--state", "states", multiple=True, type=_STATES, help="Only these states of the file (repeatable).")
@yes_option
@dry_run_option
@click.pass_context
def import_(ctx: click.Context, path: str, queue_name: str | None, on_conflict: str, states: tuple[str, ...],
            yes: bool, dry_run: bool) -> None:
    """Import an export file into a queue (any Redis, prefix or name). The whole file is checked first."""
    from .. import transfer

    header = transfer.validate_export(path)  # a bad or truncated file stops here, before any write
    queue = open_queue(ctx, queue_name or header.queue, must_exist=False)
    run = functools.partial(transfer.import_queue, path, queue, on_conflict=on_conflict,  # type: ignore[arg-type]
                            states=states or None)
    plan = run(dry_run=True)
    if dry_run or plan.jobs == 0:
        note(str(plan))
        emit_record(ctx, {"file": path, **_summary_record(plan)})
        return
    if on_conflict == "replace" and plan.replaced:
        confirm(ctx, f"overwrite {plan.replaced} existing jobs of queue {queue.name!r}", yes=yes)
    with _progress(header.jobs, f"importing into {queue.name}", cumulative=True) as progress:
        summary = run(progress=progress)
    note(str(summary))
    emit_record(ctx, {"file": path, **_summary_record(summary)})


def _copy_or_move(ctx: click.Context, move: bool, source_name: str, target_name: str, to_redis: str | None,
                  to_prefix: str | None, states: tuple[str, ...], ids: tuple[str, ...], to_state: str | None,
                  on_conflict: str, yes: bool, dry_run: bool) -> None:
    from .. import transfer

    source = open_queue(ctx, source_name)
    target = open_queue(ctx, target_name, must_exist=False, prefix=to_prefix, redis=to_redis)
    fn = transfer.move_jobs if move else transfer.copy_jobs
    run = functools.partial(fn, source, target, states=states or None, ids=split_ids(ids) or None,
                            to_state=to_state, on_conflict=on_conflict)  # type: ignore[arg-type]
    plan = run(dry_run=True)
    note(str(plan))
    if dry_run or plan.jobs == 0:
        emit_record(ctx, _summary_record(plan))
        return
    if move or plan.replaced:
        what = f"move {plan.jobs} jobs" if move else f"copy {plan.jobs} jobs, overwriting {plan.replaced}"
        confirm(ctx, f"{what} from {plan.source} to {plan.target}", yes=yes)
    with _progress(plan.jobs, "moving" if move else "copying", cumulative=True) as progress:
        summary = run(progress=progress)
    note(str(summary))
    emit_record(ctx, _summary_record(summary))


def _copy_options(f: Callable[..., Any]) -> Callable[..., Any]:
    decorators: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.argument("source_name", metavar="SOURCE"),
        click.argument("target_name", metavar="TARGET"),
        click.option("--to-redis", default=None, metavar="URL", help="TARGET's Redis [default: the same]."),
        click.option("--to-prefix", default=None, help="TARGET's prefix [default: --prefix]."),
        click.option("--state", "states", multiple=True, type=_STATES, help="Only jobs in these states (repeatable)."),
        click.option("--id", "ids", multiple=True, metavar="ID", help="Only these jobs (repeatable, or comma-separated)."),
        click.option("--to-state", type=click.Choice(["wait"]), default=None,
                     help="Put every job in waiting, as Bull's retry/promote would (default: keep states)."),
        click.option("--on-conflict", type=_CONFLICT, default="error", show_default=True),
        yes_option, dry_run_option, click.pass_context,
    ]
    for decorate in reversed(decorators):
        f = decorate(f)
    return f


@main.command()
@_copy_options
def copy(ctx: click.Context, **kw: Any) -> None:
    """Copy jobs to another queue (another name, prefix or Redis); ids, order, hashes and logs are kept."""
    _copy_or_move(ctx, False, **kw)


@main.command()
@_copy_options
def move(ctx: click.Context, **kw: Any) -> None:
    """Move jobs to another queue, or within one queue to waiting (`move Q Q --state failed --to-state wait`).

    Each job is removed from SOURCE only once written to TARGET and only if unchanged and unlocked meanwhile.
    """
    _copy_or_move(ctx, True, **kw)


@main.command("migrate-to-bullmq")
@click.argument("queue_name", metavar="QUEUE")
@click.option("--target-redis", default=None, metavar="URL", help="Where the BullMQ queue lives [default: the same Redis].")
@click.option("--target-name", default=None, help="BullMQ queue name [default: the same name].")
@click.option("--target-prefix", default="bull", show_default=True, help="BullMQ key prefix.")
@click.option("--state", "states", multiple=True, type=click.Choice(["wait", "paused", "delayed", "failed"]),
              help="Bull states to migrate (repeatable) [default: all four].")
@click.option("--no-repeatables", is_flag=True, help="Leave repeatable definitions in Bull.")
@click.option("--keep-source", is_flag=True, help="Copy only: remove nothing from Bull.")
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True)
@yes_option
@dry_run_option
@click.pass_context
def migrate_to_bullmq(ctx: click.Context, queue_name: str, target_redis: str | None, target_name: str | None,
                      target_prefix: str, states: tuple[str, ...], no_repeatables: bool, keep_source: bool,
                      batch_size: int, yes: bool, dry_run: bool) -> None:
    """Move waiting, delayed, prioritised and failed jobs (and repeatables) into a BullMQ queue.

    BullMQ's own Python package writes them, so BullMQ workers then process them. Each batch is written,
    read back, and only then removed from Bull; a re-run adds no duplicates (job ids are kept). Active
    and completed jobs stay in Bull. Stop or pause the Bull workers first.
    """
    from .. import migrate

    queue = open_queue(ctx, queue_name)
    run = functools.partial(migrate.migrate_to_bullmq, queue, target_redis=target_redis, target_name=target_name,
                            target_prefix=target_prefix, states=states or migrate.MIGRATABLE_STATES,
                            repeatables=not no_repeatables, keep_source=keep_source, batch_size=batch_size)
    plan = run(dry_run=True)
    if dry_run or plan.total == 0:
        note(str(plan))
        emit_record(ctx, {"queue": queue.name, "would_migrate": plan.total, **{f"would_migrate_{k}": v for k, v in
                          plan.migrated.items()}, "dry_run": dry_run})
        return
    note(str(plan))
    verb = "copy" if keep_source else "move"
    confirm(ctx, f"{verb} {plan.total} jobs of Bull queue {queue.name!r} into BullMQ", yes=yes)
    with _progress(plan.total, f"migrating {queue.name}") as progress:
        summary = run(progress=progress)
    note(str(summary))
    emit_record(ctx, {"queue": queue.name, "migrated": summary.total,
                      **{f"migrated_{k}": v for k, v in summary.migrated.items()},
                      "skipped": len(summary.skipped), "left_in_source": dict(summary.left_in_source)})
