"""Commands that move jobs out of a queue: to BullMQ (and, as they land, export/import/copy/move)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from . import main
from ._common import (
    confirm,
    dry_run_option,
    emit_record,
    note,
    open_queue,
    progress_bar,
    yes_option,
)


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A ``progress(increment)`` callback drawing a bar on a terminal, or None off one."""
    bar = progress_bar(total, label)
    try:
        yield None if bar is None else bar.update
    finally:
        if bar is not None:
            bar.close()


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
