"""What a monitor shows of a queue (``bullpy.exporter``, the dashboards): counts, the jobs that finished
since a time with their processing and waiting times, and the oldest waiting job, read as one snapshot plus
a few job fields. An operation of :mod:`bullpy._core.ops`' kind, driven by both facades."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import options as _options
from . import raw_scripts, reads
from .codec import js_parse_int, text
from .keys import QueueKeys
from .ops import Op
from .reads import Read

# --- what a monitor shows (bullpy.exporter, dashboards) --------------------------------------------------

#: The job fields ``get_stats`` reads of the jobs it reports.
STATS_FIELDS = ("timestamp", "delay", "processedOn", "retriedOn")


@dataclass(frozen=True)
class FinishedJob:
    """A job that finished: when (its score in the completed or failed set), when its last attempt started,
    and when it became ready to run (created plus its delay, or retried by hand)."""

    id: str
    state: str
    finished_on: float
    processed_on: int | None
    ready_on: int | None

    @property
    def processing_ms(self) -> float | None:
        """How long its last attempt took (finishedOn - processedOn), None when not known."""
        return None if self.processed_on is None else max(0.0, self.finished_on - self.processed_on)

    @property
    def waited_ms(self) -> float | None:
        """How long it waited before its last attempt started, None when not known."""
        if self.processed_on is None or self.ready_on is None:
            return None
        return float(max(0, self.processed_on - self.ready_on))


@dataclass(frozen=True)
class QueueStats:
    """A queue as a monitor sees it, read in at most two round trips whatever its size (``get_stats``).

    ``counts``: Node's ``getJobCounts()``; ``paused``: the global pause flag; ``metrics_counts``: the
    ``count`` of Bull's metrics hash per type (completed, failed), which only goes up, None where no worker
    records metrics; ``oldest_waiting_since``: when the longest-waiting job at either end of the wait (or
    paused) list became ready (epoch ms), None when none waits; ``finished``: per state asked for, the jobs
    that finished after the score given, newest first, at most ``limit``; ``finished_counts``: how many
    finished after it in all; ``newest_finished``: the newest score of each state asked for (None: empty),
    to pass as the next ``finished_after``.
    """

    counts: dict[str, int]
    paused: bool
    metrics_counts: dict[str, int | None]
    oldest_waiting_since: int | None
    finished: dict[str, list[FinishedJob]]
    finished_counts: dict[str, int]
    newest_finished: dict[str, float | None]


def _ready_on(fields: Sequence[Any], waiting: bool) -> int | None:
    timestamp, delay, processed_on, retried_on = (js_parse_int(None if v is None else text(v)) for v in fields)
    if timestamp is None:
        return None
    ready = timestamp + max(0, delay or 0)
    # A job back in the wait list after an attempt (a retry without backoff, stalled recovery) waits since
    # that attempt began at the latest; one retried by hand, since then.
    later = [v for v in (retried_on, processed_on if waiting else None) if v is not None]
    return max([ready, *later])


def get_stats(keys: QueueKeys, finished_after: Mapping[str, float] | None, limit: int) -> Op[QueueStats]:
    """Counts, the pause flag, Bull's metrics counts, the two ends of the wait and paused lists and the
    newest finished jobs in one snapshot; then the few fields of the jobs found, in one plain pipeline."""
    limit = _options._int_option("limit", limit, 1)
    after = dict(finished_after or {})
    for state in after:
        if state not in reads.METRICS_TYPES:
            raise ValueError(f"finished_after takes 'completed' and 'failed', not {state!r}")
    count_read = reads.job_counts(keys, ())
    commands: list[tuple[Any, ...]] = [*count_read.commands, *reads.is_paused(keys).commands]
    commands += [("HGET", keys(f"metrics:{t}"), "count") for t in reads.METRICS_TYPES]
    commands += [("LINDEX", keys(s), i) for s in ("wait", "paused") for i in (-1, 0)]
    for state, score in after.items():
        low = "(" + raw_scripts.score_arg(float(score))
        commands += [("ZREVRANGEBYSCORE", keys(state), "+inf", low, "WITHSCORES", "LIMIT", 0, limit),
                     ("ZCOUNT", keys(state), low, "+inf")]
    replies = yield Read(commands, list)
    n = len(count_read.commands)
    counts = count_read.parse(replies[:n])
    paused = bool(int(replies[n])) or bool(int(replies[n + 1]))
    metrics_counts = {t: (None if v is None else int(v)) for t, v in zip(reads.METRICS_TYPES, replies[n + 2 : n + 4])}
    ends = [text(v) for v in replies[n + 4 : n + 8] if v is not None]
    waiting_ids = list(dict.fromkeys(ends))
    finished_scores: dict[str, list[tuple[str, float]]] = {}
    finished_counts: dict[str, int] = {}
    position = n + 8
    for state in after:
        finished_scores[state] = [(text(m), float(s)) for m, s in reads._pairs(replies[position])]
        finished_counts[state] = int(replies[position + 1])
        position += 2
    wanted = waiting_ids + [job_id for pairs in finished_scores.values() for job_id, _ in pairs]
    rows: list[Any] = []
    if wanted:
        rows = yield Read([("HMGET", keys.job(i), *STATS_FIELDS) for i in wanted], list, snapshot=False)
    ready = [_ready_on(row, True) for row in rows[: len(waiting_ids)]]
    known = [r for r in ready if r is not None]
    finished: dict[str, list[FinishedJob]] = {}
    index = len(waiting_ids)
    for state, pairs in finished_scores.items():
        jobs: list[FinishedJob] = []
        for job_id, score in pairs:
            row = rows[index]
            index += 1
            processed_on = js_parse_int(None if row[2] is None else text(row[2]))
            jobs.append(FinishedJob(job_id, state, score, processed_on, _ready_on(row, False)))
        finished[state] = jobs
    newest = {state: (pairs[0][1] if pairs else None) for state, pairs in finished_scores.items()}
    return QueueStats(counts, paused, metrics_counts, min(known) if known else None, finished, finished_counts,
                      newest)
