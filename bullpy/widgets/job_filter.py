"""Which jobs the inspector shows: the filter, and reading a state forward in bounded chunks to apply it.

A filter looks at five fields of each job (name, data, failed reason, created and finished times), read
with ``queue.get_job_fields`` a chunk at a time, never whole hashes: a search over thousands of jobs moves
no stack traces, return values or options. Only the page's jobs are then read in full.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .. import _display as D
from ..queue import Queue
from ..utils import text

STATES = ("waiting", "active", "delayed", "paused", "completed", "failed")
#: Page order per state, as Bull's getters read them: next to run / soonest due first, newest finished first.
ASC = {"waiting": True, "active": True, "delayed": True, "paused": True, "completed": False, "failed": False}
#: Time windows: (comparison, milliseconds back from now).
WINDOWS: dict[str, tuple[str, int] | None] = {
    "any time": None,
    "last 15 min": (">=", 15 * 60_000), "last hour": (">=", 3_600_000), "last 24 h": (">=", 86_400_000),
    "last 7 days": (">=", 7 * 86_400_000),
    "older than 1 h": ("<", 3_600_000), "older than 24 h": ("<", 86_400_000),
    "older than 7 days": ("<", 7 * 86_400_000),
}
_FIELDS = ("name", "data", "failedReason", "timestamp", "finishedOn")


class Matchable(Protocol):
    """What a filter reads of a job: a ``Job`` or a ``Brief``."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def data(self) -> Any: ...
    @property
    def failed_reason(self) -> str | None: ...
    @property
    def timestamp(self) -> int | None: ...
    @property
    def finished_on(self) -> int | None: ...


@dataclass(frozen=True)
class Brief:
    """The few fields of a job a filter looks at."""

    id: str
    name: str
    data: Any
    failed_reason: str | None
    timestamp: int | None
    finished_on: int | None


def read_briefs(queue: Queue, ids: Sequence[str]) -> list[Brief | None]:
    """``Brief``s of many jobs in one round trip; None for a job that is gone."""
    out: list[Brief | None] = []
    for job_id, row in zip(ids, queue.get_job_fields(ids, _FIELDS) if ids else []):
        name, data, reason, created, finished = (None if v is None else text(v) for v in row)
        if name is None and data is None and created is None:
            out.append(None)
            continue
        try:
            parsed: Any = json.loads(data) if data is not None else None
        except (ValueError, RecursionError):  # not JSON, or nested too deep: searched as its text
            parsed = data
        out.append(Brief(job_id, name or "__default__", parsed, reason or None, _int(created), _int(finished)))
    return out


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


def time_of(job: Matchable, state: str) -> int | None:
    """The time a window filters on: when it finished for completed/failed jobs, else when it was created."""
    if state in ("completed", "failed"):
        return job.finished_on or job.timestamp
    return job.timestamp


def _lookup(data: Any, path: str) -> tuple[bool, Any]:
    value = data
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


