"""Move a Bull queue's jobs into a BullMQ queue, written by BullMQ's own Python package.

An optional layer on bullpy's public API (``pip install 'bullpy[bullmq]'``). :func:`migrate_to_bullmq`
reads a Bull 4 queue with bullpy and re-creates its unprocessed work in a BullMQ queue through the
``bullmq`` package (its ``Queue.addBulk`` and ``upsertJobScheduler``, i.e. BullMQ's own Lua scripts), so
that a BullMQ worker (Node or Python) then processes it.

Pinned counterpart: the Python ``bullmq`` 3.4.4 bundles the Lua scripts of npm ``bullmq`` **6.4.0**
byte for byte (the resolved scripts of 6.4.0's ``dist/cjs/scripts`` equal ``bullmq/commands/*.lua``;
6.3.16 lacks the ``relay*`` scripts, 6.5.x changed the ``add*Job`` scripts), so ``bridge/package.json``
pins ``bullmq`` 6.4.0 for the Node worker the tests run.

What moves, and how (Bull -> BullMQ):

* waiting jobs (``wait``, and ``paused`` when the Bull queue is paused) -> BullMQ waiting jobs, added in
  the order Bull would have run them; prioritised ones -> BullMQ's ``prioritized`` set.
* delayed jobs -> BullMQ delayed jobs due at the same moment (Bull's delayed score ``due*4096+n``); a due
  time already past -> waiting. This includes Bull's backoff retries and rate-limited jobs.
* failed jobs -> **fresh waiting jobs**, to be retried under BullMQ: ``attemptsMade`` (like every
  migrated job's) starts again at 0, ``failedReason``/``stacktrace``/``finishedOn`` stay behind.
* repeatable definitions -> BullMQ job schedulers (``pattern`` + ``tz``, or ``every``) whose first
  iteration is Bull's next one; Bull's pending (delayed) iteration of each is *not* copied, the
  scheduler creates its own. A repeat iteration that is already due (waiting/failed) moves as a
  one-off job. Data and options of a schedule come from one of its iteration jobs; a definition with
  none in wait/paused/delayed/failed (its iteration is running) is left in Bull and reported.
* active and completed jobs never move (their counts are reported as left behind).

Job fields: the id stays (BullMQ ``jobId``; BullMQ ignores an add whose id exists, so a re-run adds no
duplicates), as do name (``__default__`` included), data, ``timestamp``, ``attempts``, ``backoff`` (a bare
number becomes ``{"type": "fixed", "delay": n}``), ``lifo``, ``removeOnComplete``/``removeOnFail``,
``stackTraceLimit``. ``priority`` (1 = highest in both) must be an integer up to BullMQ's 2**21 - 1:
larger ones are clamped, fractional ones rounded up, negative ones become 1 (each counted in
``summary.changed``). Dropped (counted in ``summary.dropped_options``): ``timeout`` (BullMQ has no job
timeout), ``preventParsingData`` (the handler still gets the same string: the raw text is stored as a
JSON string), ``debounce`` (BullMQ's ``deduplication`` is not the same contract), and unknown options.

Behaviour that differs after the move (documented, not counted): BullMQ runs non-prioritised waiting
jobs before prioritised ones (Bull interleaves them by position); its ``exponential`` backoff is
``2^(n-1)*delay`` where Bull's is ``(2^n - 1)*delay``; a custom backoff ``type`` needs a
``backoffStrategy`` on the BullMQ worker; a ``lifo`` job is added at the head of BullMQ's list, so migrated
lifo jobs run before the other migrated waiting jobs; cron repeats without ``tz`` get the source
queue's ``local_timezone`` explicitly (Bull used its Node process's zone).

Safety: every batch is written to BullMQ first and read back (name and data must match what was meant to
be written), and only then removed from Bull, job by job atomically and only while the job is still as it
was read: in the same state, unlocked, its lifecycle fields unchanged (``queue.raw.remove_if_unchanged``,
lua/remove_moved.lua: the rule ``bullpy move`` follows too). A job that a Bull worker took (or that Bull
changed) meanwhile stays in Bull and its BullMQ copy is removed again. Interrupted? Run it again: ids make it
idempotent (unless a BullMQ worker meanwhile finished and deleted, with ``removeOnComplete``, a copy whose
Bull original was not removed yet: that job would run twice). Stop (or pause) the Bull workers first: jobs
that change while they move stay behind and need another run. BullMQ's id counter is raised to Bull's (and above every numeric
id moved), because BullMQ's automatic ids, like Bull's, overwrite an existing job with the same number.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

import redis as _redis

from .. import connection
from ..errors import MissingDependency
from ..queue import Queue
from ._mapping import (
    _STATE_ALIASES,
    MIGRATABLE_STATES,
    PRIORITY_LIMIT,
    MigrationSummary,
    SkippedJob,
)
from ._run import _Migration

__all__ = ["MIGRATABLE_STATES", "PRIORITY_LIMIT", "MigrationSummary", "SkippedJob", "migrate_to_bullmq"]

T = TypeVar("T")


def migrate_to_bullmq(
    queue: Queue,
    *,
    target_redis: str | _redis.Redis | None = None,
    target_name: str | None = None,
    target_prefix: str = "bull",
    states: Sequence[str] = MIGRATABLE_STATES,
    repeatables: bool = True,
    keep_source: bool = False,
    dry_run: bool = False,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> MigrationSummary:
    """Move the waiting, paused, delayed and failed jobs (and repeatables) of a Bull queue into BullMQ.

    Failed jobs become fresh waiting jobs in BullMQ (``attemptsMade`` reset to 0, as for every migrated
    job); active and completed jobs stay in Bull. The module docstring lists every option mapping.

    Args:
        queue: the Bull queue to empty.
        target_redis: where the BullMQ queue lives (URL or client); default: the Bull queue's server and db.
        target_name: the BullMQ queue name (default: the Bull queue's name; BullMQ forbids ``:``).
        target_prefix: BullMQ's key prefix. Same server, db, prefix and name as the Bull queue is refused:
            their keys would clash.
        states: which Bull states to migrate (a subset of ``MIGRATABLE_STATES``).
        repeatables: re-create repeatable definitions as BullMQ job schedulers.
        keep_source: copy without removing anything from Bull (both systems then hold the jobs).
        dry_run: change nothing on either side; the summary counts what would happen.
        batch_size: jobs read, written and removed per round trip.
        progress: called with the number of jobs handled after each batch (an increment, as
            ``tqdm.update`` and click's ``progressbar.update`` take it).

    Returns:
        A MigrationSummary; ``str()`` of it is a readable report.

    Raises:
        ValueError / TypeError: bad arguments, or a target that would clash with the source (nothing is
            changed then).
        MissingDependency: the ``bullmq`` package is not installed (``pip install 'bullpy[bullmq]'``).
    """
    chosen = _check_states(states)
    name = queue.name if target_name is None else target_name
    if not isinstance(name, str) or not name:
        raise ValueError(f"target_name must be a non-empty string, got {name!r}")
    if ":" in name:
        raise ValueError(f"target_name {name!r} contains ':', which BullMQ refuses in queue names")
    if not isinstance(target_prefix, str) or not target_prefix:
        raise ValueError(f"target_prefix must be a non-empty string, got {target_prefix!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable, got {progress!r}")
    target_url = _target_url(queue, target_redis)
    try:
        bullmq = importlib.import_module("bullmq")
    except ImportError as exc:
        raise MissingDependency("bullmq", "bullmq") from exc

    migration = _Migration(
        queue, bullmq, target_url, name, target_prefix, chosen, repeatables, keep_source, dry_run,
        batch_size, progress,
    )
    return _run_sync(migration.run)


# --- argument checks --------------------------------------------------------------------------------------


def _check_states(states: Sequence[str]) -> tuple[str, ...]:
    if isinstance(states, str):
        states = [states]
    chosen: list[str] = []
    for state in states:
        if not isinstance(state, str):
            raise TypeError(f"states are strings, got {state!r}")
        state = _STATE_ALIASES.get(state, state)
        if state in ("active", "completed"):
            raise ValueError(f"{state} jobs are never migrated (only {', '.join(MIGRATABLE_STATES)})")
        if state not in MIGRATABLE_STATES:
            raise ValueError(f"unknown state {state!r}; use some of {', '.join(MIGRATABLE_STATES)}")
        if state not in chosen:
            chosen.append(state)
    # A fixed processing order whatever the caller's: what runs first in Bull is added first.
    return tuple(s for s in ("wait", "paused", "failed", "delayed") if s in chosen)


def _target_url(queue: Queue, target: str | _redis.Redis | None) -> str:
    # The Python bullmq package is asyncio-only, so the target always gets its own redis.asyncio client;
    # a URL (with the password, never printed) is how bullpy hands a connection on.
    if target is None:
        if queue.cluster is not None:
            # The URL would name one master, where the BullMQ keys of another slot are refused (MOVED).
            raise ValueError("migrate_to_bullmq cannot write to a Redis Cluster: the Python bullmq package talks "
                             "to one Redis server; pass target_redis, the URL of a single server")
        return queue.server.url()
    if isinstance(target, _redis.Redis):
        return connection.url_for(target)
    if isinstance(target, str):
        if urlsplit(target).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"unsupported target Redis URL {connection.safe_url(target)!r}: use redis://, rediss:// or unix://"
            )
        return target
    raise TypeError(f"target_redis must be a URL, a redis.Redis or None, got {type(target).__name__}")


def _run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, also inside a running loop (Jupyter)."""

    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()
