"""``queue.raw``'s batch writes for import, copy and move: ``import_rows`` and its packed form.

A batch is written by ``lua/import_jobs.lua`` (conflicts, locks, replace, Bull's priority insert), or, where
none of its jobs exist yet, by one WATCH-guarded MULTI/EXEC of plain commands that leaves the same keys
for about half the Redis time (``bullpy._core.new_jobs``). Either way a batch is all or nothing. Mixed into
``bullpy.raw.RawQueue``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar, cast

import redis as _redis

from . import connection
from ._core import new_jobs, raw_scripts, scripts
from ._core.raw_scripts import Imported, ImportRow
from ._raw_fields import FieldReads

try:
    from hiredis import pack_command as _pack_command
except ImportError:  # pragma: no cover - hiredis comes with redis[hiredis]
    _pack_command = None  # type: ignore[assignment]

T = TypeVar("T")

_DISCARD: Final = b"*1\r\n$7\r\nDISCARD\r\n"
_UNWATCH: Final = b"*1\r\n$7\r\nUNWATCH\r\n"
_EXEC: Final = b"*1\r\n$4\r\nEXEC\r\n"


@dataclass(frozen=True)
class Packed(Generic[T]):
    """A script call packed for the wire (``RawQueue.pack_import``); ``RawQueue.send`` runs it. ``command`` is
    None without hiredis (the call is then run the ordinary way)."""

    call: scripts.Call[T]
    command: bytes | None


@dataclass(frozen=True)
class PackedImport:
    """A batch for ``send_import``, packed beforehand (while the batch before it is written): as a transaction
    of new jobs (``new``) where it can be one, else as the script call (``script``)."""

    rows: Sequence[ImportRow]
    on_conflict: str
    id_floor: int | None
    new: new_jobs.NewJobs | None
    script: Packed[Imported] | None


def replies(conn: Any, n: int) -> list[Any]:
    """The next ``n`` replies on a connection, errors among them as values. Read straight from redis-py's hiredis
    reader where there is one: ``read_response`` costs a few microseconds each, more than Redis spends on the
    command behind a +QUEUED."""
    parser = getattr(conn, "_parser", None)
    reader = getattr(parser, "_reader", None)
    fill = getattr(parser, "read_from_socket", None)
    if reader is None or fill is None:
        out: list[Any] = []
        for _ in range(n):
            try:
                out.append(conn.read_response())
            except _redis.ResponseError as exc:
                out.append(exc)
        return out
    out = []
    gets = reader.gets
    # What the parser's reader answers while a reply is incomplete (redis-py passes its own sentinel).
    waiting = getattr(sys.modules.get(type(parser).__module__), "NOT_ENOUGH_DATA", False)
    while len(out) < n:
        reply = gets()
        if reply is waiting:
            fill()
        else:
            out.append(reply)
    return out


class ImportWrites(FieldReads):
    """The batch writes of ``RawQueue`` (its ``queue``, its bytes client and its packed script calls)."""

    _no_tx: bool = False  # Redis refused WATCH or MULTI once: every batch goes through the script

    def _pack(self, call: scripts.Call[T]) -> Packed[T]:
        raise NotImplementedError

    def send(self, packed: Packed[T]) -> T:
        raise NotImplementedError

    def import_rows(self, rows: Sequence[ImportRow], *, on_conflict: str = "error",
                    id_floor: int | None = None) -> Imported:
        """``import_jobs`` for jobs whose hashes are flat field, value lists (as an export file holds them): no
        object per job on the way."""
        return self.send_import(self.pack_import(rows, on_conflict=on_conflict, id_floor=id_floor))

    def pack_import(self, rows: Sequence[ImportRow], *, on_conflict: str = "error",
                    id_floor: int | None = None) -> PackedImport:
        """``import_rows`` packed for the wire, to ``send_import`` later (from another thread: a batch is packed
        while the one before is written)."""
        if on_conflict not in ("error", "skip", "replace"):
            raise ValueError(f"on_conflict must be 'error', 'skip' or 'replace', got {on_conflict!r}")
        if _pack_command is not None and not self._no_tx and new_jobs.eligible(rows):
            batch = new_jobs.pack_new_jobs(self.queue.keys, rows, id_floor, cast(Any, _pack_command))
            return PackedImport(rows, on_conflict, id_floor, batch, None)
        return PackedImport(rows, on_conflict, id_floor, None, self._pack_script(rows, on_conflict, id_floor))

    def _pack_script(self, rows: Sequence[ImportRow], on_conflict: str, id_floor: int | None) -> Packed[Imported]:
        return self._pack(raw_scripts.import_rows(self.queue.keys, on_conflict, id_floor, rows))

    def send_import(self, packed: PackedImport) -> Imported:
        """Write a packed batch: a status per job, or the ids that exist (``on_conflict="error"``)."""
        with self.import_stream() as stream:
            done = stream.push(packed, None) + stream.flush()
        return done[0][1]

    def import_stream(self) -> ImportStream:
        """Batches written in order on one connection, each batch's writes on their way while the caller packs
        the next (``ImportStream``); use it as a context manager."""
        return ImportStream(self)

    def count_existing(self, ids: Sequence[str]) -> int:
        """How many of these jobs have a key (one EXISTS)."""
        if not ids:
            return 0
        client = self._bytes()[0]
        base = self.queue.keys.job("")
        keys = [base + str(i) for i in ids]
        if _pack_command is None:
            with connection.unavailable_as_error(client, keys=self.queue.keys):
                return int(client.exists(*keys))
        # Packed by hiredis: redis-py's packing of a few hundred keys costs more than Redis' lookups.
        conn = self._connection(client)
        clean = False
        try:
            with connection.unavailable_as_error(client, keys=self.queue.keys):
                conn.send_packed_command([_pack_command(cast(Any, ("EXISTS", *keys)))])
                count = int(conn.read_response())
            clean = True
            return count
        finally:
            if not clean:
                conn.disconnect()
            client.connection_pool.release(conn)


class ImportStream:
    """Packed batches written in the order they are pushed, on one connection, without waiting between them.

    A batch of new jobs takes two steps (``bullpy._core.new_jobs``): its checks (WATCH ... MULTI), then, once
    their replies are in, its writes and EXEC. ``push`` sends a batch's checks together with the writes of the
    batch before it, and reads their replies only when the next batch is pushed: Redis writes one batch and
    checks the next while the caller reads and packs the one after. A batch that must go through the script
    (conflicts, a changed key, no transactions) runs once everything sent before it is done, so the ready
    list keeps the pushed order. ``push`` and ``flush`` answer the batches finished so far, as (tag, reply).
    """

    def __init__(self, raw: ImportWrites) -> None:
        self._raw = raw
        self._client = raw._bytes()[0]
        self._conn: Any = None
        self._checking: tuple[PackedImport, Any] | None = None  # its checks are sent, their replies unread
        self._writing: tuple[PackedImport, Any, int] | None = None  # its writes and EXEC are sent (and n replies)

    def __enter__(self) -> ImportStream:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection; one left with replies unread (an error on the way) is closed instead."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._checking is not None or self._writing is not None:
            conn.disconnect()
        self._checking = self._writing = None
        self._client.connection_pool.release(conn)

    def push(self, packed: PackedImport, tag: Any) -> list[tuple[Any, Imported]]:
        """Send a batch (and the writes of the one before it); the batches finished meanwhile."""
        done = self._settle()
        writes = self._writes_of_checked(done)  # may find that Redis refuses transactions
        if packed.new is not None and not self._raw._no_tx:
            self._send(writes, packed.new.checks)
            self._checking = (packed, tag)
            return done
        self._finish_writing(writes, done)
        done.append((tag, self._script(packed)))
        return done

    def flush(self) -> list[tuple[Any, Imported]]:
        """Wait for every batch pushed; those not answered before."""
        done = self._settle()
        self._finish_writing(self._writes_of_checked(done), done)
        return done

    # --- steps ----------------------------------------------------------------------------------------------
    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._raw._connection(self._client)
        return self._conn

    def _send(self, *chunks: bytes) -> None:
        with connection.unavailable_as_error(self._client, keys=self._raw.queue.keys):
            self._connection().send_packed_command([c for c in chunks if c])

    def _read(self, n: int) -> list[Any]:
        with connection.unavailable_as_error(self._client, keys=self._raw.queue.keys):
            return replies(self._connection(), n)

    def _settle(self) -> list[tuple[Any, Imported]]:
        """Read the replies in flight: the writes' EXEC, then the checks. A batch whose EXEC wrote nothing goes
        through the script before the checked batch goes on (its checks are sent again)."""
        done: list[tuple[Any, Imported]] = []
        writing, checking = self._writing, self._checking
        if writing is None:
            return done
        packed, tag, n = writing
        outcome = self._read(n)[-1]
        self._writing = None
        if checking is not None and not isinstance(outcome, list):
            # Not written; the checked batch's transaction is open behind it: closed, to be checked again.
            self._close_checks(self._read(checking[0].new.n_checks))  # type: ignore[union-attr]
            self._checking = None
        self._record(packed, tag, outcome, done)
        if checking is not None and self._checking is None:
            self._send(checking[0].new.checks)  # type: ignore[union-attr]
            self._checking = checking
        return done

    def _writes_of_checked(self, done: list[tuple[Any, Imported]]) -> bytes:
        """Read the checked batch's checks: its writes and EXEC to send, or b"" after it went through the script."""
        if self._checking is None:
            return b""
        packed, tag = self._checking
        batch = cast(new_jobs.NewJobs, packed.new)
        checked = self._read(batch.n_checks)
        self._checking = None
        why, paused = new_jobs.verdict(batch, checked)
        if why != "ok":
            if why == "refused":  # a proxy or an ACL without transactions: the script from now on
                self._raw._no_tx = True
            self._close_checks(checked)
            done.append((tag, self._script(packed)))
            return b""
        placements, n = new_jobs.pack_placements(self._raw.queue.keys, packed.rows, paused, cast(Any, _pack_command))
        self._writing = (packed, tag, batch.n_hashes + n + 1)  # +QUEUED per command, then EXEC's reply
        return batch.hashes + placements + _EXEC

    def _finish_writing(self, writes: bytes, done: list[tuple[Any, Imported]]) -> None:
        if writes:
            self._send(writes)
        done.extend(self._settle())

    def _close_checks(self, checked: list[Any]) -> None:
        """End a batch's checks without writing: DISCARD the open transaction (or UNWATCH, if none opened)."""
        self._send(_DISCARD if checked[-1] in (b"OK", "OK") else _UNWATCH)
        self._read(1)

    def _record(self, packed: PackedImport, tag: Any, outcome: Any, done: list[tuple[Any, Imported]]) -> None:
        if isinstance(outcome, list):
            failed = [r for r in outcome if isinstance(r, Exception)]
            if failed:  # a list or set turned into another type between the checks and EXEC (the rest was written)
                raise failed[0]
            done.append((tag, Imported(["added"] * len(packed.rows), [])))
        else:  # nil: a job key or meta-paused changed since WATCH; EXECABORT: a command refused when queued
            done.append((tag, self._script(packed)))

    def _script(self, packed: PackedImport) -> Imported:
        """The batch through lua/import_jobs.lua (on another connection: nothing is in flight on this one)."""
        script = packed.script or self._raw._pack_script(packed.rows, packed.on_conflict, packed.id_floor)
        return self._raw.send(script)
