"""The sync Queue facade: Bull's producer, getters and management over redis-py."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis as _redis
from redis.cluster import RedisCluster

if sys.version_info >= (3, 12):
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

from . import _cluster, _refusals, connection, events
from ._core import ops, reads, scripts, stats
from ._core import options as _options
from ._core.cluster import check_one_slot
from ._core.ops import CLEAN_STATES
from ._core.ops import PRESENCE_KEYS as _PRESENCE_KEYS
from ._core.options import JobOptions
from ._core.reads import DEFAULT_COUNT_TYPES, METRICS_TYPES, JobLogs, Metrics
from ._core.repeat import RepeatableJob
from ._core.stats import QueueStats
from ._facade import ScriptRunner
from ._inspection import InspectionReads
from ._management import QueueManagement
from .job import Job
from .raw import RawQueue
from .retry import RetryPolicy
from .schema import check_data, check_items, parse_schema
from .server import Server
from .utils import now_ms

if TYPE_CHECKING:
    from ._loading import ChunkWriter

__all__ = ["CLEAN_STATES", "DEFAULT_COUNT_TYPES", "METRICS_TYPES", "JobLogs", "Metrics", "Queue", "QueueStats",
           "find_queues"]


class Queue(QueueManagement, InspectionReads):
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
        allow_colon: write to a queue whose name or prefix contains ``:``. Without it such a queue is only
            read (writes raise ValueError): the keys of queue ``a:b`` are also those of queue ``a``'s jobs
            ``b:wait``, ``b:paused``... For existing deployments that already use such names.
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
        allow_colon: bool = False,
    ) -> None:
        config = ops.queue_config(name, prefix, default_job_options, backoff_strategies, local_timezone,
                                  allow_colon)
        self.name, self.prefix, self.keys = config.name, config.prefix, config.keys
        self.backoff_strategies = config.backoff_strategies
        self.local_timezone = config.local_timezone
        self.default_job_options: dict[str, Any] = config.default_job_options
        #: The Redis Cluster the queue lives on (None on a single server); ``client`` is then its slot's master.
        self.cluster: RedisCluster | None = None
        self._owns_cluster = False
        if connection.wants_cluster(redis, cluster):
            check_one_slot(self.prefix, self.name)  # a queue that would spread over slots: before connecting
            self.cluster = connection.resolve_cluster(redis)
            self._owns_cluster = redis is None or isinstance(redis, str)
            self.client = _cluster.pin(self.cluster, self.prefix, self.name)
        else:
            self.client = connection.resolve(redis)  # type: ignore[arg-type]
        #: This client's token in Bull's ``waiting@<token>``/``duplicated@<token>`` channels.
        self.token = str(uuid.uuid4())
        self._runner = ScriptRunner(self.client, self.keys)
        self._runner.write_refusal = config.write_refusal
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
        with _refusals.unavailable_as_error(self.client, keys=self.keys):
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
        self._runner.close()
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

    def iter_jobs_frames(self, states: Sequence[str] | None = None, chunk_rows: int = 100_000,
                         **options: Any) -> Any:
        """The queue's jobs as DataFrames of about ``chunk_rows`` rows, read lazily; see
        ``bullpy.frames.iter_jobs_frames``."""
        from . import frames

        return frames.iter_jobs_frames(self, states or frames.ALL_STATES, chunk_rows=chunk_rows, **options)

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
        return Job(self, duplicate=added.status != "added", job_id=added.id, fields=ops.written_fields(write),
                   now=write.timestamp)

    def add(self, data: Any = None, *, name: str | None = None, schema: Mapping[str, Any] | None = None,
                 **options: Unpack[JobOptions]) -> Job | None:
        """Add a job; keyword options are Bull's job options in snake_case.

        Returns the Job (``job.duplicate`` is True when a job with that ``job_id`` already existed and
        nothing was written), or None for a repeatable job whose series has already ended. ``schema``
        (``{"number": str}``, see ``bullpy.schema``) checks the data's JSON types first (TypeError).
        """
        if schema is not None:
            check_data(data, parse_schema(schema))
        prepared = self._prepare(name, data, options, now_ms())
        if prepared is None:
            return None
        added = self._run(scripts.add_jobs(self.keys, self.token, [prepared.write]))[0]
        return self._job_from_write(added, prepared.write)

    def add_bulk(self, jobs: Iterable[Mapping[str, Any]], *, batch_size: int = 1000, dry_run: bool = False,
                 schema: Mapping[str, Any] | None = None) -> list[Job]:
        """Add many jobs: each item is ``{"data": ..., "name": ..., "opts": {...snake_case options}}``.

        Everything is validated before the first write; each batch of ``batch_size`` jobs is one
        atomic script call, and all batches go in one round trip. ``dry_run`` validates and encodes
        only, writes nothing and returns an empty list.
        """
        ops.bulk_batch_size(batch_size)
        now = now_ms()
        jobs = check_items(jobs, schema)
        writes = ops.bulk_writes(jobs, lambda name, data, opts, cache: self._prepare(name, data, opts, now, cache))
        if dry_run:
            return []
        added = self._runner.drive(ops.add_bulk(self.keys, self.token, writes, batch_size))
        return [self._job_from_write(a, w) for a, w in zip(added, writes)]

    # --- repeatable jobs --------------------------------------------------------------------------------
    def get_repeatable_jobs(self, start: int = 0, end: int = -1, asc: bool = False) -> list[RepeatableJob]:
        """The repeatable job definitions, latest next run first (as Node orders them)."""
        return self._runner.read(reads.repeatable_jobs(self.keys, start, end, asc))

    def get_repeatable_count(self) -> int:
        return self._runner.read(reads.repeatable_count(self.keys))

    def remove_repeatable(self, name: str | None = None, **repeat: Any) -> bool:
        """Remove a repeatable definition and its next iteration, named as when it was added.

        ``repeat`` takes the same keys as ``add(..., repeat={...})`` (cron/every, tz, end_date, job_id).
        Returns True when the definition existed.
        """
        return bool(self._run(ops.remove_repeatable(self.keys, name, repeat)))

    def remove_repeatable_by_key(self, key: str) -> bool:
        """Remove a repeatable definition by the key ``get_repeatable_jobs()`` shows."""
        return bool(self._run(ops.remove_repeatable_by_key(self.keys, key)))

    # --- getters ----------------------------------------------------------------------------------------
    def get_job(self, job_id: str | int) -> Job | None:
        """The job with this id, or None when it does not exist. A hash another program damaged is a Job whose
        ``damaged`` says why (Node's ``getJob`` throws for some of them)."""
        record = self._runner.read(reads.job(self.keys, str(job_id), now_ms()))
        return None if record is None else Job(self, record)

    def get_job_counts(self, *types: str, plain: bool = False) -> dict[str, int]:
        """Jobs per state, keyed by the names asked for (default: Node's six, in Node's order).

        ``plain`` reads with a plain pipeline, not a MULTI snapshot: what a ``+@read`` ACL user may run.
        """
        return self._runner.read(reads.job_counts(self.keys, types, snapshot=not plain))

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
        return self._runner.read(reads.ranges(self.keys, types, start, end, asc, snapshot=not plain))

    def get_states(self, ids: Sequence[str]) -> dict[str, str]:
        """The state of many jobs in one round trip (``missing`` for ids whose job is gone)."""
        return self._runner.drive(ops.get_states(self.keys, ids))

    def get_jobs_by_ids(self, ids: Sequence[str]) -> list[Job]:
        """Read many jobs in one round trip; ids whose hash is gone are skipped, damaged ones are Jobs whose
        ``damaged`` says why."""
        return [Job(self, record) for record in self._runner.read(reads.jobs(self.keys, ids, now_ms()))]

    def get_job_fields(self, ids: Sequence[str], fields: Sequence[str], *, batch_size: int = 5000,
                       plain: bool = False) -> list[list[Any]]:
        """Raw hash fields of many jobs, ``batch_size`` jobs per call: per id, the values of ``fields`` in
        order (bytes as Redis holds them, None where absent; all None for a job that is gone or whose key
        is not a hash).

        For readers that need a few fields of very many jobs (``jobs_frame``, widgets) without parsing
        whole jobs or moving stack traces and logs over the wire. ``plain`` reads with pipelined HMGETs
        instead of a script: what a ``+@read`` ACL user may run.
        """
        return self._runner.drive(ops.get_job_fields(self.keys, ids, fields, batch_size, plain))

    def get_jobs(self, types: str | Sequence[str], start: int = 0, end: int = -1, asc: bool = False) -> list[Job]:
        """Jobs of the given states (Node's ``getJobs``); jobs removed meanwhile are skipped. A job another
        program damaged is returned too, its ``damaged`` saying why (one listed in two of the states is
        returned twice, as Node does, and so marked)."""
        return [Job(self, record) for record in self._runner.drive(ops.get_jobs(self.keys, types, start, end,
                                                                                  asc, now_ms()))]

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
        return self._runner.read(reads.job_logs(self.keys, str(job_id), start, end, asc))

    def get_count_per_priority(self, priorities: Iterable[int]) -> dict[int, int]:
        """Waiting jobs per priority (0 = jobs without a priority)."""
        return self._runner.drive(ops.count_per_priority(self.keys, priorities))

    def get_workers(self) -> list[dict[str, str]]:
        """Connected workers (Node's ``getWorkers``): clients named ``prefix:base64(queue name)``.

        On a Redis Cluster every master is asked: a Node worker names its connection to a random master
        (ioredis sends CLIENT SETNAME to any node), where Node's own getWorkers, asking one random master,
        finds it only by luck.
        """
        return reads.workers_in(self.server.client_list(), self.keys)

    # --- for operators' tools ----------------------------------------------------------------------------
    def exists(self) -> bool:
        """True when Redis holds any key of this queue (none: a mistyped name or prefix, or another Redis)."""
        return self._runner.drive(ops.exists(self.keys, _PRESENCE_KEYS))

    def get_lock_owner(self, job_id: str | int) -> str | None:
        """The token of the worker holding a job's lock, or None when the job is not locked."""
        return self._runner.read(reads.lock_owner(self.keys, str(job_id)))

    def get_metrics(self, type: str, start: int = 0, end: int = -1) -> Metrics:
        """Bull's per-minute metrics of ``completed`` or ``failed`` jobs (Node's ``getMetrics``)."""
        return self.get_metrics_by_types([type], start, end)[type]

    def get_metrics_by_types(self, types: str | Sequence[str] = METRICS_TYPES, start: int = 0, end: int = -1
                             ) -> dict[str, Metrics]:
        """``get_metrics`` of several types (default: completed and failed) in one round trip, keyed by type."""
        if not types:
            return {}
        return self._runner.read(reads.metrics(self.keys, types, start, end))

    def get_stats(self, finished_after: Mapping[str, float] | None = None, *, limit: int = 1000) -> QueueStats:
        """What a monitor shows of the queue (``bullpy.exporter``), in at most two round trips whatever its size.

        Counts (as ``get_job_counts()``), the pause flag, Bull's metrics counts, when the longest-waiting job
        at either end of the wait list became ready, and, per state in ``finished_after`` (``completed``,
        ``failed``: an epoch-ms score), the jobs that finished after it (newest first, at most ``limit``) with
        their processing and waiting times, and how many there were in all. Reads only, no script: it answers
        a read-only ACL user, and over ``maxmemory`` (MULTI refused) it reads with a plain pipeline.
        """
        return self._runner.drive(stats.get_stats(self.keys, finished_after, limit))

    def count_workers(self, clients: Sequence[Mapping[str, str]] | None = None) -> int | None:
        """How many workers are connected (those ``get_workers`` lists), None where CLIENT LIST is refused.

        ``clients``: a ``CLIENT LIST`` already read (``queue.server.clients()``), to count the workers of many
        queues of one server from one read.
        """
        if clients is None:
            clients = self.server.clients()
        return None if clients is None else len(reads.workers_in(clients, self.keys))

    def chunk_writer(self, *, idempotent: bool, total: int, retry: RetryPolicy | None = None, name: str | None = None,
                     row_options: Sequence[str] = (), **options: Any) -> ChunkWriter:
        """``add_frame``'s writer: adds chunks of jobs that share ``name`` and ``options`` (validated now, as
        ``add`` would) in order, pipelined, through Redis restarts and failovers (see ``bullpy._loading``);
        ``row_options`` name the options each row gives its own value of (``job_id``, ``delay``,
        ``priority``, ``attempts``); ``idempotent`` when the jobs carry ids; close it when done."""
        from ._core.rows import row_template
        from ._loading import ChunkWriter

        template = row_template(name, options, defaults=self.default_job_options,
                                known_backoffs=self.backoff_strategies, row_options=row_options)
        return ChunkWriter(self, idempotent=idempotent, total=total, policy=retry, template=template)


def find_queues(redis: str | _redis.Redis | Any | None = None, prefix: str = "bull", *,
                cluster: bool | None = None) -> list[str]:
    """Names of the Bull queues under ``prefix`` on a Redis, found with SCAN (never KEYS); on a Redis Cluster
    (``cluster=True`` with a node's URL, or a ``RedisCluster``) on every master.

    Every queue that ever held a job has its id counter ``prefix:<name>:id`` (Bull's addJob increments
    it even for custom job ids), so that key is what is looked for.
    """
    pattern = ops.queue_id_pattern(prefix)
    target = connection.resolve_cluster(redis) if connection.wants_cluster(redis, cluster) else connection.resolve(redis)
    names: set[str] = set()
    for node in connection.masters(target):
        with _refusals.unavailable_as_error(node):
            for key in node.scan_iter(pattern, count=1000):
                names.add(ops.queue_name_of(key, prefix))
    return sorted(names)
