"""Export and import whole Bull queues, and copy or move jobs between queues or states.

The library layer under ``bullpy export``, ``bullpy import``, ``bullpy copy`` and ``bullpy move``.

An export file is a stream of msgpack records, written and read one at a time (never the whole queue
in memory), format ``bullpy-export`` version 1:

1. the header ``{"format": "bullpy-export", "version": 1, "queue", "prefix", "exported_at" (ms),
   "bullpy" (version), "states" (what was exported), "source" (host:port db, never a password)}``;
2. one ``{"t": "job", "id", "state", "hash", "logs", ...}`` record per job, states in the order jobs
   flow (delayed, wait, paused, active, completed, failed). ``hash`` is the job hash as Redis holds
   it (field, value, field, value... as msgpack bin: nothing is decoded or re-encoded), ``logs`` the
   log rows. ``score`` is the zset score of delayed (due*4096 + counter bits), completed and failed
   jobs (finishedOn); ``priority`` the score of a waiting job in the ``priority`` zset;
   ``debounce_ttl`` the PTTL of the job's ``de:<deid>`` key (-1: no expiry) while it names the job.
   Lists are written from the tail (the LPUSH end) to the head (the next job to run);
3. one ``{"t": "repeat", "key", "score"}`` record per repeatable definition (the ``repeat`` zset);
4. one ``{"t": "queue", "paused", "id", "metrics"}`` record: the global pause flag, the job-id counter
   and, for a whole-queue export, the ``metrics:*`` keys;
5. the trailer ``{"t": "end", "records", "counts", "repeat", "dangling", "sha256"}``: record and job
   counts and the SHA-256 of every byte before it, so a truncated or altered file is detected.

Not exported: locks, ``stalled``/``stalled-check`` (a worker's transient state), limiter keys.

Import validates the whole file, then checks for job ids the target already has, before writing
anything; then writes in atomic batches (``lua/import_jobs.lua``). Ids, hashes, logs, scores and
list order are kept, so an export imported into an empty queue (another prefix, name, database or
server) reproduces the source's keys. Waiting jobs go to the head end of the target's list in their
source order (RPUSH): into an empty queue this rebuilds the list exactly, with the ``priority`` zset;
merged into a queue that has a backlog, they run before it. They land in ``paused`` while the target
is paused. Active jobs cannot take their lock along: they are imported as waiting jobs at the very
head, the place Bull's stalled-job recovery gives them, so a worker runs them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Literal, Union

import msgpack  # type: ignore[import-untyped]
import redis as _redis

from . import connection
from ._core import scripts as _scripts
from ._core.keys import QueueKeys, check_job_id
from ._core.scripts import Call
from ._facade import ScriptRunner
from .errors import ExportFormatError, ImportConflict
from .utils import now_ms
from .utils import text as _text
from .queue import Queue
from .retry import RetryingRunner, RetryPolicy
from .retry import call as call_with_retry

__all__ = [
    "ALL_STATES",
    "FORMAT",
    "JOB_STATES",
    "VERSION",
    "ExportFormatError",
    "ExportHeader",
    "ExportReader",
    "ExportSummary",
    "ImportConflict",
    "ImportSummary",
    "JobEntry",
    "QueueInfo",
    "RepeatEntry",
    "TransferSummary",
    "copy_jobs",
    "export_queue",
    "import_queue",
    "move_jobs",
    "read_export",
    "validate_export",
]

FORMAT: Final = "bullpy-export"
VERSION: Final = 1
#: Job states in export order: the way jobs flow (delayed -> wait -> active -> finished), so a job
#: that moves on while a live queue is exported is met again in a later state, not lost.
JOB_STATES: Final = ("delayed", "wait", "paused", "active", "completed", "failed")
#: What ``states=`` accepts: the job states and ``repeat`` (the repeatable definitions).
ALL_STATES: Final = (*JOB_STATES, "repeat")

OnConflict = Literal["error", "skip", "replace"]
Progress = Callable[[int], None]
Source = Union[str, "os.PathLike[str]", IO[bytes]]
Entry = Union["JobEntry", "RepeatEntry", "QueueInfo"]

# KEYS index of each state in the Lua scripts: Bull's removeJob order, shared by all of them.
_KEY_INDEX: Final = {"active": 1, "wait": 2, "delayed": 3, "paused": 4, "completed": 5, "failed": 6}
_INDEX_STATE: Final = {index: state for state, index in _KEY_INDEX.items()}
_LISTS: Final = frozenset({"active", "wait", "paused"})
_SCORED: Final = frozenset({"delayed", "completed", "failed"})
_METRICS: Final = ("metrics:completed", "metrics:completed:data", "metrics:failed", "metrics:failed:data")
# Fields every Bull state change touches; remove_moved.lua compares them before removing a moved job.
_FINGERPRINT: Final = (b"processedOn", b"finishedOn", b"attemptsMade", b"stalledCounter", b"retriedOn", b"delay")
_MAX_REPORTED: Final = 20
_BATCH_BYTES: Final = 8 * 1024 * 1024  # one script call stays well below Redis' request limits
_CHUNK: Final = 256 * 1024
_MAX_RECORD: Final = 1024 * 1024 * 1024  # a job hash may hold values up to Redis' 512 MB
# msgpack allocates an array or map as soon as it reads its header: a garbage header must not be able to
# claim gigabytes. Arrays hold hash fields and log rows; maps are records (a few keys each).
_MAX_ITEMS: Final = 4_000_000
_MAX_KEYS: Final = 64


# --- records ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportHeader:
    """The first record of an export file."""

    queue: str
    prefix: str
    exported_at: int
    bullpy_version: str
    states: tuple[str, ...]
    source: str
    version: int = VERSION


@dataclass(frozen=True)
class JobEntry:
    """One job as exported: its raw hash and log rows and where it sat in the queue."""

    id: str
    state: str                       # delayed, wait, paused, active, completed or failed
    fields: Mapping[bytes, bytes]    # the job hash exactly as Redis holds it
    logs: tuple[bytes, ...] = ()
    score: float | None = None       # delayed/completed/failed zset score
    priority: float | None = None    # score in the priority zset (waiting prioritised jobs)
    debounce_ttl: int | None = None  # PTTL of de:<deid> while it names this job (-1: no expiry)

    def text(self, name: str) -> str | None:
        """A hash field as text (``entry.text("data")``), or None when the job has no such field."""
        value = self.fields.get(name.encode())
        return None if value is None else value.decode("utf-8", "replace")


@dataclass(frozen=True)
class RepeatEntry:
    """A repeatable definition: the ``repeat`` zset member and its next-run score."""

    key: str
    score: float


@dataclass(frozen=True)
class QueueInfo:
    """Queue-level state: the global pause flag, the job-id counter and the metrics keys."""

    paused: bool
    id_counter: int | None
    metrics: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)


# --- summaries -------------------------------------------------------------------------------------------

def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{state} {n}" for state, n in counts.items() if n) or "none"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class ExportSummary:
    """What an export file holds (from ``export_queue`` or ``validate_export``)."""

    queue: str
    prefix: str
    exported_at: int
    counts: Mapping[str, int]
    repeatables: int
    paused: bool
    id_counter: int | None
    bytes: int
    dangling: int = 0  # ids found in a state without their job hash, not exported
    version: int = VERSION
    bullpy_version: str = ""

    @property
    def jobs(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        text = (f"{_plural(self.jobs, 'job')} of queue {self.prefix}:{self.queue} ({_counts_text(self.counts)}), "
                f"{_plural(self.repeatables, 'repeatable definition')}")
        if self.paused:
            text += ", queue paused"
        if self.dangling:
            text += f"; {self.dangling} ids without a job hash left out"
        return text + f"; {self.bytes:,} bytes, format {FORMAT} v{self.version}"


@dataclass(frozen=True)
class ImportSummary:
    """What an import (or a dry run of it) wrote into the target queue."""

    target: str
    dry_run: bool
    written: Mapping[str, int]          # jobs written (added or replaced) per state in the target
    requeued_active: int = 0            # active jobs written as waiting at the head of the list
    conflicts: int = 0                  # ids that already existed in the target
    conflict_ids: tuple[str, ...] = ()  # the first of them
    skipped: int = 0                    # conflicts left as they were (on_conflict="skip")
    replaced: int = 0                   # conflicts overwritten (on_conflict="replace")
    locked: int = 0                     # conflicts not replaced because a worker holds their lock
    repeatables_added: int = 0
    repeatables_present: int = 0        # definitions the target already had
    paused_target: bool = False         # the target was paused to match the source
    id_counter: int | None = None       # the target's id counter was raised to at least this

    @property
    def jobs(self) -> int:
        return sum(self.written.values())

    def _lines(self, verb: str, past: str, where: str) -> list[str]:
        would = "would be " if self.dry_run else ""
        done = f"dry run: would {verb}" if self.dry_run else past
        lines = [f"{done} {_plural(self.jobs, 'job')} {where} ({_counts_text(self.written)})"]
        if self.requeued_active:
            lines.append(f"{_plural(self.requeued_active, 'active job')} {would}requeued at the head of the "
                         "waiting list (locks are not transferred)")
        if self.conflicts:
            parts = [f"{n} {what}" for n, what in ((self.skipped, "skipped"), (self.replaced, "replaced"),
                                                   (self.locked, "locked by a worker, left alone")) if n]
            shown = ", ".join(self.conflict_ids) + (", ..." if self.conflicts > len(self.conflict_ids) else "")
            lines.append(f"{_plural(self.conflicts, 'id')} already in the target ({shown}): {', '.join(parts)}")
        if self.repeatables_added or self.repeatables_present:
            lines.append(f"{_plural(self.repeatables_added, 'repeatable definition')} {would}added"
                         + (f", {self.repeatables_present} already there" if self.repeatables_present else ""))
        if self.paused_target:
            lines.append(f"the target {'would be' if self.dry_run else 'was'} paused, as the source was")
        return lines

    def __str__(self) -> str:
        return "\n".join(self._lines("import", "imported", f"into {self.target}"))


@dataclass(frozen=True)
class TransferSummary(ImportSummary):
    """What ``copy_jobs``/``move_jobs`` did (or would do)."""

    source: str = ""
    moved: bool = False
    removed: int = 0               # jobs removed from the source after being written to the target
    locked_in_source: int = 0      # active jobs a worker holds: never moved
    changed: int = 0               # jobs that changed in the source meanwhile and were left there
    already_waiting: int = 0       # moving within a queue: jobs that were waiting already
    missing_ids: tuple[str, ...] = ()  # ids asked for that are in no state

    def __str__(self) -> str:
        within = self.source == self.target
        where = f"within {self.target} to waiting" if within else f"from {self.source} into {self.target}"
        lines = self._lines(*(("move", "moved") if self.moved else ("copy", "copied")), where)
        if self.removed:
            lines.append(f"{_plural(self.removed, 'job')} removed from the source")
        if self.locked_in_source:
            lines.append(f"{_plural(self.locked_in_source, 'active job')} locked by a worker, not moved")
        if self.changed:
            both = " (now in both queues)" if self.moved and not within else ""
            lines.append(f"{_plural(self.changed, 'job')} changed in the source meanwhile, left there{both}")
        if self.already_waiting:
            lines.append(f"{_plural(self.already_waiting, 'job')} already waiting")
        if self.missing_ids:
            lines.append(f"not found: {', '.join(self.missing_ids[:_MAX_REPORTED])}")
        return "\n".join(lines)


# --- arguments -------------------------------------------------------------------------------------------

def _parse_states(states: Iterable[str] | str | None) -> tuple[str, ...]:
    if states is None:
        return ALL_STATES
    if isinstance(states, str):
        states = states.split(",")
    out: list[str] = []
    for state in states:
        if not isinstance(state, str):
            raise TypeError(f"states are strings, got {state!r}")
        state = state.strip()
        state = "wait" if state == "waiting" else state
        if state not in ALL_STATES:
            raise ValueError(f"unknown state {state!r}; use some of {', '.join(ALL_STATES)} ('waiting' = 'wait')")
        if state not in out:
            out.append(state)
    if not out:
        raise ValueError("states must name at least one state")
    return tuple(s for s in ALL_STATES if s in out)


def _check_options(on_conflict: str, batch_size: int) -> None:
    if on_conflict not in ("error", "skip", "replace"):
        raise ValueError(f"on_conflict must be 'error', 'skip' or 'replace', got {on_conflict!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _num(value: float) -> str:
    """A score as ZADD takes it, exactly: integers without ``.0``, others by repr (round-trips)."""
    if value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    return repr(value)



# --- Redis plumbing --------------------------------------------------------------------------------------

@contextlib.contextmanager
def _raw_client(client: _redis.Redis) -> Iterator[_redis.Redis]:
    """A client on the same server and db that returns bytes, so job hashes travel untouched."""
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    if not kwargs.get("decode_responses"):
        yield client
        return
    kwargs["decode_responses"] = False
    twin_pool: _redis.ConnectionPool = _redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    twin = _redis.Redis(connection_pool=twin_pool)
    try:
        yield twin
    finally:
        twin.close()
        twin_pool.disconnect()


def _where(queue: Queue) -> str:
    return f"{queue.prefix}:{queue.name} ({connection.describe(queue.client)})"


def _server_identity(client: _redis.Redis) -> str:
    """The server's run_id and the db: two clients with different host names may reach one server."""
    db = client.connection_pool.connection_kwargs.get("db", 0) or 0
    try:
        with connection.unavailable_as_error(client):
            run_id = client.info("server").get("run_id")
    except _redis.ResponseError:  # INFO refused (ACL): fall back to the address
        run_id = None
    return f"{run_id or connection.describe(client)}/{db}"


