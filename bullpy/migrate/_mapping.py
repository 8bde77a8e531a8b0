"""What moves from Bull to BullMQ, and how: the states and options, the summary's records, and the
mapping of one Bull job to its BullMQ add (pure). See :mod:`bullpy.migrate`."""


from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

#: The Bull states whose jobs can move; active and completed jobs never do.
MIGRATABLE_STATES = ("wait", "paused", "delayed", "failed")
#: BullMQ's highest priority number (npm bullmq 6.4.0 ``PRIORITY_LIMIT``: ``2 ** 21 - 1``).
PRIORITY_LIMIT = 2**21 - 1

# Queue-level key suffixes of BullMQ (bullmq QueueKeys plus metrics and the deprecated priority key): a
# job id equal to one of them would share its key in the target queue, so such jobs stay in Bull.
_BULLMQ_RESERVED_IDS = frozenset({
    "active", "wait", "waiting-children", "paused", "completed", "failed", "delayed", "repeat", "stalled",
    "limiter", "prioritized", "id", "stalled-check", "meta", "pc", "events", "marker", "de", "metrics",
    "priority",
})
_BULLMQ_RESERVED_ID_PREFIXES = ("metrics:", "de:", "limiter:")
_BULLMQ_RESERVED_ID_SUFFIXES = (":lock", ":logs", ":dependencies", ":processed", ":failed", ":unsuccessful")

# Bull's job options and what becomes of them.
_KEPT = ("attempts", "backoff", "lifo", "removeOnComplete", "removeOnFail", "stackTraceLimit")
_RECOMPUTED = frozenset({"delay", "timestamp", "priority", "jobId", "repeat", "prevMillis"})
_DROP_REASONS = {
    "timeout": "timeout (BullMQ has no job timeout)",
    "preventParsingData": "preventParsingData (the handler gets the same string)",
    "debounce": "debounce (not mapped to BullMQ's deduplication)",
}
_STATE_ALIASES = {"waiting": "wait"}


@dataclass(frozen=True)
class SkippedJob:
    """A job left in Bull (or whose BullMQ copy was taken back), with why."""

    id: str
    state: str
    reason: str


