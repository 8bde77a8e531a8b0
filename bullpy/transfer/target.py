"""Writing jobs into a target queue for import, copy and move: placement, conflict checks, batches, tallies."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..errors import ImportConflict
from ..queue import Queue
from ..raw import ExistsCounter, Imported, ImportJob, ImportRow, ImportStream, RawQueue
from .records import MAX_REPORTED, JobEntry, RepeatEntry

_BATCH_BYTES: Final = 8 * 1024 * 1024  # one script call stays well below Redis' request limits
_READY: Final = frozenset({"head", "tail", "prio"})


def where(queue: Queue) -> str:
    """``prefix:name (host:port db N)``, for summaries and messages."""
    return f"{queue.prefix}:{queue.name} ({queue.server.describe()})"


def is_lifo(fields: Mapping[bytes, bytes]) -> bool:
    """Whether a raw job hash's opts ask for lifo."""
    try:
        opts = json.loads(fields.get(b"opts") or b"{}")
    except ValueError:
        return False
    return isinstance(opts, dict) and bool(opts.get("lifo"))


@dataclass(frozen=True)
class Planned:
    """A job and where it goes in the target: placement as ``queue.raw.import_jobs`` takes it."""

    entry: JobEntry
    placement: str  # head, tail, prio, delayed, completed, failed
    fields: Mapping[bytes, bytes]
    score: float | None = None
    priority: float | None = None

    @property
    def ready(self) -> bool:
        return self.placement in _READY

    def job(self) -> ImportJob:
        entry = self.entry
        deid = self.fields.get(b"deid", b"") if entry.debounce_ttl is not None else b""
        return ImportJob(entry.id, self.placement, self.fields, entry.logs, self.score, self.priority, deid,
                         entry.debounce_ttl)


def plan(entry: JobEntry, to_state: str | None, now: int) -> Planned:
    """Where a job goes in the target, and its hash there (changed only when it changes state)."""
    fields = entry.fields
    if to_state is None or entry.state in ("wait", "paused", "active"):
        if entry.state in ("wait", "paused"):
            return Planned(entry, "head", fields, priority=entry.priority)
        if entry.state == "active":
            # The lock cannot travel: the job waits at the head, where Bull's stalled recovery puts it.
            return Planned(entry, "head", fields)
        if entry.score is None:
            raise ValueError(f"job {entry.id!r}: a {entry.state} job needs its score")
        return Planned(entry, entry.state, fields, score=entry.score)
    if entry.state == "delayed":
        # Bull's promote: the delay field is reset, prioritised jobs take their place by priority.
        fields = {**fields, b"delay": b"0"}
        try:
            priority = float(fields.get(b"priority") or b"0")
        except ValueError:
            priority = 0.0
        if priority and not math.isnan(priority):
            return Planned(entry, "prio", fields, priority=priority)
        return Planned(entry, "tail", fields)
    # completed/failed: Bull's reprocessJob (job.retry()); attemptsMade, stacktrace, returnvalue stay.
    fields = {k: v for k, v in fields.items() if k not in (b"finishedOn", b"processedOn", b"failedReason")}
    fields[b"retriedOn"] = str(now).encode()
    return Planned(entry, "head" if is_lifo(fields) else "tail", fields)