def _same_queue(a: Queue, b: Queue) -> bool:
    return a.keys.base == b.keys.base and _server_identity(a.client) == _server_identity(b.client)


def _state_keys(keys: QueueKeys) -> list[str]:
    return [keys("active"), keys("wait"), keys("delayed"), keys("paused"), keys("completed"), keys("failed"),
            keys("priority")]


def _is_paused(client: _redis.Redis, keys: QueueKeys) -> bool:
    with connection.unavailable_as_error(client), client.pipeline(transaction=True) as pipe:
        pipe.exists(keys("meta-paused"))
        pipe.hexists(keys("meta"), "paused")
        flag, meta = pipe.execute()
    return bool(flag) or bool(meta)


def _id_counter(client: _redis.Redis, keys: QueueKeys) -> int | None:
    with connection.unavailable_as_error(client):
        value = client.get(keys("id"))
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


# --- reading a live queue --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Live:
    entry: JobEntry
    locked: bool  # a worker holds the job's lock


class _Scan:
    """Reads a queue's jobs state by state in atomic batches (lua/read_jobs.lua).

    Ranges are read with a cursor, and every id is reported once (a job that moves to a state read
    later is not met twice). Callers that take jobs out of the scanned state call ``removed`` before
    asking for the next batch, so the cursor does not skip the jobs that slid into their place.
    """

    def __init__(self, runner: ScriptRunner, keys: QueueKeys, *, what: str, batch_size: int) -> None:
        self.runner, self.keys, self.what, self.batch_size = runner, keys, what, batch_size
        self.seen: set[str] = set()
        self.dangling = 0
        self.missing: list[str] = []
        self._removed: set[str] = set()

    def removed(self, ids: Collection[str]) -> None:
        """These ids of the last batch are no longer in the state being scanned."""
        self._removed.update(ids)

    def _run(self, args: list[str]) -> tuple[list[tuple[str, bytes | None]], list[_Live]]:
        """One script call: every id of the window with its raw score, and the jobs to report."""
        call: Call[Any] = Call("read_jobs", keys=_state_keys(self.keys), args=[self.keys.base, self.what, *args],
                               parse=lambda reply: reply)
        rows = self.runner.run(call)
        window: list[tuple[str, bytes | None]] = []
        out: list[_Live] = []
        for job_id_raw, index, score, priority, locked, exists, flat, logs, de_ttl in rows:
            job_id = _text(job_id_raw)
            window.append((job_id, score))
            state = _INDEX_STATE.get(int(index))
            if job_id in self.seen:
                continue
            self.seen.add(job_id)
            if state is None:
                self.missing.append(job_id)
                continue
            if not int(exists):
                self.dangling += 1  # an id without its hash (Node would run a phantom job): left out
                continue
            fields = dict(zip(flat[0::2], flat[1::2]))
            entry = JobEntry(
                job_id, state, fields, tuple(logs),
                score=None if score is None else float(score),
                priority=None if priority is None else float(priority),
                debounce_ttl=None if de_ttl is None else int(de_ttl),
            )
            out.append(_Live(entry, bool(int(locked))))
        return window, out

    def state(self, state: str) -> Iterator[list[_Live]]:
        index, size = str(_KEY_INDEX[state]), self.batch_size
        if state in _LISTS:
            start = 0
            while True:
                self._removed.clear()
                window, rows = self._run(["list", index, str(start), str(size)])
                yield rows
                # Ids taken out of the window let the ones behind them slide into its place.
                start += len(window) - sum(1 for job_id, _ in window if job_id in self._removed)
                if len(window) < size:
                    return
        else:
            # Cursor: members with a score >= low, past the first `offset` of them (ties included).
            low, offset = b"-inf", 0
            while True:
                self._removed.clear()
                window, rows = self._run(["zset", index, low.decode(), str(offset), str(size)])
                yield rows
                if len(window) < size:
                    return
                kept = [(job_id, score) for job_id, score in window if job_id not in self._removed]
                last = window[-1][1]
                assert last is not None
                if last == low:  # the whole window shares the score `low`
                    offset += len(kept)
                else:
                    low, offset = last, sum(1 for _, score in kept if score == last)

    def ids(self, ids: Sequence[str]) -> Iterator[list[_Live]]:
        for i in range(0, len(ids), self.batch_size):
            self._removed.clear()
            yield self._run(["ids", *ids[i : i + self.batch_size]])[1]