@dataclass(frozen=True)
class MigrationSummary:
    """What :func:`migrate_to_bullmq` moved (or, with ``dry_run``, would move), per Bull state."""

    source: str
    target: str
    dry_run: bool
    keep_source: bool
    #: Jobs now in BullMQ per Bull state they came from (wait, paused, delayed, failed).
    migrated: Mapping[str, int]
    #: Of those, jobs a previous run had already written (same id, name and data).
    already_in_target: int
    #: Bull repeat key -> BullMQ job scheduler id.
    schedulers: Mapping[str, str]
    #: Bull's pending iterations of migrated repeatables, replaced by the schedulers' own.
    replaced_iterations: int
    skipped: tuple[SkippedJob, ...]
    #: Dropped option (with why) -> number of jobs that had it.
    dropped_options: Mapping[str, int]
    #: Changed value -> number of jobs.
    changed: Mapping[str, int]
    #: Job counts of the Bull queue afterwards (what was not migrated: active, completed, ...).
    left_in_source: Mapping[str, int]
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """Jobs migrated (or that would be), all states together."""
        return sum(self.migrated.values())

    def __str__(self) -> str:
        verb = "would move" if self.dry_run else ("copied" if self.keep_source else "moved")
        head = f"Bull queue {self.source} -> BullMQ queue {self.target}"
        if self.dry_run:
            head += " (dry run: nothing changed)"
        lines = [head]
        per_state = ", ".join(f"{s} {n}" for s, n in self.migrated.items() if n) or "none"
        again = f" ({self.already_in_target} already in BullMQ)" if self.already_in_target else ""
        lines.append(f"  {verb} {self.total} jobs: {per_state}{again}")
        if self.schedulers or self.replaced_iterations:
            lines.append(
                f"  repeatables: {len(self.schedulers)} -> BullMQ job schedulers "
                f"({self.replaced_iterations} pending Bull iterations replaced by the schedulers' own)"
            )
        if self.skipped:
            lines.append(f"  left in Bull: {len(self.skipped)} jobs/repeatables")
            for skip in self.skipped[:10]:
                lines.append(f"    {skip.id!r} ({skip.state}): {skip.reason}")
            if len(self.skipped) > 10:
                lines.append(f"    ... and {len(self.skipped) - 10} more")
        for option, count in self.dropped_options.items():
            lines.append(f"  option dropped: {option}: {count} jobs")
        for change, count in self.changed.items():
            lines.append(f"  changed: {change}: {count} jobs")
        left = ", ".join(f"{s} {n}" for s, n in self.left_in_source.items() if n) or "nothing"
        lines.append(f"  in Bull {'now' if not self.dry_run else 'still'}: {left}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


# --- the Bull -> BullMQ mapping (pure) --------------------------------------------------------------------


@dataclass
class _Mapped:
    """One Bull job as it will be added to BullMQ."""

    id: str
    state: str
    name: str
    data: Any
    data_json: str  # exactly what the bullmq package stores in the hash's data field
    opts: dict[str, Any]
    dropped: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def add_spec(self) -> dict[str, Any]:
        return {"name": self.name, "data": self.data, "opts": self.opts}


def _priority(value: Any) -> tuple[int, str | None]:
    """Bull's priority (any number) as a BullMQ priority, and what changed if anything."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value == 0:
        return 0, None
    if value < 0:
        # Bull sorts a negative priority before 1; BullMQ's best is 1.
        return 1, "negative priority raised to 1"
    if isinstance(value, float) and not value.is_integer():
        value = math.ceil(value)
        if value <= PRIORITY_LIMIT:
            return int(value), "fractional priority rounded up"
    if value > PRIORITY_LIMIT:
        return PRIORITY_LIMIT, f"priority clamped to {PRIORITY_LIMIT}"
    return int(value), None


def _job_options(opts: Mapping[str, Any], priority: Any) -> tuple[dict[str, Any], list[str], list[str]]:
    """The BullMQ options (without id, timestamp and delay) of a job with these Bull options."""
    out: dict[str, Any] = {}
    dropped: list[str] = []
    changed: list[str] = []
    attempts = opts.get("attempts")
    # Bull: NaN, 0 or negative attempts mean "fail on the first error", which is BullMQ's attempts 1.
    out["attempts"] = attempts if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 0 else 1
    backoff = opts.get("backoff")
    if isinstance(backoff, (int, float)) and not isinstance(backoff, bool):
        backoff = {"type": "fixed", "delay": backoff}  # Bull's backoffs.normalize
    if isinstance(backoff, dict) and backoff:
        out["backoff"] = dict(backoff)
        if backoff.get("type") not in ("fixed", "exponential"):
            changed.append("custom backoff type (the BullMQ worker needs a backoffStrategy for it)")
    if opts.get("lifo"):
        out["lifo"] = True
    for key in ("removeOnComplete", "removeOnFail"):
        value = opts.get(key)
        if value is not None and value is not False:
            out[key] = value
    limit = opts.get("stackTraceLimit")
    if isinstance(limit, int) and not isinstance(limit, bool):
        out["stackTraceLimit"] = limit
    number, change = _priority(priority)
    if number:
        out["priority"] = number
    if change:
        changed.append(change)
    for key in opts:
        if key in _KEPT or key in _RECOMPUTED:
            continue
        dropped.append(_DROP_REASONS.get(key, f"{key} (unknown to BullMQ)"))
    return out, dropped, changed


def _reserved_in_bullmq(job_id: str) -> bool:
    return (
        job_id in _BULLMQ_RESERVED_IDS
        or job_id.startswith(_BULLMQ_RESERVED_ID_PREFIXES)
        or job_id.endswith(_BULLMQ_RESERVED_ID_SUFFIXES)
    )


def _data_json(data: Any) -> str:
    # The bullmq package's own encoding (Scripts.addJobArgs), so a read-back compares equal.
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def _map_job(job: Any, state: str, due: int | None, now: int) -> _Mapped:
    """A bullpy Job as a BullMQ add; ``due`` is the delayed score's time for delayed jobs."""
    record = job.record
    opts, dropped, changed = _job_options(record.opts, record.priority)
    timestamp = record.timestamp if isinstance(record.timestamp, int) else record.opts.get("timestamp")
    if not isinstance(timestamp, int) or timestamp > now:
        timestamp = now
    opts["jobId"] = job.id
    opts["timestamp"] = timestamp
    # BullMQ's addDelayedJob scores a job at timestamp + delay, so keeping Bull's creation timestamp
    # means delay = due - timestamp (which is Bull's own opts.delay for a plain delayed job).
    opts["delay"] = due - timestamp if due is not None and due > now else 0
    return _Mapped(job.id, state, record.name, record.data, _data_json(record.data), opts, dropped, changed)


def _scheduler_id(key: str, name: str) -> str:
    # BullMQ takes an id with 3+ ':' for a legacy repeat key and refuses it, so no ':' at all; the hash
    # keeps ids of two definitions with the same name apart and makes re-runs upsert the same scheduler.
    digest = hashlib.md5(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
    return f"{name.replace(':', '_')}-{digest}"


def _iteration_key(job: Any) -> str | None:
    """The repeat key of a Bull repeat iteration job, else None."""
    repeat = job.record.opts.get("repeat")
    if job.id.startswith("repeat:") and isinstance(repeat, dict) and isinstance(repeat.get("key"), str):
        return str(repeat["key"])
    return None


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
