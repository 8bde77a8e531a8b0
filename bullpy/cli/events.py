"""``bullpy events``: a live tail of a queue's global events, from every worker, Node or Python."""

from __future__ import annotations

import csv
import io
import time

import click

from ..utils import now_ms
from . import main
from ._common import note, open_queue, settings, when
from ._output import compact, dumps, one_line

#: What ``--event`` accepts: Bull's global events (Node's ``global:<name>``).
EVENTS = ("waiting", "active", "progress", "completed", "failed", "stalled", "paused", "resumed", "drained",
          "duplicated", "debounced")
_DEFAULT = ("waiting", "active", "progress", "completed", "failed", "stalled", "paused", "resumed")


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--event", "-e", "names", multiple=True, type=click.Choice(EVENTS),
              help=f"Only these events (repeatable) [default: {', '.join(_DEFAULT)}].")
@click.option("--count", "-c", type=click.IntRange(min=1), default=None, help="Stop after N events.")
@click.option("--timeout", "-t", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Stop after SECONDS (with --count: exit status 1 when fewer events came).")
@click.pass_context
def events(ctx: click.Context, queue_name: str, names: tuple[str, ...], count: int | None,
           timeout: float | None) -> None:
    """Follow a queue's events as workers publish them (waiting, active, progress, completed, failed) until Ctrl-C.

    One line per event: the time it arrived, the event, the job id and its value (return value, failed
    reason, progress). --format json gives one JSON object per line; csv, one row per line.
    """
    queue = open_queue(ctx, queue_name, must_exist=False)
    fmt = settings(ctx).output
    deadline = time.monotonic() + timeout if timeout is not None else None
    seen = 0
    stream = queue.events(*(f"global:{n}" for n in (names or _DEFAULT)))
    # Subscribed once events() returns: nothing published from now on is missed.
    note(f"following events of queue {queue.name!r} on {queue.server.describe()} (Ctrl-C to stop)")
    if fmt == "csv":
        click.echo("at,event,job_id,value")
    try:
        while count is None or seen < count:
            if deadline is not None:
                stream.timeout = max(deadline - time.monotonic(), 0.0)
            else:
                stream.timeout = None
            event = next(stream, None)
            if event is None:
                break
            seen += 1
            at, name = now_ms(), event.name.removeprefix("global:")
            if fmt == "json":
                click.echo(dumps({"at": at, "event": name, "job_id": event.job_id, "value": event.value}))
            elif fmt == "csv":
                out = io.StringIO()
                csv.writer(out, lineterminator="\n").writerow([at, name, event.job_id or "", compact(event.value)])
                click.echo(out.getvalue(), nl=False)
            else:
                parts = [when(ctx, at), name.ljust(9), event.job_id or "", one_line(compact(event.value))]
                click.echo("  ".join(p for p in parts if p).rstrip())
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
        queue.close()
    if count is not None and seen < count:
        raise click.ClickException(f"{seen} of {count} events within {timeout:g}s" if timeout is not None
                                   else f"{seen} of {count} events")