def _read_repeatables(client: _redis.Redis, keys: QueueKeys, batch_size: int,
                      retry: RetryPolicy | None = None) -> Iterator[list[RepeatEntry]]:
    seen: set[str] = set()
    start = 0

    def page() -> list[tuple[bytes, float]]:
        with connection.unavailable_as_error(client):
            return client.zrange(keys("repeat"), start, start + batch_size - 1, withscores=True)  # type: ignore[return-value]

    while True:
        rows = call_with_retry(page, client=client, what="read repeatables", policy=retry)
        batch = []
        for member, score in rows:
            key = _text(member)
            if key not in seen:
                seen.add(key)
                batch.append(RepeatEntry(key, float(score)))
        if batch:
            yield batch
        start += len(rows)
        if len(rows) < batch_size:
            return


def _read_queue_info(client: _redis.Redis, keys: QueueKeys, with_metrics: bool) -> QueueInfo:
    metrics: dict[str, tuple[bytes, ...]] = {}
    if with_metrics:
        with connection.unavailable_as_error(client), client.pipeline(transaction=True) as pipe:
            for suffix in _METRICS:
                if suffix.endswith(":data"):
                    pipe.lrange(keys(suffix), 0, -1)
                else:
                    pipe.hgetall(keys(suffix))
            replies = pipe.execute()
        for suffix, reply in zip(_METRICS, replies):
            if isinstance(reply, dict):
                values = tuple(v for pair in reply.items() for v in pair)
            else:
                values = tuple(reply)
            if values:
                metrics[suffix] = values
    return QueueInfo(_is_paused(client, keys), _id_counter(client, keys), metrics)


# --- writing an export file ------------------------------------------------------------------------------

def _job_record(entry: JobEntry) -> dict[str, Any]:
    record: dict[str, Any] = {
        "t": "job", "id": entry.id, "state": entry.state,
        "hash": [v for pair in entry.fields.items() for v in pair], "logs": list(entry.logs),
    }
    if entry.score is not None:
        record["score"] = entry.score
    if entry.priority is not None:
        record["priority"] = entry.priority
    if entry.debounce_ttl is not None:
        record["debounce_ttl"] = entry.debounce_ttl
    return record


class _RecordWriter:
    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.packer = msgpack.Packer(use_bin_type=True)
        self.hasher = hashlib.sha256()
        self.records = 0
        self.bytes = 0

    def write(self, record: Mapping[str, Any], *, hashed: bool = True) -> None:
        data: bytes = self.packer.pack(record)
        self.stream.write(data)
        if hashed:
            self.hasher.update(data)
            self.records += 1
        self.bytes += len(data)


@contextlib.contextmanager
def _output(out: str | os.PathLike[str] | IO[bytes]) -> Iterator[IO[bytes]]:
    """A path is written beside itself and renamed when complete: no half-written file keeps its name."""
    if isinstance(out, (str, os.PathLike)):
        path = Path(out)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as stream:
                yield stream
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    else:
        yield out
        out.flush()


def export_queue(
    queue: Queue,
    out: str | os.PathLike[str] | IO[bytes],
    *,
    states: Iterable[str] | str | None = None,
    batch_size: int = 1000,
    progress: Progress | None = None,
    retry: RetryPolicy | None = None,
) -> ExportSummary:
    """Write a queue's jobs, repeatable definitions and queue state to an export file, streamed.

    Args:
        out: a path (written under a temporary name and renamed when complete) or a binary stream.
        states: what to export (default all): ``delayed``, ``wait``, ``paused``, ``active``,
            ``completed``, ``failed``, ``repeat``. The metrics keys are exported with the whole queue only.
        batch_size: jobs read per atomic script call.
        progress: called after each batch with the number of jobs exported so far.
        retry: how long a batch cut by a Redis restart or failover is retried (``bullpy.retry.RetryPolicy``,
            default about a minute); the export resumes at the same cursor, so no job is written twice or
            skipped. When it runs out the export fails with one message and, for a path, leaves no file.

    For an exact copy of a live queue, pause it and let active jobs finish first: jobs that change
    state while the export runs are exported once, in one of their states, or (rarely) not at all.
    """
    from . import __version__

    wanted = _parse_states(states)
    _check_options("error", batch_size)
    counts: dict[str, int] = {s: 0 for s in JOB_STATES if s in wanted}
    repeatables = 0
    exported_at = now_ms()
    with _raw_client(queue.client) as raw, _output(out) as stream:
        writer = _RecordWriter(stream)
        writer.write({
            "format": FORMAT, "version": VERSION, "queue": queue.name, "prefix": queue.prefix,
            "exported_at": exported_at, "bullpy": __version__, "states": list(wanted),
            "source": connection.describe(queue.client),
        })
        scan = _Scan(RetryingRunner(raw, what="export", policy=retry), queue.keys, what="all", batch_size=batch_size)
        done = 0
        for state in counts:
            for rows in scan.state(state):
                for live in rows:
                    writer.write(_job_record(live.entry))
                counts[state] += len(rows)
                done += len(rows)
                if progress is not None and rows:
                    progress(done)
        if "repeat" in wanted:
            for batch in _read_repeatables(raw, queue.keys, batch_size, retry):
                for rep in batch:
                    writer.write({"t": "repeat", "key": rep.key, "score": rep.score})
                repeatables += len(batch)
        info = call_with_retry(lambda: _read_queue_info(raw, queue.keys, with_metrics=wanted == ALL_STATES),
                               client=raw, what="export", policy=retry)
        writer.write({"t": "queue", "paused": info.paused, "id": info.id_counter, "metrics": dict(info.metrics)})
        writer.write({"t": "end", "records": writer.records - 1, "counts": counts, "repeat": repeatables,
                      "dangling": scan.dangling, "sha256": writer.hasher.hexdigest()}, hashed=False)
    return ExportSummary(queue.name, queue.prefix, exported_at, counts, repeatables, info.paused, info.id_counter,
                         writer.bytes, scan.dangling, VERSION, __version__)


