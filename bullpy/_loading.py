"""add_frame's writes: chunks pipelined, so that Redis runs one while Python encodes the next, and so that a
Redis restart or a Sentinel failover neither loses nor doubles rows.

Each chunk is one ``add_jobs`` script call (its row layout, ``bullpy._core.rows``), sent on a connection of its
own whose redis-py retries are off. The writer keeps two chunks in flight: chunk k+1 is encoded and sent
while Redis runs chunk k, then chunk k's reply is read, so a load takes about the longer of Python's and
Redis's time, not their sum. redis-py would send a chunk again after a dropped connection without telling
anyone, and a chunk without job ids sent twice is queued twice; bullpy decides instead:

* **with job ids** the chunks whose outcome is unknown are sent again, in order, under the ``RetryPolicy``:
  rows they had written come back as duplicates and are reported ``added`` (their job was created by this
  load);
* **without job ids** they are not: the load stops with ``FrameLoadInterrupted`` saying which rows are queued
  for sure (every chunk before the first one not confirmed) and which may be (the chunks in flight). A PING
  (retried) before the first chunk makes sure Redis is there.

An error reply (OOM, NOPERM, a script's refusal) means that chunk wrote nothing (add_jobs checks before its
first write); the replies of the chunks behind it are still read, so the message says exactly what is
queued. NOSCRIPT (a SCRIPT FLUSH mid-load) means the same and is cured by loading the script again.

With Sentinel, a chunk counts as written only once a replica has it too (``WAIT 1``), and chunks go one at a
time: replication is asynchronous, and a master that is failed over loses what its replica had not
received. When no replica confirms, the Sentinels are asked: if they now name another master the chunk went
to the old one (the window between the promotion and the switch) and is sent again to the new one (with job
ids; without, the load stops). A master without any connected replica (just after a failover, before the old
master rejoins) has nothing to confirm with and is taken at its word.

Without Sentinel, a chunk Redis acknowledged is as durable as the server's persistence: with
``appendonly yes`` and ``appendfsync always`` a restart loses nothing acknowledged.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import redis as _redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import _sentinel, connection
from ._core import rows, scripts
from .errors import FrameLoadInterrupted
from .retry import DEFAULT_POLICY, RetryPolicy, as_error, gave_up, is_transient
from .utils import now_ms

if TYPE_CHECKING:
    from .queue import Queue

_WAIT_MS = 500  # how long one WAIT gives the replica to acknowledge a chunk
_SCRIPT = "add_jobs"
_SHA = hashlib.sha1(scripts.SOURCES[_SCRIPT].encode()).hexdigest()

#: A chunk's data: each row's data JSON, or columns ``(key, kind, values)`` that ``bullpy._core.rows`` encodes.
ChunkData = Sequence[str] | Sequence[tuple[str, str, Sequence[Any]]]


class _Unconfirmed(_redis.ConnectionError):
    """No replica confirmed a chunk (a transient failure: the chunk's fate is unknown)."""


def _twin(client: _redis.Redis) -> _redis.Redis:
    """A one-connection client on the same server (or Sentinel service) with redis-py's retries off."""
    # One connection: WAIT must run on the connection that wrote (it waits for that client's writes).
    return connection.client_like(client, drop=("retry_on_error",), retry=Retry(NoBackoff(), 0), max_connections=1)


@dataclass
class _Chunk:
    start: int
    rows: int
    command: list[str]  # EVALSHA and its arguments, until packed
    ids: Sequence[str] | None
    packed: list[bytes] | None = None
    sent_again: bool = False
    outcome: str = "pending"  # pending (not sent), unknown (sent), written, refused, noscript
    reply: Any = None
    generation: int = 0  # the connection's (re)connection count when it was sent


class ChunkWriter:
    """Writes add_frame's chunks in order, two in flight; see the module docstring.

    ``add(start, data, ...)`` encodes and sends one chunk and returns the chunks finished meanwhile as
    ``(start, job ids, statuses)``; ``flush()`` waits for the rest. Close it when done.
    """

    def __init__(self, queue: Queue, *, idempotent: bool, total: int, policy: RetryPolicy | None = None,
                 template: rows.RowTemplate | None = None, depth: int = 2) -> None:
        self.queue = queue
        self.idempotent = idempotent
        self.total = total
        self.policy = policy or DEFAULT_POLICY
        self.template = template or rows.row_template(None, {}, defaults=queue.default_job_options,
                                                      known_backoffs=queue.backoff_strategies)
        self.client = _twin(queue.client)
        self.sentinel = _sentinel.is_sentinel(queue.client)
        self.depth = 1 if self.sentinel else max(1, depth)
        self.keys = [queue.keys(s) for s in ("wait", "paused", "meta-paused", "id", "delayed", "priority", "repeat")]
        self.started_ms = now_ms()
        self.written = 0  # rows (frame order) queued for sure
        self.retries = 0  # chunks sent again after an unknown outcome
        self._conn: Any = None
        self._ready = False  # connected, and the script loaded on this connection
        self._inflight: deque[_Chunk] = deque()
        self._pinged = False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self.client.connection_pool.release(self._conn)
            self._conn = None
        self.client.connection_pool.disconnect()

    def __enter__(self) -> ChunkWriter:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- encoding ---------------------------------------------------------------------------------------
    def encode(self, data: ChunkData, *, timestamp: int, values: Mapping[str, Sequence[Any]] | None = None
               ) -> list[str]:
        """The chunk's add_jobs arguments (after the base key and token): data encoded column by column."""
        if data and isinstance(data[0], tuple):
            triples = cast("Sequence[tuple[str, str, Sequence[Any]]]", data)
            columns = [rows.encode_column(vals, kind, where=f"data[{key!r}]") for key, kind, vals in triples]
            encoded = rows.encode_rows([key for key, _, _ in triples], columns, len(columns[0]))
        else:
            encoded = [str(row) for row in data]
        return rows.row_args(self.template, encoded, timestamp=timestamp, values=values or {})

    # --- writing ----------------------------------------------------------------------------------------
    def add(self, start: int, data: ChunkData, *, timestamp: int, values: Mapping[str, Sequence[Any]] | None = None
            ) -> list[tuple[int, list[str], list[str]]]:
        """Encode and send rows ``start``...; returns the chunks that finished meanwhile, in order."""
        args = self.encode(data, timestamp=timestamp, values=values)
        ids = (values or {}).get("job_id")
        chunk = _Chunk(start, int(args[1]), ["EVALSHA", _SHA, str(len(self.keys)), *self.keys, self.queue.keys.base,
                                             self.queue.token, *args], None if ids is None else [str(i) for i in ids])
        return self._run(chunk)

    def flush(self) -> list[tuple[int, list[str], list[str]]]:
        """Wait for every chunk in flight; returns them, in order."""
        return self._run(None)

    def _run(self, chunk: _Chunk | None) -> list[tuple[int, list[str], list[str]]]:
        done: list[tuple[int, list[str], list[str]]] = []
        keep = 0 if chunk is None else self.depth - 1
        first_failure: float | None = None
        tries = noscript = 0
        resend = False
        while True:
            try:
                if resend:
                    for pending in self._inflight:
                        pending.outcome = "pending"
                        self._send(pending)
                    resend = False
                if chunk is not None:
                    self._send(chunk)
                    self._inflight.append(chunk)
                    chunk = None
                while len(self._inflight) > keep:
                    head = self._inflight[0]
                    self._receive(head)
                    self._inflight.popleft()
                    done.append(self._finish(head))
                return done
            except FrameLoadInterrupted:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below, then re-raised or retried
                self._drop()
                if chunk is not None:  # it failed to go out whole: Redis cannot have run it
                    self._inflight.append(chunk)
                    chunk.outcome = "refused"
                    chunk = None
                if self._inflight and all(c.outcome == "noscript" for c in self._inflight) and noscript < 3:
                    noscript += 1
                    resend = True  # none of them ran: load the script again and send them again
                    continue
                error = as_error(exc, self.queue.client, "")
                if error is not exc and error.__cause__ is None:
                    error.__cause__ = exc
                if not is_transient(exc) or not self.idempotent:
                    raise self._interrupted(error) from error
                now = time.monotonic()
                first_failure = first_failure if first_failure is not None else now
                tries += 1
                delay = self.policy.delay(tries)
                if tries >= self.policy.attempts or now - first_failure + delay > self.policy.deadline:
                    cause = gave_up(exc, self.queue.client, "add_frame", tries, now - first_failure)
                    cause.__cause__ = error
                    raise self._interrupted(cause) from cause
                self.retries += 1
                for pending in self._inflight:
                    pending.sent_again = True
                self.queue._emit("error", exc)
                time.sleep(delay)
                resend = True

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.client.connection_pool.get_connection()
        if not self._ready:
            conn = self._conn
            conn.connect()
            if not self.idempotent and not self._pinged:
                self._ping()
            conn.send_command("SCRIPT", "LOAD", scripts.SOURCES[_SCRIPT])
            conn.read_response()
            self._ready = True
        return self._conn

    def _send(self, chunk: _Chunk) -> None:
        conn = self._connection()
        if chunk.packed is None:
            chunk.packed = conn.pack_command(*chunk.command)
            chunk.command = []
        chunk.generation = int(getattr(conn, "generation", 0))
        chunk.outcome = "unknown"  # from the first byte on, Redis may run it
        conn.send_packed_command(chunk.packed, check_health=False)

    def _receive(self, chunk: _Chunk) -> None:
        try:
            chunk.reply = self._conn.read_response()
        except _redis.ResponseError as exc:
            chunk.outcome = "noscript" if str(exc).startswith("NOSCRIPT") else "refused"
            self._read_rest()
            raise
        if self.sentinel:
            self._confirm(chunk.generation)
        chunk.outcome = "written"

    def _read_rest(self) -> None:
        """After an error reply, the fate of the chunks behind it: their replies are on the wire already."""
        for chunk in list(self._inflight)[1:]:
            try:
                chunk.reply = self._conn.read_response()
                chunk.outcome = "written"
            except _redis.ResponseError as exc:
                chunk.outcome = "noscript" if str(exc).startswith("NOSCRIPT") else "refused"
            except Exception:  # noqa: BLE001
                return  # the connection went: the rest stay unknown

    def _drop(self) -> None:
        self._ready = False
        if self._conn is not None:
            self._conn.disconnect()

    def _finish(self, chunk: _Chunk) -> tuple[int, list[str], list[str]]:
        ids, statuses = rows.parse_rows_reply(chunk.reply, chunk.ids)
        if chunk.sent_again:
            statuses = self._created_by_this_load(ids, statuses)
        self.written = chunk.start + chunk.rows
        return chunk.start, ids, statuses

    def _interrupted(self, cause: BaseException) -> FrameLoadInterrupted:
        done, total = self.written, self.total
        maybe = [c for c in self._inflight if c.outcome in ("unknown", "written")]
        uncertain = range(maybe[0].start, maybe[-1].start + maybe[-1].rows) if maybe else range(done, done)
        if maybe and maybe[0].start > done:  # refused chunks before it: say so from the first row not queued
            uncertain = range(done, uncertain.stop)
        self._inflight.clear()
        where = f"rows 0-{done - 1} (frame order) are queued" if done else "no row is queued"
        text_maybe = (f"; rows {uncertain.start}-{uncertain.stop - 1} may or may not be (they were in flight)"
                      if len(uncertain) else "")
        after = uncertain.stop if len(uncertain) else done
        rest = f"; rows {after}-{total - 1} are not" if after < total else ""
        if self.idempotent:
            hint = ("Once Redis is back (or the refusal is dealt with), run add_frame again with the same frame and "
                    "job_id: it adds only the rows that are missing.")
        elif len(uncertain):
            hint = (f"Without job_id a re-run would queue rows {uncertain.start}-{uncertain.stop - 1} twice if they "
                    f"were written: check the queue, then add df.iloc[{uncertain.stop}:] (or the in-flight rows "
                    "that are missing); pass job_id= to make loads resumable.")
        else:
            hint = f"Add the remaining rows with add_frame(df.iloc[{done}:]) once Redis is back."
        text = str(cause).strip().removeprefix(": ").rstrip(".") or type(cause).__name__
        return FrameLoadInterrupted(
            f"add_frame stopped after {done} of {total} rows: {text}. {where[0].upper()}{where[1:]}{text_maybe}"
            f"{rest}. {hint}",
            written=done, uncertain=uncertain, total=total,
        )

    def _ping(self) -> None:
        """Wait (retried) until Redis answers, so a chunk without ids is sent on a live connection."""
        from .retry import call

        def ping() -> None:
            try:
                self._conn.connect()
                self._conn.send_command("PING")
                self._conn.read_response()
            except BaseException:
                self._conn.disconnect()
                raise

        call(ping, client=self.queue.client, what="add_frame", policy=self.policy)
        self._pinged = True

    def _confirm(self, generation: int) -> None:
        """Sentinel: return once a replica has the chunk, or the master has no replica to confirm with;
        raise _Unconfirmed when the chunk went to a master that is being (or was) replaced."""
        deadline = time.monotonic() + max(self.policy.deadline, 1.0)
        pause = 0.05
        while True:
            acked, address, replicas = self._wait_on_writer(generation)
            if acked >= 1:
                return
            master = _sentinel.current_master(self.queue.client)
            if master is not None and address is not None and master != address:
                # Written to a master the Sentinels no longer name: it loses these writes when demoted.
                raise _Unconfirmed(f"the chunk went to {address[0]}:{address[1]}, which is no longer the master")
            if not replicas and not _sentinel.failover_in_progress(self.queue.client):
                # No replica connected (e.g. just after a failover, before the old master rejoins): nothing
                # can confirm the chunk, and nothing else can hold it.
                return
            if time.monotonic() > deadline:
                raise _Unconfirmed("no replica confirmed the chunk")
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _wait_on_writer(self, generation: int) -> tuple[int, tuple[str, int] | None, int]:
        """ROLE, then WAIT 1 when a replica is connected, on the connection that wrote: replicas that
        acknowledged the chunk, the server's address, replicas connected to it."""
        conn = self._conn
        if getattr(conn, "generation", 0) != generation:
            # Reconnected since the write (the watcher cut it, or the server went away): the chunk may be
            # on the old master only, and WAIT on this new session would confirm nothing of it.
            raise _Unconfirmed("the connection that wrote the chunk was replaced before a replica confirmed it")
        try:
            conn.send_command("ROLE")
            role = conn.read_response()
            replicas = len(role[2]) if isinstance(role, list) and len(role) > 2 and isinstance(role[2], list) else 0
            acked = 0
            if replicas:
                conn.send_command("WAIT", 1, _WAIT_MS)
                acked = int(conn.read_response())
        except _redis.exceptions.NoPermissionError:
            # An ACL user without WAIT or ROLE: the chunk cannot be confirmed; take Redis at its word.
            self.sentinel = False
            return 1, None, 0
        host, port = getattr(conn, "host", None), getattr(conn, "port", None)
        address = (str(host), int(port)) if host is not None and port is not None else None
        return acked, address, replicas

    def _created_by_this_load(self, ids: list[str], statuses: list[str]) -> list[str]:
        """A chunk sent again reports the rows its lost first try wrote as duplicates: a duplicate whose job
        was created since this load started is one of those, so it is reported ``added``."""
        from .retry import call

        dup = [i for i, s in zip(ids, statuses) if s == "duplicate"]
        if not dup:
            return statuses

        def read() -> list[Any]:
            with self.queue.client.pipeline(transaction=False) as pipe:
                for job_id in dup:
                    pipe.hget(self.queue.keys.job(job_id), "timestamp")
                return list(pipe.execute())

        stamps = dict(zip(dup, call(read, client=self.queue.client, what="add_frame", policy=self.policy)))
        out = []
        for job_id, status in zip(ids, statuses):
            stamp = stamps.get(job_id)
            mine = status == "duplicate" and stamp is not None and _int(stamp) >= self.started_ms
            out.append("added" if mine else status)
        return out


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return -1
