"""Sending packed import batches without waiting between them: ``ImportStream`` and ``ExistsCounter``.

Both keep one connection busy while the caller reads and packs what comes next: a batch's commands go out
before the answer to the one before it is read. Used by ``queue.raw`` (``bullpy._raw_import``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, cast

import redis as _redis

from . import _refusals
from ._core import new_jobs, scripts
from ._core.raw_scripts import Imported, ImportRow

if TYPE_CHECKING:
    from ._raw_import import ImportWrites

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

    @property
    def size(self) -> int:
        """About how many bytes the batch sends."""
        if self.new is not None:
            return len(self.new.hashes)
        if self.script is not None and self.script.command is not None:
            return len(self.script.command)
        return sum(sum(map(len, row.flat)) + sum(map(len, row.logs)) + 64 for row in self.rows)


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


@dataclass(frozen=True)
class _Sent:
    """A batch on its way: how many replies it gets, and whether its writes went out with its checks (and then
    which ready list they push to)."""

    packed: PackedImport
    tag: Any
    n: int
    writes: bool = False
    paused: bool = False


class ImportStream:
    """Packed batches written in the order they are pushed, on one connection, without waiting between them.

    A batch of new jobs is a WATCH-guarded transaction (``bullpy._core.new_jobs``): its checks, which open the
    transaction, then its writes and EXEC once the checks pass. Until one transaction went through, the writes
    wait for the checks' answer (a server may refuse MULTI, and queued commands would then run unguarded);
    after that, a batch's checks and writes go out together, and ``push`` reads them when the next batch is
    pushed, then sends EXEC (or DISCARD) together with the next batch: Redis runs one batch and queues the
    next while the caller reads and packs the one after.

    A batch that must go through the script (ids that exist, leftover log rows, a changed key, no
    transactions) runs once everything sent before it is done, so the ready list keeps the pushed order.
    ``push`` and ``flush`` answer the batches finished so far, as (tag, reply).
    """

    def __init__(self, raw: ImportWrites) -> None:
        self._raw = raw
        self._client = raw._bytes()[0]
        self._conn: Any = None
        self._checking: _Sent | None = None  # its checks (and writes) are sent, the replies unread
        self._executing: _Sent | None = None  # its EXEC is sent, the replies unread
        self._paused: bool | None = None  # the pause state the last passing checks saw; None: no transaction yet
        self._broken = False

    def __enter__(self) -> ImportStream:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection; one left with replies unread or a transaction open (after an error) is
        closed instead, which ends the transaction unrun."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._broken or self._checking is not None or self._executing is not None:
            conn.disconnect()
        self._checking = self._executing = None
        self._client.connection_pool.release(conn)

    def push(self, packed: PackedImport, tag: Any) -> list[tuple[Any, Imported]]:
        """Send a batch (with the EXEC of the one before it); the batches finished meanwhile."""
        try:
            done: list[tuple[Any, Imported]] = []
            out = self._settle(done)  # may find that Redis refuses transactions
            if packed.new is not None and not self._raw._no_tx:
                self._send(out + self._checks(packed, tag))
                return done
            self._send(out)
            self._finish(done)
            done.append((tag, self._script(packed)))
            return done
        except BaseException:
            self._broken = True
            raise

    def flush(self) -> list[tuple[Any, Imported]]:
        """Wait for every batch pushed; those not answered before."""
        try:
            done: list[tuple[Any, Imported]] = []
            self._send(self._settle(done))
            self._finish(done)
            return done
        except BaseException:
            self._broken = True
            raise

    # --- steps ----------------------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if not data:
            return
        with _refusals.unavailable_as_error(self._client, keys=self._raw.queue.keys):
            if self._conn is None:
                self._conn = self._raw._connection(self._client)
            self._conn.send_packed_command([data])

    def _read(self, n: int) -> list[Any]:
        with _refusals.unavailable_as_error(self._client, keys=self._raw.queue.keys):
            return replies(self._conn, n)

    def _checks(self, packed: PackedImport, tag: Any) -> bytes:
        """A batch's checks, with its writes once a transaction went through; it becomes the checked batch."""
        batch = cast(new_jobs.NewJobs, packed.new)
        if self._paused is None:
            self._checking = _Sent(packed, tag, batch.n_checks)
            return batch.checks
        placements, n = new_jobs.pack_placements(self._raw.queue.keys, packed.rows, self._paused,
                                                 cast(Any, _pack_command))
        self._checking = _Sent(packed, tag, batch.n_checks + batch.n_hashes + n, True, self._paused)
        return batch.checks + batch.hashes + placements

    def _settle(self, done: list[tuple[Any, Imported]]) -> bytes:
        """Read what is in flight (one batch's EXEC, then the next one's checks) and decide the checked batch:
        the bytes that write it (EXEC, or its writes and EXEC), or b"" when it went through the script."""
        executing, checking = self._executing, self._checking
        outcome: Any = None
        if executing is not None:
            outcome = self._read(executing.n)[-1]
            self._executing = None
        if checking is None:
            if executing is not None:
                self._record(executing, outcome, done)
            return b""
        answers = self._read(checking.n)
        self._checking = None
        batch = cast(new_jobs.NewJobs, checking.packed.new)
        checked = answers[: batch.n_checks]
        if executing is not None and not isinstance(outcome, list):
            # Not written (a watched key changed): the batch behind it is closed, and checked again once the
            # script wrote this one, so that the ready list keeps the order.
            self._close(checked)
            self._record(executing, outcome, done)
            self._send(self._checks(checking.packed, checking.tag))
            return self._settle(done)
        if executing is not None:
            self._record(executing, outcome, done)
        why, paused = new_jobs.verdict(batch, checked)
        if why == "ok" and checking.writes and paused != checking.paused:
            why = "paused"  # its writes push to the other ready list: sent again, to the right one
        if why != "ok":
            if why == "refused":  # a proxy or an ACL without WATCH or MULTI: the script from now on
                self._raw._no_tx = True
            self._close(checked)
            if why == "paused":
                self._paused = paused
                self._send(self._checks(checking.packed, checking.tag))
                return self._settle(done)
            done.append((checking.tag, self._script(checking.packed)))
            return b""
        self._paused = paused
        if checking.writes:
            self._executing = _Sent(checking.packed, checking.tag, 1)
            return _EXEC
        placements, n = new_jobs.pack_placements(self._raw.queue.keys, checking.packed.rows, paused,
                                                 cast(Any, _pack_command))
        self._executing = _Sent(checking.packed, checking.tag, batch.n_hashes + n + 1)  # +QUEUED each, then EXEC's
        return batch.hashes + placements + _EXEC

    def _finish(self, done: list[tuple[Any, Imported]]) -> None:
        """Read the EXEC in flight, if any."""
        executing = self._executing
        if executing is not None:
            outcome = self._read(executing.n)[-1]
            self._executing = None
            self._record(executing, outcome, done)

    def _close(self, checked: list[Any]) -> None:
        """End a batch's transaction unrun: DISCARD (UNWATCH where MULTI was refused, so none is open)."""
        self._send(_DISCARD if checked[-1] in (b"OK", "OK") else _UNWATCH)
        self._read(1)

    def _record(self, sent: _Sent, outcome: Any, done: list[tuple[Any, Imported]]) -> None:
        if isinstance(outcome, list):
            failed = [r for r in outcome if isinstance(r, Exception)]
            if failed:  # a list or set turned into another type between the checks and EXEC (the rest was written)
                raise failed[0]
            done.append((sent.tag, Imported(["added"] * len(sent.packed.rows), [])))
        else:  # nil: a job key or meta-paused changed since WATCH; EXECABORT: a command refused when queued
            done.append((sent.tag, self._script(sent.packed)))

    def _script(self, packed: PackedImport) -> Imported:
        """The batch through lua/import_jobs.lua (on another connection: nothing is in flight on this one)."""
        script = packed.script or self._raw._pack_script(packed.rows, packed.on_conflict, packed.id_floor)
        return self._raw.send(script)


