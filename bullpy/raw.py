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

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis as _redis

from . import _refusals, connection
from . import retry as _retry
from ._core import raw_scripts, scripts
from ._core.jobhash import read_job_hash
from ._core.keys import check_job_id
from ._core.raw_scripts import Imported, ImportJob, ImportRow, RawJob
from ._facade import ScriptRunner
from ._import_stream import ExistsCounter, ImportStream, Packed, PackedImport, replies
from ._raw_fields import FieldBatch, reply_texts
from ._raw_import import ImportWrites
from .job import Job
from .utils import now_ms, text

if TYPE_CHECKING:
    from .queue import Queue

__all__ = ["LIST_STATES", "METRICS_KEYS", "ZSET_STATES", "ExistsCounter", "FieldBatch", "HashBatch", "ImportJob", "ImportRow",
           "Imported", "ImportStream", "Packed", "PackedImport", "RawJob", "RawQueue", "check_job_id"]

T = TypeVar("T")

try:
    from hiredis import pack_command as _pack_command
except ImportError:  # pragma: no cover - hiredis comes with redis[hiredis]
    _pack_command = None  # type: ignore[assignment]

#: The states held in lists (read by position) and in sorted sets (read by score).
LIST_STATES = raw_scripts.LIST_STATES
ZSET_STATES = raw_scripts.ZSET_STATES
#: The queue's metrics keys, as ``metrics()`` names them.
METRICS_KEYS = raw_scripts.METRICS_KEYS
_SCORED_KEYS = frozenset({*ZSET_STATES, "priority", "repeat"})
# check_job_id(job_id) -> job_id, else ValueError: refuses an id that would collide with the queue's own keys
# (as ``add(job_id=...)`` does); for raw jobs that arrive from elsewhere (an export file).


@dataclass(frozen=True)
class HashBatch:
    """A batch of jobs of one state with their whole hashes (``RawQueue.read_hashes``), read in one atomic
    step: the ids in reading order and, per position, the hash as Redis holds it (field, value, ...; ``[]``
    when the id has no hash), its zset score, its priority, its log rows and its debounce ttl. ``not_hash``:
    positions whose key is not a hash (Redis' refusal), never read."""

    state: str
    ids: list[str]
    hashes: list[list[bytes]]
    scores: Sequence[float] | None = None             # delayed/completed/failed: the zset scores
    priorities: Sequence[float | None] | None = None  # wait/paused: the priority zset scores, where there are
    logs: Sequence[Sequence[bytes]] | None = None     # None: no job of the batch has log rows
    debounce_ttls: Mapping[int, int] = field(default_factory=dict)  # position -> PTTL of de:<deid> naming it
    not_hash: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, state: str, rows: Sequence[RawJob]) -> HashBatch:
        """The batch as read_jobs.lua read it (``read_list``/``read_zset`` with ``full=True``)."""
        hashes = [[v for pair in row.fields.items() for v in pair] for row in rows]
        logs = [list(row.logs) for row in rows]
        return cls(
            state, [row.id for row in rows], hashes,
            [row.score or 0.0 for row in rows] if state in ZSET_STATES else None,
            [row.priority for row in rows] if state in ("wait", "paused") else None,
            logs if any(logs) else None,
            {i: row.debounce_ttl for i, row in enumerate(rows) if row.debounce_ttl is not None},
            {i: "the key is not a hash" for i, row in enumerate(rows) if row.not_hash},
        )


def _window(listing: list[Any], listed: bool) -> tuple[list[bytes], list[float] | None]:
    """Ids (and scores) of an LRANGE or ZRANGEBYSCORE ... WITHSCORES reply (RESP2: flat; RESP3: pairs)."""
    if listed:
        return listing, None
    if listing and isinstance(listing[0], list):
        return [pair[0] for pair in listing], [float(pair[1]) for pair in listing]
    return listing[0::2], [float(x) for x in listing[1::2]]


