"""A queue's jobs as Redis holds them (``queue.raw``): raw hashes, logs, scores and locks, read and written in bulk.

The facade under export, import, copy, move (``bullpy.transfer``), the BullMQ migration (``bullpy.migrate``) and
``jobs_frame`` (``iter_state_fields``: SORT ... GET, or pipelined HMGETs): each method runs one of bullpy's own
scripts (``lua/read_jobs.lua``, ``import_jobs.lua``, ``import_queue.lua``, ``job_presence.lua``,
``remove_moved.lua``, ``requeue_jobs.lua``) or plain commands, on the queue's keys. Job hashes travel as
bytes, never decoded or re-encoded: when the queue's client decodes replies, a second client on the same
server and db that does not is opened on first use. Use it as a context manager (or call ``close()``)::

    with queue.raw as raw:
        rows = raw.read_jobs(["1", "2"])
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import redis as _redis

from . import connection
from . import retry as _retry
from ._core import scripts
from ._core.jobhash import parse_job_hash
from ._core.keys import check_job_id
from ._core.scripts import Imported, ImportJob, RawJob
from ._facade import ScriptRunner
from .job import Job
from .utils import now_ms, text

if TYPE_CHECKING:
    from .queue import Queue

__all__ = ["LIST_STATES", "METRICS_KEYS", "ZSET_STATES", "FieldBatch", "ImportJob", "Imported", "RawJob",
           "RawQueue", "check_job_id"]

T = TypeVar("T")

try:
    from hiredis import pack_command as _pack_command
except ImportError:  # pragma: no cover - hiredis comes with redis[hiredis]
    _pack_command = None  # type: ignore[assignment]

#: The states held in lists (read by position) and in sorted sets (read by score).
LIST_STATES = scripts.LIST_STATES
ZSET_STATES = scripts.ZSET_STATES
#: The queue's metrics keys, as ``metrics()`` names them.
METRICS_KEYS = scripts.METRICS_KEYS
_SCORED_KEYS = frozenset({*ZSET_STATES, "priority", "repeat"})
# check_job_id(job_id) -> job_id, else ValueError: refuses an id that would collide with the queue's own keys
# (as ``add(job_id=...)`` does); for raw jobs that arrive from elsewhere (an export file).


@dataclass(frozen=True)
class FieldBatch:
    """Some hash fields of a batch of jobs (``RawQueue.iter_state_fields``): the ids in reading order, and per
    field the values, one per job, as Redis holds them (None where absent; None throughout for a job whose
    hash is gone). ``refused``: jobs Redis would not read (position -> its error), such as a key that is not
    a hash. ``atomic``: the ids and fields were read in one command, so a job without fields was listed with
    no hash (damaged), not removed between two reads."""

    ids: list[str]
    columns: list[Sequence[bytes | None]]
    refused: Mapping[int, str] = field(default_factory=dict)
    atomic: bool = False


def _texts(items: Sequence[bytes]) -> list[str]:
    """Reply items as text in one decode (bytes that are not UTF-8 replaced, as ``text`` does)."""
    joined = b"\x00".join(items)
    if joined.count(b"\x00") == len(items) - 1:
        return joined.decode("utf-8", "replace").split("\x00") if items else []
    return [text(i) for i in items]


class RawQueue:
    """The jobs of one queue as Redis holds them; ``queue.raw`` gives one."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._client: _redis.Redis | None = None
        self._runner: ScriptRunner | None = None
        self._pool: _redis.ConnectionPool | None = None

    # --- plumbing ---------------------------------------------------------------------------------------
    def _bytes(self) -> tuple[_redis.Redis, ScriptRunner]:
        if self._client is None or self._runner is None:
            client = self.queue.client
            pool = client.connection_pool
            kwargs = dict(pool.connection_kwargs)
            if not kwargs.get("decode_responses"):
                self._client, self._runner = client, self.queue._runner
            else:
                kwargs["decode_responses"] = False
                self._pool = _redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
                self._client = _redis.Redis(connection_pool=self._pool)
                self._runner = ScriptRunner(self._client, self.queue.keys)
                self._runner.write_refusal = self.queue._runner.write_refusal
        return self._client, self._runner

    def _run(self, call: scripts.Call[T]) -> T:
        return self._bytes()[1].run(call)

    def _run_many_args(self, call: scripts.Call[T]) -> T:
        """``_run`` for a script with very many arguments (a batch of job hashes): the command is packed by
        hiredis in one step, where redis-py would first look at every argument in Python."""
        if _pack_command is None:
            return self._run(call)
        client, runner = self._bytes()
        script = runner.script(call.script)
        packed = _pack_command(("EVALSHA", script.sha, len(call.keys), *call.keys, *call.args))
        for attempt in range(2):
            conn = self._connection(client)
            clean = False
            try:
                with connection.unavailable_as_error(client, keys=self.queue.keys):
                    conn.send_packed_command([packed])
                    try:
                        reply = conn.read_response()
                    except _redis.exceptions.NoScriptError:
                        if attempt:
                            raise
                        clean = True
                        client.script_load(script.script)  # Redis restarted or flushed its scripts
                        continue
                clean = True
                return call.parse(reply)
            finally:
                if not clean:
                    conn.disconnect()
                client.connection_pool.release(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Release the second connection pool, if one was opened (the queue's own stays open)."""
        if self._pool is not None and self._client is not None:
            self._client.close()
            self._pool.disconnect()
        self._client = self._runner = self._pool = None

    def __enter__(self) -> RawQueue:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RawQueue {self.queue.prefix}:{self.queue.name}>"

    def retried(self, fn: Callable[[], T], *, what: str, policy: _retry.RetryPolicy | None = None) -> T:
        """Run ``fn`` (reads, safe to repeat) retrying through a Redis restart or failover under ``policy``
        (default ``bullpy.retry.DEFAULT_POLICY``); when it runs out, ``RedisUnavailable`` names ``what``."""
        return _retry.call(fn, client=self._bytes()[0], what=what, policy=policy)

    # --- reading jobs -----------------------------------------------------------------------------------
    def read_list(self, state: str, start: int, count: int, *, full: bool = True, locks: bool = True) -> list[RawJob]:
        """Up to ``count`` jobs of a list state (active, wait, paused) from index ``start`` counted from the
        tail (the LPUSH end), read atomically; ``full=False`` leaves out hashes, logs and debounce ttls,
        ``locks=False`` the locks (every job then reads as unlocked; one key lookup less per job)."""
        if state not in LIST_STATES:
            raise ValueError(f"read_list reads {', '.join(LIST_STATES)}, not {state!r}")
        return self._run(scripts.read_jobs_in_list(self.queue.keys, state, start, count, full, locks))

    def read_zset(self, state: str, min_score: float, offset: int, count: int, *, full: bool = True,
                  locks: bool = True) -> list[RawJob]:
        """Up to ``count`` jobs of a sorted-set state (delayed, completed, failed) scored ``min_score`` or more,
        lowest first, past the first ``offset`` of them (a cursor that survives ties), read atomically."""
        if state not in ZSET_STATES:
            raise ValueError(f"read_zset reads {', '.join(ZSET_STATES)}, not {state!r}")
        return self._run(scripts.read_jobs_in_zset(self.queue.keys, state, min_score, offset, count, full, locks))

    def read_jobs(self, ids: Sequence[str], *, full: bool = True) -> list[RawJob]:
        """These jobs, each with the state it is in now (None: in no state), read atomically. For a few ids:
        each is looked for in the lists by position (LPOS), so a long list makes it slow; see ``hashes``."""
        return self._run(scripts.read_jobs_by_id(self.queue.keys, [str(i) for i in ids], full))

    def iter_state_fields(self, state: str, fields: Sequence[str], *, asc: bool, start: int = 0, stop: int = -1,
                          batch_size: int = 1000) -> Generator[FieldBatch, None, None]:
        """Some hash fields of the jobs of one state, ``batch_size`` jobs at a time, positions ``start`` to
        ``stop`` (inclusive; -1: the end; negative positions count from the end) in reading order: ``asc``
        is ``get_ranges``' (lists from the head, sorted sets lowest first).

        Each batch is one ``SORT_RO <state> BY nosort LIMIT ... GET # GET <job>->field ...``: Redis walks the
        range and reads the fields in C, in one reply; the next batch is requested before this one is handed
        out, so Redis reads it while the caller works. Where Redis refuses that (before 7.0 in a cluster, an
        ACL user without read access to every key, a prefix with ``*``), the ids are read by range and the
        fields by pipelined HMGETs. Batches are read as they are reached, not as one snapshot.
        """
        state = "wait" if state == "waiting" else state
        if state not in scripts.STATE_INDEX:
            raise ValueError(f"unknown job state {state!r}")
        if not fields:
            raise ValueError("fields must name at least one hash field")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size!r}")
        client = self._bytes()[0]
        key, base = self.queue.keys.state(state), self.queue.keys.job("")
        if start < 0 or stop < -1:
            with connection.unavailable_as_error(client, keys=self.queue.keys):
                total = int(client.llen(key) if state in LIST_STATES else client.zcard(key))
            start = max(start + total, 0) if start < 0 else start
            if stop < -1:
                stop += total
                if stop < 0:
                    return
        if stop != -1 and stop < start:
            return
        # BY nosort on a list walks it from the left (the tail, where Bull pushes) or, with DESC, from the head.
        desc = asc if state in LIST_STATES else not asc
        gets = ["GET", "#"] + [x for f in fields for x in ("GET", f"{base}*->{f}")]
        sort = ["SORT_RO", key, "BY", "nosort", "LIMIT"]
        tail = ["DESC", *gets] if desc else gets

        def page(position: int) -> int:
            return batch_size if stop == -1 else min(batch_size, stop - position + 1)

        first = None
        if "*" not in base:
            with connection.unavailable_as_error(client, keys=self.queue.keys):
                for command in ("SORT_RO", "SORT"):  # SORT_RO: Redis 7.0 and later; SORT is a write command
                    try:
                        first = client.execute_command(command, *sort[1:], start, page(start), *tail)  # type: ignore[no-untyped-call]
                        sort[0] = command
                        break
                    except _redis.ResponseError as exc:
                        if "unknown command" not in str(exc).lower():
                            break
        if first is None:
            yield from self._hmget_batches(state, fields, asc, start, stop, batch_size)
            return
        width = len(fields) + 1
        conn = self._connection(client)
        in_flight: collections.deque[int] = collections.deque()  # positions asked for, replies not read yet
        reply, position = first, start
        asked = start + len(first) // width  # where the next request starts (every page full so far)
        try:
            while True:
                n = len(reply) // width
                last = n < page(position) or (stop != -1 and position + n > stop)
                # Keep two requests ahead, so Redis always has the next batch to read while this one is
                # decoded (a request past the end costs Redis an empty reply).
                while not last and len(in_flight) < 2 and (stop == -1 or asked <= stop):
                    with connection.unavailable_as_error(client, keys=self.queue.keys):
                        conn.send_command(*sort, asked, page(asked), *tail)
                    in_flight.append(asked)
                    asked += page(asked)
                if n:
                    yield FieldBatch(_texts(reply[0::width]), [reply[k::width] for k in range(1, width)], atomic=True)
                if last or not in_flight:
                    break
                with connection.unavailable_as_error(client, keys=self.queue.keys):
                    reply = conn.read_response()
                position = in_flight.popleft()
            with connection.unavailable_as_error(client, keys=self.queue.keys):
                while in_flight:  # requests past the end: empty replies
                    conn.read_response()
                    in_flight.popleft()
        finally:
            if in_flight:
                conn.disconnect()  # a reply is still on its way: never hand it to the connection's next user
            client.connection_pool.release(conn)

    def _hmget_batches(self, state: str, fields: Sequence[str], asc: bool, start: int, stop: int,
                       batch_size: int) -> Generator[FieldBatch, None, None]:
        """iter_state_fields without SORT: ids by range, then one pipeline of HMGETs per batch, packed here
        (redis-py's per-argument packing would cost more than Redis) and sent ahead as SORT is."""
        client = self._bytes()[0]
        head = b"*%d\r\n$5\r\nHMGET\r\n" % (len(fields) + 2)
        tail = b"".join(b"$%d\r\n%b\r\n" % (len(f), f) for f in (str(f).encode() for f in fields))
        base = self.queue.keys.job("").encode()

        def windows() -> Generator[list[str], None, None]:
            position = start
            while stop == -1 or position <= stop:
                last = position + batch_size - 1 if stop == -1 else min(position + batch_size - 1, stop)
                ids = self.queue.get_ranges([state], position, last, asc=asc, plain=True)
                if ids:
                    yield ids
                if len(ids) < last - position + 1:
                    return
                position = last + 1

        conn = self._connection(client)
        pending: list[str] | None = None
        clean = False
        try:
            for ids in itertools.chain(windows(), [None]):
                if ids:
                    keys = [base + i.encode() for i in ids]
                    with connection.unavailable_as_error(client, keys=self.queue.keys):
                        conn.send_packed_command([b"".join([b"%b$%d\r\n%b\r\n%b" % (head, len(k), k, tail)
                                                            for k in keys])])
                if pending is not None:
                    rows: list[Any] = []
                    refused: dict[int, str] = {}
                    with connection.unavailable_as_error(client, keys=self.queue.keys):
                        for i in range(len(pending)):
                            try:
                                rows.append(conn.read_response())
                            except _redis.ResponseError as exc:  # this job only; the other replies follow
                                rows.append([None] * len(fields))
                                refused[i] = str(exc)
                    yield FieldBatch(pending, [list(c) for c in zip(*rows)], refused)
                pending = ids or None
            clean = True
        finally:
            if not clean:
                conn.disconnect()
            client.connection_pool.release(conn)

    @staticmethod
    def _connection(client: _redis.Redis) -> Any:
        pool = client.connection_pool
        with connection.unavailable_as_error(client):
            try:
                return pool.get_connection()
            except TypeError:  # redis-py before 5.3 wants a command name
                return pool.get_connection("SORT")

    def hashes(self, ids: Sequence[str]) -> list[dict[bytes, bytes]]:
        """The job hashes exactly as Redis holds them (``{}`` for a job that is gone), in one round trip."""
        keys = self.queue.keys
        client = self._bytes()[0]
        with connection.unavailable_as_error(client, keys=self.queue.keys), client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(keys.job(str(job_id)))
            return [dict(reply) for reply in pipe.execute()]

    def job(self, job_id: str, fields: Mapping[bytes, bytes]) -> Job:
        """A raw job hash as ``queue.get_job`` would return the job. Raises ValueError where Node could not
        read it (``opts`` or ``data`` not JSON)."""
        kwargs = self.queue.client.connection_pool.connection_kwargs
        decoded: Mapping[Any, Any] = fields
        if kwargs.get("decode_responses"):
            # As the queue's own client would hand them over (strict: bytes that are not UTF-8 raise).
            encoding, errors = kwargs.get("encoding", "utf-8"), kwargs.get("encoding_errors", "strict")
            decoded = {k.decode(encoding, errors): v.decode(encoding, errors) for k, v in fields.items()}
        return Job(self.queue, parse_job_hash(str(job_id), decoded, now_ms()))

    def job_presence(self, ids: Sequence[str], *, plain: bool = False) -> list[tuple[bool, bool]]:
        """Per id, in one call (lua/job_presence.lua): (the job hash exists, a worker holds its lock).

        ``plain`` asks with pipelined EXISTS instead of a script: what a ``+@read`` ACL user may run.
        """
        if not ids:
            return []
        if not plain:
            return self._run_many_args(scripts.job_presence(self.queue.keys, [str(i) for i in ids]))
        client = self._bytes()[0]
        keys = self.queue.keys
        with connection.unavailable_as_error(client, keys=self.queue.keys), client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.exists(keys.job(str(job_id)))
                pipe.exists(keys.lock(str(job_id)))
            replies = pipe.execute()
        return [(bool(replies[i]), bool(replies[i + 1])) for i in range(0, len(replies), 2)]

    def scores(self, name: str, start: int = 0, end: int = -1) -> list[tuple[str, float]]:
        """Members of one of the queue's sorted sets (delayed, completed, failed, priority, repeat) with their
        scores, lowest first (delayed: due*4096 + counter bits; completed/failed: finishedOn; repeat: next run)."""
        if name not in _SCORED_KEYS:
            raise ValueError(f"scores reads {', '.join(sorted(_SCORED_KEYS))}, not {name!r}")
        client = self._bytes()[0]
        with connection.unavailable_as_error(client, keys=self.queue.keys):
            rows: list[tuple[Any, float]] = client.zrange(self.queue.keys(name), start, end, withscores=True)  # type: ignore[assignment]
        return [(text(member), float(score)) for member, score in rows]

    def has_repeatables(self, repeat_keys: Sequence[str]) -> list[bool]:
        """Per repeat key (as ``get_repeatable_jobs`` shows it), whether the queue has that definition."""
        client = self._bytes()[0]
        with connection.unavailable_as_error(client, keys=self.queue.keys), client.pipeline(transaction=False) as pipe:
            for key in repeat_keys:
                pipe.zscore(self.queue.keys("repeat"), key)
            return [reply is not None for reply in pipe.execute()]

    def id_counter(self) -> int | None:
        """The job-id counter (the last automatic id), or None when there is none or it is not a number."""
        client = self._bytes()[0]
        with connection.unavailable_as_error(client, keys=self.queue.keys):
            value = client.get(self.queue.keys("id"))
        try:
            return None if value is None else int(value)
        except (TypeError, ValueError):
            return None

    def metrics(self) -> dict[str, tuple[bytes, ...]]:
        """The metrics keys that hold something, read atomically: hashes as field, value... and the data
        lists left to right, as bytes."""
        keys = self.queue.keys
        client = self._bytes()[0]
        with connection.unavailable_as_error(client, keys=self.queue.keys), client.pipeline(transaction=True) as pipe:
            for suffix in METRICS_KEYS:
                if suffix.endswith(":data"):
                    pipe.lrange(keys(suffix), 0, -1)
                else:
                    pipe.hgetall(keys(suffix))
            replies = pipe.execute()
        out: dict[str, tuple[bytes, ...]] = {}
        for suffix, reply in zip(METRICS_KEYS, replies):
            values = tuple(v for pair in reply.items() for v in pair) if isinstance(reply, dict) else tuple(reply)
            if values:
                out[suffix] = values
        return out

    def key_type(self, name: str) -> str:
        """The Redis type of the queue's key ``prefix:name:<name>`` ("none" when absent)."""
        client = self._bytes()[0]
        with connection.unavailable_as_error(client, keys=self.queue.keys):
            return text(client.type(self.queue.keys(name)))

    # --- writing jobs -----------------------------------------------------------------------------------
    def import_jobs(self, jobs: Sequence[ImportJob], *, on_conflict: str = "error",
                    id_floor: int | None = None) -> Imported:
        """Write jobs with their raw hashes and logs, all or nothing; the id counter is raised to ``id_floor``.

        ``on_conflict`` for a job hash that exists: ``"error"`` (write nothing, answer the ids), ``"skip"`` or
        ``"replace"`` (never a job a worker holds). Waiting jobs go to ``paused`` while the queue is paused.
        """
        if on_conflict not in ("error", "skip", "replace"):
            raise ValueError(f"on_conflict must be 'error', 'skip' or 'replace', got {on_conflict!r}")
        return self._run_many_args(scripts.import_jobs(self.queue.keys, on_conflict, id_floor, jobs))

    def import_queue(self, *, id_floor: int | None = None, replace: bool = False,
                     repeatables: Sequence[tuple[str, float]] = (),
                     metrics: Mapping[str, Sequence[bytes]] | None = None) -> tuple[int, int, int]:
        """Raise the id counter to ``id_floor``, add repeatable definitions (key, next-run score; ``replace``
        overwrites the score of one the queue has) and write the metrics keys the queue does not have.
        Returns (definitions added, definitions already there, metrics keys written)."""
        unknown = set(metrics or {}) - set(METRICS_KEYS)
        if unknown:
            raise ValueError(f"unknown metrics keys {sorted(unknown)}; use some of {', '.join(METRICS_KEYS)}")
        return self._run(scripts.import_queue(self.queue.keys, id_floor, replace, repeatables, metrics or {}))

    def remove_if_unchanged(self, jobs: Sequence[tuple[str, str, Mapping[bytes, bytes]]]) -> list[str]:
        """Remove jobs (id, the state they were read in, the hash read then) each only if it is still in that
        state, unlocked, and its lifecycle fields are as read (``scripts.FINGERPRINT_FIELDS``): the rule
        behind every move. One status per job: ``"removed"``, ``"locked"`` or ``"changed"`` (moved on, gone)."""
        for _, state, _ in jobs:
            if state not in scripts.STATE_INDEX:
                raise ValueError(f"unknown job state {state!r}")
        return self._run(scripts.remove_moved(self.queue.keys, jobs)) if jobs else []

    def requeue(self, jobs: Sequence[tuple[str, str, bool]], *, now: int | None = None) -> list[str]:
        """Move jobs (id, the state they are in, lifo) back to waiting as Bull would: failed and completed ones
        as ``job.retry()``, delayed ones as ``promote()``, unlocked active ones to the head. One status per
        job: ``"moved"``, ``"waiting"`` (already), ``"locked"`` or ``"changed"`` (no longer in that state)."""
        for _, state, _ in jobs:
            if state not in scripts.STATE_INDEX:
                raise ValueError(f"unknown job state {state!r}")
        if not jobs:
            return []
        return self._run(scripts.requeue_jobs(self.queue.keys, now_ms() if now is None else now, jobs))

    def remove_repeat_entries(self, repeat_keys: Sequence[str]) -> int:
        """Take these definitions out of the ``repeat`` zset only (their iteration jobs stay); how many were there."""
        if not repeat_keys:
            return 0
        client = self._bytes()[0]
        with connection.unavailable_as_error(client, keys=self.queue.keys):
            return int(client.zrem(self.queue.keys("repeat"), *repeat_keys))
