"""The jobs another program damaged, for ``bullpy doctor``'s ``damaged-jobs`` check, found by reading only.

Every state is walked ``batch_size`` jobs a read (``RawQueue.iter_state_fields``: one ``SORT_RO ... GET``
per batch, or pipelined HMGETs where that is refused), reading only ``name``, ``data`` and ``opts``; no
call holds Redis for long whatever the queue's size. The few jobs that look damaged are read whole
afterwards (``queue.get_jobs_by_ids``, pipelined HGETALLs), to tell a key that is not a hash from an id
listed with no hash, and JSON Node reads from JSON bullpy cannot. Plain read commands only: it works for a
``+@read`` ACL user.

Kinds, and whether a worker can run such a job (Node's reading; a bullpy worker fails the others at once):

==============  =====  ==============================================================================
kind            runs   what
==============  =====  ==============================================================================
opts-null       no     ``opts`` is JSON ``null``: Node's ``Job.fromJSON`` throws
opts-not-json   no     ``opts`` is not JSON (cut short, hand-edited)
data-not-json   no     ``data`` is not JSON (and the job does not ask for ``preventParsingData``)
too-deep        no     JSON nested deeper than bullpy reads (tens of thousands of levels)
not-a-hash      no     the job's key holds a string, list, set... (WRONGTYPE)
no-hash         no     listed in a state with no job hash behind it: Node's ``getJob`` returns null
not-utf8        yes    bytes that are not UTF-8 (Node and bullpy read them with U+FFFD)
deep            yes    JSON nested deeper than Python prints (about 1,000 levels): read as Node reads it
two-states      yes    listed in two states at once (another program moved it without removing it)
==============  =====  ==============================================================================
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .queue import Queue

if TYPE_CHECKING:
    from .raw import RawQueue

__all__ = ["KINDS", "DamagedJobs", "find_damaged_jobs"]

#: kind -> (a worker can run such a job, how a report names it)
KINDS: dict[str, tuple[bool, str]] = {
    "opts-null": (False, "opts JSON null"),
    "opts-not-json": (False, "opts not JSON"),
    "data-not-json": (False, "data not JSON"),
    "too-deep": (False, "JSON nested deeper than bullpy reads"),
    "not-a-hash": (False, "job keys not a hash"),
    "no-hash": (False, "listed with no job hash"),
    "not-utf8": (True, "bytes not valid UTF-8"),
    "deep": (True, "JSON nested deeper than Python prints"),
    "two-states": (True, "listed in two states"),
}

_LISTS = ("wait", "paused", "active")
_SETS = ("delayed", "completed", "failed")
_FIELDS = ("name", "data", "opts")
_WHOLE = 100  # suspects read whole per round trip (deep JSON can be large)


@dataclass
class DamagedJobs:
    """What the walk found: per kind the number of jobs and the first ``shown`` ids."""

    shown: int = 20
    counts: dict[str, int] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)
    scanned: int = 0
    _seen: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def add(self, kind: str, job_id: str) -> None:
        if (kind, job_id) in self._seen:
            return
        self._seen.add((kind, job_id))
        self.counts[kind] = self.counts.get(kind, 0) + 1
        listed = self.ids.setdefault(kind, [])
        if len(listed) < self.shown:
            listed.append(job_id)

    def kinds(self, runs: bool) -> list[str]:
        """The kinds found whose jobs a worker can (``runs``) or cannot run, in ``KINDS`` order."""
        return [k for k in KINDS if k in self.counts and KINDS[k][0] is runs]

    def jobs(self, kinds: Sequence[str]) -> int:
        """How many jobs show any of ``kinds`` (a job may show two)."""
        return len({job_id for kind, job_id in self._seen if kind in kinds})


def _text(value: bytes | str | None) -> tuple[str | None, bool]:
    """The field as text, and whether its bytes were not UTF-8."""
    if value is None or isinstance(value, str):
        return value, False
    try:
        return value.decode("utf-8"), False
    except UnicodeDecodeError:
        return value.decode("utf-8", "replace"), True


def _classify(name: Any, data: Any, opts: Any) -> tuple[str | None, bool]:
    """(the worst kind these fields show, or "deep?" for JSON too deep to parse here, or None; not UTF-8)."""
    _, bad_name = _text(name)
    data_text, bad_data = _text(data)
    opts_text, bad_opts = _text(opts)
    not_utf8 = bad_name or bad_data or bad_opts
    try:
        parsed = json.loads(opts_text or "{}")
    except ValueError:
        return "opts-not-json", not_utf8
    except RecursionError:
        return "deep?", not_utf8
    if parsed is None:
        return "opts-null", not_utf8
    if isinstance(parsed, dict) and parsed.get("preventParsingData") not in (None, False, 0, ""):
        return None, not_utf8  # data is handed over as text, never parsed
    try:
        json.loads(data_text or "{}")
    except ValueError:
        return "data-not-json", not_utf8
    except RecursionError:
        return "deep?", not_utf8
    return None, not_utf8


def find_damaged_jobs(queue: Queue, raw: RawQueue, *, batch_size: int = 1000, shown: int = 20) -> DamagedJobs:
    """Walk every state of ``queue`` (read-only) and return the damaged jobs by kind (see the module)."""
    found = DamagedJobs(shown=shown)
    in_lists: dict[str, set[str]] = {}
    for state in (*_LISTS, *_SETS):
        members: set[str] = set()
        for batch in raw.iter_state_fields(state, _FIELDS, asc=True, batch_size=batch_size):
            found.scanned += len(batch.ids)
            empty: list[str] = []
            deep: dict[str, str | None] = {}
            for pos, job_id in enumerate(batch.ids):
                name, data, opts = (column[pos] for column in batch.columns)
                if pos in batch.refused:
                    found.add("not-a-hash", job_id)
                elif name is None and data is None and opts is None:
                    empty.append(job_id)
                else:
                    kind, not_utf8 = _classify(name, data, opts)
                    if kind == "deep?":
                        deep[job_id] = _text(data)[0]
                    elif kind is not None:
                        found.add(kind, job_id)
                    if not_utf8:
                        found.add("not-utf8", job_id)
            _resolve(queue, found, empty, deep)
            _two_states(queue, found, state, batch.ids, in_lists)
            if state in _LISTS:
                members.update(batch.ids)
        if state in _LISTS:
            in_lists[state] = members
    return found


def _resolve(queue: Queue, found: DamagedJobs, empty: Sequence[str], deep: dict[str, str | None]) -> None:
    """Read the suspects whole: a key that is not a hash or no hash at all; JSON Node reads or not even bullpy."""
    suspects = [*empty, *deep]
    for start in range(0, len(suspects), _WHOLE):
        chunk = suspects[start : start + _WHOLE]
        jobs = {job.id: job for job in queue.get_jobs_by_ids(chunk)}
        for job_id in chunk:
            job = jobs.get(job_id)
            if job_id in deep:
                # bullpy hands over the stored text of JSON it cannot read; parsed data is Node's reading.
                unread = job is not None and isinstance(job.data, str) and job.data == deep[job_id]
                found.add("too-deep" if unread else "deep", job_id)
            elif job is None:
                found.add("no-hash", job_id)
            elif job.damaged and not job.record.raw:  # a WRONGTYPE reply: nothing of a hash was read
                found.add("not-a-hash", job_id)


def _two_states(queue: Queue, found: DamagedJobs, state: str, ids: Sequence[str],
                in_lists: dict[str, set[str]]) -> None:
    """Ids of this batch also listed in a list read before, or in a sorted set after this state."""
    for job_id in ids:
        if any(job_id in members for members in in_lists.values()):
            found.add("two-states", job_id)
    later = _SETS[_SETS.index(state) + 1 :] if state in _SETS else _SETS
    for other in later:
        for job_id, score in zip(ids, queue.get_scores(other, ids)):
            if score is not None:
                found.add("two-states", job_id)
