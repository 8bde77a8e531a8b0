"""Read-only views of queues, workers and saved connections: queues, stats, workers, doctor, profiles."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click

from .. import connection
from ..errors import WrongKeyType
from ..queue import DEFAULT_COUNT_TYPES, Queue, find_queues
from ..utils import now_ms
from . import main
from ._common import emit, note, open_queue, parse_duration, settings, when
from ._output import Column, dumps, span


def _watch(ctx: click.Context, every: float | None, draw: Callable[[], None]) -> None:
    """Draw once, or every ``every`` seconds until Ctrl-C (redrawn in place on a terminal)."""
    try:
        while True:
            if every is not None and sys.stdout.isatty():
                click.clear()
            draw()
            if every is None:
                return
            if settings(ctx).output == "table":
                note(f"{when(ctx, now_ms())}: every {every:g}s, Ctrl-C to stop")
            time.sleep(every)
    except KeyboardInterrupt:
        return


_COUNTS = [Column(k, right=True) for k in DEFAULT_COUNT_TYPES]


@main.command()
@click.option("--watch", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="Refresh every SECONDS until Ctrl-C.")
@click.pass_context
def queues(ctx: click.Context, watch: float | None) -> None:
    """List the Bull queues under the prefix with their counts (found with SCAN, never KEYS; on every
    master of a Redis Cluster)."""
    opts = settings(ctx)
    prefix = opts.key_prefix
    source: Any
    try:
        source = connection.resolve_cluster(opts.redis) if opts.is_cluster(opts.redis) else \
            connection.resolve(opts.redis)  # one connection, shared by every queue listed
    except (ValueError, TypeError) as exc:  # a bad URL or prefix: reported as open_queue reports it
        raise click.BadParameter(str(exc), param_hint="QUEUE") from None

    damaged: list[str] = []  # queues of the last drawing with a key of the wrong type

    def draw() -> None:
        rows: list[dict[str, Any]] = []
        damaged.clear()
        for name in find_queues(source, prefix):
            try:
                queue = Queue(name, source, prefix=prefix)
            except ValueError as exc:  # on a cluster: an id key without a hash tag, not a working Bull queue
                note(f"skipped {prefix}:{name}: {exc}")
                continue
            try:
                rows.append({"queue": name, **queue.get_job_counts(), "paused_flag": queue.is_paused()})
            except WrongKeyType as exc:  # one damaged queue is shown as such; the others are listed as usual
                what = (f"{exc.key} is a {exc.actual}, not a {exc.expected}" if exc.key is not None
                        else "a key holds the wrong kind of value (WRONGTYPE)")
                rows.append({"queue": name, "damaged": f"damaged: {what}"})
                damaged.append(name)
        columns = [Column("queue"), *_COUNTS, Column("paused_flag", "paused?")]
        if damaged:
            columns.append(Column("damaged"))
        emit(ctx, rows, columns, empty=f"no Bull queues under prefix {prefix!r}")
        if damaged:
            note(f"{len(damaged)} queue{'s' if len(damaged) != 1 else ''} with a key of the wrong type: "
                 + ", ".join(damaged) + " (`bullpy doctor QUEUE` explains)")

    _watch(ctx, watch, draw)
    if damaged:
        ctx.exit(1)


def _workers(queue: Queue) -> list[dict[str, str]]:
    # CLIENT LIST shows every client of the server; a queue's workers are those on its database.
    db = str(queue.server.db)
    return [w for w in queue.get_workers() if w.get("db", db) == db]


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--watch", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="Refresh every SECONDS until Ctrl-C.")
@click.pass_context
def stats(ctx: click.Context, queue_name: str, watch: float | None) -> None:
    """Job counts per state, paused flag and workers of one queue (a constant number of round trips)."""
    queue = open_queue(ctx, queue_name)

    def draw() -> None:
        row = {"queue": queue.name, **queue.get_job_counts(), "paused_flag": queue.is_paused(),
               "workers": len(_workers(queue))}
        emit(ctx, [row], [Column("queue"), *_COUNTS, Column("paused_flag", "paused?"),
                          Column("workers", right=True)])

    _watch(ctx, watch, draw)


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--all-dbs", is_flag=True, help="Also clients of other databases of the server with the same name.")
@click.pass_context
def workers(ctx: click.Context, queue_name: str, all_dbs: bool) -> None:
    """Connected workers, Node or Python: the clients named as Bull names a queue's workers."""
    queue = open_queue(ctx, queue_name)
    found = queue.get_workers() if all_dbs else _workers(queue)
    if settings(ctx).output == "json":
        emit(ctx, found)
        return

    def seconds(value: Any) -> str:
        return span(int(value) * 1000) if str(value).isdigit() else ""

    rows = [{"id": w.get("id"), "name": w.get("name"), "addr": w.get("addr"), "age": w.get("age"),
             "idle": w.get("idle"), "db": w.get("db"), "lib": " ".join(filter(None, (w.get("lib-name"),
                                                                                      w.get("lib-ver"))))}
            for w in found]
    columns = [Column("id", right=True), Column("name", cut=12), Column("addr"), Column("age", show=seconds),
               Column("idle", show=seconds), Column("db", right=True)]
    if any(r["lib"] for r in rows):
        columns.append(Column("lib", cut=10))
    emit(ctx, rows, columns, empty=f"no workers connected to queue {queue.name!r} on {queue.server.describe()}"
                                   + (" (or any other database)" if all_dbs else ""))


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option("--max-finished", type=click.IntRange(min=0), default=10_000, show_default=True,
              help="More completed (or failed) jobs kept than this is a warning.")
@click.option("--max-age", default=None, metavar="DURATION", help="Also warn when the oldest finished job is older.")
@click.option("--no-orphans", is_flag=True, help="Skip the orphan-job scan (it walks the whole keyspace with SCAN).")
@click.pass_context
def doctor(ctx: click.Context, queue_name: str, max_finished: int, max_age: str | None, no_orphans: bool) -> None:
    """Check a queue and its Redis: eviction policy, persistence, unbounded finished sets, active jobs
    without locks, job names no worker handles, damaged jobs, orphan job hashes, memory per job. Read-only.

    Exit status: 0 healthy, 1 warnings, 2 errors.
    """
    from ..doctor import diagnose

    queue = open_queue(ctx, queue_name)
    report = diagnose(queue, max_finished=max_finished, check_orphans=not no_orphans,
                      max_finished_age_ms=parse_duration(max_age, "--max-age") if max_age else None)
    if settings(ctx).output == "json":
        click.echo(dumps(report.to_dict()))
    else:
        click.echo(report.render())
    ctx.exit(report.exit_code)


@main.command()
@click.pass_context
def profiles(ctx: click.Context) -> None:
    """List the saved connections that `bullpy --profile NAME` uses; passwords are never shown.

    They are read from $BULLPY_CONFIG, else ~/.config/bullpy/config.toml:

    \b
        [profiles.prod]
        redis = "rediss://bullpy@redis.prod.internal:6380/0"
        password_env = "PROD_REDIS_PASSWORD"   # or password = "..." (then chmod 600 the file)
        prefix = "bull"
    """
    from ._profiles import config_path, load_profiles

    rows = [p.describe() for p in load_profiles().values()]
    emit(ctx, rows, [Column("profile"), Column("redis", elastic=True), Column("prefix"), Column("cluster"),
                     Column("password")], empty=f"no profiles in {config_path()}")

