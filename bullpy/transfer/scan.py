"""Reading a live queue for transfer: its jobs state by state in atomic batches, its repeatables and flags."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

from ..queue import Queue
from ..raw import LIST_STATES, HashBatch, RawJob, RawQueue
from ..retry import RetryPolicy
from ._tuning import switch_back, switch_fast
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

    ``full=False`` reads ids, states, scores and locks only; ``locks=False`` leaves the locks out (a key
    lookup less per job; every job reads as unlocked). With ``retried``, each batch read is retried
    through a Redis restart or failover under ``policy`` (resumed at the same cursor), named ``what``.
    With ``prefetch`` the next batch is read (in a thread) while the caller handles this one, for callers
    that never call ``removed``; ``close()`` ends the thread.
    """

    def __init__(self, raw: RawQueue, *, full: bool, batch_size: int, retried: bool = False,
                 policy: RetryPolicy | None = None, what: str = "export", locks: bool = True,
                 prefetch: bool = False) -> None:
        self.raw, self.full, self.batch_size, self.locks = raw, full, batch_size, locks
        self.retried, self.policy, self.what = retried, policy, what
        self.seen: set[str] = set()
        self.dangling = 0    # ids listed in a state without their job hash
        self.not_hash = 0    # ids whose job key is not a hash (damage left by another program)
        self.duplicates = 0  # ids met again in a later state (listed twice, or moved on while read)
        self.missing: list[str] = []
        self._removed: set[str] = set()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="bullpy-scan") if prefetch else None
        if prefetch:
            switch_fast()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
            switch_back()

    def removed(self, ids: Collection[str]) -> None:
        """These ids of the last batch are no longer in the state being scanned."""
        if self._executor is not None:
            raise RuntimeError("a prefetching Scan reads ahead: it cannot follow removals")
        self._removed.update(ids)

    def _read(self, read: Callable[[], list[RawJob]]) -> list[RawJob]:
        return self.raw.retried(read, what=self.what, policy=self.policy) if self.retried else read()

    def _kept(self, rows: list[RawJob]) -> list[RawJob]:
        """The rows to report: each id once, not the ids in no state (``missing``) or without a hash."""
        out: list[RawJob] = []
        seen = self.seen
        for row in rows:
            if row.id in seen:
                self.duplicates += 1
                continue
            seen.add(row.id)
            if row.state is None:
                self.missing.append(row.id)
            elif row.not_hash:
                self.not_hash += 1
            elif not row.exists:
                self.dangling += 1  # an id without its hash (Node would run a phantom job): left out
            else:
                out.append(row)
        return out

    @staticmethod
    def _live(rows: list[RawJob]) -> list[Live]:
        return [Live(JobEntry(row.id, row.state or "", row.fields, row.logs, score=row.score, priority=row.priority,
                              debounce_ttl=row.debounce_ttl), row.locked) for row in rows]

    def _reader(self, state: str, cursor: tuple[int, float, int]) -> Callable[[], list[RawJob]]:
        start, low, offset = cursor
        if state in LIST_STATES:
            return functools.partial(self.raw.read_list, state, start, self.batch_size, full=self.full,
                                     locks=self.locks)
        return functools.partial(self.raw.read_zset, state, low, offset, self.batch_size, full=self.full,
                                 locks=self.locks)

    def _after(self, state: str, cursor: tuple[int, float, int], window: list[tuple[str, float | None]],
               removed: Collection[str]) -> tuple[int, float, int]:
        start, low, offset = cursor
        if state in LIST_STATES:
            # Ids taken out of the window let the ones behind them slide into its place.
            return start + len(window) - sum(1 for job_id, _ in window if job_id in removed), low, offset
        # Cursor: members with a score >= low, past the first `offset` of them (ties included).
        kept = [(job_id, score) for job_id, score in window if job_id not in removed]
        last = cast(float, window[-1][1])  # members of a sorted set always come with their score
        if last == low:  # the whole window shares the score `low`
            return start, low, offset + len(kept)
        return start, last, sum(1 for _, score in kept if score == last)

    def raw_state(self, state: str) -> Iterator[list[RawJob]]:
        """The jobs of one state, batch by batch, as ``queue.raw`` read them."""
        cursor: tuple[int, float, int] = (0, -math.inf, 0)
        pending: Future[list[RawJob]] | None = None
        while True:
            self._removed.clear()
            rows = pending.result() if pending is not None else self._read(self._reader(state, cursor))
            pending = None
            window = [(row.id, row.score) for row in rows]
            more = len(window) >= self.batch_size
            if more and self._executor is not None:
                ahead = self._after(state, cursor, window, ())
                pending = self._executor.submit(self._read, self._reader(state, ahead))
            yield self._kept(rows)
            if not more:
                return
            cursor = self._after(state, cursor, window, self._removed)

    def hashes(self, state: str) -> Iterator[tuple[HashBatch, list[int]]]:
        """The jobs of one state with their whole hashes (``queue.raw.read_hashes``), batch by batch, each with
        the positions to write: each id once, not ids without a hash or whose key is not a hash (counted)."""
        cursor: tuple[int, float, int] = (0, -math.inf, 0)
        pending: Future[HashBatch] | None = None
        seen = self.seen
        while True:
            batch = pending.result() if pending is not None else self._read_hashes(state, cursor)
            pending = None
            scores = batch.scores
            window: list[tuple[str, float | None]] = (list(zip(batch.ids, scores)) if scores is not None
                                                      else [(i, None) for i in batch.ids])
            more = len(window) >= self.batch_size
            if more:
                cursor = self._after(state, cursor, window, ())
                if self._executor is not None:
                    pending = self._executor.submit(self._read_hashes, state, cursor)
            keep: list[int] = []
            for i, (job_id, flat) in enumerate(zip(batch.ids, batch.hashes)):
                if job_id in seen:
                    self.duplicates += 1
                    continue
                seen.add(job_id)
                if i in batch.not_hash:
                    self.not_hash += 1
                elif not flat:
                    self.dangling += 1
                else:
                    keep.append(i)
            yield batch, keep
            if not more:
                return

    def _read_hashes(self, state: str, cursor: tuple[int, float, int]) -> HashBatch:
        start, low, offset = cursor
        read = functools.partial(self.raw.read_hashes, state, self.batch_size, start=start, min_score=low,
                                 offset=offset)
        return self.raw.retried(read, what=self.what, policy=self.policy) if self.retried else read()

    def state(self, state: str) -> Iterator[list[Live]]:
        for rows in self.raw_state(state):
            yield self._live(rows)

    def ids(self, ids: Sequence[str]) -> Iterator[list[Live]]:
        for i in range(0, len(ids), self.batch_size):
            self._removed.clear()
            read = functools.partial(self.raw.read_jobs, ids[i : i + self.batch_size], full=self.full)
            yield self._live(self._kept(self._read(read)))


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