class Tally:
    """Counts for a summary, accumulated batch by batch."""

    def __init__(self) -> None:
        self.written: Counter[str] = Counter()
        self.requeued_active = 0
        self.conflict_ids: list[str] = []
        self.conflicts = self.skipped = self.replaced = self.locked = 0
        self.repeat_added = self.repeat_present = 0
        self.removed = self.locked_in_source = self.changed = self.already_waiting = 0
        self.damaged = 0

    def record_job(self, job_id: str, state: str, placement: str, status: str, ready_state: str,
                   damaged: bool = False) -> None:
        """One job's outcome: ``state`` it had in the source, ``placement`` in the target (``import_rows``')."""
        if status in ("added", "replaced"):
            self.written[ready_state if placement in _READY else placement] += 1
            if state == "active":
                self.requeued_active += 1
            if damaged:
                self.damaged += 1
        if status != "added":
            self.conflicts += 1
            if len(self.conflict_ids) < MAX_REPORTED:
                self.conflict_ids.append(job_id)
            if status == "skipped":
                self.skipped += 1
            elif status == "replaced":
                self.replaced += 1
            else:
                self.locked += 1

    def record_added(self, jobs: Sequence[tuple[str, str, str, bool]], ready_state: str) -> None:
        """``record_job`` for jobs (id, source state, placement, damaged) that were all added: counted at once."""
        for placement, n in Counter(placement for _, _, placement, _ in jobs).items():
            self.written[ready_state if placement in _READY else placement] += n
        self.requeued_active += sum(1 for _, state, _, _ in jobs if state == "active")
        self.damaged += sum(1 for _, _, _, damaged in jobs if damaged)

    def written_dict(self) -> dict[str, int]:
        return {s: self.written[s] for s in ("wait", "paused", "delayed", "completed", "failed") if self.written[s]}

    def import_fields(self, target: str, dry_run: bool, paused_target: bool, id_counter: int | None) -> dict[str, Any]:
        return {
            "target": target, "dry_run": dry_run, "written": self.written_dict(),
            "requeued_active": self.requeued_active, "conflicts": self.conflicts,
            "conflict_ids": tuple(self.conflict_ids), "skipped": self.skipped, "replaced": self.replaced,
            "locked": self.locked, "repeatables_added": self.repeat_added,
            "repeatables_present": self.repeat_present, "paused_target": paused_target, "id_counter": id_counter,
            "damaged": self.damaged,
        }


def ready_as(written: dict[str, int], ready: str) -> dict[str, int]:
    """Counts tallied as ``wait`` renamed ``paused`` when the target is (or will be) paused."""
    if ready == "paused" and "wait" in written:
        written["paused"] = written.get("paused", 0) + written.pop("wait")
    return written


