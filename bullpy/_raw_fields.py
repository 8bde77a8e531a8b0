"""``queue.raw.iter_state_fields``: a few hash fields of every job of a state, a batch at a time, for readers
of very many jobs (``jobs_frame``, ``bullpy doctor``): one ``SORT_RO ... BY nosort GET`` per batch, the next
one in flight while the caller decodes this one, or pipelined HMGETs where Redis refuses SORT. Mixed into
``bullpy.raw.RawQueue``."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis as _redis

from . import _refusals
from ._core import raw_scripts
from .utils import text

if TYPE_CHECKING:
    from ._facade import ScriptRunner
    from .queue import Queue

#: Jobs read by one SORT ... GET in ``iter_state_fields`` (at most).
_SORT_PAGE = 500
LIST_STATES = raw_scripts.LIST_STATES


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


def reply_texts(items: Sequence[bytes]) -> list[str]:
    """Reply items as text in one decode (bytes that are not UTF-8 replaced, as ``text`` does)."""
    joined = b"\x00".join(items)
    if joined.count(b"\x00") == len(items) - 1:
        return joined.decode("utf-8", "replace").split("\x00") if items else []
    return [text(i) for i in items]


class FieldReads:
    """The field reads of ``RawQueue`` (its ``queue`` and its bytes client)."""

    queue: Queue

    def _bytes(self) -> tuple[_redis.Redis, ScriptRunner]:
        raise NotImplementedError

    def iter_state_fields(self, state: str, fields: Sequence[str], *, asc: bool, start: int = 0, stop: int = -1,
                          batch_size: int = 1000) -> Generator[FieldBatch, None, None]:
        """Some hash fields of the jobs of one state, at most ``batch_size`` jobs at a time, positions ``start`` to
        ``stop`` (inclusive; -1: the end; negative positions count from the end) in reading order: ``asc``
        is ``get_ranges``' (lists from the head, sorted sets lowest first).

        Each batch is read by ``SORT_RO <state> BY nosort LIMIT ... GET # GET <job>->field ...`` commands of at
        most 500 jobs each (whatever ``batch_size`` asks, so that no command holds Redis for long): Redis walks the
        range and reads the fields in C, in one reply; the next batch is requested before this one is handed
        out, so Redis reads it while the caller works. Where Redis refuses that (before 7.0 in a cluster, an
        ACL user without read access to every key, a prefix with ``*``), the ids are read by range and the
        fields by pipelined HMGETs. Batches are read as they are reached, not as one snapshot.
        """
        state = "wait" if state == "waiting" else state
        if state not in raw_scripts.STATE_INDEX:
            raise ValueError(f"unknown job state {state!r}")
        if not fields:
            raise ValueError("fields must name at least one hash field")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size!r}")
        client = self._bytes()[0]
        key, base = self.queue.keys.state(state), self.queue.keys.job("")
        if start < 0 or stop < -1:
            with _refusals.unavailable_as_error(client, keys=self.queue.keys):
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

        # One SORT reads at most _SORT_PAGE jobs, whatever batch_size asks: a few milliseconds of Redis each, so
        # that a busy machine stretching one never brings it near 20 ms (1,000 a page did, now and then).
        pages = -(-batch_size // _SORT_PAGE)  # per batch; pages of equal size, so a batch holds batch_size jobs
        per_page = -(-batch_size // pages)
        ahead = max(2, 2000 // per_page)

        def page(position: int) -> int:
            return per_page if stop == -1 else min(per_page, stop - position + 1)

        first = None
        if "*" not in base:
            with _refusals.unavailable_as_error(client, keys=self.queue.keys):
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
        gathered: list[Any] = []
        asked = start + len(first) // width  # where the next request starts (every page full so far)
        try:
            while True:
                n = len(reply) // width
                last = n < page(position) or (stop != -1 and position + n > stop)
                # Keep about two batches of 1,000 jobs asked ahead, so Redis always has the next one to read while
                # this one is decoded (a request past the end costs Redis an empty reply).
                while not last and len(in_flight) < ahead and (stop == -1 or asked <= stop):
                    with _refusals.unavailable_as_error(client, keys=self.queue.keys):
                        conn.send_command(*sort, asked, page(asked), *tail)
                    in_flight.append(asked)
                    asked += page(asked)
                if n:
                    # Pages are joined up to batch_size jobs: callers see batches of the size they asked for.
                    gathered = reply if not gathered else gathered + reply
                done = last or not in_flight
                if gathered and (done or len(gathered) >= batch_size * width):
                    yield FieldBatch(reply_texts(gathered[0::width]), [gathered[k::width] for k in range(1, width)],
                                     atomic=True)
                    gathered = []
                if done:
                    break
                with _refusals.unavailable_as_error(client, keys=self.queue.keys):
                    reply = conn.read_response()
                position = in_flight.popleft()
            with _refusals.unavailable_as_error(client, keys=self.queue.keys):
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
                    with _refusals.unavailable_as_error(client, keys=self.queue.keys):
                        conn.send_packed_command([b"".join([b"%b$%d\r\n%b\r\n%b" % (head, len(k), k, tail)
                                                            for k in keys])])
                if pending is not None:
                    rows: list[Any] = []
                    refused: dict[int, str] = {}
                    with _refusals.unavailable_as_error(client, keys=self.queue.keys):
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
        with _refusals.unavailable_as_error(client):
            try:
                return pool.get_connection()
            except TypeError:  # redis-py before 5.3 wants a command name
                return pool.get_connection("SORT")
