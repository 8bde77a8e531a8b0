"""``queue.raw``'s batch writes for import, copy and move: ``import_rows`` and its packed form.

A batch is written by ``lua/import_jobs.lua`` (conflicts, locks, replace, Bull's priority insert), or, where
none of its jobs exist yet, by one WATCH-guarded MULTI/EXEC of plain commands that leaves the same keys
for about half the Redis time (``bullpy._core.new_jobs``). Either way a batch is all or nothing. Mixed into
``bullpy.raw.RawQueue``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

from ._core import new_jobs, raw_scripts, scripts
from ._core.raw_scripts import Imported, ImportRow
from ._import_stream import ExistsCounter, ImportStream, Packed, PackedImport
from ._raw_fields import FieldReads

try:
    from hiredis import pack_command as _pack_command
except ImportError:  # pragma: no cover - hiredis comes with redis[hiredis]
    _pack_command = None  # type: ignore[assignment]

T = TypeVar("T")


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
        """``import_rows`` packed for the wire, to ``send_import`` or an ``import_stream`` later (a batch is
        packed while the one before is written)."""
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

    def exists_counter(self) -> ExistsCounter:
        """``count_existing`` for batch after batch, each sent before the previous answer is read
        (``ExistsCounter``); use it as a context manager."""
        return ExistsCounter(self)

    def count_existing(self, ids: Sequence[str]) -> int:
        """How many of these jobs have a key (one EXISTS)."""
        with self.exists_counter() as counter:
            counter.push(ids)
            return counter.finish() or 0
