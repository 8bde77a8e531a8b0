"""Importing an export file into a queue: validate everything and check conflicts first, then write in batches.

Import validates the whole file, then checks for job ids the target already has, before writing
anything; then writes in atomic batches (``queue.raw.import_rows``: a batch of new jobs as one WATCH-guarded
MULTI/EXEC of plain commands, any other through lua/import_jobs.lua; the keys come out the same). Ids, hashes,
logs, scores and list order are kept, so an export imported into an empty queue (another prefix, name,
database or server) reproduces the source's keys. Waiting jobs go to the head end of the target's list
in their source order (RPUSH): into an empty queue this rebuilds the list exactly, with the ``priority``
zset; merged into a queue that has a backlog, they run before it. They land in ``paused`` while the
target is paused. Active jobs cannot take their lock along: they are imported as waiting jobs at the
very head, the place Bull's stalled-job recovery gives them, so a worker runs them again.

The second pass reads the file again without checking each record twice: each piece of the file is
compared (SHA-256 so far) with the first pass before its records are unpacked, so a file changed in between
writes nothing from the changed piece on. Batches go out on one connection without waiting for each other
(``queue.raw.import_stream()``): Redis writes one while the next is read and packed. ``progress`` counts the
jobs of the batches Redis has answered; an import stopped midway has written whole batches only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any, Final, Union, cast

from ..errors import ExportFormatError, ImportConflict
from ..queue import Queue
from ..raw import ImportRow
from ._tuning import gc_paused
from .format import CHUNK
from .reader import ExportReader
from .records import (
    ALL_STATES,
    ImportSummary,
    OnConflict,
    Progress,
    QueueInfo,
    RepeatEntry,
    check_options,
    parse_states,
)
from .target import ConflictCheck, Tally, Target, ready_as, where

Source = Union[str, "os.PathLike[str]", IO[bytes]]


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
        shutil.copyfileobj(source, spool, CHUNK)
        spool.seek(0)
        yield spool, name


def import_queue(
    source: Source,
    queue: Queue,
    *,
    on_conflict: OnConflict = "error",
    dry_run: bool = False,
    states: Iterable[str] | str | None = None,
    restore_paused: bool | None = None,
    batch_size: int = 250,
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
        batch_size: jobs per atomic script call (250: about 2 ms of Redis each on a queue of a million jobs,
            so that a busy machine stretching one keeps it well under 20 ms).
        progress: called as batches are written, with the number of jobs handled (written, skipped) so far.
    """
    wanted = parse_states(states)
    check_options(on_conflict, batch_size)
    restore = (states is None) if restore_paused is None else bool(restore_paused)
    target = where(queue)
    with _opened(source) as (stream, name), queue.raw as raw, gc_paused():
        start = stream.tell()
        # Pass one: validate everything and look for conflicts; nothing is written.
        check_tally = Tally()
        target_paused = queue.is_paused()
        reader = ExportReader(stream, name=name)
        info: QueueInfo | None = None
        with ConflictCheck(raw, on_conflict, batch_size, check_tally) as checker:
            for item in reader.records():
                if type(item) is dict:
                    state = item["state"]
                    if state in wanted:
                        checker.add_job(item["id"], state, _PLACEMENT[state], "damaged" in item)
                elif isinstance(item, RepeatEntry):
                    if "repeat" in wanted:
                        checker.add_repeat(item.key)
                else:
                    info = cast(QueueInfo, item)
            checker.flush()
        if info is None:  # the reader raises before a file without its queue record ends
            raise ExportFormatError("the file has no queue record", source=name)
        pause_it = restore and info.paused and not target_paused
        if check_tally.conflicts and on_conflict == "error":
            raise ImportConflict(target, check_tally.conflicts, check_tally.conflict_ids)
        floor = info.id_counter
        if dry_run:
            fields = check_tally.import_fields(target, True, pause_it, floor)
            fields["written"] = ready_as(fields["written"], "paused" if target_paused or pause_it else "wait")
            return ImportSummary(**fields)

        # Pass two: write.
        if pause_it:
            queue.pause()
        tally = Tally()
        writer = Target(queue, raw, on_conflict, floor, tally, batch_size)
        stream.seek(start)
        # Checked whole already: read again piece by piece, each piece compared with the first reading before its
        # records are used; each batch is sent while the next one is read and packed. Each job record becomes
        # its arguments for the target directly (``import_rows``), without an object per job.
        reader = ExportReader(stream, name=name, checked=reader.checkpoints)
        rows: list[ImportRow] = []
        sources: list[tuple[str, bool]] = []
        repeats: list[RepeatEntry] = []
        reported = 0
        every_state = set(wanted) >= set(_PLACEMENT)
        try:
            for jobs, others in reader.checked_pieces():
                if "repeat" in wanted:
                    repeats += [item for item in others if isinstance(item, RepeatEntry)]
                if not every_state:
                    jobs = [record for record in jobs if record["state"] in wanted]
                rows += [_row(record) for record in jobs]
                sources += [(record["state"], "damaged" in record) for record in jobs]
                if len(rows) < batch_size:
                    continue
                whole = len(rows) - len(rows) % batch_size
                for at in range(0, whole, batch_size):
                    writer.write_rows_ahead(rows[at : at + batch_size], sources[at : at + batch_size])
                rows, sources = rows[whole:], sources[whole:]
                if progress is not None and writer.jobs_handled > reported:
                    reported = writer.jobs_handled
                    progress(reported)
            writer.write_rows_ahead(rows, sources)
            writer.flush()
        finally:
            writer.close()
        if progress is not None and writer.jobs_handled > reported:
            progress(writer.jobs_handled)
        writer.finish(repeats, info.metrics if wanted == ALL_STATES else {})
    return ImportSummary(**tally.import_fields(target, False, pause_it, floor))


#: Where each source state's jobs go in the target (``import_rows``' placement): ready jobs to the head of
#: the ready list in their order (active ones too: their lock cannot travel), finished and delayed ones to
#: their sorted set with their score.
_PLACEMENT: Final = {"wait": "head", "paused": "head", "active": "head", "delayed": "delayed",
                     "completed": "completed", "failed": "failed"}


def _row(record: dict[str, Any]) -> ImportRow:
    """A checked job record as ``import_rows`` writes it (the hash as the file holds it)."""
    state = record["state"]
    flat = record["hash"]
    if len(record) == 5:  # t, id, state, hash, logs: no score, priority or debounce key
        return ImportRow(record["id"], _PLACEMENT[state], flat, record["logs"])
    score, priority, ttl = record.get("score"), record.get("priority"), record.get("debounce_ttl")
    deid = b""
    if ttl is not None:
        for i in range(0, len(flat), 2):
            if flat[i] == b"deid":
                deid = flat[i + 1]
                break
    return ImportRow(record["id"], _PLACEMENT[state], flat, record["logs"],
                     None if score is None else float(score),
                     None if priority is None or state == "active" else float(priority), deid, ttl)