class Target:
    """Writes planned jobs into a queue in atomic batches (``queue.raw.import_jobs`` and ``import_queue``)."""

    def __init__(self, queue: Queue, raw: RawQueue, on_conflict: str, id_floor: int | None, tally: Tally,
                 batch_size: int) -> None:
        self.queue, self.raw = queue, raw
        self.on_conflict, self.tally, self.batch_size = on_conflict, tally, batch_size
        self.id_floor = id_floor
        self.ready_state = "paused" if queue.is_paused() else "wait"
        self.jobs_written = 0
        self.jobs_handled = 0  # jobs whose batch Redis answered (written, skipped, replaced, locked)
        self._stream: ImportStream | None = None

    def write(self, planned: Sequence[Planned]) -> list[str]:
        """Write jobs and wait for them (the same batches as ``write_rows_ahead``); one status per job."""
        rows = [item.job().row() for item in planned]
        sources = [(item.entry.state, item.entry.damaged is not None) for item in planned]
        statuses: list[str] = []
        for start in range(0, len(rows), self.batch_size):
            statuses += self._push(rows[start : start + self.batch_size], sources[start : start + self.batch_size])
        return statuses + self.flush()

    def write_rows_ahead(self, rows: Sequence[ImportRow], sources: Sequence[tuple[str, bool]]) -> None:
        """``write`` for jobs as ``import_rows`` takes them, with per job (its state in the source, whether it is
        marked damaged) for the tally: batches of at most ``batch_size`` jobs and ~8 MB, each sent on the import
        stream (``queue.raw.import_stream()``) without waiting for it, so Redis writes it while the caller reads
        and packs the next; ``flush`` waits for them all."""
        for start in range(0, len(rows), self.batch_size):
            self._push(rows[start : start + self.batch_size], sources[start : start + self.batch_size])

    def _push(self, rows: Sequence[ImportRow], sources: Sequence[tuple[str, bool]]) -> list[str]:
        """Send a batch; the statuses of the batches Redis has answered meanwhile, in order."""
        packed = self.raw.pack_import(rows, on_conflict=self.on_conflict, id_floor=self.id_floor)
        if len(rows) > 1 and packed.size > _BATCH_BYTES:  # big hashes: halves, until each is small or one job
            half = len(rows) // 2
            return self._push(rows[:half], sources[:half]) + self._push(rows[half:], sources[half:])
        if self._stream is None:
            self._stream = self.raw.import_stream()
        return self._tally_rows(self._stream.push(packed, (rows, sources)))

    def flush(self) -> list[str]:
        """Wait for every batch sent; the statuses not returned before."""
        return self._tally_rows(self._stream.flush()) if self._stream is not None else []

    def close(self) -> None:
        """Release the stream's connection (closed instead if a batch is still on its way after an error)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _tally_rows(self, done: Sequence[tuple[Any, Imported]]) -> list[str]:
        statuses: list[str] = []
        for (rows, sources), reply in done:
            if reply.conflicts:
                raise ImportConflict(where(self.queue), len(reply.conflicts), reply.conflicts,
                                     written=self.jobs_written)
            if reply.statuses.count("added") == len(rows):
                self.tally.record_added([(row.id, state, row.placement, damaged)
                                         for row, (state, damaged) in zip(rows, sources)], self.ready_state)
            else:
                for row, (state, damaged), status in zip(rows, sources, reply.statuses):
                    self.tally.record_job(row.id, state, row.placement, status, self.ready_state, damaged)
            self.jobs_written += sum(1 for s in reply.statuses if s in ("added", "replaced"))
            self.jobs_handled += len(rows)
            statuses += reply.statuses
        return statuses

    def finish(self, repeats: Sequence[RepeatEntry], metrics: Mapping[str, tuple[bytes, ...]]) -> None:
        """Repeatable definitions, metrics (only where the target has none) and the id counter."""
        chunks = [repeats[i : i + self.batch_size] for i in range(0, len(repeats), self.batch_size)] or [[]]
        for n, chunk in enumerate(chunks):
            added, present, _metrics = self.raw.import_queue(
                id_floor=self.id_floor, replace=self.on_conflict == "replace",
                repeatables=[(rep.key, rep.score) for rep in chunk], metrics=metrics if n == len(chunks) - 1 else {},
            )
            self.tally.repeat_added += added
            self.tally.repeat_present += present


class ConflictCheck:
    """Pass one: which ids already exist in the target (and are locked there), batch by batch; each batch's
    EXISTS is on its way while the caller reads the next (``queue.raw.exists_counter()``). Use it as a context
    manager; ``flush`` answers for everything added."""

    def __init__(self, raw: RawQueue, on_conflict: str, batch_size: int, tally: Tally) -> None:
        self.raw, self.on_conflict, self.batch_size, self.tally = raw, on_conflict, batch_size, tally
        self.pending: list[tuple[str, str, str, bool]] = []  # id, source state, placement, damaged
        self.repeats: list[str] = []
        self._counter: ExistsCounter | None = None
        self._sent: list[tuple[str, str, str, bool]] | None = None  # its EXISTS is on its way

    def __enter__(self) -> ConflictCheck:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._counter is not None:
            self._counter.close()

    def add(self, planned: Planned) -> None:
        self.add_job(planned.entry.id, planned.entry.state, planned.placement, planned.entry.damaged is not None)

    def add_job(self, job_id: str, state: str, placement: str, damaged: bool = False) -> None:
        self.pending.append((job_id, state, placement, damaged))
        if len(self.pending) >= self.batch_size:
            self._send()

    def add_repeat(self, key: str) -> None:
        self.repeats.append(key)
        if len(self.repeats) >= self.batch_size:
            self._repeats()

    def flush(self) -> None:
        self._send()
        if self._sent is not None and self._counter is not None:
            self._resolve(self._sent, self._counter.finish())
            self._sent = None
        self._repeats()

    def _send(self) -> None:
        if not self.pending:
            return
        if self._counter is None:
            self._counter = self.raw.exists_counter()
        count = self._counter.push([job_id for job_id, _, _, _ in self.pending])
        if self._sent is not None:
            self._resolve(self._sent, count)
        self._sent, self.pending = self.pending, []

    def _resolve(self, jobs: list[tuple[str, str, str, bool]], existing: int | None) -> None:
        """Tally a batch: all added when none exists; else the script tells which exist, and are locked."""
        if not existing:
            # Ready jobs are tallied as "wait"; ready_as() renames them once the target's pause is known.
            self.tally.record_added(jobs, "wait")
            return
        presence = self.raw.job_presence([job_id for job_id, _, _, _ in jobs])
        for (job_id, state, placement, damaged), (exists, locked) in zip(jobs, presence):
            if not exists:
                status = "added"
            elif locked and self.on_conflict == "replace":
                status = "locked"
            else:
                status = "replaced" if self.on_conflict == "replace" else "skipped"
            self.tally.record_job(job_id, state, placement, status, "wait", damaged)

    def _repeats(self) -> None:
        for present in self.raw.has_repeatables(self.repeats) if self.repeats else []:
            if present:
                self.tally.repeat_present += 1
            else:
                self.tally.repeat_added += 1
        self.repeats.clear()
