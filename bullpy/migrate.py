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
import hashlib
import importlib
import json
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis as _redis
import redis.asyncio as _aredis
from redis.exceptions import WatchError

from . import connection
from .errors import MissingDependency, RedisUnavailable
from .job import Job
from .queue import Queue
from .server import identity as server_identity
from .utils import now_ms

__all__ = ["MIGRATABLE_STATES", "PRIORITY_LIMIT", "MigrationSummary", "SkippedJob", "migrate_to_bullmq"]

#: The Bull states whose jobs can move; active and completed jobs never do.
MIGRATABLE_STATES = ("wait", "paused", "delayed", "failed")
#: BullMQ's highest priority number (npm bullmq 6.4.0 ``PRIORITY_LIMIT``: ``2 ** 21 - 1``).
PRIORITY_LIMIT = 2**21 - 1

# Queue-level key suffixes of BullMQ (bullmq QueueKeys plus metrics and the deprecated priority key): a
# job id equal to one of them would share its key in the target queue, so such jobs stay in Bull.
_BULLMQ_RESERVED_IDS = frozenset({
    "active", "wait", "waiting-children", "paused", "completed", "failed", "delayed", "repeat", "stalled",
    "limiter", "prioritized", "id", "stalled-check", "meta", "pc", "events", "marker", "de", "metrics",
    "priority",
})
_BULLMQ_RESERVED_ID_PREFIXES = ("metrics:", "de:", "limiter:")
_BULLMQ_RESERVED_ID_SUFFIXES = (":lock", ":logs", ":dependencies", ":processed", ":failed", ":unsuccessful")

# Bull's job options and what becomes of them.
_KEPT = ("attempts", "backoff", "lifo", "removeOnComplete", "removeOnFail", "stackTraceLimit")
_RECOMPUTED = frozenset({"delay", "timestamp", "priority", "jobId", "repeat", "prevMillis"})
_DROP_REASONS = {
    "timeout": "timeout (BullMQ has no job timeout)",
    "preventParsingData": "preventParsingData (the handler gets the same string)",
    "debounce": "debounce (not mapped to BullMQ's deduplication)",
}
_STATE_ALIASES = {"waiting": "wait"}

T = TypeVar("T")
_PAGE = 10_000  # ids per range read of a state while collecting what to migrate


@dataclass(frozen=True)
class SkippedJob:
    """A job left in Bull (or whose BullMQ copy was taken back), with why."""

    id: str
    state: str
    reason: str


