"""The ``bullpy`` command line (click). Heavy optional layers are imported inside commands only.

So far: ``demo``, and the first inspection commands ``queues`` and ``stats``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from . import connection
from ._core.scripts import glob_escape, text
from .queue import DEFAULT_COUNT_TYPES, Queue


def _emit(rows: list[dict[str, Any]], fmt: str, columns: list[str]) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        click.echo("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def _format(fmt: str | None) -> str:
    # Tables for people at a terminal, JSON for pipes.
    return fmt or ("table" if sys.stdout.isatty() else "json")


@click.group()
@click.version_option(package_name="bullpy")
@click.option("--redis", "redis_url", envvar="REDIS_URL", default=None,
              help="Redis URL (default: REDIS_URL/REDIS_HOST..., else the embedded server).")
@click.option("--prefix", default="bull", show_default=True, help="Bull key prefix.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None,
              help="Output format (default: table on a terminal, JSON when piped).")
@click.pass_context
def main(ctx: click.Context, redis_url: str | None, prefix: str, fmt: str | None) -> None:
    """Inspect, feed and manage Bull queues from the terminal."""
    ctx.obj = {"redis": redis_url, "prefix": prefix, "format": fmt}


def _queue(ctx: click.Context, name: str) -> Queue:
    try:
        return Queue(name, ctx.obj["redis"], prefix=ctx.obj["prefix"])
    except (ValueError, TypeError) as exc:
        raise click.UsageError(str(exc)) from None


def _known_queue(queue: Queue) -> None:
    """An unknown queue is an error, not an empty result that looks fine."""
    with connection.unavailable_as_error(queue.client):
        found = next(iter(queue.client.scan_iter(glob_escape(queue.keys.base) + "*", count=1000)), None)
    if found is None:
        raise click.ClickException(f"no queue {queue.name!r} under prefix {queue.prefix!r} on "
                                   f"{connection.describe(queue.client)}")


@main.command()
@click.pass_context
def queues(ctx: click.Context) -> None:
    """List the Bull queues under the prefix (found with SCAN, never KEYS), with their counts."""
    probe = _queue(ctx, "_")
    pattern = glob_escape(probe.prefix) + ":*:id"
    names: set[str] = set()
    try:
        with connection.unavailable_as_error(probe.client):
            for key in probe.client.scan_iter(pattern, count=1000):
                key = text(key)
                # Every queue that ever held a job has its id counter at prefix:<name>:id.
                names.add(key[len(probe.prefix) + 1 : -len(":id")])
    except ConnectionError as exc:
        raise click.ClickException(str(exc)) from None
    rows = []
    for name in sorted(names):
        queue = Queue(name, probe.client, prefix=probe.prefix)
        rows.append({"queue": name, **queue.get_job_counts(), "paused_flag": queue.is_paused()})
    _emit(rows, _format(ctx.obj["format"]), ["queue", *DEFAULT_COUNT_TYPES, "paused_flag"])


@main.command()
@click.argument("queue_name")
@click.option("--watch", type=float, default=None, metavar="SECONDS", help="Refresh every SECONDS until Ctrl-C.")
@click.pass_context
def stats(ctx: click.Context, queue_name: str, watch: float | None) -> None:
    """Job counts per state, paused flag and workers of one queue (a constant number of round trips)."""
    queue = _queue(ctx, queue_name)
    try:
        _known_queue(queue)
        while True:
            row = {"queue": queue.name, **queue.get_job_counts(), "paused_flag": queue.is_paused(),
                   "workers": len(queue.get_workers())}
            _emit([row], _format(ctx.obj["format"]), list(row))
            if watch is None:
                return
            time.sleep(watch)
    except ConnectionError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        return


@main.command()
@click.option("--queue", "queue_name", default="message-queue", show_default=True, help="Queue name.")
@click.option("--bridge", default=None, help="Path to bridge/ (the Node worker).")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the worker.")
@click.pass_context
def demo(ctx: click.Context, queue_name: str, bridge: str | None, timeout: float) -> None:
    """Queue a small WhatsApp campaign and let the real Node Bull worker send it (dry run)."""
    from .demo import run_demo

    raise SystemExit(run_demo(queue_name=queue_name, prefix=ctx.obj["prefix"], redis=ctx.obj["redis"],
                              bridge=bridge, timeout=timeout, echo=click.echo))


if __name__ == "__main__":  # python -m bullpy.cli
    main()
