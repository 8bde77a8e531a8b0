"""``bullpy repeatable``: list a queue's repeatable job definitions (the default) or remove some."""

from __future__ import annotations

from typing import Any

import click

from . import main
from ._common import (
    Group,
    confirm,
    dry_run_option,
    emit,
    emit_record,
    open_queue,
    settings,
    when,
    yes_option,
)
from ._output import Column, span


class _ListByDefault(Group):
    """``bullpy repeatable QUEUE`` is ``bullpy repeatable list QUEUE``."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["list", *args]
        return super().resolve_command(ctx, args)


@main.group(cls=_ListByDefault)
def repeatable() -> None:
    """List repeatable job definitions (cron or every) with their next run, or remove some.

    `bullpy repeatable QUEUE` lists them (the same as `bullpy repeatable list QUEUE`).
    """


@repeatable.command("list")
@click.argument("queue_name", metavar="QUEUE")
@click.pass_context
def list_(ctx: click.Context, queue_name: str) -> None:
    """Repeatable job definitions, next run first; times in the definition's tz when it has one."""
    queue = open_queue(ctx, queue_name)
    found = queue.get_repeatable_jobs(asc=True)
    rows: list[dict[str, Any]] = [
        {"key": r.key, "name": r.name, "id": r.id, "cron": r.cron, "every": r.every, "tz": r.tz,
         "end_date": r.end_date, "next": r.next} for r in found]
    if settings(ctx).output != "table":
        emit(ctx, rows, ["key", "name", "id", "cron", "every", "tz", "end_date", "next"])
        return
    views = [{"key": r.key, "name": r.name, "schedule": r.cron or (f"every {span(r.every)}" if r.every else ""),
              "tz": r.tz or "", "next": when(ctx, r.next, tz=r.tz), "end_date": when(ctx, r.end_date, tz=r.tz)}
             for r in found]
    columns = [Column("name", cut=16), Column("schedule", cut=16), Column("next"), Column("key")]
    if any(v["end_date"] for v in views):
        columns.insert(3, Column("end_date"))
    emit(ctx, views, columns, empty=f"no repeatable jobs in queue {queue.name!r}")


@repeatable.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("keys", nargs=-1, metavar="[KEY]...")
@click.option("--all", "every", is_flag=True, help="Remove every repeatable definition of the queue.")
@yes_option
@dry_run_option
@click.pass_context
def remove(ctx: click.Context, queue_name: str, keys: tuple[str, ...], every: bool, yes: bool, dry_run: bool) -> None:
    """Remove repeatable definitions by the key `bullpy repeatable QUEUE` shows, with their next pending run."""
    if bool(keys) == every:
        raise click.UsageError("give the keys to remove or --all")
    queue = open_queue(ctx, queue_name)
    known = [r.key for r in queue.get_repeatable_jobs(asc=True)]
    wanted = known if every else list(dict.fromkeys(keys))
    if dry_run:
        emit(ctx, [{"key": k, "would_remove": k in known} for k in wanted], ["key", "would_remove"])
        return
    present = [k for k in wanted if k in known]
    if present:
        confirm(ctx, f"remove {len(present)} repeatable definition(s) of queue {queue.name!r}", yes=yes)
    removed = [k for k in present if queue.remove_repeatable_by_key(k)]
    missing = [k for k in wanted if k not in removed]
    emit_record(ctx, {"queue": queue.name, "removed": len(removed)})
    if missing:
        raise click.ClickException(f"no repeatable definition {', '.join(repr(k) for k in missing)} in queue "
                                   f"{queue.name!r} (`bullpy repeatable {queue.name}` lists the keys)")
