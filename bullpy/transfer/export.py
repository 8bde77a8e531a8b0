"""Exporting a queue to a file: its jobs, repeatable definitions and queue state, streamed batch by batch.

Each batch is one atomic read (``queue.raw.read_hashes``: one MULTI/EXEC of the range and every job's
HGETALL, or lua/read_jobs.lua for jobs with logs or debounce keys; locks are not exported); the next batch
is read in a thread while this one is packed and written, so Redis and the client work at the same time.
Every hash is written byte for byte, damaged ones too (marked, and counted in the summary); ids without a
hash and keys that are not hashes are left out and counted.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from ..queue import Queue
from ..retry import DEFAULT_POLICY, RetryPolicy
from ..utils import now_ms
from ._tuning import gc_paused
from .format import RecordWriter
from .records import (
    ALL_STATES,
    FORMAT,
    JOB_STATES,
    VERSION,
    ExportSummary,
    Progress,
    check_options,
    parse_states,
)
from .scan import Scan, read_queue_info, read_repeatables


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
        batch_size: jobs read per atomic read (1,000: about three milliseconds of Redis each; fewer
            round trips, and the next batch's read hides behind this one's writing).
        progress: called after each batch with the number of jobs exported so far.
        retry: how long a batch cut by a Redis restart or failover is retried (``bullpy.retry.RetryPolicy``,
            default about a minute); the export resumes at the same cursor, so no job is written twice or
            skipped. When it runs out the export fails with one message and, for a path, leaves no file.

    For an exact copy of a live queue, pause it and let active jobs finish first: jobs that change
    state while the export runs are exported once, in one of their states, or (rarely) not at all.
    """
    from .. import __version__

    wanted = parse_states(states)
    check_options("error", batch_size)
    policy = retry or DEFAULT_POLICY
    counts: dict[str, int] = {s: 0 for s in JOB_STATES if s in wanted}
    repeatables = 0
    exported_at = now_ms()
    with queue.raw as raw, _output(out) as stream, gc_paused():
        writer = RecordWriter(stream)
        writer.write({
            "format": FORMAT, "version": VERSION, "queue": queue.name, "prefix": queue.prefix,
            "exported_at": exported_at, "bullpy": __version__, "states": list(wanted),
            "source": queue.server.describe(),
        })
        # Locks are not exported (not read), and the next batch is read while this one is written.
        scan = Scan(raw, full=True, batch_size=batch_size, retried=True, policy=policy, what="export", locks=False,
                    prefetch=True)
        done = damaged = 0
        try:
            for state in counts:
                for batch, keep in scan.hashes(state):
                    damaged += writer.write_jobs(batch, keep)
                    counts[state] += len(keep)
                    done += len(keep)
                    if progress is not None and keep:
                        progress(done)
        finally:
            scan.close()
        if "repeat" in wanted:
            for reps in read_repeatables(raw, batch_size, policy):
                for rep in reps:
                    writer.write({"t": "repeat", "key": rep.key, "score": rep.score})
                repeatables += len(reps)
        info = raw.retried(lambda: read_queue_info(queue, raw, with_metrics=wanted == ALL_STATES), what="export",
                           policy=policy)
        writer.write({"t": "queue", "paused": info.paused, "id": info.id_counter, "metrics": dict(info.metrics)})
        writer.write({"t": "end", "records": writer.records - 1, "counts": counts, "repeat": repeatables,
                      "dangling": scan.dangling, "not_hash": scan.not_hash, "damaged": damaged,
                      "duplicates": scan.duplicates, "sha256": writer.hasher.hexdigest()}, hashed=False)
    return ExportSummary(queue.name, queue.prefix, exported_at, counts, repeatables, info.paused, info.id_counter,
                         writer.bytes, scan.dangling, VERSION, __version__, scan.not_hash, damaged, scan.duplicates)
