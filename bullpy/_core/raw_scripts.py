"""The Calls of bullpy's own raw-job scripts (Bull has none of these): ``lua/read_jobs.lua``, ``import_jobs.lua``,
``import_queue.lua``, ``job_presence.lua``, ``remove_moved.lua`` and ``requeue_jobs.lua``, under export, import,
copy, move and requeue (``bullpy.transfer``) and the BullMQ migration (``bullpy.migrate``), through
``bullpy.raw``. Job hashes travel as bytes, never decoded or re-encoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .codec import text
from .keys import QueueKeys
from .scripts import Call

# --- raw jobs: export, import, copy, move and requeue (bullpy.transfer), migration (bullpy.migrate) ------
# bullpy's own scripts (Bull has none of these): lua/read_jobs.lua, import_jobs.lua, import_queue.lua,
# remove_moved.lua and requeue_jobs.lua. Job hashes travel as bytes, never decoded or re-encoded.

#: KEYS index of each state in those scripts: the order of Bull's removeJob, shared by all of them.
STATE_INDEX: dict[str, int] = {"active": 1, "wait": 2, "delayed": 3, "paused": 4, "completed": 5, "failed": 6}
_INDEX_STATE = {index: state for state, index in STATE_INDEX.items()}
LIST_STATES = ("active", "wait", "paused")
ZSET_STATES = ("delayed", "completed", "failed")
#: The metrics keys of a queue, in import_queue.lua's KEYS order (KEYS[3] to KEYS[6]).
METRICS_KEYS = ("metrics:completed", "metrics:completed:data", "metrics:failed", "metrics:failed:data")
#: Fields every Bull state change touches (moveToActive, finishing, retry, promote, stalled recovery):
#: remove_moved.lua removes a job only while their values are those read with it.
FINGERPRINT_FIELDS = ("processedOn", "finishedOn", "attemptsMade", "stalledCounter", "retriedOn", "delay")


def _state_keys(keys: QueueKeys) -> list[str]:
    return [keys("active"), keys("wait"), keys("delayed"), keys("paused"), keys("completed"), keys("failed"),
            keys("priority")]


def score_arg(value: float) -> str:
    """A score as ZADD takes it, exactly: integers without ``.0``, others by repr (which round-trips)."""
    if value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    return repr(value)


@dataclass(frozen=True)
class RawJob:
    """One job as read_jobs.lua read it, in one atomic step: where it sat, and its hash as Redis holds it."""

    id: str
    state: str | None               # active, wait, delayed, paused, completed, failed; None: in no state
    score: float | None             # delayed (due*4096 + counter bits), completed and failed (finishedOn)
    priority: float | None          # the score in the priority zset (waiting jobs only)
    locked: bool                    # a worker holds the job's lock
    exists: bool                    # the job hash exists
    fields: Mapping[bytes, bytes]   # the hash (full reads only; {} otherwise)
    logs: tuple[bytes, ...] = ()    # the log rows (full reads only)
    debounce_ttl: int | None = None  # PTTL of de:<deid> while that key names this job (-1: no expiry)
    not_hash: bool = False          # the job's key is not a hash (full reads only; then exists is False)


def _parse_raw_jobs(reply: Any) -> list[RawJob]:
    out: list[RawJob] = []
    for job_id, index, score, priority, locked, exists, flat, logs, de_ttl in reply:
        out.append(RawJob(
            text(job_id), _INDEX_STATE.get(int(index)),
            None if score is None else float(score), None if priority is None else float(priority),
            bool(int(locked)), int(exists) == 1, dict(zip(flat[0::2], flat[1::2])), tuple(logs),
            None if de_ttl is None else int(de_ttl), int(exists) == 2,
        ))
    return out


def _read_jobs(keys: QueueKeys, full: bool, mode: list[str], locks: bool = True) -> Call[list[RawJob]]:
    what = ("all" if locks else "hashes") if full else "ids"
    return Call("read_jobs", keys=_state_keys(keys), args=[keys.base, what, *mode], parse=_parse_raw_jobs)


def read_jobs_in_list(keys: QueueKeys, state: str, start: int, count: int, full: bool,
                      locks: bool = True) -> Call[list[RawJob]]:
    """``count`` ids of a list state from index ``start`` counted from the tail (the LPUSH end); ``locks=False``
    (full reads only) leaves the locks out (every job reads as unlocked): a key lookup less per job."""
    return _read_jobs(keys, full, ["list", str(STATE_INDEX[state]), str(start), str(count)], locks)


def read_jobs_in_zset(
    keys: QueueKeys, state: str, min_score: float, offset: int, count: int, full: bool, locks: bool = True
) -> Call[list[RawJob]]:
    """``count`` members of a sorted-set state scored ``min_score`` or more, past the first ``offset`` of them."""
    return _read_jobs(keys, full, ["zset", str(STATE_INDEX[state]), score_arg(min_score), str(offset), str(count)],
                      locks)


def read_jobs_by_id(keys: QueueKeys, ids: Sequence[str], full: bool) -> Call[list[RawJob]]:
    """These jobs, each looked up in every state (Node's getState order)."""
    return _read_jobs(keys, full, ["ids", *ids])


def job_presence(keys: QueueKeys, ids: Sequence[str]) -> Call[list[tuple[bool, bool]]]:
    """Per id: (the job hash exists, a worker holds its lock)."""
    return Call("job_presence", keys=[keys("id")], args=[keys.base, *ids],
                parse=lambda reply: [(flag != "0", flag == "2") for flag in text(reply)])


@dataclass(frozen=True)
class ImportJob:
    """One job for import_jobs.lua: its raw hash and logs, and where it goes.

    ``placement``: ``head`` (RPUSH onto the ready list, with ``priority`` also into the priority zset),
    ``tail`` (LPUSH), ``prio`` (Bull's priority insert with ``priority``), or ``delayed``, ``completed``,
    ``failed`` (ZADD ``score``).
    """

    id: str
    placement: str
    fields: Mapping[bytes, bytes]
    logs: Sequence[bytes] = ()
    score: float | None = None
    priority: float | None = None
    debounce_id: bytes = b""          # the job's deid, to restore its de:<deid> key (if free)
    debounce_ttl: int | None = None   # that key's PTTL (-1: no expiry)

    def argv(self) -> list[str | bytes]:
        return _row_argv(self.row())

    def row(self) -> ImportRow:
        return ImportRow(self.id, self.placement, [v for pair in self.fields.items() for v in pair], self.logs,
                         self.score, self.priority, self.debounce_id, self.debounce_ttl)


class ImportRow(NamedTuple):
    """An ``ImportJob`` with its hash as a flat field, value list (as an export file and HGETALL hold it): a
    tuple, cheap to build a million times."""

    id: str
    placement: str
    flat: Sequence[bytes]
    logs: Sequence[bytes] = ()
    score: float | None = None
    priority: float | None = None
    debounce_id: bytes = b""
    debounce_ttl: int | None = None


def _row_argv(row: ImportRow) -> list[str | bytes]:
    ttl = "" if row.debounce_ttl is None or not row.debounce_id else str(row.debounce_ttl)
    return [row.id, row.placement, "" if row.score is None else score_arg(row.score),
            "" if row.priority is None else score_arg(row.priority), row.debounce_id, ttl, str(len(row.flat)),
            str(len(row.logs)), *row.flat, *row.logs]


@dataclass(frozen=True)
class Imported:
    """import_jobs.lua's answer: a status per job ("added", "replaced", "skipped", "locked"), or, with
    on_conflict "error", the ids that exist already (and nothing written)."""

    statuses: list[str]
    conflicts: list[str]


def _parse_imported(reply: Any) -> Imported:
    items = [text(x) for x in reply]
    if items and items[0] == "conflict":
        return Imported([], items[1:])
    return Imported(items[1:], [])


def import_jobs(keys: QueueKeys, on_conflict: str, id_floor: int | None, jobs: Sequence[ImportJob]) -> Call[Imported]:
    return import_rows(keys, on_conflict, id_floor, [job.row() for job in jobs])


def import_rows(keys: QueueKeys, on_conflict: str, id_floor: int | None, rows: Sequence[ImportRow]) -> Call[Imported]:
    """import_jobs.lua: write jobs all or nothing; a status per job, or the ids that exist (on_conflict "error")."""
    args: list[str | bytes] = [keys.base, on_conflict, "" if id_floor is None else str(id_floor), str(len(rows))]
    for row in rows:
        args.extend(_row_argv(row))
    return Call("import_jobs", keys=[*_state_keys(keys), keys("meta-paused"), keys("id")], args=args,
                parse=_parse_imported)


def _parse_import_queue(reply: Any) -> tuple[int, int, int]:
    added, present, written = (int(x) for x in reply)
    return added, present, written


def import_queue(
    keys: QueueKeys, id_floor: int | None, replace: bool, repeatables: Sequence[tuple[str, float]],
    metrics: Mapping[str, Sequence[bytes]],
) -> Call[tuple[int, int, int]]:
    """Raise the id counter, add repeatable definitions (their scores overwritten with ``replace``) and write
    the metrics keys the queue does not have; replies (definitions added, already there, metrics keys written)."""
    args: list[str | bytes] = ["" if id_floor is None else str(id_floor), "replace" if replace else "keep",
                               str(len(repeatables))]
    for member, score in repeatables:
        args += [member, score_arg(score)]
    for index, suffix in enumerate(METRICS_KEYS, start=3):
        values = metrics.get(suffix, ())
        if values:
            args += [str(index), str(len(values)), *values]
    return Call("import_queue", keys=[keys("id"), keys("repeat"), *(keys(m) for m in METRICS_KEYS)], args=args,
                parse=_parse_import_queue)


def _texts(reply: Any) -> list[str]:
    return [text(x) for x in reply]


def fingerprint(fields: Mapping[bytes, bytes]) -> bytes:
    """What remove_moved.lua compares: the ``FINGERPRINT_FIELDS`` values joined by newlines ("" if absent)."""
    return b"\n".join(fields.get(name.encode(), b"") for name in FINGERPRINT_FIELDS)


def remove_moved(keys: QueueKeys, jobs: Sequence[tuple[str, str, Mapping[bytes, bytes]]]) -> Call[list[str]]:
    """Remove jobs (id, the state they were read in, the hash read) only if unchanged and unlocked since;
    one status per job: "removed", "locked" or "changed"."""
    args: list[str | bytes] = [keys.base, str(len(jobs))]
    for job_id, state, fields in jobs:
        args += [job_id, str(STATE_INDEX[state]), fingerprint(fields)]
    return Call("remove_moved", keys=_state_keys(keys), args=args, parse=_texts)


def requeue_jobs(keys: QueueKeys, now_ms: int, jobs: Sequence[tuple[str, str, bool]]) -> Call[list[str]]:
    """Move jobs (id, the state they are expected in, lifo) back to waiting as Bull's retry, promote or
    stalled recovery would; one status per job: "moved", "waiting", "locked" or "changed"."""
    args: list[str | bytes] = [keys.base, str(now_ms), str(len(jobs))]
    for job_id, state, lifo in jobs:
        args += [job_id, str(STATE_INDEX[state]), "RPUSH" if lifo else "LPUSH"]
    return Call("requeue_jobs", keys=[*_state_keys(keys), keys("meta-paused")], args=args, parse=_texts)