# --- reading an export file ------------------------------------------------------------------------------

_END = object()


class ExportReader:
    """Reads an export file record by record and checks each one as it goes.

    Iterating yields ``JobEntry``, ``RepeatEntry`` and one ``QueueInfo``; a malformed, truncated or
    altered file raises ``ExportFormatError`` naming the record and byte offset. The checksum and the
    counts are verified when the end record is reached, so only a complete iteration proves a file
    sound (``validate_export`` does one). ``summary`` is set once the end record was read.
    """

    def __init__(self, stream: IO[bytes], *, name: str = "", close: bool = False) -> None:
        self.name = name or str(getattr(stream, "name", "") or "<stream>")
        self._stream, self._close = stream, close
        self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, use_list=True,
                                          max_buffer_size=_MAX_RECORD, max_array_len=_MAX_ITEMS,
                                          max_map_len=_MAX_KEYS)
        self._hasher = hashlib.sha256()
        self._pending = bytearray()  # bytes fed to the unpacker, not yet hashed
        self._hashed = 0             # offset up to which the bytes were hashed
        self._fed = 0
        self._eof = False
        self._record = 0             # number of the last record read (the header is record 1)
        self._start = 0              # byte offset of the last record read
        self._end = 0
        self._ids: set[str] = set()
        self._counts = Counter[str]()
        self._repeat = 0
        self._queue_info: QueueInfo | None = None
        self._iterated = False
        self.summary: ExportSummary | None = None
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    # plumbing
    def close(self) -> None:
        if self._close:
            self._stream.close()

    def __enter__(self) -> ExportReader:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def queue_info(self) -> QueueInfo | None:
        """The queue record, once it was read."""
        return self._queue_info

    def _error(self, message: str, *, at_record: bool = True) -> ExportFormatError:
        if at_record:
            return ExportFormatError(message, source=self.name, record=self._record, offset=self._start)
        return ExportFormatError(message, source=self.name)

    def _next(self) -> Any:
        while True:
            try:
                obj = next(self._unpacker)
            except StopIteration:
                if self._eof:
                    return _END
                chunk = self._stream.read(_CHUNK)
                if not chunk:
                    self._eof = True
                    continue
                try:
                    self._unpacker.feed(chunk)
                except msgpack.BufferFull:
                    raise ExportFormatError(f"a record is larger than {_MAX_RECORD:,} bytes (not an export?)",
                                            source=self.name, record=self._record + 1, offset=self._end) from None
                self._pending += chunk
                self._fed += len(chunk)
                continue
            except (ValueError, TypeError, msgpack.UnpackException) as exc:
                raise ExportFormatError(f"not valid msgpack: {exc}", source=self.name, record=self._record + 1,
                                        offset=self._end) from None
            self._record += 1
            self._start, self._end = self._end, self._unpacker.tell()
            return obj

    def _hash_through(self, end: int) -> None:
        n = end - self._hashed
        self._hasher.update(memoryview(self._pending)[:n])
        del self._pending[:n]
        self._hashed = end

    def _truncated(self) -> ExportFormatError:
        if self._fed > self._end:
            return ExportFormatError(f"truncated: the file ends inside record {self._record + 1} "
                                     f"({self._fed - self._end} bytes of it)", source=self.name,
                                     record=self._record + 1, offset=self._end)
        return ExportFormatError(f"truncated: the file ends after record {self._record} without the end record",
                                 source=self.name, offset=self._end)

    # records
    def _read_header(self) -> ExportHeader:
        obj = self._next()
        if obj is _END:
            if self._fed:
                raise self._truncated()
            raise ExportFormatError("empty file: not a bullpy export", source=self.name)
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise self._error(f"not a bullpy export: the file does not start with a {FORMAT!r} header")
        version = obj.get("version")
        if version != VERSION:
            raise self._error(f"unsupported {FORMAT} version {version!r}: this bullpy reads version {VERSION}")
        expected = {"format", "version", "queue", "prefix", "exported_at", "bullpy", "states", "source"}
        if set(obj) != expected:
            raise self._error(f"header: expected the fields {sorted(expected)}, got {sorted(obj)}")
        for name in ("queue", "prefix", "bullpy", "source"):
            if not isinstance(obj[name], str):
                raise self._error(f"header: {name!r} must be a string")
        if not obj["queue"] or not obj["prefix"]:
            raise self._error("header: empty queue name or prefix")
        if not _is_int(obj["exported_at"]):
            raise self._error("header: 'exported_at' must be an integer (ms)")
        states = obj["states"]
        if not isinstance(states, list) or not all(isinstance(s, str) and s in ALL_STATES for s in states):
            raise self._error(f"header: 'states' must be a list of {', '.join(ALL_STATES)}")
        self._hash_through(self._end)
        return ExportHeader(obj["queue"], obj["prefix"], obj["exported_at"], obj["bullpy"], tuple(states),
                            obj["source"], version)

    def __iter__(self) -> Iterator[Entry]:
        if self._iterated:
            raise RuntimeError("an ExportReader can be iterated once; open the file again")
        self._iterated = True
        while True:
            obj = self._next()
            if obj is _END:
                raise self._truncated()
            kind = obj.get("t") if isinstance(obj, dict) else None
            if kind == "end":
                self._finish(obj)
                return
            self._hash_through(self._end)
            if self._queue_info is not None:
                raise self._error(f"a {kind!r} record after the queue record (only the end record may follow it)")
            if kind == "job":
                yield self._parse_job(obj)
            elif kind == "repeat":
                yield self._parse_repeat(obj)
            elif kind == "queue":
                self._queue_info = self._parse_queue(obj)
                yield self._queue_info
            else:
                raise self._error(f"unknown record type {kind!r}" if isinstance(obj, dict)
                                  else f"expected a record (a map), got {type(obj).__name__}")

    def _fields(self, obj: dict[str, Any], required: Collection[str], optional: Collection[str] = ()) -> None:
        missing = set(required) - set(obj)
        unknown = set(obj) - set(required) - set(optional)
        if missing or unknown:
            what = f"job {obj['id']!r}" if obj.get("t") == "job" and isinstance(obj.get("id"), str) else obj.get("t")
            detail = "; ".join(x for x in (f"missing {sorted(missing)}" if missing else "",
                                          f"unknown {sorted(unknown)}" if unknown else "") if x)
            raise self._error(f"{what} record: {detail}")

    def _parse_job(self, obj: dict[str, Any]) -> JobEntry:
        self._fields(obj, {"t", "id", "state", "hash", "logs"}, {"score", "priority", "debounce_ttl"})
        job_id = obj["id"]
        if not isinstance(job_id, str):
            raise self._error(f"job record: the id must be a string, got {job_id!r}")
        try:
            check_job_id(job_id)
        except ValueError as exc:
            raise self._error(f"job {job_id!r}: {exc}") from None
        if job_id in self._ids:
            raise self._error(f"job {job_id!r} appears twice")
        state = obj["state"]
        if state not in JOB_STATES:
            raise self._error(f"job {job_id!r}: unknown state {state!r}")
        flat = obj["hash"]
        if not isinstance(flat, list) or not flat or len(flat) % 2 or not all(isinstance(x, bytes) for x in flat):
            raise self._error(f"job {job_id!r}: 'hash' must be a non-empty list of field, value byte strings")
        fields = dict(zip(flat[0::2], flat[1::2]))
        if len(fields) * 2 != len(flat):
            raise self._error(f"job {job_id!r}: a hash field appears twice")
        _check_job_json(fields, lambda message: self._error(f"job {job_id!r}: {message}"))
        logs = obj["logs"]
        if not isinstance(logs, list) or not all(isinstance(x, bytes) for x in logs):
            raise self._error(f"job {job_id!r}: 'logs' must be a list of byte strings")
        score = obj.get("score")
        if state in _SCORED:
            if not _is_score(score):
                raise self._error(f"job {job_id!r}: a {state} job needs a numeric 'score', got {score!r}")
        elif score is not None:
            raise self._error(f"job {job_id!r}: a {state} job has no score")
        priority = obj.get("priority")
        if priority is not None and (state not in ("wait", "paused") or not _is_score(priority)):
            raise self._error(f"job {job_id!r}: 'priority' must be a number, on waiting jobs only")
        ttl = obj.get("debounce_ttl")
        if ttl is not None and (not _is_int(ttl) or ttl < -1 or b"deid" not in fields):
            raise self._error(f"job {job_id!r}: 'debounce_ttl' must be an integer >= -1 on a job with a deid")
        self._ids.add(job_id)
        self._counts[state] += 1
        return JobEntry(job_id, state, fields, tuple(logs),
                        None if score is None else float(score), None if priority is None else float(priority), ttl)

    def _parse_repeat(self, obj: dict[str, Any]) -> RepeatEntry:
        self._fields(obj, {"t", "key", "score"})
        if not isinstance(obj["key"], str) or not obj["key"] or not _is_score(obj["score"]):
            raise self._error("repeat record: 'key' must be a non-empty string and 'score' a number")
        self._repeat += 1
        return RepeatEntry(obj["key"], float(obj["score"]))

    def _parse_queue(self, obj: dict[str, Any]) -> QueueInfo:
        self._fields(obj, {"t", "paused", "id", "metrics"})
        if not isinstance(obj["paused"], bool):
            raise self._error("queue record: 'paused' must be true or false")
        if obj["id"] is not None and not _is_int(obj["id"]):
            raise self._error("queue record: 'id' must be an integer or nil")
        metrics = obj["metrics"]
        if not isinstance(metrics, dict) or not all(
            k in _METRICS and isinstance(v, list) and all(isinstance(x, bytes) for x in v) for k, v in metrics.items()
        ):
            raise self._error(f"queue record: 'metrics' must map some of {', '.join(_METRICS)} to byte strings")
        for name, values in metrics.items():
            if not name.endswith(":data") and len(values) % 2:
                raise self._error(f"queue record: {name!r} needs field, value pairs")
        return QueueInfo(obj["paused"], obj["id"], {k: tuple(v) for k, v in metrics.items()})

    def _finish(self, obj: dict[str, Any]) -> None:
        self._fields(obj, {"t", "records", "counts", "repeat", "dangling", "sha256"})
        if self._queue_info is None:
            raise self._error("the end record comes before the queue record")
        records = self._record - 2  # neither the header nor the end record
        if obj["records"] != records:
            raise self._error(f"the end record counts {obj['records']!r} records, the file holds {records}")
        counts = obj["counts"]
        if not isinstance(counts, dict) or any(counts.get(s, 0) != self._counts.get(s, 0)
                                               for s in {*counts, *self._counts}):
            raise self._error(f"job counts differ: the end record says {counts!r}, the file holds {dict(self._counts)}")
        if obj["repeat"] != self._repeat:
            raise self._error(f"the end record counts {obj['repeat']!r} repeatable definitions, the file holds "
                              f"{self._repeat}")
        if obj["sha256"] != self._hasher.hexdigest():
            raise self._error("checksum mismatch: the file was altered or damaged")
        if not _is_int(obj["dangling"]):
            raise self._error("end record: 'dangling' must be an integer")
        if self._next() is not _END or self._fed > self._end:
            raise ExportFormatError("data after the end record", source=self.name, offset=self._end)
        info = self._queue_info
        self.summary = ExportSummary(
            self.header.queue, self.header.prefix, self.header.exported_at,
            {s: self._counts[s] for s in JOB_STATES if s in self.header.states},
            self._repeat, info.paused, info.id_counter, self._end, obj["dangling"], self.header.version,
            self.header.bullpy_version,
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_score(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and not (isinstance(value, float) and math.isnan(value))


def _check_job_json(fields: Mapping[bytes, bytes], error: Callable[[str], Exception]) -> None:
    """Node chokes on a job whose data is not JSON or whose opts is not a JSON object (protocol §2.4)."""
    for name in (b"data", b"opts"):
        raw = fields.get(name)
        if raw is None:
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            raise error(f"field {name.decode()!r} is not JSON") from None
        if name == b"opts" and not isinstance(value, dict):
            raise error("field 'opts' is not a JSON object")


@contextlib.contextmanager
def _opened(source: Source) -> Iterator[tuple[IO[bytes], str]]:
    """A seekable binary stream of the source: a path is opened; a pipe is spooled to a temporary file."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as stream:
            yield stream, os.fspath(source)
        return
    name = str(getattr(source, "name", "") or "<stream>")
    seekable = False
    with contextlib.suppress(AttributeError, OSError, ValueError):
        seekable = source.seekable()
    if seekable:
        yield source, name
        return
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(source, spool, _CHUNK)
        spool.seek(0)
        yield spool, name


def read_export(source: str | os.PathLike[str] | IO[bytes]) -> ExportReader:
    """Open an export file (a path or a binary stream) for reading; use it as a context manager."""
    if isinstance(source, (str, os.PathLike)):
        return ExportReader(open(source, "rb"), name=os.fspath(source), close=True)
    return ExportReader(source)


def validate_export(source: str | os.PathLike[str] | IO[bytes]) -> ExportSummary:
    """Read a whole export file, checking every record, the counts and the checksum; its summary."""
    with read_export(source) as reader:
        for _ in reader:
            pass
    assert reader.summary is not None
    return reader.summary


# --- writing jobs into a queue ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Planned:
    """A job and where it goes in the target: placement as lua/import_jobs.lua takes it."""

    entry: JobEntry
    placement: str  # head, tail, prio, delayed, completed, failed
    fields: Mapping[bytes, bytes]
    score: str = ""
    priority: str = ""

    @property
    def ready(self) -> bool:
        return self.placement in ("head", "tail", "prio")

    def size(self) -> int:
        return sum(len(k) + len(v) for k, v in self.fields.items()) + sum(len(r) for r in self.logs) + 64

    @property
    def logs(self) -> tuple[bytes, ...]:
        return self.entry.logs

    def args(self) -> list[bytes | str]:
        entry = self.entry
        deid = self.fields.get(b"deid", b"") if entry.debounce_ttl is not None else b""
        ttl = "" if entry.debounce_ttl is None or not deid else str(entry.debounce_ttl)
        flat = [v for pair in self.fields.items() for v in pair]
        return [entry.id, self.placement, self.score, self.priority, deid, ttl, str(len(flat)),
                str(len(entry.logs)), *flat, *entry.logs]


def _lifo(fields: Mapping[bytes, bytes]) -> bool:
    try:
        opts = json.loads(fields.get(b"opts") or b"{}")
    except ValueError:
        return False
    return isinstance(opts, dict) and bool(opts.get("lifo"))


def _plan(entry: JobEntry, to_state: str | None, now: int) -> _Planned:
    """Where a job goes in the target, and its hash there (changed only when it changes state)."""
    fields = entry.fields
    if to_state is None or entry.state in ("wait", "paused", "active"):
        if entry.state in ("wait", "paused"):
            return _Planned(entry, "head", fields, priority="" if entry.priority is None else _num(entry.priority))
        if entry.state == "active":
            # The lock cannot travel: the job waits at the head, where Bull's stalled recovery puts it.
            return _Planned(entry, "head", fields)
        assert entry.score is not None
        return _Planned(entry, entry.state, fields, score=_num(entry.score))
    if entry.state == "delayed":
        # Bull's promote: the delay field is reset, prioritised jobs take their place by priority.
        fields = {**fields, b"delay": b"0"}
        try:
            priority = float(fields.get(b"priority") or b"0")
        except ValueError:
            priority = 0.0
        if priority and not math.isnan(priority):
            return _Planned(entry, "prio", fields, priority=_num(priority))
        return _Planned(entry, "tail", fields)
    # completed/failed: Bull's reprocessJob (job.retry()); attemptsMade, stacktrace, returnvalue stay.
    fields = {k: v for k, v in fields.items() if k not in (b"finishedOn", b"processedOn", b"failedReason")}
    fields[b"retriedOn"] = str(now).encode()
    return _Planned(entry, "head" if _lifo(fields) else "tail", fields)


class _Tally:
    """Counts for a summary, accumulated batch by batch."""

    def __init__(self) -> None:
        self.written: Counter[str] = Counter()
        self.requeued_active = 0
        self.conflict_ids: list[str] = []
        self.conflicts = self.skipped = self.replaced = self.locked = 0
        self.repeat_added = self.repeat_present = 0
        self.removed = self.locked_in_source = self.changed = self.already_waiting = 0

    def record(self, planned: _Planned, status: str, ready_state: str) -> None:
        if status in ("added", "replaced"):
            self.written[ready_state if planned.ready else planned.placement] += 1
            if planned.entry.state == "active":
                self.requeued_active += 1
        if status != "added":
            self.conflicts += 1
            if len(self.conflict_ids) < _MAX_REPORTED:
                self.conflict_ids.append(planned.entry.id)
            if status == "skipped":
                self.skipped += 1
            elif status == "replaced":
                self.replaced += 1
            else:
                self.locked += 1

    def written_dict(self) -> dict[str, int]:
        return {s: self.written[s] for s in ("wait", "paused", "delayed", "completed", "failed") if self.written[s]}

    def import_fields(self, target: str, dry_run: bool, paused_target: bool, id_counter: int | None) -> dict[str, Any]:
        return {
            "target": target, "dry_run": dry_run, "written": self.written_dict(),
            "requeued_active": self.requeued_active, "conflicts": self.conflicts,
            "conflict_ids": tuple(self.conflict_ids), "skipped": self.skipped, "replaced": self.replaced,
            "locked": self.locked, "repeatables_added": self.repeat_added,
            "repeatables_present": self.repeat_present, "paused_target": paused_target, "id_counter": id_counter,
        }


class _Target:
    """Writes planned jobs into a queue in atomic batches (lua/import_jobs.lua and import_queue.lua)."""

    def __init__(self, queue: Queue, raw: _redis.Redis, on_conflict: str, id_floor: int | None, tally: _Tally,
                 batch_size: int) -> None:
        self.queue, self.raw, self.runner = queue, raw, ScriptRunner(raw)
        self.on_conflict, self.tally, self.batch_size = on_conflict, tally, batch_size
        self.id_floor = "" if id_floor is None else str(id_floor)
        self.ready_state = "paused" if _is_paused(raw, queue.keys) else "wait"
        self.jobs_written = 0

    def write(self, planned: Sequence[_Planned]) -> list[str]:
        """Write jobs, in sub-batches of at most ``batch_size`` jobs and ~8 MB; one status per job."""
        statuses: list[str] = []
        start = 0
        while start < len(planned):
            end, size = start, 0
            while end < len(planned) and end - start < self.batch_size and (end == start or size < _BATCH_BYTES):
                size += planned[end].size()
                end += 1
            statuses.extend(self._write_batch(planned[start:end]))
            start = end
        return statuses

    def _write_batch(self, batch: Sequence[_Planned]) -> list[str]:
        keys = self.queue.keys
        args: list[Any] = [keys.base, self.on_conflict, self.id_floor, str(len(batch))]
        for item in batch:
            args.extend(item.args())
        call: Call[Any] = Call("import_jobs", keys=[*_state_keys(keys), keys("meta-paused"), keys("id")],
                               args=args, parse=lambda reply: [_text(x) for x in reply])
        reply = self.runner.run(call)
        if reply[0] == "conflict":
            ids = reply[1:]
            raise ImportConflict(_where(self.queue), len(ids), ids, written=self.jobs_written)
        statuses: list[str] = reply[1:]
        for item, status in zip(batch, statuses):
            self.tally.record(item, status, self.ready_state)
        self.jobs_written += sum(1 for s in statuses if s in ("added", "replaced"))
        return statuses

    def finish(self, repeats: Sequence[RepeatEntry], metrics: Mapping[str, tuple[bytes, ...]]) -> None:
        """Repeatable definitions, metrics (only where the target has none) and the id counter."""
        keys = self.queue.keys
        mode = "replace" if self.on_conflict == "replace" else "keep"
        metric_args: list[Any] = []
        for index, suffix in enumerate(_METRICS, start=3):
            values = metrics.get(suffix, ())
            if values:
                metric_args += [str(index), str(len(values)), *values]
        chunks = [repeats[i : i + self.batch_size] for i in range(0, len(repeats), self.batch_size)] or [[]]
        for n, chunk in enumerate(chunks):
            args: list[Any] = [self.id_floor, mode, str(len(chunk))]
            for rep in chunk:
                args += [rep.key, _num(rep.score)]
            if n == len(chunks) - 1:
                args += metric_args
            call: Call[Any] = Call("import_queue", keys=[keys("id"), keys("repeat"), *(keys(m) for m in _METRICS)],
                                   args=args, parse=lambda reply: [int(x) for x in reply])
            added, present, _metrics = self.runner.run(call)
            self.tally.repeat_added += added
            self.tally.repeat_present += present


class _ConflictCheck:
    """Pass one: which ids already exist in the target (and are locked there), batch by batch."""

    def __init__(self, raw: _redis.Redis, keys: QueueKeys, on_conflict: str, batch_size: int, tally: _Tally) -> None:
        self.raw, self.keys, self.on_conflict, self.batch_size, self.tally = raw, keys, on_conflict, batch_size, tally
        self.pending: list[_Planned] = []
        self.repeats: list[str] = []

    def add(self, planned: _Planned) -> None:
        self.pending.append(planned)
        if len(self.pending) >= self.batch_size:
            self.flush()

    def add_repeat(self, key: str) -> None:
        self.repeats.append(key)
        if len(self.repeats) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending and not self.repeats:
            return
        with connection.unavailable_as_error(self.raw), self.raw.pipeline(transaction=False) as pipe:
            for item in self.pending:
                pipe.exists(self.keys.job(item.entry.id))
                pipe.exists(self.keys.lock(item.entry.id))
            for key in self.repeats:
                pipe.zscore(self.keys("repeat"), key)
            replies = pipe.execute()
        for i, item in enumerate(self.pending):
            exists, locked = replies[2 * i], replies[2 * i + 1]
            if not exists:
                status = "added"
            elif locked and self.on_conflict == "replace":
                status = "locked"
            else:
                status = "replaced" if self.on_conflict == "replace" else "skipped"
            # Ready jobs are tallied as "wait"; _ready_as() renames them once the target's pause is known.
            self.tally.record(item, status, "wait")
        for reply in replies[2 * len(self.pending):]:
            if reply is None:
                self.tally.repeat_added += 1
            else:
                self.tally.repeat_present += 1
        self.pending.clear()
        self.repeats.clear()


def _ready_as(written: dict[str, int], ready: str) -> dict[str, int]:
    if ready == "paused" and "wait" in written:
        written["paused"] = written.get("paused", 0) + written.pop("wait")
    return written


def _pause(queue: Queue, raw: _redis.Redis) -> None:
    """Bull's global pause (its pause script, as ``Queue.pause``): wait is renamed to paused."""
    ScriptRunner(raw).run(_scripts.pause(queue.keys, True))


def import_queue(
    source: Source,
    queue: Queue,
    *,
    on_conflict: OnConflict = "error",
    dry_run: bool = False,
    states: Iterable[str] | str | None = None,
    restore_paused: bool | None = None,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import an export file into a queue (any prefix, name, database or server).

    The whole file is validated first and the target checked for job ids it already has; nothing is
    written when the file is bad (``ExportFormatError``) or, with ``on_conflict="error"``, when ids
    exist (``ImportConflict``). Jobs are then written in atomic batches that keep their ids, hashes,
    logs, scores and order; an interrupted import completes when run again with ``on_conflict="skip"``.

    Args:
        source: a path or a binary stream (a pipe is spooled to a temporary file).
        on_conflict: for ids the target already has: ``"error"`` (change nothing), ``"skip"`` (keep
            the target's job) or ``"replace"`` (overwrite it, unless a worker holds its lock).
        dry_run: validate and check conflicts only; the summary tells what would be written.
        states: import only these states of the file (default all; see ``ALL_STATES``).
        restore_paused: pause the target when the source queue was paused (default: only when the
            whole file is imported, ``states=None``). Waiting jobs land in ``paused`` whenever the
            target is paused.
        batch_size: jobs per atomic script call.
        progress: called after each batch with the number of jobs handled so far.
    """
    wanted = _parse_states(states)
    _check_options(on_conflict, batch_size)
    restore = (states is None) if restore_paused is None else bool(restore_paused)
    target = _where(queue)
    now = now_ms()
    with _opened(source) as (stream, name), _raw_client(queue.client) as raw:
        start = stream.tell()
        # Pass one: validate everything and look for conflicts; nothing is written.
        check_tally = _Tally()
        target_paused = _is_paused(raw, queue.keys)
        checker = _ConflictCheck(raw, queue.keys, on_conflict, batch_size, check_tally)
        reader = ExportReader(stream, name=name)
        info: QueueInfo | None = None
        for item in reader:
            if isinstance(item, JobEntry):
                if item.state in wanted:
                    checker.add(_plan(item, None, now))
            elif isinstance(item, RepeatEntry):
                if "repeat" in wanted:
                    checker.add_repeat(item.key)
            else:
                info = item
        checker.flush()
        assert info is not None
        pause_it = restore and info.paused and not target_paused
        if check_tally.conflicts and on_conflict == "error":
            raise ImportConflict(target, check_tally.conflicts, check_tally.conflict_ids)
        floor = info.id_counter
        if dry_run:
            fields = check_tally.import_fields(target, True, pause_it, floor)
            fields["written"] = _ready_as(fields["written"], "paused" if target_paused or pause_it else "wait")
            return ImportSummary(**fields)

        # Pass two: write.
        if pause_it:
            _pause(queue, raw)
        tally = _Tally()
        writer = _Target(queue, raw, on_conflict, floor, tally, batch_size)
        stream.seek(start)
        reader = ExportReader(stream, name=name)
        batch: list[_Planned] = []
        repeats: list[RepeatEntry] = []
        done = 0
        for item in reader:
            if isinstance(item, JobEntry):
                if item.state in wanted:
                    batch.append(_plan(item, None, now))
                    if len(batch) >= batch_size:
                        writer.write(batch)
                        done += len(batch)
                        batch.clear()
                        if progress is not None:
                            progress(done)
            elif isinstance(item, RepeatEntry) and "repeat" in wanted:
                repeats.append(item)
        if batch:
            writer.write(batch)
            done += len(batch)
            if progress is not None:
                progress(done)
        writer.finish(repeats, info.metrics if wanted == ALL_STATES else {})
    return ImportSummary(**tally.import_fields(target, False, pause_it, floor))


# --- copy and move ---------------------------------------------------------------------------------------

def _parse_ids(ids: Iterable[str | int]) -> list[str]:
    if isinstance(ids, (str, bytes)):
        raise TypeError("ids must be a list of job ids, not a single string")
    out = []
    for job_id in ids:
        if isinstance(job_id, bool) or not isinstance(job_id, (str, int)):
            raise TypeError(f"job ids are strings or integers, got {job_id!r}")
        text = str(job_id)
        if not text:
            raise ValueError("job ids must not be empty")
        out.append(text)
    return list(dict.fromkeys(out))


def _parse_to_state(to_state: str | None) -> str | None:
    if to_state is None:
        return None
    if to_state in ("wait", "waiting"):
        return "wait"
    raise ValueError(f"to_state must be 'wait' (alias 'waiting') or None, got {to_state!r}: jobs can be "
                     "moved back to waiting the way Bull retries and promotes them; other moves have no "
                     "Bull equivalent")


def _fingerprint(fields: Mapping[bytes, bytes]) -> bytes:
    return b"\n".join(fields.get(name, b"") for name in _FINGERPRINT)


def _batches(scan: _Scan, states: Sequence[str], ids: Sequence[str] | None) -> Iterator[list[_Live]]:
    if ids is not None:
        for rows in scan.ids(ids):
            yield [r for r in rows if r.entry.state in states]
        return
    for state in states:
        yield from scan.state(state)


def copy_jobs(
    source: Queue,
    target: Queue,
    *,
    states: Iterable[str] | str | None = None,
    ids: Iterable[str | int] | None = None,
    to_state: str | None = None,
    on_conflict: OnConflict = "error",
    dry_run: bool = False,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> TransferSummary:
    """Copy jobs (and, with ``repeat`` among the states, repeatable definitions) to another queue.

    The queues may differ in prefix, name, database or server. Ids, hashes, logs and order are
    kept as by ``import_queue``; active jobs are copied as waiting jobs at the head of the list.

    Args:
        states: the source states to copy (default all, see ``ALL_STATES``).
        ids: copy only these jobs (in whatever state, filtered by ``states``); repeatable definitions
            are copied only without ``ids``.
        to_state: ``"wait"`` puts every copied job in the waiting list the way Bull would move it
            there: failed/completed jobs as ``job.retry()`` does (finishedOn, processedOn and
            failedReason dropped, retriedOn set; attemptsMade, stacktrace and returnvalue kept),
            delayed ones as ``promote()`` does (delay 0, by priority). Default: keep their states.
        on_conflict, dry_run, batch_size, progress: as for ``import_queue``.
    """
    return _transfer(source, target, move=False, states=states, ids=ids, to_state=to_state,
                     on_conflict=on_conflict, dry_run=dry_run, batch_size=batch_size, progress=progress)


def move_jobs(
    source: Queue,
    target: Queue,
    *,
    states: Iterable[str] | str | None = None,
    ids: Iterable[str | int] | None = None,
    to_state: str | None = None,
    on_conflict: OnConflict = "error",
    dry_run: bool = False,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> TransferSummary:
    """Move jobs to another queue, or within one queue back to waiting (``to_state="wait"``).

    Between queues: each batch is copied as by ``copy_jobs``, then exactly the jobs written are
    removed from the source, each only if it is still as copied (same state and lifecycle fields) and
    unlocked; a job that changed meanwhile stays in the source and is reported. Active jobs whose lock
    a worker holds are never moved. Jobs skipped as conflicts stay in the source.

    Within one queue (source and target the same queue, ``to_state="wait"``): failed and completed
    jobs are retried, delayed ones promoted, active ones whose lock expired requeued at the head, each
    atomically and as Bull does it (see ``copy_jobs``).
    """
    return _transfer(source, target, move=True, states=states, ids=ids, to_state=to_state,
                     on_conflict=on_conflict, dry_run=dry_run, batch_size=batch_size, progress=progress)


def _transfer(
    source: Queue, target: Queue, *, move: bool, states: Iterable[str] | str | None,
    ids: Iterable[str | int] | None, to_state: str | None, on_conflict: str, dry_run: bool, batch_size: int,
    progress: Progress | None,
) -> TransferSummary:
    wanted = _parse_states(states)
    _check_options(on_conflict, batch_size)
    to = _parse_to_state(to_state)
    id_list = None if ids is None else _parse_ids(ids)
    job_states = [s for s in JOB_STATES if s in wanted]
    if _same_queue(source, target):
        what = "move_jobs" if move else "copy_jobs"
        if not move:
            raise ValueError(f"{what}: source and target are the same queue: a copy would duplicate its job ids "
                             "(use move_jobs(..., to_state='wait') to move jobs between states)")
        if to is None:
            raise ValueError(f"{what}: source and target are the same queue: give to_state='wait' to move jobs "
                             "back to waiting, or another target queue")
        return _requeue_in_place(source, job_states, id_list, dry_run, batch_size, progress)

    src_where, dst_where = _where(source), _where(target)
    now = now_ms()
    with _raw_client(source.client) as src_raw, _raw_client(target.client) as dst_raw:
        src_runner = ScriptRunner(src_raw)
        floor = _id_counter(src_raw, source.keys)
        # Pass one: ids the target already has; nothing is written.
        check = _Tally()
        checker = _ConflictCheck(dst_raw, target.keys, on_conflict, batch_size, check)
        scan = _Scan(src_runner, source.keys, what="ids", batch_size=batch_size)
        locked_in_source = 0
        for rows in _batches(scan, job_states, id_list):
            for live in rows:
                if move and live.locked and live.entry.state == "active":
                    locked_in_source += 1
                    continue
                # Ids only were read: the plan's placement is right, its hash empty (not needed here).
                checker.add(_plan(live.entry, to, now))
        repeats: list[RepeatEntry] = []
        if "repeat" in wanted and id_list is None:
            for chunk in _read_repeatables(src_raw, source.keys, batch_size):
                repeats.extend(chunk)
                for rep in chunk:
                    checker.add_repeat(rep.key)
        checker.flush()
        missing = tuple(scan.missing)
        if check.conflicts and on_conflict == "error":
            raise ImportConflict(dst_where, check.conflicts, check.conflict_ids)
        if dry_run:
            fields = check.import_fields(dst_where, True, False, floor)
            fields["written"] = _ready_as(fields["written"], "paused" if _is_paused(dst_raw, target.keys) else "wait")
            return TransferSummary(**fields, source=src_where, moved=move, locked_in_source=locked_in_source,
                                   missing_ids=missing)

        # Pass two: copy batch by batch, and for a move remove from the source what was written.
        tally = _Tally()
        writer = _Target(target, dst_raw, on_conflict, floor, tally, batch_size)
        scan = _Scan(src_runner, source.keys, what="all", batch_size=batch_size)
        done = 0
        for rows in _batches(scan, job_states, id_list):
            planned = []
            for live in rows:
                if move and live.locked and live.entry.state == "active":
                    tally.locked_in_source += 1
                    continue
                planned.append(_plan(live.entry, to, now))
            statuses = writer.write(planned)
            if move:
                written = [p for p, s in zip(planned, statuses) if s in ("added", "replaced")]
                removed = _remove_moved(src_runner, source.keys, written, tally)
                scan.removed(removed)
            done += len(rows)
            if progress is not None and rows:
                progress(done)
        writer.finish(repeats, {})
        if move and repeats:
            with connection.unavailable_as_error(src_raw):
                for i in range(0, len(repeats), batch_size):
                    src_raw.zrem(source.keys("repeat"), *(r.key for r in repeats[i : i + batch_size]))
        return TransferSummary(
            **tally.import_fields(dst_where, False, False, floor), source=src_where, moved=move,
            removed=tally.removed, locked_in_source=tally.locked_in_source, changed=tally.changed,
            missing_ids=tuple(scan.missing),
        )


def _remove_moved(runner: ScriptRunner, keys: QueueKeys, written: Sequence[_Planned], tally: _Tally) -> list[str]:
    if not written:
        return []
    args: list[Any] = [keys.base, str(len(written))]
    for item in written:
        args += [item.entry.id, str(_KEY_INDEX[item.entry.state]), _fingerprint(item.entry.fields)]
    call: Call[list[str]] = Call("remove_moved", keys=_state_keys(keys), args=args,
                                 parse=lambda reply: [_text(x) for x in reply])
    statuses = runner.run(call)
    removed = [item.entry.id for item, status in zip(written, statuses) if status == "removed"]
    tally.removed += len(removed)
    tally.changed += len(written) - len(removed)
    return removed


def _requeue_in_place(queue: Queue, states: Sequence[str], ids: Sequence[str] | None, dry_run: bool,
                      batch_size: int, progress: Progress | None) -> TransferSummary:
    where = _where(queue)
    tally = _Tally()
    now = str(now_ms())
    with _raw_client(queue.client) as raw:
        runner = ScriptRunner(raw)
        ready = "paused" if _is_paused(raw, queue.keys) else "wait"
        scan = _Scan(runner, queue.keys, what="all" if not dry_run else "ids", batch_size=batch_size)
        if ids is None:
            # Waiting jobs are where they should be already: count them, do not read them.
            with connection.unavailable_as_error(raw):
                tally.already_waiting = sum(int(raw.llen(queue.keys(s))) for s in ("wait", "paused") if s in states)
            scanned = [s for s in states if s not in ("wait", "paused")]
        else:
            scanned = list(states)
        done = 0
        for rows in _batches(scan, scanned, ids):
            todo = []
            for live in rows:
                if live.entry.state in ("wait", "paused"):
                    tally.already_waiting += 1
                elif live.locked:
                    tally.locked_in_source += 1
                else:
                    todo.append(live)
            if dry_run:
                tally.written[ready] += len(todo)
            elif todo:
                args: list[Any] = [queue.keys.base, now, str(len(todo))]
                for live in todo:
                    args += [live.entry.id, str(_KEY_INDEX[live.entry.state]),
                             "RPUSH" if _lifo(live.entry.fields) else "LPUSH"]
                call: Call[list[str]] = Call("requeue_jobs", keys=[*_state_keys(queue.keys), queue.keys("meta-paused")],
                                             args=args, parse=lambda reply: [_text(x) for x in reply])
                statuses = runner.run(call)
                moved = [live.entry.id for live, status in zip(todo, statuses) if status == "moved"]
                tally.written[ready] += len(moved)
                tally.locked_in_source += statuses.count("locked")
                tally.changed += statuses.count("changed")
                tally.already_waiting += statuses.count("waiting")
                scan.removed(moved)
            done += len(rows)
            if progress is not None and rows:
                progress(done)
        return TransferSummary(
            target=where, dry_run=dry_run, written=tally.written_dict(), source=where, moved=True,
            locked_in_source=tally.locked_in_source, changed=tally.changed, already_waiting=tally.already_waiting,
            missing_ids=tuple(scan.missing),
        )