class RawQueue(ImportWrites):
    """The jobs of one queue as Redis holds them; ``queue.raw`` gives one."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._client: _redis.Redis | None = None
        self._runner: ScriptRunner | None = None
        self._no_multi = False  # read_hashes' transaction was refused: read with the script from then on
        self._resp2_client: _redis.Redis | None = None
        self._resp2_pool: _redis.ConnectionPool | None = None

    # --- plumbing ---------------------------------------------------------------------------------------
    def _bytes(self) -> tuple[_redis.Redis, ScriptRunner]:
        if self._client is None or self._runner is None:
            self._client = connection.bytes_client(self.queue.client)
            if self._client is self.queue.client:
                self._runner = self.queue._runner
            else:
                self._runner = ScriptRunner(self._client, self.queue.keys)
                self._runner.write_refusal = self.queue._runner.write_refusal
        return self._client, self._runner

    def _resp2(self) -> _redis.Redis:
        """A bytes client speaking RESP2 (``read_hashes``: hiredis builds a RESP3 map as a dict, which then has to
        be flattened again; a flat RESP2 array is what the export file holds). A third pool only if needed."""
        client = self._bytes()[0]
        pool = client.connection_pool
        if str(pool.connection_kwargs.get("protocol")) == "2":  # unset: redis-py 8 speaks RESP3
            return client
        if type(pool) not in (_redis.ConnectionPool, _redis.BlockingConnectionPool):
            return client  # a Sentinel's pool (its connections ask it for the master): read as RESP3
        if self._resp2_client is None:
            # redis-py 8's maintenance notifications (and what they add to the kwargs) need RESP3: left out.
            try:
                self._resp2_client = connection.client_like(client, drop=("maint_notifications", "orig_"),
                                                            protocol=2)
            except (_redis.RedisError, TypeError, ValueError):
                return client  # read as RESP3: maps are flattened again
            self._resp2_pool = self._resp2_client.connection_pool
        return self._resp2_client

    def _run(self, call: scripts.Call[T]) -> T:
        return self._bytes()[1].run(call)

    def _run_many_args(self, call: scripts.Call[T]) -> T:
        """``_run`` for a script with very many arguments (a batch of job hashes): the command is packed by
        hiredis in one step, where redis-py would first look at every argument in Python."""
        return self.send(self._pack(call))

    def _pack(self, call: scripts.Call[T]) -> Packed[T]:
        if _pack_command is None:
            return Packed(call, None)
        script = self._bytes()[1].script(call.script)
        return Packed(call, _pack_command(("EVALSHA", script.sha, len(call.keys), *call.keys, *call.args)))

    def send(self, packed: Packed[T]) -> T:
        """Run a script call packed beforehand (``pack_import``); its parsed reply."""
        call = packed.call
        if packed.command is None:
            return self._run(call)
        client, runner = self._bytes()
        for attempt in range(2):
            conn = self._connection(client)
            clean = False
            try:
                with _refusals.unavailable_as_error(client, keys=self.queue.keys):
                    conn.send_packed_command([packed.command])
                    try:
                        reply = conn.read_response()
                    except _redis.exceptions.NoScriptError:
                        if attempt:
                            raise
                        clean = True
                        client.script_load(runner.script(call.script).script)  # Redis restarted or flushed them
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
        if self._client is not None and self._client is not self.queue.client:
            connection.close_client(self._client)
        self._client = self._runner = None
        if self._resp2_pool is not None and self._resp2_client is not None:
            self._resp2_client.close()
            self._resp2_pool.disconnect()
        self._resp2_client = self._resp2_pool = None

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
        return self._run(raw_scripts.read_jobs_in_list(self.queue.keys, state, start, count, full, locks))

    def read_zset(self, state: str, min_score: float, offset: int, count: int, *, full: bool = True,
                  locks: bool = True) -> list[RawJob]:
        """Up to ``count`` jobs of a sorted-set state (delayed, completed, failed) scored ``min_score`` or more,
        lowest first, past the first ``offset`` of them (a cursor that survives ties), read atomically."""
        if state not in ZSET_STATES:
            raise ValueError(f"read_zset reads {', '.join(ZSET_STATES)}, not {state!r}")
        return self._run(raw_scripts.read_jobs_in_zset(self.queue.keys, state, min_score, offset, count, full, locks))

    def read_jobs(self, ids: Sequence[str], *, full: bool = True) -> list[RawJob]:
        """These jobs, each with the state it is in now (None: in no state), read atomically. For a few ids:
        each is looked for in the lists by position (LPOS), so a long list makes it slow; see ``hashes``."""
        return self._run(raw_scripts.read_jobs_by_id(self.queue.keys, [str(i) for i in ids], full))

    def read_hashes(self, state: str, count: int, *, start: int = 0, min_score: float = -math.inf,
                    offset: int = 0) -> HashBatch:
        """Up to ``count`` jobs of one state with their whole hashes, as export writes them, read atomically: a
        list state from index ``start`` counted from the tail (as ``read_list``), a sorted-set state scored
        ``min_score`` or more past the first ``offset`` of them (as ``read_zset``). Locks are not read.

        One MULTI/EXEC reads the range, the priorities and every job's HGETALL (far less Redis time than a
        script that builds the same reply), after a plain read of the range that names the jobs; it is
        repeated if the range changed in between. A batch with log rows or a debounce id, or a server that
        refuses the transaction, is read by lua/read_jobs.lua instead (``read_list``/``read_zset``).
        """
        if state not in raw_scripts.STATE_INDEX:
            raise ValueError(f"unknown job state {state!r}")
        listed = state in LIST_STATES

        def by_script() -> HashBatch:
            rows = (self.read_list(state, start, count, locks=False) if listed
                    else self.read_zset(state, min_score, offset, count, locks=False))
            return HashBatch.from_rows(state, rows)

        if count < 1:
            return HashBatch(state, [], [])
        if self._no_multi or _pack_command is None:
            return by_script()
        client = self._resp2()
        keys = self.queue.keys
        key = keys.state(state)
        window: tuple[Any, ...] = (("LRANGE", key, start, start + count - 1) if listed else
                                   ("ZRANGEBYSCORE", key, raw_scripts.score_arg(min_score), "+inf", "WITHSCORES",
                                    "LIMIT", offset, count))
        base = keys.job("").encode()
        prioritised = state in ("wait", "paused")
        conn = self._connection(client)
        clean = False
        try:
            with _refusals.unavailable_as_error(client, keys=keys):
                conn.send_packed_command([_pack_command(window)])
                listing = conn.read_response()
                for _ in range(3):
                    ids, scores = _window(listing, listed)
                    if not ids:
                        clean = True
                        return HashBatch(state, [], [])
                    keys_ = [base + i for i in ids]
                    commands = [_pack_command(("MULTI",)), _pack_command(window)]
                    if prioritised:
                        commands.append(_pack_command(cast(Any, ("ZMSCORE", keys("priority"), *ids))))
                    commands.append(_pack_command(cast(Any, ("EXISTS", *[k + b":logs" for k in keys_]))))
                    # HGETALL per job, packed here: hiredis' pack_command per command would cost more than Redis.
                    commands.append(b"".join([b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%b\r\n" % (len(k), k) for k in keys_]))
                    commands.append(_pack_command(("EXEC",)))
                    conn.send_packed_command([b"".join(commands)])
                    # +OK, +QUEUED per command, then EXEC's reply (an error if a command was refused when
                    # queued: ZMSCORE before Redis 6.2, an ACL, keys in other cluster slots).
                    reply = replies(conn, len(commands) + len(ids) - 1)[-1]
                    if not isinstance(reply, list):
                        clean = True
                        self._no_multi = True
                        return by_script()
                    if reply[0] == listing:
                        break
                    listing = reply[0]  # the range moved between the two reads: read it again
                else:
                    clean = True
                    return by_script()
            clean = True
        finally:
            if not clean:
                conn.disconnect()
            client.connection_pool.release(conn)
        at = 2 if prioritised else 1
        hashes: list[Any] = reply[at + 1:]
        not_hash: dict[int, str] = {}
        for i, h in enumerate(hashes):
            if isinstance(h, dict):  # RESP3: a map, in the hash's own order
                hashes[i] = h = list(itertools.chain.from_iterable(h.items()))
            elif not isinstance(h, list):
                not_hash[i] = str(h)
                hashes[i] = []
                continue
            if b"deid" in h:
                return by_script()  # a debounce key: the script reads its ttl with the hash
        if reply[at]:
            return by_script()  # log rows: the script reads them with the hashes
        priorities = [None if p is None else float(p) for p in reply[1]] if prioritised else None
        return HashBatch(state, reply_texts(ids), hashes, scores, priorities, None, {}, not_hash)

    def hashes(self, ids: Sequence[str]) -> list[dict[bytes, bytes] | None]:
        """The job hashes exactly as Redis holds them (``{}`` for a job that is gone, None where the job's key
        holds another type, which another program wrote), in one round trip."""
        keys = self.queue.keys
        client = self._bytes()[0]
        with _refusals.unavailable_as_error(client, keys=self.queue.keys), client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(keys.job(str(job_id)))
            replies = pipe.execute(raise_on_error=False)
        out: list[dict[bytes, bytes] | None] = []
        for reply in replies:
            if isinstance(reply, Exception):
                if _refusals.wrong_type_detail(reply) is None:
                    raise reply
                out.append(None)
            else:
                out.append(dict(reply))
        return out

    def job(self, job_id: str, fields: Mapping[bytes, bytes]) -> Job:
        """A raw job hash as ``queue.get_job`` returns the job: one another program damaged is a Job whose
        ``damaged`` says why (Node's reading where Node can read it)."""
        return Job(self.queue, read_job_hash(str(job_id), fields, now_ms()))

    def job_presence(self, ids: Sequence[str], *, plain: bool = False) -> list[tuple[bool, bool]]:
        """Per id, in one call (lua/job_presence.lua): (the job hash exists, a worker holds its lock).

        ``plain`` asks with pipelined EXISTS instead of a script: what a ``+@read`` ACL user may run.
        """
        if not ids:
            return []
        if not plain:
            return self._run_many_args(raw_scripts.job_presence(self.queue.keys, [str(i) for i in ids]))
        client = self._bytes()[0]
        keys = self.queue.keys
        with _refusals.unavailable_as_error(client, keys=self.queue.keys), client.pipeline(transaction=False) as pipe:
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
        with _refusals.unavailable_as_error(client, keys=self.queue.keys):
            rows: list[tuple[Any, float]] = client.zrange(self.queue.keys(name), start, end, withscores=True)  # type: ignore[assignment]
        return [(text(member), float(score)) for member, score in rows]

    def has_repeatables(self, repeat_keys: Sequence[str]) -> list[bool]:
        """Per repeat key (as ``get_repeatable_jobs`` shows it), whether the queue has that definition."""
        client = self._bytes()[0]
        with _refusals.unavailable_as_error(client, keys=self.queue.keys), client.pipeline(transaction=False) as pipe:
            for key in repeat_keys:
                pipe.zscore(self.queue.keys("repeat"), key)
            return [reply is not None for reply in pipe.execute()]

    def id_counter(self) -> int | None:
        """The job-id counter (the last automatic id), or None when there is none or it is not a number."""
        client = self._bytes()[0]
        with _refusals.unavailable_as_error(client, keys=self.queue.keys):
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
        with _refusals.unavailable_as_error(client, keys=self.queue.keys), client.pipeline(transaction=True) as pipe:
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
        with _refusals.unavailable_as_error(client, keys=self.queue.keys):
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
        return self.import_rows([job.row() for job in jobs], on_conflict=on_conflict, id_floor=id_floor)

    def import_queue(self, *, id_floor: int | None = None, replace: bool = False,
                     repeatables: Sequence[tuple[str, float]] = (),
                     metrics: Mapping[str, Sequence[bytes]] | None = None) -> tuple[int, int, int]:
        """Raise the id counter to ``id_floor``, add repeatable definitions (key, next-run score; ``replace``
        overwrites the score of one the queue has) and write the metrics keys the queue does not have.
        Returns (definitions added, definitions already there, metrics keys written)."""
        unknown = set(metrics or {}) - set(METRICS_KEYS)
        if unknown:
            raise ValueError(f"unknown metrics keys {sorted(unknown)}; use some of {', '.join(METRICS_KEYS)}")
        return self._run(raw_scripts.import_queue(self.queue.keys, id_floor, replace, repeatables, metrics or {}))

    def remove_if_unchanged(self, jobs: Sequence[tuple[str, str, Mapping[bytes, bytes]]]) -> list[str]:
        """Remove jobs (id, the state they were read in, the hash read then) each only if it is still in that
        state, unlocked, and its lifecycle fields are as read (``raw_scripts.FINGERPRINT_FIELDS``): the rule
        behind every move. One status per job: ``"removed"``, ``"locked"`` or ``"changed"`` (moved on, gone)."""
        for _, state, _ in jobs:
            if state not in raw_scripts.STATE_INDEX:
                raise ValueError(f"unknown job state {state!r}")
        return self._run(raw_scripts.remove_moved(self.queue.keys, jobs)) if jobs else []

    def requeue(self, jobs: Sequence[tuple[str, str, bool]], *, now: int | None = None) -> list[str]:
        """Move jobs (id, the state they are in, lifo) back to waiting as Bull would: failed and completed ones
        as ``job.retry()``, delayed ones as ``promote()``, unlocked active ones to the head. One status per
        job: ``"moved"``, ``"waiting"`` (already), ``"locked"`` or ``"changed"`` (no longer in that state)."""
        for _, state, _ in jobs:
            if state not in raw_scripts.STATE_INDEX:
                raise ValueError(f"unknown job state {state!r}")
        if not jobs:
            return []
        return self._run(raw_scripts.requeue_jobs(self.queue.keys, now_ms() if now is None else now, jobs))

    def remove_repeat_entries(self, repeat_keys: Sequence[str]) -> int:
        """Take these definitions out of the ``repeat`` zset only (their iteration jobs stay); how many were there."""
        if not repeat_keys:
            return 0
        client = self._bytes()[0]
        with _refusals.unavailable_as_error(client, keys=self.queue.keys):
            return int(client.zrem(self.queue.keys("repeat"), *repeat_keys))
