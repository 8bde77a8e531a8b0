"""Reading a live queue for transfer: its jobs state by state in atomic batches, its repeatables and flags."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import cast

from ..queue import Queue
from ..raw import LIST_STATES, RawJob, RawQueue
from ..retry import RetryPolicy
from .records import JobEntry, QueueInfo, RepeatEntry


@dataclass(frozen=True)
class Live:
    """A job read from a live queue, and whether a worker holds its lock."""

    entry: JobEntry
    locked: bool


class Scan:
    """Reads a queue's jobs state by state in atomic batches (``queue.raw``, lua/read_jobs.lua).

    Ranges are read with a cursor, and every id is reported once (a job that moves to a state read
    later is not met twice). Callers that take jobs out of the scanned state call ``removed`` before
    asking for the next batch, so the cursor does not skip the jobs that slid into their place.

    ``full=False`` reads ids, states, scores and locks only. With ``retried``, each batch read is retried
    through a Redis restart or failover under ``policy`` (resumed at the same cursor), named ``what``.
    """

    def __init__(self, raw: RawQueue, *, full: bool, batch_size: int, retried: bool = False,
                 policy: RetryPolicy | None = None, what: str = "export") -> None:
        self.raw, self.full, self.batch_size = raw, full, batch_size
        self.retried, self.policy, self.what = retried, policy, what
        self.seen: set[str] = set()
        self.dangling = 0
        self.missing: list[str] = []
        self._removed: set[str] = set()

    def removed(self, ids: Collection[str]) -> None:
        """These ids of the last batch are no longer in the state being scanned."""
        self._removed.update(ids)

    def _read_batch(self, read: Callable[[], list[RawJob]]) -> tuple[list[tuple[str, float | None]], list[Live]]:
        """One read: every id of the window with its score, and the jobs to report."""
        rows = self.raw.retried(read, what=self.what, policy=self.policy) if self.retried else read()
        window: list[tuple[str, float | None]] = []
        out: list[Live] = []
        for row in rows:
            window.append((row.id, row.score))
            if row.id in self.seen:
                continue
            self.seen.add(row.id)
            if row.state is None:
                self.missing.append(row.id)
                continue
            if not row.exists:
                self.dangling += 1  # an id without its hash (Node would run a phantom job): left out
                continue
            entry = JobEntry(row.id, row.state, row.fields, row.logs, score=row.score, priority=row.priority,
                             debounce_ttl=row.debounce_ttl)
            out.append(Live(entry, row.locked))
        return window, out

    def state(self, state: str) -> Iterator[list[Live]]:
        size = self.batch_size
        if state in LIST_STATES:
            start = 0
            while True:
                self._removed.clear()
                window, rows = self._read_batch(functools.partial(self.raw.read_list, state, start, size, full=self.full))
                yield rows
                # Ids taken out of the window let the ones behind them slide into its place.
                start += len(window) - sum(1 for job_id, _ in window if job_id in self._removed)
                if len(window) < size:
                    return
        else:
            # Cursor: members with a score >= low, past the first `offset` of them (ties included).
            low, offset = -math.inf, 0
            while True:
                self._removed.clear()
                window, rows = self._read_batch(functools.partial(self.raw.read_zset, state, low, offset, size,
                                                           full=self.full))
                yield rows
                if len(window) < size:
                    return
                kept = [(job_id, score) for job_id, score in window if job_id not in self._removed]
                last = cast(float, window[-1][1])  # members of a sorted set always come with their score
                if last == low:  # the whole window shares the score `low`
                    offset += len(kept)
                else:
                    low, offset = last, sum(1 for _, score in kept if score == last)

    def ids(self, ids: Sequence[str]) -> Iterator[list[Live]]:
        for i in range(0, len(ids), self.batch_size):
            self._removed.clear()
            yield self._read_batch(functools.partial(self.raw.read_jobs, ids[i : i + self.batch_size], full=self.full))[1]


def read_repeatables(raw: RawQueue, batch_size: int, policy: RetryPolicy | None = None) -> Iterator[list[RepeatEntry]]:
    """The repeatable definitions, ``batch_size`` per read, each read retried under ``policy`` (default:
    ``bullpy.retry.DEFAULT_POLICY``)."""
    seen: set[str] = set()
    start = 0
    while True:
        rows = raw.retried(functools.partial(raw.scores, "repeat", start, start + batch_size - 1),
                           what="read repeatables", policy=policy)
        batch = []
        for key, score in rows:
            if key not in seen:
                seen.add(key)
                batch.append(RepeatEntry(key, score))
        if batch:
            yield batch
        start += len(rows)
        if len(rows) < batch_size:
            return


def read_queue_info(queue: Queue, raw: RawQueue, with_metrics: bool) -> QueueInfo:
    """The global pause flag, the id counter and (``with_metrics``) the metrics keys."""
    metrics = raw.metrics() if with_metrics else {}
    return QueueInfo(queue.is_paused(), raw.id_counter(), metrics)