class ExistsCounter:
    """How many jobs of each batch have a key, batch after batch on one connection: ``push`` sends a batch's
    EXISTS and answers the batch before it, so Redis counts one while the caller reads the next."""

    def __init__(self, raw: ImportWrites) -> None:
        self._raw = raw
        self._client = raw._bytes()[0]
        self._conn: Any = None
        self._in_flight = False
        self._previous: int | None = None  # without hiredis: counted at once, answered at the next push

    def __enter__(self) -> ExistsCounter:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def push(self, ids: Sequence[str]) -> int | None:
        """Count a batch; the count of the batch pushed before it (None for the first)."""
        keys = [self._raw.queue.keys.base + str(i) for i in ids]
        if _pack_command is None or not ids:
            with _refusals.unavailable_as_error(self._client, keys=self._raw.queue.keys):
                count = int(self._client.exists(*keys)) if keys else 0
            previous, self._previous = self.finish(), count
            return previous
        with _refusals.unavailable_as_error(self._client, keys=self._raw.queue.keys):
            if self._conn is None:
                self._conn = self._raw._connection(self._client)
            # Packed by hiredis: redis-py's packing of a few hundred keys costs more than Redis' lookups.
            self._conn.send_packed_command([_pack_command(cast(Any, ("EXISTS", *keys)))])
            previous = self._read() if self._in_flight else self._previous
            self._in_flight, self._previous = True, None
        return previous

    def finish(self) -> int | None:
        """The count of the last batch pushed (None if there is none)."""
        if self._in_flight:
            with _refusals.unavailable_as_error(self._client, keys=self._raw.queue.keys):
                self._in_flight = False
                return self._read()
        previous, self._previous = self._previous, None
        return previous

    def _read(self) -> int:
        return int(self._conn.read_response())

    def close(self) -> None:
        """Release the connection (closed instead while an answer is unread)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            if self._in_flight:
                conn.disconnect()
            self._client.connection_pool.release(conn)
        self._in_flight = False
