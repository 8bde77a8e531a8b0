"""``bullpy worker``: run a Python handler on a queue beside Node workers, as a service (see bullpy.service)."""

from __future__ import annotations

import re
from typing import Any

import click

from ..service import ServiceOptions, serve
from . import main
from ._common import parse_duration, settings

_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\S+)\s*$")
_PER_UNIT = {"ms": "1ms", "s": "1s", "sec": "1s", "second": "1s", "m": "1m", "min": "1m", "minute": "1m",
             "h": "1h", "hour": "1h", "d": "1d", "day": "1d"}


def _duration(text: str | None, option: str, unit_ms: int) -> int | None:
    """A duration (``30s``, ``1m``, ``500ms``) in ms; a bare number is in ``unit_ms`` (Bull's unit)."""
    if text is None:
        return None
    value = text.strip()
    if _NUMBER.match(value):
        return int(float(value) * unit_ms)
    return parse_duration(value, option)


def _limiter(text: str | None, group_key: bool) -> dict[str, Any] | None:
    if text is None:
        if group_key:
            raise click.BadParameter("needs --limiter", param_hint="--limiter-group-key")
        return None
    found = _LIMIT.match(text)
    if not found:
        raise click.BadParameter(f"{text!r} is not MAX/DURATION, e.g. 20/min, 100/10s", param_hint="--limiter")
    per = found.group(2).lower()
    duration = parse_duration(_PER_UNIT.get(per, per), "--limiter")
    if int(found.group(1)) < 1 or duration < 1:
        raise click.BadParameter(f"{text!r}: both the count and the duration must be positive",
                                 param_hint="--limiter")
    limiter: dict[str, Any] = {"max": int(found.group(1)), "duration": duration}
    if group_key:
        limiter["group_key"] = True
    return limiter


@main.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("handler", metavar="MODULE:FUNCTION")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=1, show_default=True,
              help="Jobs run at once by each worker (threads; async handlers share one event loop).")
@click.option("--processes", "-p", type=click.IntRange(min=1), default=None, metavar="N",
              help="Run N worker processes, each a separate Bull worker, under a supervisor that restarts one "
                   "that dies [default: one worker in this process].")
@click.option("--grace", default="30s", show_default=True, metavar="DURATION",
              help="On SIGTERM/SIGINT, how long running jobs may take to finish before they are given back "
                   "(a bare number is seconds).")
@click.option("--limiter", default=None, metavar="MAX/DURATION",
              help="Bull's rate limiter, shared with Node workers: at most MAX jobs per DURATION (20/min, 100/10s).")
@click.option("--limiter-group-key", is_flag=True, help="Limit per group (the job id's suffix after its last ':').")
@click.option("--lock-duration", default=None, metavar="DURATION", help="Bull's lockDuration [default: 30s; bare: ms].")
@click.option("--lock-renew-time", default=None, metavar="DURATION",
              help="Bull's lockRenewTime [default: half the lock duration; bare: ms].")
@click.option("--stalled-interval", default=None, metavar="DURATION",
              help="Bull's stalledInterval; 0 checks only at start-up [default: 30s; bare: ms].")
@click.option("--max-stalled-count", type=click.IntRange(min=0), default=None,
              help="Bull's maxStalledCount [default: 1].")
@click.option("--guard-interval", default=None, metavar="DURATION", help="Bull's guardInterval [default: 5s; bare: ms].")
@click.option("--retry-process-delay", default=None, metavar="DURATION",
              help="Bull's retryProcessDelay [default: 5s; bare: ms].")
@click.option("--drain-delay", default=None, metavar="DURATION",
              help="Bull's drainDelay, whole seconds [default: 5s; bare: seconds].")
@click.option("--metrics", type=click.IntRange(min=1), default=None, metavar="N",
              help="Record Bull's per-minute metrics, keeping N data points.")
@click.option("--backoff-strategies", default=None, metavar="MODULE:MAPPING",
              help="Custom backoff strategies by name: (attempts_made, error, options) -> delay ms.")
@click.option("--timezone", "local_timezone", default=None, metavar="ZONE",
              help="The zone cron repeats without their own tz follow [default: the system's].")
@click.option("--metrics-port", type=click.IntRange(min=1, max=65535), default=None, metavar="PORT",
              help="Serve the worker's Prometheus metrics (/metrics, /health) on PORT; with --processes N, process i "
                   "on PORT+i-1. Needs bullpy[prometheus].")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Log lines on stderr: text, or one JSON object per line.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              default="info", show_default=True, help="info: one line per job outcome; warning: failures only.")
@click.pass_context
def worker(ctx: click.Context, queue_name: str, handler: str, concurrency: int, processes: int | None, grace: str,
           limiter: str | None, limiter_group_key: bool, lock_duration: str | None, lock_renew_time: str | None,
           stalled_interval: str | None, max_stalled_count: int | None, guard_interval: str | None,
           retry_process_delay: str | None, drain_delay: str | None, metrics: int | None,
           backoff_strategies: str | None, local_timezone: str | None, metrics_port: int | None, log_format: str,
           log_level: str) -> None:
    """Process a queue's jobs with a Python function, beside Node workers, until SIGTERM or Ctrl-C.

    MODULE:FUNCTION is the handler (called with each Job; plain or async def; its return value is the job's
    result, an exception fails the attempt), or module:mapping of job name to function ("*" for the
    rest). The module is looked up from the current directory too.

    On SIGTERM/SIGINT the worker takes no new jobs and waits --grace for the running ones; then (or at a
    second signal) it gives them back as Node's close does: the stalled check returns them to waiting once
    their locks expire. Exit status 0 when every job finished, 1 when jobs were given back.
    """
    opts = settings(ctx)
    duration_ms = _duration(drain_delay, "--drain-delay", 1000)
    if duration_ms is not None and (duration_ms < 1000 or duration_ms % 1000):
        raise click.BadParameter("whole seconds, at least 1s", param_hint="--drain-delay")
    given: dict[str, Any] = {
        "lock_duration": _duration(lock_duration, "--lock-duration", 1),
        "lock_renew_time": _duration(lock_renew_time, "--lock-renew-time", 1),
        "stalled_interval": _duration(stalled_interval, "--stalled-interval", 1),
        "max_stalled_count": max_stalled_count,
        "guard_interval": _duration(guard_interval, "--guard-interval", 1),
        "retry_process_delay": _duration(retry_process_delay, "--retry-process-delay", 1),
        "drain_delay": None if duration_ms is None else duration_ms // 1000,
        "limiter": _limiter(limiter, limiter_group_key),
        "metrics": None if metrics is None else {"max_data_points": metrics},
        "local_timezone": local_timezone,
    }
    grace_ms = _duration(grace, "--grace", 1000)
    options = ServiceOptions(
        queue=queue_name, handler=handler, redis=opts.redis, prefix=opts.key_prefix, cluster=opts.is_cluster(opts.redis),
        concurrency=concurrency, settings={k: v for k, v in given.items() if v is not None},
        backoff_strategies=backoff_strategies, processes=processes, grace=(grace_ms or 0) / 1000,
        log_format=log_format, log_level=log_level.upper(), metrics_port=metrics_port,
    )
    ctx.exit(serve(options))
