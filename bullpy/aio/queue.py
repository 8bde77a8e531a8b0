"""The asyncio Queue facade: ``bullpy.Queue``'s producer, getters and management, awaited, over redis.asyncio.

Every method builds the same script Calls, Reads and operations of ``bullpy._core`` as the sync facade and
awaits them, so the two write byte-identical keyspaces (``tests/interop/test_differential_aio.py``).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import redis as _redis
import redis.asyncio as aioredis

if sys.version_info >= (3, 12):
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

from .. import _refusals, connection
from .._core import ops, reads, scripts, stats
from .._core import options as _options
from .._core.ops import PRESENCE_KEYS
from .._core.options import JobOptions
from .._core.reads import METRICS_TYPES, JobLogs, Metrics
from .._core.repeat import RepeatableJob
from .._core.stats import QueueStats
from ..events import LOCAL_EVENTS, Emitter
from ..retry import DEFAULT_POLICY as _DEFAULT_POLICY
from ..retry import RetryPolicy, as_error, gave_up, is_transient
from ..schema import check_data, check_items, parse_schema
from ..utils import now_ms
from ._runner import AsyncRunner
from .events import EventStream, GlobalListener, callback_for
from .job import Job

T = TypeVar("T")

#: ``bullpy.Queue`` methods that ``bullpy.aio.Queue`` does not offer, and why (tests/asyncio/test_parity.py).
SYNC_ONLY = {
    "server": "server questions (INFO, CONFIG, CLIENT LIST of every master) serve the sync tools",
    "raw": "bulk raw access for export, import, copy and migration, which run as sync commands",
    "add_frame": "pandas campaigns run in notebooks and scripts (bullpy.frames)",
    "jobs_frame": "pandas",
    "iter_jobs_frames": "pandas",
    "counts_frame": "pandas",
    "campaign_status": "pandas",
    "chunk_writer": "add_frame's writer",
    "process": "workers run on threads (bullpy.Worker runs `async def` handlers); see the README",
    "get_scores": "an inspection read of the doctor and the CLI",
    "get_memory_usage": "an inspection read of the doctor",
    "scan_job_ids": "a keyspace walk of the doctor and transfer",
    "other_queue_ids": "an inspection read of the doctor",
}


def _connect(redis: str | aioredis.Redis | None) -> aioredis.Redis:
    if isinstance(redis, aioredis.Redis):
        return redis
    if isinstance(redis, _redis.Redis):
        raise TypeError("bullpy.aio.Queue needs a redis.asyncio.Redis or a URL, not a sync redis.Redis "
                        "(use bullpy.Queue for that)")
    if redis is None:
        url = connection.env_url() or connection.embedded_url()
    elif isinstance(redis, str):
        url = redis
    else:
        raise TypeError(f"redis must be a URL, a redis.asyncio.Redis or None, got {type(redis).__name__}")
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"bullpy.aio opens redis://, rediss:// and unix:// URLs, not {connection.safe_url(url)!r} "
                         "(Sentinel and Cluster: use bullpy.Queue)")
    return aioredis.Redis.from_url(url, decode_responses=True)


class Queue:
    """A Bull queue in asyncio code (FastAPI, aiohttp, a notebook's top-level ``await``).

    The same arguments, methods and errors as ``bullpy.Queue``, awaited; ``redis`` is a ``redis://``,
    ``rediss://`` or ``unix://`` URL, a ``redis.asyncio.Redis``, or None for the environment (``REDIS_URL``,
    ``REDIS_HOST``...) or else the embedded server. Redis Cluster and Sentinel: use ``bullpy.Queue``.
    """

    def __init__(
        self,
        name: str,
        redis: str | aioredis.Redis | None = None,
        *,
        prefix: str = "bull",
        cluster: bool | None = None,
        default_job_options: JobOptions | None = None,
        backoff_strategies: Collection[str] = (),
        local_timezone: str = "UTC",
        allow_colon: bool = False,
    ) -> None:
        config = ops.queue_config(name, prefix, default_job_options, backoff_strategies, local_timezone,
                                  allow_colon)
        self.name, self.prefix, self.keys = config.name, config.prefix, config.keys
        self.backoff_strategies = config.backoff_strategies
        self.local_timezone = config.local_timezone
        self.default_job_options: dict[str, Any] = config.default_job_options
        if cluster:
            raise ValueError("bullpy.aio does not open queues on a Redis Cluster yet: use bullpy.Queue")
        self.client = _connect(redis)
        #: This client's token in Bull's ``waiting@<token>``/``duplicated@<token>`` channels.
        self.token = str(uuid.uuid4())
        self._runner = AsyncRunner(self.client, self.keys)
        self._runner.write_refusal = config.write_refusal
        self._emitter = Emitter()
        self._global: GlobalListener | None = None
        self._wrapped: dict[tuple[str, Callable[..., Any]], Callable[..., Any]] = {}

    def __repr__(self) -> str:
        return f"<bullpy.aio.Queue {self.prefix}:{self.name}>"

    async def close(self) -> None:
        """Stop listening to events and release the queue's connections."""
        if self._global is not None:
            await self._global.close()
            self._global = None
        await self._runner.aclose()
        await self.client.aclose()

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- events -----------------------------------------------------------------------------------------
    async def on(self, event: str, callback: Callable[..., Any]) -> None:
        """Call ``callback`` (plain or ``async def``) on a ``global:<event>`` any worker publishes, Node or
        Python, or on a local event of this process (``progress``); returns once Redis confirmed the
        subscription."""
        if event.startswith("global:"):
            await self._listen(event, callback_for(callback), key=callback)
            return
        if event not in LOCAL_EVENTS:
            raise ValueError(f"unknown event {event!r}; local events: {', '.join(sorted(LOCAL_EVENTS))}, "
                             "or 'global:<event>'")
        wrapped = self._wrapped[(event, callback)] = callback_for(callback)
        self._emitter.on(event, wrapped)

    async def _listen(self, event: str, callback: Callable[..., Any], *, key: Callable[..., Any] | None = None) -> None:
        self._wrapped[(event, key or callback)] = callback
        self._emitter.on(event, callback)
        if event.startswith("global:"):
            if self._global is None:
                self._global = GlobalListener(self)
            await self._global.subscribe(event[len("global:"):])

    def off(self, event: str, callback: Callable[..., Any] | None = None) -> None:
        """Remove one callback (or all callbacks) of an event."""
        if callback is None:
            self._emitter.off(event)
            return
        self._emitter.off(event, self._wrapped.pop((event, callback), callback))

    def events(self, *names: str, timeout: float | None = None) -> EventStream:
        """Iterate with ``async for`` over events as they happen; stops after ``timeout`` seconds without one.

        Default: the global completed, failed, progress, active, waiting and stalled events. Listening starts
        at ``async with queue.events() as stream`` (or at the first iteration).
        """
        chosen = list(names) or ["global:completed", "global:failed", "global:progress", "global:active",
                                 "global:waiting", "global:stalled"]
        return EventStream(self, chosen, timeout)

    # --- producing --------------------------------------------------------------------------------------
    def _prepare(
        self, name: str | None, data: Any, options: Mapping[str, Any], now: int,
        cache: dict[str, dict[str, Any]] | None = None,
    ) -> _options.PreparedJob | None:
        return _options.prepare_job(
            name, data, options, defaults=self.default_job_options, now_ms=now,
            known_backoffs=self.backoff_strategies, local_tz=self.local_timezone, cache=cache,
        )

    def _job_from_write(self, added: scripts.Added, write: scripts.JobWrite) -> Job:
        return Job(self, duplicate=added.status != "added", job_id=added.id, fields=ops.written_fields(write),
                   now=write.timestamp)

    async def add(self, data: Any = None, *, name: str | None = None, schema: Mapping[str, Any] | None = None,
                  **options: Unpack[JobOptions]) -> Job | None:
        """Add a job; keyword options are Bull's job options in snake_case (see ``bullpy.Queue.add``)."""
        if schema is not None:
            check_data(data, parse_schema(schema))
        prepared = self._prepare(name, data, options, now_ms())
        if prepared is None:
            return None
        added = (await self._runner.run(scripts.add_jobs(self.keys, self.token, [prepared.write])))[0]
        return self._job_from_write(added, prepared.write)

    async def add_bulk(self, jobs: Iterable[Mapping[str, Any]], *, batch_size: int = 1000,
                       dry_run: bool = False, schema: Mapping[str, Any] | None = None) -> list[Job]:
        """Add many jobs (``{"data", "name", "opts"}``), validated whole before the first write; each batch
        of ``batch_size`` is one atomic script call, all batches one round trip."""
        ops.bulk_batch_size(batch_size)
        now = now_ms()
        jobs = check_items(jobs, schema)
        writes = ops.bulk_writes(jobs, lambda name, data, opts, cache: self._prepare(name, data, opts, now, cache))
        if dry_run:
            return []
        added = await self._runner.drive(ops.add_bulk(self.keys, self.token, writes, batch_size))
        return [self._job_from_write(a, w) for a, w in zip(added, writes)]

    # --- repeatable jobs --------------------------------------------------------------------------------
    async def get_repeatable_jobs(self, start: int = 0, end: int = -1, asc: bool = False) -> list[RepeatableJob]:
        """The repeatable job definitions, latest next run first (as Node orders them)."""
        return await self._runner.read(reads.repeatable_jobs(self.keys, start, end, asc))

    async def get_repeatable_count(self) -> int:
        return await self._runner.read(reads.repeatable_count(self.keys))

    async def remove_repeatable(self, name: str | None = None, **repeat: Any) -> bool:
        """Remove a repeatable definition and its next iteration, named as when it was added."""
        existed = await self._runner.run(ops.remove_repeatable(self.keys, name, repeat))
        return existed

    async def remove_repeatable_by_key(self, key: str) -> bool:
        """Remove a repeatable definition by the key ``get_repeatable_jobs()`` shows."""
        existed = await self._runner.run(ops.remove_repeatable_by_key(self.keys, key))
        return existed

    # --- getters ----------------------------------------------------------------------------------------
    async def get_job(self, job_id: str | int) -> Job | None:
        """The job with this id, or None when it does not exist."""
        record = await self._runner.read(reads.job(self.keys, str(job_id), now_ms()))
        return None if record is None else Job(self, record)

    async def get_job_counts(self, *types: str, plain: bool = False) -> dict[str, int]:
        """Jobs per state, keyed by the names asked for (default: Node's six, in Node's order)."""
        return await self._runner.read(reads.job_counts(self.keys, types, snapshot=not plain))

    async def get_job_count_by_types(self, *types: str) -> int:
        return sum((await self.get_job_counts(*types)).values())

    async def count(self) -> int:
        """Jobs waiting or delayed (wait + paused + delayed), as Node's ``count()``."""
        return await self.get_job_count_by_types("wait", "paused", "delayed")

    async def get_waiting_count(self) -> int:
        return await self.get_job_count_by_types("wait", "paused")

    async def get_active_count(self) -> int:
        return await self.get_job_count_by_types("active")

    async def get_delayed_count(self) -> int:
        return await self.get_job_count_by_types("delayed")

    async def get_completed_count(self) -> int:
        return await self.get_job_count_by_types("completed")

    async def get_failed_count(self) -> int:
        return await self.get_job_count_by_types("failed")

    async def get_paused_count(self) -> int:
        return await self.get_job_count_by_types("paused")

    async def get_ranges(self, types: str | Sequence[str], start: int = 0, end: int = -1, asc: bool = False, *,
                         plain: bool = False) -> list[str]:
        """Job ids per state, concatenated in the order of ``types`` (the range applies to each)."""
        return await self._runner.read(reads.ranges(self.keys, types, start, end, asc, snapshot=not plain))

    async def get_states(self, ids: Sequence[str]) -> dict[str, str]:
        """The state of many jobs in one round trip (``missing`` for ids whose job is gone)."""
        return await self._runner.drive(ops.get_states(self.keys, ids))

    async def get_jobs_by_ids(self, ids: Sequence[str]) -> list[Job]:
        """Read many jobs in one round trip; ids whose hash is gone are skipped."""
        return [Job(self, record) for record in await self._runner.read(reads.jobs(self.keys, ids, now_ms()))]

    async def get_job_fields(self, ids: Sequence[str], fields: Sequence[str], *, batch_size: int = 5000,
                             plain: bool = False) -> list[list[Any]]:
        """Raw hash fields of many jobs, ``batch_size`` jobs per call (see ``bullpy.Queue.get_job_fields``)."""
        return await self._runner.drive(ops.get_job_fields(self.keys, ids, fields, batch_size, plain))

    async def get_jobs(self, types: str | Sequence[str], start: int = 0, end: int = -1,
                       asc: bool = False) -> list[Job]:
        """Jobs of the given states (Node's ``getJobs``; see ``bullpy.Queue.get_jobs`` for damaged jobs)."""
        records = await self._runner.drive(ops.get_jobs(self.keys, types, start, end, asc, now_ms()))
        return [Job(self, record) for record in records]

    async def get_waiting(self, start: int = 0, end: int = -1) -> list[Job]:
        """Waiting jobs, next to run first; reads the paused list while the queue is paused."""
        return await self.get_jobs(["wait", "paused"], start, end, asc=True)

    async def get_active(self, start: int = 0, end: int = -1) -> list[Job]:
        return await self.get_jobs(["active"], start, end, asc=True)

    async def get_delayed(self, start: int = 0, end: int = -1) -> list[Job]:
        """Delayed jobs, soonest due first."""
        return await self.get_jobs(["delayed"], start, end, asc=True)

    async def get_completed(self, start: int = 0, end: int = -1) -> list[Job]:
        """Completed jobs, most recently finished first."""
        return await self.get_jobs(["completed"], start, end, asc=False)

    async def get_failed(self, start: int = 0, end: int = -1) -> list[Job]:
        """Failed jobs, most recently finished first."""
        return await self.get_jobs(["failed"], start, end, asc=False)

    async def get_job_logs(self, job_id: str | int, start: int = 0, end: int = -1, asc: bool = True) -> JobLogs:
        """A job's log rows (oldest first by default) and their total count."""
        return await self._runner.read(reads.job_logs(self.keys, str(job_id), start, end, asc))

    async def get_count_per_priority(self, priorities: Iterable[int]) -> dict[int, int]:
        """Waiting jobs per priority (0 = jobs without a priority)."""
        return await self._runner.drive(ops.count_per_priority(self.keys, priorities))

    async def get_workers(self) -> list[dict[str, str]]:
        """Connected workers (Node's ``getWorkers``): clients named ``prefix:base64(queue name)``."""
        try:
            clients = await self._runner.read(reads.client_list())
        except _redis.ResponseError:
            return []  # servers or proxies without CLIENT LIST
        return reads.workers_in(clients, self.keys)

    async def count_workers(self, clients: Sequence[Mapping[str, str]] | None = None) -> int | None:
        """How many workers are connected (those ``get_workers`` lists), None where CLIENT LIST is refused;
        ``clients``: a ``CLIENT LIST`` already read."""
        if clients is None:
            try:
                clients = await self._runner.read(reads.client_list())
            except _redis.ResponseError:
                return None
        return len(reads.workers_in(clients, self.keys))

    # --- management -------------------------------------------------------------------------------------
    async def pause(self) -> None:
        """Pause the queue globally: every worker, Node or Python, stops taking jobs."""
        await self._runner.run(scripts.pause(self.keys, True))

    async def resume(self) -> None:
        """Resume a globally paused queue."""
        await self._runner.run(scripts.pause(self.keys, False))

    async def is_paused(self) -> bool:
        """True when the queue is globally paused (``meta-paused`` or BullMQ's ``meta.paused``)."""
        return await self._runner.read(reads.is_paused(self.keys))

    async def clean(self, grace_ms: int, status: str = "completed", limit: int = 0, *, dry_run: bool = False,
                    retry: RetryPolicy | None = None, batch_size: int = 1000) -> list[str]:
        """Remove jobs of ``status`` older than ``grace_ms`` (never locked ones); returns their ids, in Node's
        order, in bounded steps (see ``bullpy.Queue.clean``); ``retry`` rides out a Redis restart."""
        plan = ops.plan_clean(grace_ms, status, limit, batch_size, now_ms())
        taken: dict[str, None] = {}

        async def run() -> list[str]:
            return await self._runner.drive(ops.clean(self.keys, plan, dry_run, taken))

        return await run() if retry is None else await self._retrying(run, "clean", retry)

    async def _retrying(self, fn: Callable[[], Any], what: str, policy: RetryPolicy | None) -> Any:
        """``bullpy.retry.call`` awaited: the same policy, transient errors and final error."""
        policy = policy or _DEFAULT_POLICY
        client = cast(Any, self.client)
        first_failure: float | None = None
        tries = 0
        while True:
            tries += 1
            try:
                return await fn()
            except Exception as exc:
                if not is_transient(exc):
                    error = as_error(exc, client, what)
                    if error is exc:
                        raise
                    raise error from exc
                now = time.monotonic()
                first_failure = now if first_failure is None else first_failure
                elapsed, delay = now - first_failure, policy.delay(tries)
                if tries >= policy.attempts or elapsed + delay > policy.deadline:
                    raise gave_up(exc, client, what, tries, elapsed) from exc
                await asyncio.sleep(delay)

    async def empty(self, *, batch_size: int = 1000) -> int:
        """Remove every waiting, paused and delayed job, in bounded steps; returns how many."""
        return await self._runner.drive(ops.empty(self.keys, batch_size))

    async def obliterate(self, *, force: bool = False, count: int = 1000) -> None:
        """Delete the whole queue (pauses it first); refuses while jobs are active unless ``force``."""
        await self._runner.drive(ops.obliterate(self.keys, force, count))

    async def retry_jobs(self, count: int = 1000, *, state: str = "failed") -> None:
        """Move every failed (or completed) job back to waiting, ``count`` per script call."""
        await self._runner.drive(ops.retry_jobs(self.keys, count, state))

    async def promote_jobs(self, ids: Sequence[str] | None = None, *, batch_size: int = 1000) -> list[str]:
        """Move delayed jobs (the given ids, else every delayed job) to waiting now; returns the ids moved."""
        return await self._runner.drive(ops.promote_jobs(self.keys, self.token, ids, batch_size))

    async def remove_jobs(self, pattern: str, *, dry_run: bool = False, batch_size: int = 1000) -> list[str]:
        """Remove every unlocked job whose id matches a glob pattern (``*`` for all); returns the ids."""
        return await self._runner.drive(ops.remove_jobs(self.keys, pattern, dry_run, batch_size))

    # --- for operators' tools ----------------------------------------------------------------------------
    async def exists(self) -> bool:
        """True when Redis holds any key of this queue (none: a mistyped name or prefix, or another Redis)."""
        return await self._runner.drive(ops.exists(self.keys, PRESENCE_KEYS))

    async def get_lock_owner(self, job_id: str | int) -> str | None:
        """The token of the worker holding a job's lock, or None when the job is not locked."""
        return await self._runner.read(reads.lock_owner(self.keys, str(job_id)))

    async def get_metrics(self, type: str, start: int = 0, end: int = -1) -> Metrics:
        """Bull's per-minute metrics of ``completed`` or ``failed`` jobs (Node's ``getMetrics``)."""
        return (await self.get_metrics_by_types([type], start, end))[type]

    async def get_metrics_by_types(self, types: str | Sequence[str] = METRICS_TYPES, start: int = 0,
                                   end: int = -1) -> dict[str, Metrics]:
        """``get_metrics`` of several types (default: completed and failed) in one round trip, keyed by type."""
        if not types:
            return {}
        return await self._runner.read(reads.metrics(self.keys, types, start, end))

    async def get_stats(self, finished_after: Mapping[str, float] | None = None, *,
                        limit: int = 1000) -> QueueStats:
        """What a monitor shows of the queue, in at most two round trips (see ``bullpy.Queue.get_stats``)."""
        return await self._runner.drive(stats.get_stats(self.keys, finished_after, limit))


async def find_queues(redis: str | aioredis.Redis | None = None, prefix: str = "bull", *,
                      cluster: bool | None = None) -> list[str]:
    """Names of the Bull queues under ``prefix`` on a Redis, found with SCAN (never KEYS)."""
    pattern = ops.queue_id_pattern(prefix)
    if cluster:
        raise ValueError("bullpy.aio does not scan a Redis Cluster yet: use bullpy.find_queues")
    client = _connect(redis)
    names: set[str] = set()
    try:
        with _refusals.unavailable_as_error(cast(Any, client)):
            async for key in client.scan_iter(pattern, count=1000):
                names.add(ops.queue_name_of(key, prefix))
    finally:
        if client is not redis:
            await client.aclose()
    return sorted(names)
