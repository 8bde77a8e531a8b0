"""Commands for stuck active jobs: ``fail`` and ``complete`` move them on as their worker would have.

Both follow Node Bull's ``job.moveToFailed``/``moveToCompleted`` with ``ignoreLock`` (what bull-repl runs):
``fail`` counts the attempt, so a job with attempts left is retried (now, or after its backoff) and a
job without is failed for good, where ``bullpy retry`` or Node's ``job.retry()`` can run it again. A job
whose worker still holds its live lock is refused unless ``--force`` (that worker then cannot finish it).
"""

from __future__ import annotations

from collections.abc import Callable

import click

from ..errors import BullError
from ..job import Job
from ..queue import Queue
from . import main
from ._common import (
    confirm,
    damage_of,
    dry_run_option,
    emit,
    open_queue,
    parse_json,
    split_ids,
    yes_option,
)
from ._output import Column


def _plan(ctx: click.Context, queue_name: str, ids: tuple[str, ...], force: bool
          ) -> tuple[Queue, list[str], list[str], dict[str, str]]:
    """The queue, the ids asked for, those that can be moved, and why the others cannot."""
    queue = open_queue(ctx, queue_name)
    wanted = split_ids(ids)
    refused: dict[str, str] = {}
    for job_id, state in queue.get_states(wanted).items():
        if state == "missing":
            refused[job_id] = "not found"
        elif state != "active":
            refused[job_id] = f"is {state}, not active"
        elif not force and queue.get_lock_owner(job_id) is not None:
            refused[job_id] = "a worker holds its live lock (--force takes it over)"
    return queue, wanted, [i for i in wanted if i not in refused], refused


def _dry(ctx: click.Context, queue: Queue, wanted: list[str], rows: list[dict[str, object]]) -> None:
    """A dry run's rows; when some of the jobs are damaged, a ``damaged`` column says why."""
    damage = damage_of(queue, queue.get_states(wanted)) if wanted else {}
    columns: list[Column | str] = list(rows[0]) if rows else []
    if damage:
        for row in rows:
            row["damaged"] = damage.get(str(row["id"]))
        columns.append(Column("damaged", elastic=True))
    emit(ctx, rows, columns)


def _move_each(queue: Queue, ready: list[str], refused: dict[str, str], move: Callable[[Job], str]
               ) -> dict[str, str]:
    """``move`` each ready job (its outcome by id); a job gone or refused is added to ``refused`` with why."""
    done: dict[str, str] = {}
    for job_id in ready:
        job = queue.get_job(job_id)
        if job is None:
            refused[job_id] = "not found"
            continue
        try:
            done[job_id] = move(job)
        except BullError as exc:
            refused[job_id] = str(exc)
    return done


def _report(ctx: click.Context, wanted: list[str], refused: dict[str, str], done: dict[str, str]) -> None:
    emit(ctx, [{"id": i, "result": done[i] if i in done else refused.get(i, "")} for i in wanted], ["id", "result"])
    if refused:
        raise click.ClickException(f"{len(refused)} of {len(wanted)} jobs could not be moved")


_FORCE = click.option("--force", is_flag=True,
                      help="Also jobs whose worker still holds their live lock (that worker then cannot finish them).")


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@click.option("--reason", required=True, help="The failed reason workers, listeners and `bullpy job` show.")
@click.option("--discard", is_flag=True, help="Fail for good whatever attempts are left (Node's job.discard()).")
@_FORCE
@yes_option
@dry_run_option
@click.pass_context
def fail(ctx: click.Context, queue_name: str, ids: tuple[str, ...], reason: str, discard: bool, force: bool,
         yes: bool, dry_run: bool) -> None:
    """Move stuck active jobs to failed, as Node's job.moveToFailed: the attempt counts, so a job with
    attempts left is retried (now or after its backoff), else it fails for good."""
    queue, wanted, ready, refused = _plan(ctx, queue_name, ids, force)
    if dry_run:
        _dry(ctx, queue, wanted,
             [{"id": i, "would_fail": i in ready, "why_not": refused.get(i, "")} for i in wanted])
        return
    if ready:
        confirm(ctx, f"move {len(ready)} active job(s) of queue {queue.name!r} to failed"
                     f"{' for good' if discard else ' (retried while attempts remain)'}", yes=yes)
    done = _move_each(queue, ready, refused,
                      lambda job: str(job.move_to_failed(reason, force=force, discard=discard)))
    _report(ctx, wanted, refused, done)


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@click.option("--returnvalue", "returnvalue_json", default="null", metavar="JSON", show_default=True,
              help="The job's return value, as JSON.")
@_FORCE
@yes_option
@dry_run_option
@click.pass_context
def complete(ctx: click.Context, queue_name: str, ids: tuple[str, ...], returnvalue_json: str, force: bool,
             yes: bool, dry_run: bool) -> None:
    """Move stuck active jobs to completed, as Node's job.moveToCompleted (removeOnComplete applies)."""
    returnvalue = parse_json(returnvalue_json, "--returnvalue")
    queue, wanted, ready, refused = _plan(ctx, queue_name, ids, force)
    if dry_run:
        _dry(ctx, queue, wanted, [{"id": i, "would_complete": i in ready, "why_not": refused.get(i, "")}
                                  for i in wanted])
        return
    if ready:
        confirm(ctx, f"move {len(ready)} active job(s) of queue {queue.name!r} to completed", yes=yes)

    def complete_one(job: Job) -> str:
        job.move_to_completed(returnvalue, force=force)
        return "completed"

    done = _move_each(queue, ready, refused, complete_one)
    _report(ctx, wanted, refused, done)
