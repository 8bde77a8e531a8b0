"""The sync Queue facade: Bull's producer, getters and management over redis-py."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import redis as _redis
from redis.cluster import RedisCluster

if sys.version_info >= (3, 12):
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

from . import _cluster, connection, events
from ._core import options as _options
from ._core import repeat as _repeat
from ._core import scripts
from ._core.cluster import check_one_slot
from ._core.codec import JobRecord, js_number_str, parse_job_hash
from ._core.keys import QUEUE_KEY_SUFFIXES, RESERVED_ID_PREFIXES, STATE_KEYS, QueueKeys, check_queue_name
from ._core.options import JobOptions
from ._core.codec import text as _text
from ._facade import ScriptRunner
from .errors import QueueHasActiveJobs, QueueNotPaused
from .retry import RetryPolicy
from .retry import call as _retrying
from .raw import RawQueue
from .server import Server
from .job import Job
from .utils import now_ms

if TYPE_CHECKING:
    from ._loading import ChunkWriter

#: getJobCounts' default types, in Node's order.
DEFAULT_COUNT_TYPES = ("waiting", "active", "completed", "failed", "delayed", "paused")
#: The states ``clean`` accepts, as Node validates them (``waiting`` is not one of them).
CLEAN_STATES = ("completed", "wait", "active", "paused", "delayed", "failed")
#: The types Bull records metrics of (workers started with ``metrics``).
METRICS_TYPES = ("completed", "failed")
# Keys a live Bull queue almost always has: `id` (every add increments it, custom job ids too), states, flags.
_PRESENCE_KEYS = ("id", "wait", "active", "paused", "delayed", "completed", "failed", "meta-paused", "repeat",
                  "stalled-check")
# Hashes under ``prefix:name:`` that are the queue's own structure, not jobs (protocol §1.2).
_STRUCTURE_HASHES = frozenset({"meta", "limiter:index", "metrics:completed", "metrics:failed"})
_BATCH = 1000  # ids (or keys) per round trip of the inspection reads


@dataclass(frozen=True)
class JobLogs:
    """A page of a job's log rows and the total number of rows (Node's ``{logs, count}``)."""

    logs: list[str]
    count: int


@dataclass(frozen=True)
class Metrics:
    """Bull's per-minute metrics of one type (Node's ``getMetrics``): the hash's ``count``, ``prevTS`` and
    ``prevCount`` (0 where absent), the per-minute totals ``data`` (newest first) and how many points exist."""

    count: int
    prev_ts: int
    prev_count: int
    data: list[int]
    points: int


class Queue:
    """A Bull queue, read and written with Bull's exact Redis layout.

    Args:
        name: the queue name (``message-queue`` for the WhatsApp workers); used verbatim in keys.
        redis: a ``redis://``/``rediss://``/``unix://`` URL, a ``redis.Redis``, a ``redis.cluster.RedisCluster``,
            or None for the environment (``REDIS_URL``, ``REDIS_HOST``...) or else the embedded server.
        prefix: Bull's key prefix (``{bull}`` keeps a queue in one Redis Cluster slot).
        cluster: True when the URL names a node of a Redis Cluster (default: a RedisCluster given, or
            ``REDIS_CLUSTER=1`` when ``redis`` is None). The prefix or the name must then carry a hash tag
            (``{bull}``, ``{message-queue}``), else ValueError; the queue talks to the master of its slot.
        default_job_options: keyword options applied to every ``add`` (like Node's ``defaultJobOptions``).
        backoff_strategies: names of custom backoff strategies the workers know, so jobs may use them.
        local_timezone: the time zone the Node workers run in; cron repeats without ``tz`` follow it
            (Node computes them in its process's zone).
    """

    def __init__(
        self,
        name: str,
        redis: str | _redis.Redis | RedisCluster | None = None,
        *,
        prefix: str = "bull",
        cluster: bool | None = None,
        default_job_options: JobOptions | None = None,
        backoff_strategies: Collection[str] = (),
        local_timezone: str = "UTC",
    ) -> None:
        self.name = check_queue_name(name)
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
        self.prefix = prefix
        self.keys = QueueKeys(name, prefix)
        self.backoff_strategies = frozenset(backoff_strategies)
        _repeat.resolve_tz(local_timezone)  # fail now on an unknown zone
        self.local_timezone = local_timezone
        defaults = dict(default_job_options or {})
        # Validate once now so a bad default fails at construction, not at the first add.
        _options.validate_options(defaults, self.backoff_strategies)
        self.default_job_options: dict[str, Any] = defaults
        #: The Redis Cluster the queue lives on (None on a single server); ``client`` is then its slot's master.
        self.cluster: RedisCluster | None = None
        self._owns_cluster = False
        if connection.wants_cluster(redis, cluster):
            check_one_slot(prefix, self.name)  # a queue that would spread over slots: before connecting
            self.cluster = connection.resolve_cluster(redis)
            self._owns_cluster = redis is None or isinstance(redis, str)
            self.client = _cluster.pin(self.cluster, prefix, self.name)
        else:
            self.client = connection.resolve(redis)  # type: ignore[arg-type]
        #: This client's token in Bull's ``waiting@<token>``/``duplicated@<token>`` channels.
        self.token = str(uuid.uuid4())
        self._runner = ScriptRunner(self.client)
        self._emitter = events.Emitter()
        self._global: events.GlobalListener | None = None
        self._workers: list[Any] = []

    @property
    def server(self) -> Server:
        """The Redis server (and db) this queue lives on: where it is, its INFO and settings, its clients."""
        return Server(self.client)

    @property
    def raw(self) -> RawQueue:
        """The queue's jobs as Redis holds them (raw hashes, logs, scores, locks), read and written in bulk for
        export, import, copy, move and migration; use it as a context manager (``with queue.raw as raw:``)."""
        return RawQueue(self)

    # --- plumbing ---------------------------------------------------------------------------------------
    def _run(self, call: scripts.Call[Any]) -> Any:
        return self._runner.run(call)

    def _read(self, fill: Callable[[Any], object], plain: bool = False) -> list[Any]:
        """Read commands queued by ``fill(pipe)`` in one MULTI/EXEC, a consistent snapshot as Node reads it.

        Over ``maxmemory`` Redis refuses every command queued in MULTI, reads included; the same reads then
        go as a plain pipeline (one round trip, no snapshot), so counts and lists stay readable in exactly
        the incident where an operator needs them. ``plain`` goes straight to the plain pipeline (no MULTI,
        which a ``+@read`` ACL user may not run).
        """
        with connection.unavailable_as_error(self.client):
            if plain:
                with self.client.pipeline(transaction=False) as pipe:
                    fill(pipe)
                    return list(pipe.execute())
            try:
                with self.client.pipeline(transaction=True) as pipe:
                    fill(pipe)
                    return list(pipe.execute())
            except _redis.exceptions.OutOfMemoryError:
                with self.client.pipeline(transaction=False) as pipe:
                    fill(pipe)
                    return list(pipe.execute())

    def _record(self, job_id: str, fields: Mapping[Any, Any]) -> JobRecord | None:
        return parse_job_hash(job_id, fields, now_ms()) if fields else None

    def __repr__(self) -> str:
        return f"<Queue {self.prefix}:{self.name} on {connection.describe(self.client)}>"

    def _repr_html_(self) -> str:
        from . import _display

        return _display.queue_html(self)

    def close(self) -> None:
        """Stop this queue's workers (letting current jobs finish) and release its connections."""
        for worker in list(self._workers):
            worker.close()
        if self._global is not None:
            self._global.close()
            self._global = None
        self.client.close()
        if self.cluster is not None and self._owns_cluster:
            self.cluster.close()

    # --- events -----------------------------------------------------------------------------------------
    def on(self, event: str, callback: Callable[..., Any]) -> None:
        """Call ``callback`` on a local event of this process's workers (``completed``, ``failed``...)
        or on a ``global:<event>`` any worker publishes, Node or Python."""
        if event.startswith("global:"):
            if self._global is None:
                self._global = events.GlobalListener(self)
            self._emitter.on(event, callback)
            self._global.subscribe(event[len("global:"):])
            return
        if event not in events.LOCAL_EVENTS:
            raise ValueError(f"unknown event {event!r}; local events: {', '.join(sorted(events.LOCAL_EVENTS))}, "
                             "or 'global:<event>'")
        self._emitter.on(event, callback)

    def off(self, event: str, callback: Callable[..., Any] | None = None) -> None:
        """Remove one callback (or all callbacks) of an event."""
        self._emitter.off(event, callback)

    def events(self, *names: str, timeout: float | None = None) -> events.EventStream:
        """Iterate over events as they happen; stops after ``timeout`` seconds without one.

        Default: the global completed, failed, progress, active, waiting and stalled events.
        """
        chosen = list(names) or ["global:completed", "global:failed", "global:progress", "global:active",
                                 "global:waiting", "global:stalled"]
        return events.EventStream(self, chosen, timeout)

    def _emit(self, event: str, *args: Any) -> None:
        self._emitter.emit(event, *args)

    # --- DataFrames (pip install 'bullpy[pandas]') ---------------------------------------------------------
    def add_frame(self, df: Any, **options: Any) -> Any:
        """Queue one job per DataFrame row; see ``bullpy.frames.add_frame``."""
        from . import frames

        return frames.add_frame(self, df, **options)

    def jobs_frame(self, states: Sequence[str] | None = None, **options: Any) -> Any:
        """The queue's jobs as a DataFrame; see ``bullpy.frames.jobs_frame``."""
        from . import frames

        return frames.jobs_frame(self, states or frames.ALL_STATES, **options)

    def counts_frame(self) -> Any:
        """Job counts per state as a one-row DataFrame."""
        from . import frames

        return frames.counts_frame(self)

    def campaign_status(self, result: Any) -> Any:
        """Where each job of an ``add_frame`` result is now; see ``bullpy.frames.campaign_status``."""
        from . import frames

        return frames.campaign_status(self, result)

    # --- processing -------------------------------------------------------------------------------------
    def process(self, handler: Any, concurrency: int = 1, **settings: Any) -> Any:
        """Start processing jobs in background threads with ``handler`` (plain or ``async def``, or a
        mapping of job name to handler, ``*`` catching the rest); returns the running Worker."""
        from .worker import Worker

        return Worker(self, handler, concurrency=concurrency, **settings).start()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        fields = {
            "name": write.name, "data": write.data, "opts": write.opts, "timestamp": str(write.timestamp),
            "delay": str(write.delay), "priority": write.priority,
        }
        return Job(self, duplicate=added.status != "added", job_id=added.id, fields=fields, now=write.timestamp)

    def add(self, data: Any = None, *, name: str | None = None, **options: Unpack[JobOptions]) -> Job | None:
        """Add a job; keyword options are Bull's job options in snake_case.

        Returns the Job (``job.duplicate`` is True when a job with that ``job_id`` already existed and
        nothing was written), or None for a repeatable job whose series has already ended.
        """
        prepared = self._prepare(name, data, options, now_ms())
        if prepared is None:
            return None
        added = self._run(scripts.add_jobs(self.keys, self.token, [prepared.write]))[0]
        return self._job_from_write(added, prepared.write)

    def add_bulk(self, jobs: Iterable[Mapping[str, Any]], *, batch_size: int = 1000, dry_run: bool = False) -> list[Job]:
        """Add many jobs: each item is ``{"data": ..., "name": ..., "opts": {...snake_case options}}``.

        Everything is validated before the first write; each batch of ``batch_size`` jobs is one
        atomic script call, and all batches go in one round trip. ``dry_run`` validates and encodes
        only, writes nothing and returns an empty list.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        now = now_ms()
        writes: list[scripts.JobWrite] = []
        cache: dict[str, dict[str, Any]] = {}
        for index, item in enumerate(jobs):
            if not isinstance(item, Mapping):
                raise TypeError(f"add_bulk item {index}: expected a dict with 'data', 'name', 'opts', got {item!r}")
            unknown = set(item) - {"data", "name", "opts"}
            if unknown:
                raise TypeError(f"add_bulk item {index}: unknown keys {sorted(unknown)} (use 'data', 'name', 'opts')")
            opts = dict(item.get("opts") or {})
            if "repeat" in opts:
                raise ValueError(f"add_bulk item {index}: repeatable jobs must be added with add()")
            try:
                prepared = self._prepare(item.get("name"), item.get("data"), opts, now, cache)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"add_bulk item {index}: {exc}") from exc
            writes.append(cast(_options.PreparedJob, prepared).write)
        if dry_run:
            return []
        calls = [
            scripts.add_jobs(self.keys, self.token, writes[i : i + batch_size])
            for i in range(0, len(writes), batch_size)
        ]
        added = [a for batch in self._runner.run_many(calls, transaction=False) for a in batch]
        return [self._job_from_write(a, w) for a, w in zip(added, writes)]

    # --- repeatable jobs --------------------------------------------------------------------------------
    def get_repeatable_jobs(self, start: int = 0, end: int = -1, asc: bool = False) -> list[_repeat.RepeatableJob]:
        """The repeatable job definitions, latest next run first (as Node orders them)."""
        end = end or -1  # Node's `end || -1`: an end of 0 means "to the last", as in getRepeatableJobs
        rows: list[tuple[Any, float]]
        if asc:
            rows = self.client.zrange(self.keys("repeat"), start, end, withscores=True)  # type: ignore[assignment]
        else:
            rows = self.client.zrevrange(self.keys("repeat"), start, end, withscores=True)  # type: ignore[assignment]
        return [_repeat.parse_repeatable(_text(key), score) for key, score in rows]

    def get_repeatable_count(self) -> int:
        return int(self.client.zcard(self.keys("repeat")))

    def remove_repeatable(self, name: str | None = None, **repeat: Any) -> bool:
        """Remove a repeatable definition and its next iteration, named as when it was added.

        ``repeat`` takes the same keys as ``add(..., repeat={...})`` (cron/every, tz, end_date, job_id).
        Returns True when the definition existed.
        """
        job_name = _options.check_name(name)
        spec = _repeat.RepeatOptions.from_user(repeat)
        key = _repeat.repeat_key(job_name, spec)
        prefix = _repeat.iteration_prefix(job_name, spec, key)
        return bool(self._run(scripts.remove_repeatable(self.keys, prefix, key)))

    def remove_repeatable_by_key(self, key: str) -> bool:
        """Remove a repeatable definition by the key ``get_repeatable_jobs()`` shows."""
        job_name, spec = _repeat.key_to_repeat(key)
        prefix = _repeat.iteration_prefix(job_name, spec, key)
        return bool(self._run(scripts.remove_repeatable(self.keys, prefix, key)))

    # --- getters ----------------------------------------------------------------------------------------
    def get_job(self, job_id: str | int) -> Job | None:
        """The job with this id, or None when it does not exist."""
        job_id = str(job_id)
        with connection.unavailable_as_error(self.client):
            fields = self.client.hgetall(self.keys.job(job_id))
        record = self._record(job_id, fields)
        return None if record is None else Job(self, record)

    def get_job_counts(self, *types: str, plain: bool = False) -> dict[str, int]:
        """Jobs per state, keyed by the names asked for (default: Node's six, in Node's order).

        ``plain`` reads with a plain pipeline, not a MULTI snapshot: what a ``+@read`` ACL user may run.
        """
        names = _parse_types(types) or list(DEFAULT_COUNT_TYPES)
        def fill(pipe: Any) -> None:
            for state in names:
                key = self.keys.state(state)
                pipe.llen(key) if STATE_KEYS[state][1] == "list" else pipe.zcard(key)

        return {state: int(n) for state, n in zip(names, self._read(fill, plain))}

    def get_job_count_by_types(self, *types: str) -> int:
        return sum(self.get_job_counts(*types).values())

    def count(self) -> int:
        """Jobs waiting or delayed (wait + paused + delayed), as Node's ``count()``."""
        return self.get_job_count_by_types("wait", "paused", "delayed")

    def get_waiting_count(self) -> int:
        return self.get_job_count_by_types("wait", "paused")

    def get_active_count(self) -> int:
        return self.get_job_count_by_types("active")

    def get_delayed_count(self) -> int:
        return self.get_job_count_by_types("delayed")

    def get_completed_count(self) -> int:
        return self.get_job_count_by_types("completed")

    def get_failed_count(self) -> int:
        return self.get_job_count_by_types("failed")

    def get_paused_count(self) -> int:
        return self.get_job_count_by_types("paused")

    def get_ranges(self, types: str | Sequence[str], start: int = 0, end: int = -1, asc: bool = False, *,
                   plain: bool = False) -> list[str]:
        """Job ids per state, concatenated in the order of ``types`` (the range applies to each).

        ``plain`` reads with a plain pipeline, not a MULTI snapshot: what a ``+@read`` ACL user may run.
        """
        # Node's getRanges keeps a state named twice (its ids then appear twice); so does bullpy.
        names = _parse_types([types] if isinstance(types, str) else types, unique=False)
        def fill(pipe: Any) -> None:
            for state in names:
                key = self.keys.state(state)
                if STATE_KEYS[state][1] == "list":
                    # Lists: asc reads from the head (the right end, next to run) by mirrored indexes.
                    pipe.lrange(key, -(end + 1), -(start + 1)) if asc else pipe.lrange(key, start, end)
                else:
                    pipe.zrange(key, start, end) if asc else pipe.zrevrange(key, start, end)

        ids: list[str] = []
        for state, reply in zip(names, self._read(fill, plain)):
            items = [_text(x) for x in reply]
            if asc and STATE_KEYS[state][1] == "list":
                items.reverse()
            ids.extend(items)
        return ids

    def get_states(self, ids: Sequence[str]) -> dict[str, str]:
        """The state of many jobs in one round trip (``missing`` for ids whose job is gone)."""
        calls = [scripts.get_state(self.keys, str(i)) for i in ids]
        return dict(zip((str(i) for i in ids), self._runner.run_many(calls, transaction=False)))

    def get_jobs_by_ids(self, ids: Sequence[str]) -> list[Job]:
        """Read many jobs in one round trip; ids whose hash is gone are skipped."""
        with connection.unavailable_as_error(self.client):
            with self.client.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hgetall(self.keys.job(job_id))
                replies = pipe.execute()
        now = now_ms()
        return [Job(self, parse_job_hash(i, f, now)) for i, f in zip(ids, replies) if f]

    def get_job_fields(self, ids: Sequence[str], fields: Sequence[str], *, batch_size: int = 5000,
                       plain: bool = False) -> list[list[Any]]:
        """Raw hash fields of many jobs, ``batch_size`` jobs per call: per id, the values of ``fields`` in
        order (bytes as Redis holds them, None where absent; all None for a job that is gone).

        For readers that need a few fields of very many jobs (``jobs_frame``, widgets) without parsing
        whole jobs or moving stack traces and logs over the wire. ``plain`` reads with pipelined HMGETs
        instead of a script: what a ``+@read`` ACL user may run.
        """
        batch_size = _options._int_option("batch_size", batch_size, 1)
        if not fields:
            raise ValueError("fields must name at least one hash field")
        if plain:
            return self._each(ids, lambda pipe, i: pipe.hmget(self.keys.job(i), list(fields)), batch_size)
        rows: list[list[Any]] = []
        for start in range(0, len(ids), batch_size):
            rows.extend(self._run(scripts.get_job_fields(self.keys, [str(i) for i in ids[start : start + batch_size]],
                                                         list(fields))))
        return rows

    def get_jobs(self, types: str | Sequence[str], start: int = 0, end: int = -1, asc: bool = False) -> list[Job]:
        """Jobs of the given states (Node's ``getJobs``); jobs removed meanwhile are skipped."""
        return self.get_jobs_by_ids(self.get_ranges(types, start, end, asc))

    def get_waiting(self, start: int = 0, end: int = -1) -> list[Job]:
        """Waiting jobs, next to run first; reads the paused list while the queue is paused."""
        return self.get_jobs(["wait", "paused"], start, end, asc=True)

    def get_active(self, start: int = 0, end: int = -1) -> list[Job]:
        return self.get_jobs(["active"], start, end, asc=True)

    def get_delayed(self, start: int = 0, end: int = -1) -> list[Job]:
        """Delayed jobs, soonest due first."""
        return self.get_jobs(["delayed"], start, end, asc=True)

    def get_completed(self, start: int = 0, end: int = -1) -> list[Job]:
        """Completed jobs, most recently finished first."""
        return self.get_jobs(["completed"], start, end, asc=False)

    def get_failed(self, start: int = 0, end: int = -1) -> list[Job]:
        """Failed jobs, most recently finished first."""
        return self.get_jobs(["failed"], start, end, asc=False)

    def get_job_logs(self, job_id: str | int, start: int = 0, end: int = -1, asc: bool = True) -> JobLogs:
        """A job's log rows (oldest first by default) and their total count."""
        key = self.keys.logs(str(job_id))
        def fill(pipe: Any) -> None:
            pipe.lrange(key, start, end) if asc else pipe.lrange(key, -(end + 1), -(start + 1))
            pipe.llen(key)

        rows, count = self._read(fill)
        logs = [_text(r) for r in rows]
        if not asc:
            logs.reverse()
        return JobLogs(logs, int(count))

    def get_count_per_priority(self, priorities: Iterable[int]) -> dict[int, int]:
        """Waiting jobs per priority (0 = jobs without a priority)."""
        unique: list[int] = []
        for p in priorities:
            p = _options.validate_options({"priority": p})["priority"]
            if p not in unique:
                unique.append(p)
        # Ascending keys, the order a JavaScript object with numeric keys has in Node's answer.
        unique.sort()
        counts = self._run(scripts.counts_per_priority(self.keys, [js_number_str(p) for p in unique]))
        return dict(zip(unique, counts))

    def get_workers(self) -> list[dict[str, str]]:
        """Connected workers (Node's ``getWorkers``): clients named ``prefix:base64(queue name)``.

        On a Redis Cluster every master is asked: a Node worker names its connection to a random master
        (ioredis sends CLIENT SETNAME to any node), where Node's own getWorkers, asking one random master,
        finds it only by luck.
        """
        wanted = self.keys.worker_name
        # Exact match: Node's prefix match would also count workers of queues whose base64 name starts the
        # same (queue "abc" listing workers of "abcd").
        return [{**entry, "name": self.name} for entry in self.server.client_list() if entry.get("name") == wanted]

    # --- management -------------------------------------------------------------------------------------
    def pause(self) -> None:
        """Pause the queue globally: every worker, Node or Python, stops taking jobs."""
        self._run(scripts.pause(self.keys, True))

    def resume(self) -> None:
        """Resume a globally paused queue."""
        self._run(scripts.pause(self.keys, False))

    def is_paused(self) -> bool:
        """True when the queue is globally paused (``meta-paused`` or BullMQ's ``meta.paused``)."""
        def fill(pipe: Any) -> None:
            pipe.exists(self.keys("meta-paused"))
            pipe.hexists(self.keys("meta"), "paused")

        flag, meta = self._read(fill)
        return bool(flag) or bool(meta)

    def clean(self, grace_ms: int, status: str = "completed", limit: int = 0, *, dry_run: bool = False,
              retry: RetryPolicy | None = None) -> list[str]:
        """Remove jobs of ``status`` older than ``grace_ms`` (never locked ones); returns their ids.

        ``dry_run`` walks the same jobs and returns the ids it would remove, removing nothing. ``retry``: a
        policy under which a clean cut by a Redis restart or failover runs again (Bull's clean removes what
        still matches, so the last run finishes the job and its ids are returned); default: one try.
        """
        if status not in CLEAN_STATES:
            raise ValueError(f"cannot clean unknown queue type {status!r}; use one of {', '.join(CLEAN_STATES)}")
        grace = _options._ms("grace_ms", grace_ms)
        limit = _options._int_option("limit", limit, 0)

        def run() -> list[str]:
            return self._run(scripts.clean(self.keys, status, now_ms() - grace, limit, dry_run))  # type: ignore[no-any-return]

        return run() if retry is None else _retrying(run, client=self.client, what="clean", policy=retry)

    def empty(self) -> int:
        """Remove every waiting, paused and delayed job (atomically); returns how many."""
        return int(self._run(scripts.empty(self.keys)))

    def obliterate(self, *, force: bool = False, count: int = 1000) -> None:
        """Delete the whole queue: pauses it, then removes jobs and keys in batches of ``count``.

        Refuses while jobs are active unless ``force``.
        """
        count = _options._int_option("count", count, 1)
        # Node checks the active list only after pausing; checking first leaves a busy queue running.
        if not force and self.client.llen(self.keys("active")):
            raise QueueHasActiveJobs(f"cannot obliterate queue {self.name!r}: it has active jobs (use force=True)")
        self.pause()
        while True:
            code = int(self._run(scripts.obliterate(self.keys, count, force)))
            if code == 0:
                return
            if code == -1:
                raise QueueNotPaused(f"cannot obliterate queue {self.name!r}: it is not paused")
            if code == -2:
                raise QueueHasActiveJobs(f"cannot obliterate queue {self.name!r}: it has active jobs (use force=True)")

    def retry_jobs(self, count: int = 1000, *, state: str = "failed") -> None:
        """Move every failed (or completed) job back to waiting, ``count`` per script call."""
        if state not in ("failed", "completed"):
            raise ValueError(f"state must be 'failed' or 'completed', got {state!r}")
        count = _options._int_option("count", count, 1)
        while self._run(scripts.retry_jobs(self.keys, state, count)):
            pass

    def promote_jobs(self, ids: Sequence[str] | None = None, *, batch_size: int = 1000) -> list[str]:
        """Move delayed jobs (the given ids, else every delayed job) to waiting now; returns the ids moved.

        A bullpy addition (Node Bull promotes one job at a time): each job is Bull's own promote step,
        ``batch_size`` of them per round trip; ids that are not delayed are skipped.
        """
        batch_size = _options._int_option("batch_size", batch_size, 1)
        promoted: list[str] = []

        def run(batch: Sequence[str]) -> None:
            replies = self._runner.run_many_raw([scripts.promote(self.keys, i, self.token) for i in batch])
            promoted.extend(i for i, reply in zip(batch, replies) if reply == 0)

        if ids is not None:
            wanted = [str(i) for i in ids]
            for start in range(0, len(wanted), batch_size):
                run(wanted[start : start + batch_size])
            return promoted
        while True:
            # Always the soonest-due window: promoted ids leave the set, skipped ones cannot be there.
            batch = self.get_ranges(["delayed"], 0, batch_size - 1, asc=True)
            if not batch:
                return promoted
            before = len(promoted)
            run(batch)
            if len(promoted) == before:
                return promoted

    def remove_jobs(self, pattern: str, *, dry_run: bool = False) -> list[str]:
        """Remove every unlocked job whose id matches a glob pattern (``*`` for all); returns the ids.

        ``dry_run`` returns the ids that would be removed and removes nothing.
        """
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("pattern must be a non-empty glob, e.g. '*' or 'campaign-*'")
        removed: list[str] = []
        cursor = "0"
        while True:
            cursor, ids = self._run(scripts.remove_jobs(self.keys, pattern, cursor, dry_run=dry_run))
            removed.extend(ids)
            if cursor == "0":
                return removed

    # --- for operators' tools ----------------------------------------------------------------------------
    def exists(self) -> bool:
        """True when Redis holds any key of this queue (none: a mistyped name or prefix, or another Redis)."""
        # One round trip for any real queue; only a queue with none of these keys costs a SCAN, which stops
        # at the first key found.
        with connection.unavailable_as_error(self.client):
            if self.client.exists(*(self.keys(k) for k in _PRESENCE_KEYS)):
                return True
            found = self.client.scan_iter(scripts.glob_escape(self.keys.base) + "*", count=1000)
            return next(iter(found), None) is not None

    def get_lock_owner(self, job_id: str | int) -> str | None:
        """The token of the worker holding a job's lock, or None when the job is not locked."""
        with connection.unavailable_as_error(self.client):
            owner = self.client.get(self.keys.lock(str(job_id)))
        return None if owner is None else _text(owner)

    def get_metrics(self, type: str, start: int = 0, end: int = -1) -> Metrics:
        """Bull's per-minute metrics of ``completed`` or ``failed`` jobs (Node's ``getMetrics``)."""
        return self.get_metrics_by_types([type], start, end)[type]

    def get_metrics_by_types(self, types: str | Sequence[str] = METRICS_TYPES, start: int = 0, end: int = -1
                             ) -> dict[str, Metrics]:
        """``get_metrics`` of several types (default: completed and failed) in one round trip, keyed by type."""
        names = [types] if isinstance(types, str) else list(types)
        for name in names:
            if name not in METRICS_TYPES:
                raise ValueError(f"unknown metrics type {name!r}; use one of {', '.join(METRICS_TYPES)}")
        if not names:
            return {}

        def fill(pipe: Any) -> None:
            for name in names:
                key = self.keys(f"metrics:{name}")
                pipe.hmget(key, "count", "prevTS", "prevCount")
                pipe.lrange(f"{key}:data", start, end)
                pipe.llen(f"{key}:data")

        replies = self._read(fill)
        out: dict[str, Metrics] = {}
        for i, name in enumerate(names):
            meta, data, points = replies[3 * i : 3 * i + 3]
            count, prev_ts, prev_count = (int(value or 0) for value in meta)
            out[name] = Metrics(count, prev_ts, prev_count, [int(x) for x in data], int(points))
        return out

    # --- for inspection tools: plain commands only, so a ``+@read`` ACL user and an out-of-memory Redis answer --
    def _each(self, ids: Sequence[str], command: Callable[[Any, str], object], size: int = _BATCH) -> list[Any]:
        """``command(pipe, id)`` for each id, in plain pipelines of ``size``; the replies in order."""
        replies: list[Any] = []
        for start in range(0, len(ids), size):
            with connection.unavailable_as_error(self.client), self.client.pipeline(transaction=False) as pipe:
                for job_id in ids[start : start + size]:
                    command(pipe, str(job_id))
                replies.extend(pipe.execute())
        return replies

    def get_scores(self, state: str, ids: Sequence[str]) -> list[float | None]:
        """Each job's score in a sorted-set state (delayed, completed, failed), None where it is not there."""
        if state not in ("delayed", "completed", "failed"):
            raise ValueError(f"get_scores reads delayed, completed or failed, not {state!r}")
        key = self.keys(state)
        return [None if s is None else float(s) for s in self._each(ids, lambda pipe, i: pipe.zscore(key, i))]

    def get_memory_usage(self, ids: Sequence[str]) -> list[int | None]:
        """``MEMORY USAGE`` of each job's hash in bytes, every field counted; None for a job that is gone."""
        # SAMPLES 0: Redis' default estimates a hash from 5 of its fields, and may miss a job's big ``data``.
        sizes = self._each(ids, lambda pipe, i: pipe.memory_usage(self.keys.job(i), samples=0))
        return [None if n is None else int(n) for n in sizes]

    def scan_job_ids(self, *, count: int = 1000) -> Iterator[str]:
        """Ids of every job hash of the queue, in a state or in none, found with SCAN (never KEYS), ``count``
        keys a round trip; it walks the whole keyspace."""
        return self._scan_job_ids(_options._int_option("count", count, 1))

    def _scan_job_ids(self, count: int) -> Iterator[str]:
        base = self.keys.base
        pattern = scripts.glob_escape(base) + "*"
        with connection.unavailable_as_error(self.client):
            try:
                for key in self.client.scan_iter(match=pattern, count=count, _type="hash"):
                    job_id = _job_id_of(_text(key), base)
                    if job_id is not None:
                        yield job_id
            except _redis.ResponseError as exc:
                if "syntax" not in str(exc).lower():
                    raise
                # Redis < 6 has no SCAN ... TYPE: ask TYPE for each key, a batch a round trip.
                keys: list[str] = []
                for key in self.client.scan_iter(match=pattern, count=count):
                    keys.append(_text(key))
                    if len(keys) >= count:
                        yield from self._job_hashes(keys, base)
                        keys = []
                yield from self._job_hashes(keys, base)

    def _job_hashes(self, keys: list[str], base: str) -> Iterator[str]:
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.type(key)
            types = pipe.execute()
        for key, kind in zip(keys, types):
            job_id = _job_id_of(key, base) if _text(kind) == "hash" else None
            if job_id is not None:
                yield job_id

    def other_queue_ids(self, ids: Sequence[str]) -> set[str]:
        """Of these ids, those that are jobs of another queue ``<name>:<head>`` (job ``5`` of queue ``q:a``
        has the key job ``a:5`` of queue ``q`` would have)."""
        asked: list[tuple[str, list[str]]] = []
        for job_id in ids:
            parts = str(job_id).split(":")
            for cut in range(1, len(parts)):
                head = self.keys.base + ":".join(parts[:cut]) + ":"
                asked.append((str(job_id), [head + suffix for suffix in _PRESENCE_KEYS]))
        if not asked:
            return set()
        with connection.unavailable_as_error(self.client), self.client.pipeline(transaction=False) as pipe:
            for _, keys in asked:
                pipe.exists(*keys)
            replies = pipe.execute()
        return {job_id for (job_id, _), found in zip(asked, replies) if found}

    def count_workers(self) -> int | None:
        """How many workers are connected (those ``get_workers`` lists), None where CLIENT LIST is refused."""
        clients = self.server.clients()
        wanted = self.keys.worker_name
        return None if clients is None else sum(1 for entry in clients if entry.get("name") == wanted)

    def chunk_writer(self, *, idempotent: bool, total: int, retry: RetryPolicy | None = None) -> ChunkWriter:
        """``add_frame``'s writer: adds chunks of jobs in order through Redis restarts and failovers (see
        ``bullpy._loading``); ``idempotent`` when the jobs carry ids; close it when done."""
        from ._loading import ChunkWriter

        return ChunkWriter(self, idempotent=idempotent, total=total, policy=retry)


def find_queues(redis: str | _redis.Redis | Any | None = None, prefix: str = "bull", *,
                cluster: bool | None = None) -> list[str]:
    """Names of the Bull queues under ``prefix`` on a Redis, found with SCAN (never KEYS); on a Redis Cluster
    (``cluster=True`` with a node's URL, or a ``RedisCluster``) on every master.

    Every queue that ever held a job has its id counter ``prefix:<name>:id`` (Bull's addJob increments
    it even for custom job ids), so that key is what is looked for.
    """
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
    target = connection.resolve_cluster(redis) if connection.wants_cluster(redis, cluster) else connection.resolve(redis)
    pattern = scripts.glob_escape(prefix) + ":*:id"
    names: set[str] = set()
    for node in connection.masters(target):
        with connection.unavailable_as_error(node):
            for key in node.scan_iter(pattern, count=1000):
                names.add(_text(key)[len(prefix) + 1 : -len(":id")])
    return sorted(names)


def _job_id_of(key: str, base: str) -> str | None:
    """The job id a hash key under ``base`` names, or None for the queue's own structure keys."""
    job_id = key[len(base):]
    if job_id in _STRUCTURE_HASHES or job_id in QUEUE_KEY_SUFFIXES or job_id.startswith(RESERVED_ID_PREFIXES):
        return None
    return job_id


def _parse_types(types: Iterable[str], unique: bool = True) -> list[str]:
    """Node's parseTypeArg: names or comma-separated names, validated (unknown names raise, where Node
    silently drops them); de-duplicated for counts, which are keyed by name."""
    out: list[str] = []
    for item in types:
        if not isinstance(item, str):
            raise TypeError(f"job states are strings, got {item!r}")
        for state in item.split(","):
            state = state.strip()
            if state not in STATE_KEYS:
                raise ValueError(f"unknown job state {state!r}; use one of {', '.join(STATE_KEYS)}")
            if not unique or state not in out:
                out.append(state)
    return out