@dataclass(frozen=True)
class MigrationSummary:
    """What :func:`migrate_to_bullmq` moved (or, with ``dry_run``, would move), per Bull state."""

    source: str
    target: str
    dry_run: bool
    keep_source: bool
    #: Jobs now in BullMQ per Bull state they came from (wait, paused, delayed, failed).
    migrated: Mapping[str, int]
    #: Of those, jobs a previous run had already written (same id, name and data).
    already_in_target: int
    #: Bull repeat key -> BullMQ job scheduler id.
    schedulers: Mapping[str, str]
    #: Bull's pending iterations of migrated repeatables, replaced by the schedulers' own.
    replaced_iterations: int
    skipped: tuple[SkippedJob, ...]
    #: Dropped option (with why) -> number of jobs that had it.
    dropped_options: Mapping[str, int]
    #: Changed value -> number of jobs.
    changed: Mapping[str, int]
    #: Job counts of the Bull queue afterwards (what was not migrated: active, completed, ...).
    left_in_source: Mapping[str, int]
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """Jobs migrated (or that would be), all states together."""
        return sum(self.migrated.values())

    def __str__(self) -> str:
        verb = "would move" if self.dry_run else ("copied" if self.keep_source else "moved")
        head = f"Bull queue {self.source} -> BullMQ queue {self.target}"
        if self.dry_run:
            head += " (dry run: nothing changed)"
        lines = [head]
        per_state = ", ".join(f"{s} {n}" for s, n in self.migrated.items() if n) or "none"
        again = f" ({self.already_in_target} already in BullMQ)" if self.already_in_target else ""
        lines.append(f"  {verb} {self.total} jobs: {per_state}{again}")
        if self.schedulers or self.replaced_iterations:
            lines.append(
                f"  repeatables: {len(self.schedulers)} -> BullMQ job schedulers "
                f"({self.replaced_iterations} pending Bull iterations replaced by the schedulers' own)"
            )
        if self.skipped:
            lines.append(f"  left in Bull: {len(self.skipped)} jobs/repeatables")
            for skip in self.skipped[:10]:
                lines.append(f"    {skip.id!r} ({skip.state}): {skip.reason}")
            if len(self.skipped) > 10:
                lines.append(f"    ... and {len(self.skipped) - 10} more")
        for option, count in self.dropped_options.items():
            lines.append(f"  option dropped: {option}: {count} jobs")
        for change, count in self.changed.items():
            lines.append(f"  changed: {change}: {count} jobs")
        left = ", ".join(f"{s} {n}" for s, n in self.left_in_source.items() if n) or "nothing"
        lines.append(f"  in Bull {'now' if not self.dry_run else 'still'}: {left}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


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


# --- the Bull -> BullMQ mapping (pure) --------------------------------------------------------------------


@dataclass
class _Mapped:
    """One Bull job as it will be added to BullMQ."""

    id: str
    state: str
    name: str
    data: Any
    data_json: str  # exactly what the bullmq package stores in the hash's data field
    opts: dict[str, Any]
    dropped: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def add_spec(self) -> dict[str, Any]:
        return {"name": self.name, "data": self.data, "opts": self.opts}


def _priority(value: Any) -> tuple[int, str | None]:
    """Bull's priority (any number) as a BullMQ priority, and what changed if anything."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value == 0:
        return 0, None
    if value < 0:
        # Bull sorts a negative priority before 1; BullMQ's best is 1.
        return 1, "negative priority raised to 1"
    if isinstance(value, float) and not value.is_integer():
        value = math.ceil(value)
        if value <= PRIORITY_LIMIT:
            return int(value), "fractional priority rounded up"
    if value > PRIORITY_LIMIT:
        return PRIORITY_LIMIT, f"priority clamped to {PRIORITY_LIMIT}"
    return int(value), None


def _job_options(opts: Mapping[str, Any], priority: Any) -> tuple[dict[str, Any], list[str], list[str]]:
    """The BullMQ options (without id, timestamp and delay) of a job with these Bull options."""
    out: dict[str, Any] = {}
    dropped: list[str] = []
    changed: list[str] = []
    attempts = opts.get("attempts")
    # Bull: NaN, 0 or negative attempts mean "fail on the first error", which is BullMQ's attempts 1.
    out["attempts"] = attempts if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 0 else 1
    backoff = opts.get("backoff")
    if isinstance(backoff, (int, float)) and not isinstance(backoff, bool):
        backoff = {"type": "fixed", "delay": backoff}  # Bull's backoffs.normalize
    if isinstance(backoff, dict) and backoff:
        out["backoff"] = dict(backoff)
        if backoff.get("type") not in ("fixed", "exponential"):
            changed.append("custom backoff type (the BullMQ worker needs a backoffStrategy for it)")
    if opts.get("lifo"):
        out["lifo"] = True
    for key in ("removeOnComplete", "removeOnFail"):
        value = opts.get(key)
        if value is not None and value is not False:
            out[key] = value
    limit = opts.get("stackTraceLimit")
    if isinstance(limit, int) and not isinstance(limit, bool):
        out["stackTraceLimit"] = limit
    number, change = _priority(priority)
    if number:
        out["priority"] = number
    if change:
        changed.append(change)
    for key in opts:
        if key in _KEPT or key in _RECOMPUTED:
            continue
        dropped.append(_DROP_REASONS.get(key, f"{key} (unknown to BullMQ)"))
    return out, dropped, changed


def _reserved_in_bullmq(job_id: str) -> bool:
    return (
        job_id in _BULLMQ_RESERVED_IDS
        or job_id.startswith(_BULLMQ_RESERVED_ID_PREFIXES)
        or job_id.endswith(_BULLMQ_RESERVED_ID_SUFFIXES)
    )


def _data_json(data: Any) -> str:
    # The bullmq package's own encoding (Scripts.addJobArgs), so a read-back compares equal.
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def _map_job(job: Any, state: str, due: int | None, now: int) -> _Mapped:
    """A bullpy Job as a BullMQ add; ``due`` is the delayed score's time for delayed jobs."""
    record = job.record
    opts, dropped, changed = _job_options(record.opts, record.priority)
    timestamp = record.timestamp if isinstance(record.timestamp, int) else record.opts.get("timestamp")
    if not isinstance(timestamp, int) or timestamp > now:
        timestamp = now
    opts["jobId"] = job.id
    opts["timestamp"] = timestamp
    # BullMQ's addDelayedJob scores a job at timestamp + delay, so keeping Bull's creation timestamp
    # means delay = due - timestamp (which is Bull's own opts.delay for a plain delayed job).
    opts["delay"] = due - timestamp if due is not None and due > now else 0
    return _Mapped(job.id, state, record.name, record.data, _data_json(record.data), opts, dropped, changed)


def _scheduler_id(key: str, name: str) -> str:
    # BullMQ takes an id with 3+ ':' for a legacy repeat key and refuses it, so no ':' at all; the hash
    # keeps ids of two definitions with the same name apart and makes re-runs upsert the same scheduler.
    digest = hashlib.md5(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
    return f"{name.replace(':', '_')}-{digest}"


def _iteration_key(job: Any) -> str | None:
    """The repeat key of a Bull repeat iteration job, else None."""
    repeat = job.record.opts.get("repeat")
    if job.id.startswith("repeat:") and isinstance(repeat, dict) and isinstance(repeat.get("key"), str):
        return str(repeat["key"])
    return None


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]



# --- the run ----------------------------------------------------------------------------------------------


class _Migration:
    def __init__(
        self, queue: Queue, bullmq: Any, target_url: str, target_name: str, target_prefix: str,
        states: tuple[str, ...], repeatables: bool, keep_source: bool, dry_run: bool, batch_size: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.queue = queue
        self.raw = queue.raw
        self.bullmq = bullmq
        self.target_url = target_url
        self.target_name = target_name
        self.target_prefix = target_prefix
        self.target_base = f"{target_prefix}:{target_name}:"
        self.states = states
        self.repeatables = repeatables
        self.keep_source = keep_source
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.progress = progress
        self.migrated: Counter[str] = Counter({s: 0 for s in states})
        self.already = 0
        self.skipped: list[SkippedJob] = []
        self.dropped: Counter[str] = Counter()
        self.changed: Counter[str] = Counter()
        self.schedulers: dict[str, str] = {}
        self.replaced = 0
        self.notes: list[str] = []
        self.target: Any = None  # redis.asyncio.Redis
        self.bq: Any = None  # bullmq.Queue

    async def run(self) -> MigrationSummary:
        self.target = _aredis.Redis.from_url(self.target_url, decode_responses=True)
        try:
            await self._preflight()
            self.bq = self.bullmq.Queue(self.target_name, {"prefix": self.target_prefix, "connection": self.target})
            ids = self._source_ids()
            templates, pending = self._iterations(ids)
            schedule_owned = {i for owned in pending.values() for i in owned}
            if not self.repeatables:
                # The pending iteration belongs to its schedule, which stays in Bull.
                self.skipped += [SkippedJob(i, "delayed", "next iteration of a repeatable (repeatables=False)")
                                 for i in sorted(schedule_owned) if "delayed" in self.states]
            if not self.dry_run:
                await self._raise_id_counter(ids)
            seen = set(schedule_owned)
            for state in self.states:
                # An id twice in Bull's lists (possible after an id collision, protocol §3.2) moves once.
                chosen = []
                for row in ids[state]:
                    if row[0] not in seen:
                        seen.add(row[0])
                        chosen.append(row)
                for chunk in _chunks(chosen, self.batch_size):
                    await self._migrate_batch(state, chunk)
            if self.repeatables:
                await self._migrate_repeatables(templates, pending)
        finally:
            if self.bq is not None:
                await self.bq.close()
            await self.target.aclose()
            self.raw.close()
        counts = self.queue.get_job_counts("wait", "paused", "delayed", "failed", "active", "completed")
        counts["repeat"] = self.queue.get_repeatable_count()
        return MigrationSummary(
            source=f"{self.queue.prefix}:{self.queue.name}",
            target=f"{self.target_prefix}:{self.target_name}",
            dry_run=self.dry_run,
            keep_source=self.keep_source,
            migrated=dict(self.migrated),
            already_in_target=self.already,
            schedulers=dict(self.schedulers),
            replaced_iterations=self.replaced,
            skipped=tuple(self.skipped),
            dropped_options=dict(self.dropped),
            changed=dict(self.changed),
            left_in_source=counts,
            notes=tuple(self.notes),
        )

    # --- checks before anything is written ------------------------------------------------------------------
    async def _preflight(self) -> None:
        source = f"{self.queue.prefix}:{self.queue.name}"
        target = f"{self.target_prefix}:{self.target_name}"
        # One server reached under two names (localhost / 127.0.0.1) has one run_id; where INFO is
        # refused (some managed Redis), the connection settings are compared instead.
        src_id = self.queue.server.identity()
        try:
            tgt_info = await self.target.info("server")
        except _redis.ResponseError:
            tgt_info = {}
        except (_redis.ConnectionError, _redis.TimeoutError) as exc:
            raise RedisUnavailable(
                f"cannot reach the target Redis at {connection.safe_url(self.target_url)}: {exc}"
            ) from exc
        tgt_id = server_identity(self.target.connection_pool.connection_kwargs, tgt_info.get("run_id"))
        same_server = src_id == tgt_id
        if same_server and (
            source == target or source.startswith(target + ":") or target.startswith(source + ":")
        ):
            raise ValueError(
                f"the BullMQ target {target!r} would share keys with the Bull queue {source!r} on the same "
                "Redis server and db: choose another target_prefix or target_name"
            )
        # Bull-only keys in the target, or BullMQ-only keys in the source: someone mixed the two up. (By
        # type: a job whose id is one of these names is a hash, and not the sign of a mix-up.)
        bull_only = [k for k, kind in (("priority", "zset"), ("meta-paused", "string"))
                     if await self.target.type(self.target_base + k) == kind]
        if bull_only:
            raise ValueError(f"the target {target!r} holds Bull keys ({', '.join(bull_only)}): it is a Bull "
                             "queue, not a BullMQ one")
        bullmq_only = [k for k, kind in (("marker", "zset"), ("prioritized", "zset"), ("events", "stream"))
                       if self.raw.key_type(k) == kind]
        if bullmq_only:
            raise ValueError(f"the source {source!r} holds BullMQ keys ({', '.join(bullmq_only)}): it is not "
                             "a Bull queue")
        if await self.target.hget(self.target_base + "meta", "paused"):
            self.notes.append(f"the BullMQ queue {target} is paused: migrated jobs wait in its paused list")

    # --- reading Bull ----------------------------------------------------------------------------------------
    def _source_ids(self) -> dict[str, list[tuple[str, int | None]]]:
        """(id, due) per state, in the order Bull would run them; due is set for delayed jobs only."""
        wanted = set(self.states) | ({"wait", "paused", "delayed", "failed"} if self.repeatables else set())
        out: dict[str, list[tuple[str, int | None]]] = {}
        for state in ("wait", "paused", "failed"):
            if state in wanted:
                # Lists run from the right end: ascending, the first id is the next to run.
                out[state] = [(i, None) for i in self._pages(lambda a, b: self.queue.get_ranges([state], a, b, asc=True))]
        if "delayed" in wanted:
            # Bull's delayed score is due_ms * 4096 + 12 low bits (protocol §4.1).
            scored = dict(self._pages(lambda a, b: self.raw.scores("delayed", a, b)))
            out["delayed"] = [(i, int(score) // 4096) for i, score in scored.items()]
        return out

    @staticmethod
    def _pages(read: Callable[[int, int], list[T]]) -> list[T]:
        """Everything ``read(start, end)`` gives, 10,000 entries per command so no single read holds a shared
        Redis for long on a big queue; an entry met twice (the state moved between pages) is kept once."""
        out: dict[Any, T] = {}
        start = 0
        while True:
            page = read(start, start + _PAGE - 1)
            for entry in page:
                out.setdefault(entry[0] if isinstance(entry, tuple) else entry, entry)
            if len(page) < _PAGE:
                return list(out.values())
            start += _PAGE

    def _read_jobs(self, ids: Sequence[str]) -> tuple[dict[str, Job], dict[str, Mapping[bytes, bytes]], dict[str, str]]:
        """Jobs by id (vanished ids absent), their raw hashes (what a removal checks is unchanged), and the ids
        of damaged jobs with why: they stay in Bull (a hash Node cannot read, bytes that are not UTF-8, JSON
        too deep, a key that is not a hash), for a person to look at (`bullpy doctor`)."""
        jobs: dict[str, Job] = {}
        hashes: dict[str, Mapping[bytes, bytes]] = {}
        bad: dict[str, str] = {}
        for job_id, fields in zip(ids, self.raw.hashes(ids)):
            if fields is None:
                bad[job_id] = "damaged: its key is not a hash (another program wrote another kind of value there)"
                continue
            if not fields:
                continue
            job = self.raw.job(job_id, fields)
            if job.damaged:
                bad[job_id] = f"damaged: {job.damaged}"
                continue
            jobs[job_id] = job
            hashes[job_id] = fields
        return jobs, hashes, bad

    def _iterations(
        self, ids: Mapping[str, Sequence[tuple[str, int | None]]]
    ) -> tuple[dict[str, tuple[Job, str]], dict[str, set[str]]]:
        """Per repeat key of a Bull definition: its latest iteration job (the template of data and
        options) with that job's state, and the ids of its delayed iterations (the schedule's own)."""
        definitions = {r.key for r in self.queue.get_repeatable_jobs()}
        templates: dict[str, tuple[Job, str]] = {}
        pending: dict[str, set[str]] = {}
        for state in ("delayed", "wait", "paused", "failed"):
            candidates = [i for i, _ in ids.get(state, ()) if i.startswith("repeat:")]
            for chunk in _chunks(candidates, self.batch_size):
                jobs, _hashes, _bad = self._read_jobs(chunk)
                for job in jobs.values():
                    key = _iteration_key(job)
                    if key is None or key not in definitions:
                        continue  # an orphan iteration runs once in Bull: it moves as a one-off job
                    if state == "delayed":
                        pending.setdefault(key, set()).add(job.id)
                    best = templates.get(key)
                    if best is None or _prev_millis(job) > _prev_millis(best[0]):
                        templates[key] = (job, state)
        return templates, pending

    # --- writing BullMQ --------------------------------------------------------------------------------------
    async def _raise_id_counter(self, ids: Mapping[str, Sequence[tuple[str, int | None]]]) -> None:
        """Make BullMQ's automatic ids start above every numeric id migrated (and Bull's counter).

        BullMQ, like Bull, does not check that an automatic id is free: a later BullMQ add without jobId
        would overwrite migrated job "5" when its counter reaches 5. (It is also why BullMQ refuses
        integer custom ids from Node producers; ids it already stores are processed fine.)
        """
        numeric = [int(i) for s in self.states for i, _ in ids.get(s, ()) if i.isdigit() and i.isascii()]
        if not numeric:
            return
        counter = self.raw.id_counter()
        floor = max(numeric + ([counter] if counter is not None and counter >= 0 else []))
        key = self.target_base + "id"
        async with self.target.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    current = await pipe.get(key)
                    if current is not None and (not current.isdigit() or int(current) >= floor):
                        return
                    pipe.multi()
                    pipe.set(key, str(floor))
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def _target_contents(self, mapped: Sequence[_Mapped]) -> list[str]:
        """Per job: "absent", "same" (this job, from an earlier run) or "different" (another job)."""
        async with self.target.pipeline(transaction=False) as pipe:
            for job in mapped:
                pipe.hmget(self.target_base + job.id, "name", "data")
            replies = await pipe.execute()
        out = []
        for job, (name, data) in zip(mapped, replies):
            if name is None and data is None:
                out.append("absent")
            elif name == job.name and data == job.data_json:
                out.append("same")
            else:
                out.append("different")
        return out

    async def _migrate_batch(self, state: str, chunk: Sequence[tuple[str, int | None]]) -> None:
        now = now_ms()
        jobs, hashes, bad = self._read_jobs([i for i, _ in chunk])
        mapped: list[_Mapped] = []
        for job_id, due in chunk:
            if job_id in bad:
                self.skipped.append(SkippedJob(job_id, state, bad[job_id]))
            elif job_id not in jobs:
                continue  # gone meanwhile (processed, removed): nothing left to move
            elif _reserved_in_bullmq(job_id):
                self.skipped.append(SkippedJob(job_id, state, "its id is one of BullMQ's own key names"))
            else:
                mapped.append(_map_job(jobs[job_id], state, due, now))
        contents = await self._target_contents(mapped)
        wanted: list[_Mapped] = []
        for job, content in zip(mapped, contents):
            if content == "different":
                self.skipped.append(SkippedJob(job.id, state, "the BullMQ queue holds another job with this id"))
            else:
                wanted.append(job)
        if not self.dry_run:
            fresh = [job for job, content in zip(mapped, contents) if content == "absent"]
            if fresh:
                await self.bq.addBulk([job.add_spec() for job in fresh])
            checked = await self._target_contents(wanted)
            for job, content in zip(list(wanted), checked):
                if content != "same":
                    wanted.remove(job)
                    self.skipped.append(SkippedJob(job.id, state, "BullMQ did not store it as written"))
            if not self.keep_source:
                refused = self._remove_from_bull(state, [(job.id, hashes[job.id]) for job in wanted])
                for job in [job for job in wanted if job.id in refused]:
                    wanted.remove(job)
                    # Bull ran (or is running) it: take the BullMQ copy back so it runs once.
                    taken_back = await self.bq.remove(job.id)
                    outcome = "its BullMQ copy was removed" if taken_back else "its BullMQ copy is already running!"
                    self.skipped.append(SkippedJob(job.id, state, f"{refused[job.id]}; {outcome}"))
        moved = {job.id for job in wanted}
        for job, content in zip(mapped, contents):
            if job.id in moved:
                self.migrated[state] += 1
                self.already += int(content == "same")
                self.dropped.update(set(job.dropped))
                self.changed.update(set(job.changed))
        if self.progress is not None:
            self.progress(len(chunk))

    # --- removing from Bull ----------------------------------------------------------------------------------
    def _remove_from_bull(self, state: str, jobs: Sequence[tuple[str, Mapping[bytes, bytes]]]) -> dict[str, str]:
        """Delete these jobs (id, hash as read) from Bull, each only while it is still in ``state`` and as read
        (``queue.raw.remove_if_unchanged``); {id: why not} for the others."""
        refused: dict[str, str] = {}
        for chunk in _chunks(list(jobs), self.batch_size):
            statuses = self.raw.remove_if_unchanged([(job_id, state, fields) for job_id, fields in chunk])
            for (job_id, _), status in zip(chunk, statuses):
                if status == "locked":
                    refused[job_id] = "a Bull worker took it during the migration"
                elif status != "removed":
                    refused[job_id] = "Bull ran, changed or removed it during the migration"
        return refused

    # --- repeatables -----------------------------------------------------------------------------------------
    async def _migrate_repeatables(
        self, templates: Mapping[str, tuple[Any, str]], pending: Mapping[str, set[str]]
    ) -> None:
        now = now_ms()
        for definition in self.queue.get_repeatable_jobs(asc=True):
            key = definition.key
            found = templates.get(key)
            if found is None:
                self.skipped.append(SkippedJob(
                    key, "repeat",
                    "no iteration job to take its data and options from (one is running): run again later",
                ))
                continue
            template, template_state = found
            scheduler_id = _scheduler_id(key, definition.name)
            repeat, opts = self._scheduler_options(definition, template, template_state, now)
            owned = sorted(pending.get(key, ()))
            if not self.dry_run:
                await self.bq.upsertJobScheduler(scheduler_id, repeat, definition.name, template.record.data, opts)
                if await self.bq.getJobScheduler(scheduler_id) is None:
                    self.skipped.append(SkippedJob(key, "repeat", "BullMQ did not store the job scheduler"))
                    continue
                if not self.keep_source:
                    # The definition and its scheduled iteration go; so does any other pending iteration.
                    self.queue.remove_repeatable_by_key(key)
                    still = [(job_id, fields) for job_id, fields in zip(owned, self.raw.hashes(owned)) if fields]
                    self._remove_from_bull("delayed", still)
            self.schedulers[key] = scheduler_id
            self.replaced += len(owned)

    def _scheduler_options(
        self, definition: Any, template: Any, template_state: str, now: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        record = template.record
        bull_repeat = record.opts.get("repeat") or {}
        repeat: dict[str, Any] = {}
        if definition.cron:
            repeat["pattern"] = definition.cron
            # Bull computed a cron without tz in its Node process's zone; make that zone explicit.
            repeat["tz"] = definition.tz or self.queue.local_timezone
            start = bull_repeat.get("startDate")
            if isinstance(start, int) and start > now:
                repeat["startDate"] = start
        else:
            every = int(definition.every or 0)
            repeat["every"] = every
            # Bull aligns "every" runs to multiples of it since the epoch; BullMQ would run the first one
            # at once and count from there. Starting at Bull's next slot (or the first one still ahead)
            # keeps the schedule, and never repeats a run that moved as a one-off job.
            nxt = definition.next or now
            if nxt <= now and every > 0:
                nxt += ((now - nxt) // every + 1) * every
            repeat["startDate"] = nxt
        if definition.end_date:
            repeat["endDate"] = definition.end_date
        if isinstance(bull_repeat.get("limit"), int):
            repeat["limit"] = bull_repeat["limit"]
            # The scheduler's first iteration takes the place of Bull's pending one (same count) or
            # follows a due one that moved as a one-off job (next count).
            count = bull_repeat.get("count")
            if isinstance(count, int) and count > 0:
                repeat["count"] = count - 1 if template_state == "delayed" else count
        opts, dropped, changed = _job_options(record.opts, record.priority)
        self.dropped.update(set(dropped))
        self.changed.update(set(changed))
        return repeat, opts


def _prev_millis(job: Any) -> int:
    value = job.record.opts.get("prevMillis")
    return value if isinstance(value, int) else 0