@dataclass(frozen=True)
class JobFilter:
    """Which jobs of a state to show.

    Args:
        text: a case-insensitive substring of the id, name, data (as JSON) or failed reason.
        field: a data field (``number``, or ``customer.id`` for nested ones) the job must have...
        value: ...equal to this (as text; JSON for numbers and booleans), or matching it as a glob
            when it holds ``*``, ``?`` or ``[``.
        window: one of ``WINDOWS``: on the finished time for completed/failed jobs, else the created time.
    """

    text: str = ""
    field: str = ""
    value: str = ""
    window: str = "any time"

    def __post_init__(self) -> None:
        for name in ("text", "field", "value"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"filter {name} must be a string, got {getattr(self, name)!r}")
        if self.window not in WINDOWS:
            raise ValueError(f"unknown time window {self.window!r}; use one of {', '.join(WINDOWS)}")
        if self.value and not self.field:
            raise ValueError("a filter value needs the data field it applies to")

    @property
    def active(self) -> bool:
        return bool(self.text or self.field or WINDOWS[self.window])

    def describe(self) -> str:
        parts = []
        if self.text:
            parts.append(f"text {self.text!r}")
        if self.field:
            parts.append(f"data.{self.field}" + (f" = {self.value!r}" if self.value else " present"))
        if WINDOWS[self.window]:
            parts.append(self.window)
        return ", ".join(parts)

    def matches(self, job: Matchable, state: str, now: int) -> bool:
        if self.text:
            needle = self.text.casefold()
            haystack = " ".join([job.id, job.name, job.failed_reason or "", D.to_text(job.data, 100_000)])
            if needle not in haystack.casefold():
                return False
        if self.field:
            found, value = _lookup(job.data, self.field)
            if not found:
                return False
            if self.value:
                shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
                if any(c in self.value for c in "*?["):
                    if not fnmatch.fnmatchcase(shown, self.value):
                        return False
                elif shown != self.value:
                    return False
        window = WINDOWS[self.window]
        if window:
            at = time_of(job, state)
            if at is None:
                return False
            op, span = window
            if (at >= now - span) != (op == ">="):
                return False
        return True

    def past_window(self, job: Matchable, state: str, now: int) -> bool:
        """True when no later job of the page order can match: completed and failed jobs come newest
        finished first, so once one finished before a "last ..." window, every next one did too."""
        window = WINDOWS[self.window]
        if not window or window[0] != ">=" or state not in ("completed", "failed"):
            return False
        at = time_of(job, state)
        return at is not None and at < now - window[1]


@dataclass(frozen=True)
class Scan:
    """What one forward read of a state found."""

    ids: list[str]  # the matching ids kept (up to ``want``)
    matched: int  # every match seen (more than ``len(ids)`` when counting past a page)
    end: int  # the position after the last job read
    scanned: int  # how many jobs were read
    exhausted: bool  # the end of the state (or of a time window) was reached


def scan(queue: Queue, state: str, flt: JobFilter, now: int, *, start: int, keep: int, limit: int | None,
         chunk: int, count: bool = False) -> Scan:
    """Read ``state`` from position ``start`` in chunks of ``chunk`` (two round trips each), keeping the
    first ``keep`` matching ids, until ``keep`` were found (or, with ``count``, on to count every match)
    or ``limit`` jobs were read (None: no limit)."""
    ids: list[str] = []
    matched, pos, scanned = 0, start, 0
    while limit is None or scanned < limit:
        n = chunk if limit is None else min(chunk, limit - scanned)
        chunk_ids = queue.get_ranges([state], pos, pos + n - 1, asc=ASC[state])
        if not chunk_ids:
            return Scan(ids, matched, pos, scanned, True)
        for offset, brief in enumerate(read_briefs(queue, chunk_ids)):
            scanned += 1
            if brief is None:
                continue  # removed since the ids were read
            if flt.past_window(brief, state, now):
                return Scan(ids, matched, pos + offset + 1, scanned, True)
            if flt.matches(brief, state, now):
                matched += 1
                if len(ids) < keep:
                    ids.append(brief.id)
                if not count and len(ids) == keep:
                    return Scan(ids, matched, pos + offset + 1, scanned, False)
        pos += len(chunk_ids)
        if len(chunk_ids) < n:
            return Scan(ids, matched, pos, scanned, True)
    return Scan(ids, matched, pos, scanned, False)


@dataclass
class MatchCount:
    """How many jobs of a state match a filter, counted in bounded batches from the start."""

    matched: int = 0
    read: int = 0  # positions 0 .. read-1 were looked at
    exact: bool = False  # the whole state was read

    def add(self, part: Scan) -> None:
        self.matched += part.matched
        self.read = part.end
        self.exact = part.exhausted

    def text(self, total: int) -> str:
        if self.exact:
            return f"{self.matched:,} matching job{'s' if self.matched != 1 else ''}"
        return f"at least {self.matched:,} matching in the first {self.read:,} of {total:,}"
