"""Importing an export file into a queue: validate everything and check conflicts first, then write in batches.

Import validates the whole file, then checks for job ids the target already has, before writing
anything; then writes in atomic batches (``queue.raw.import_jobs``, lua/import_jobs.lua). Ids, hashes,
logs, scores and list order are kept, so an export imported into an empty queue (another prefix, name,
database or server) reproduces the source's keys. Waiting jobs go to the head end of the target's list
in their source order (RPUSH): into an empty queue this rebuilds the list exactly, with the ``priority``
zset; merged into a queue that has a backlog, they run before it. They land in ``paused`` while the
target is paused. Active jobs cannot take their lock along: they are imported as waiting jobs at the
very head, the place Bull's stalled-job recovery gives them, so a worker runs them again.

The second pass reads the file again without checking each record twice: each piece of the file is
compared (SHA-256 so far) with the first pass before its records are used, so a file changed in between
writes nothing from the changed piece on. Each batch is written in a thread while the next is read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Union

from ..errors import ExportFormatError, ImportConflict
from ..queue import Queue
from ..utils import now_ms
from .format import CHUNK, ExportReader
from .records import (
    ALL_STATES,
    ImportSummary,
    JobEntry,
    OnConflict,
    Progress,
    QueueInfo,
    RepeatEntry,
    check_options,
    parse_states,
)
from .target import ConflictCheck, Planned, Tally, Target, plan, ready_as, where

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
    batch_size: int = 500,
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
        batch_size: jobs per atomic script call (500: about 10 ms of Redis each; bigger batches hold Redis
            longer for little gain).
        progress: called after each batch with the number of jobs handled so far.
    """
    wanted = parse_states(states)
    check_options(on_conflict, batch_size)
    restore = (states is None) if restore_paused is None else bool(restore_paused)
    target = where(queue)
    now = now_ms()
    with _opened(source) as (stream, name), queue.raw as raw:
        start = stream.tell()
        # Pass one: validate everything and look for conflicts; nothing is written.
        check_tally = Tally()
        target_paused = queue.is_paused()
        checker = ConflictCheck(raw, on_conflict, batch_size, check_tally)
        reader = ExportReader(stream, name=name)
        info: QueueInfo | None = None
        for item in reader:
            if isinstance(item, JobEntry):
                if item.state in wanted:
                    checker.add(plan(item, None, now))
            elif isinstance(item, RepeatEntry):
                if "repeat" in wanted:
                    checker.add_repeat(item.key)
            else:
                info = item
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
        # Checked whole already: read again, each piece of the file is compared with the first reading before
        # its records are used, and each batch is written while the next one is read.
        reader = ExportReader(stream, name=name, checked=reader.checkpoints)
        batch: list[Planned] = []
        repeats: list[RepeatEntry] = []
        done = 0
        try:
            for item in reader:
                if isinstance(item, JobEntry):
                    if item.state in wanted:
                        batch.append(plan(item, None, now))
                        if len(batch) >= batch_size:
                            writer.write_ahead(batch)
                            done += len(batch)
                            batch = []
                            if progress is not None:
                                progress(done)
                elif isinstance(item, RepeatEntry) and "repeat" in wanted:
                    repeats.append(item)
            writer.write_ahead(batch)
            writer.flush()
        finally:
            writer.close()
        if batch and progress is not None:
            progress(done + len(batch))
        writer.finish(repeats, info.metrics if wanted == ALL_STATES else {})
    return ImportSummary(**tally.import_fields(target, False, pause_it, floor))
