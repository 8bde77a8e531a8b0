"""What transfer reads, writes and reports: export records, summaries, the states and the option checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

FORMAT: Final = "bullpy-export"
#: The version written; every version in ``VERSIONS`` is read (2 added damaged jobs and what was left out).
VERSION: Final = 2
VERSIONS: Final = (1, 2)
#: Job states in export order: the way jobs flow (delayed -> wait -> active -> finished), so a job
#: that moves on while a live queue is exported is met again in a later state, not lost.
JOB_STATES: Final = ("delayed", "wait", "paused", "active", "completed", "failed")
#: What ``states=`` accepts: the job states and ``repeat`` (the repeatable definitions).
ALL_STATES: Final = (*JOB_STATES, "repeat")
#: Ids a summary lists (its counts cover them all).
MAX_REPORTED: Final = 20

OnConflict = Literal["error", "skip", "replace"]
Progress = Callable[[int], None]


# --- records ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportHeader:
    """The first record of an export file."""

    queue: str
    prefix: str
    exported_at: int
    bullpy_version: str
    states: tuple[str, ...]
    source: str
    version: int = VERSION


@dataclass(frozen=True)
class JobEntry:
    """One job as exported: its raw hash and log rows and where it sat in the queue."""

    id: str
    state: str                       # delayed, wait, paused, active, completed or failed
    fields: Mapping[bytes, bytes]    # the job hash exactly as Redis holds it
    logs: tuple[bytes, ...] = ()
    score: float | None = None       # delayed/completed/failed zset score
    priority: float | None = None    # score in the priority zset (waiting prioritised jobs)
    debounce_ttl: int | None = None  # PTTL of de:<deid> while it names this job (-1: no expiry)
    damaged: str | None = None       # why Node or bullpy cannot read its data or opts (exported as it is)

    def text(self, name: str) -> str | None:
        """A hash field as text (``entry.text("data")``), or None when the job has no such field."""
        value = self.fields.get(name.encode())
        return None if value is None else value.decode("utf-8", "replace")


@dataclass(frozen=True)
class RepeatEntry:
    """A repeatable definition: the ``repeat`` zset member and its next-run score."""

    key: str
    score: float


@dataclass(frozen=True)
class QueueInfo:
    """Queue-level state: the global pause flag, the job-id counter and the metrics keys."""

    paused: bool
    id_counter: int | None
    metrics: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)


# --- summaries -------------------------------------------------------------------------------------------

def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{state} {n}" for state, n in counts.items() if n) or "none"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class ExportSummary:
    """What an export file holds (from ``export_queue`` or ``validate_export``)."""

    queue: str
    prefix: str
    exported_at: int
    counts: Mapping[str, int]
    repeatables: int
    paused: bool
    id_counter: int | None
    bytes: int
    dangling: int = 0  # ids found in a state without their job hash, not exported
    version: int = VERSION
    bullpy_version: str = ""
    not_hash: int = 0    # ids whose job key is not a hash (a string, a list...), not exported
    damaged: int = 0     # job hashes exported as they are, though bullpy cannot read or check their data or opts
    duplicates: int = 0  # ids met more than once (listed in two states, or moved on while read), exported once

    @property
    def jobs(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        text = (f"{_plural(self.jobs, 'job')} of queue {self.prefix}:{self.queue} ({_counts_text(self.counts)}), "
                f"{_plural(self.repeatables, 'repeatable definition')}")
        if self.paused:
            text += ", queue paused"
        if self.damaged:
            text += (f"; {_plural(self.damaged, 'damaged job')} (data or opts bullpy cannot read or check) exported "
                     "as they are")
        if self.dangling:
            text += f"; {self.dangling} ids without a job hash left out"
        if self.not_hash:
            text += f"; {self.not_hash} ids whose key is not a hash left out"
        if self.duplicates:
            text += f"; {self.duplicates} ids met more than once (in two states, or moved meanwhile) exported once"
        return text + f"; {self.bytes:,} bytes, format {FORMAT} v{self.version}"


@dataclass(frozen=True)
class ImportSummary:
    """What an import (or a dry run of it) wrote into the target queue."""

    target: str
    dry_run: bool
    written: Mapping[str, int]          # jobs written (added or replaced) per state in the target
    requeued_active: int = 0            # active jobs written as waiting at the head of the list
    conflicts: int = 0                  # ids that already existed in the target
    conflict_ids: tuple[str, ...] = ()  # the first of them
    skipped: int = 0                    # conflicts left as they were (on_conflict="skip")
    replaced: int = 0                   # conflicts overwritten (on_conflict="replace")
    locked: int = 0                     # conflicts not replaced because a worker holds their lock
    repeatables_added: int = 0
    repeatables_present: int = 0        # definitions the target already had
    paused_target: bool = False         # the target was paused to match the source
    id_counter: int | None = None       # the target's id counter was raised to at least this
    damaged: int = 0                    # damaged jobs (marked so in the file) written as they were

    @property
    def jobs(self) -> int:
        return sum(self.written.values())

    def _lines(self, verb: str, past: str, where: str) -> list[str]:
        would = "would be " if self.dry_run else ""
        done = f"dry run: would {verb}" if self.dry_run else past
        lines = [f"{done} {_plural(self.jobs, 'job')} {where} ({_counts_text(self.written)})"]
        if self.requeued_active:
            lines.append(f"{_plural(self.requeued_active, 'active job')} {would}requeued at the head of the "
                         "waiting list (locks are not transferred)")
        if self.conflicts:
            parts = [f"{n} {what}" for n, what in ((self.skipped, "skipped"), (self.replaced, "replaced"),
                                                   (self.locked, "locked by a worker, left alone")) if n]
            shown = ", ".join(self.conflict_ids) + (", ..." if self.conflicts > len(self.conflict_ids) else "")
            lines.append(f"{_plural(self.conflicts, 'id')} already in the target ({shown}): {', '.join(parts)}")
        if self.repeatables_added or self.repeatables_present:
            lines.append(f"{_plural(self.repeatables_added, 'repeatable definition')} {would}added"
                         + (f", {self.repeatables_present} already there" if self.repeatables_present else ""))
        if self.damaged:
            lines.append(f"{_plural(self.damaged, 'damaged job')} (data or opts bullpy cannot read or check) "
                         f"{would}written as exported")
        if self.paused_target:
            lines.append(f"the target {'would be' if self.dry_run else 'was'} paused, as the source was")
        return lines

    def __str__(self) -> str:
        return "\n".join(self._lines("import", "imported", f"into {self.target}"))


@dataclass(frozen=True)
class TransferSummary(ImportSummary):
    """What ``copy_jobs``/``move_jobs`` did (or would do)."""

    source: str = ""
    moved: bool = False
    removed: int = 0               # jobs removed from the source after being written to the target
    locked_in_source: int = 0      # active jobs a worker holds: never moved
    changed: int = 0               # jobs that changed in the source meanwhile and were left there
    already_waiting: int = 0       # moving within a queue: jobs that were waiting already
    missing_ids: tuple[str, ...] = ()  # ids asked for that are in no state

    def __str__(self) -> str:
        within = self.source == self.target
        where = f"within {self.target} to waiting" if within else f"from {self.source} into {self.target}"
        lines = self._lines(*(("move", "moved") if self.moved else ("copy", "copied")), where)
        if self.removed:
            lines.append(f"{_plural(self.removed, 'job')} removed from the source")
        if self.locked_in_source:
            lines.append(f"{_plural(self.locked_in_source, 'active job')} locked by a worker, not moved")
        if self.changed:
            both = " (now in both queues)" if self.moved and not within else ""
            lines.append(f"{_plural(self.changed, 'job')} changed in the source meanwhile, left there{both}")
        if self.already_waiting:
            lines.append(f"{_plural(self.already_waiting, 'job')} already waiting")
        if self.missing_ids:
            lines.append(f"not found: {', '.join(self.missing_ids[:MAX_REPORTED])}")
        return "\n".join(lines)


# --- arguments -------------------------------------------------------------------------------------------

def parse_states(states: Iterable[str] | str | None) -> tuple[str, ...]:
    """``states=`` as the ordered tuple of ``ALL_STATES`` it names (``waiting`` is ``wait``)."""
    if states is None:
        return ALL_STATES
    if isinstance(states, str):
        states = states.split(",")
    out: list[str] = []
    for state in states:
        if not isinstance(state, str):
            raise TypeError(f"states are strings, got {state!r}")
        state = state.strip()
        state = "wait" if state == "waiting" else state
        if state not in ALL_STATES:
            raise ValueError(f"unknown state {state!r}; use some of {', '.join(ALL_STATES)} ('waiting' = 'wait')")
        if state not in out:
            out.append(state)
    if not out:
        raise ValueError("states must name at least one state")
    return tuple(s for s in ALL_STATES if s in out)


def check_options(on_conflict: str, batch_size: int) -> None:
    if on_conflict not in ("error", "skip", "replace"):
        raise ValueError(f"on_conflict must be 'error', 'skip' or 'replace', got {on_conflict!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
