"""A batch of new jobs written as one optimistic transaction instead of ``lua/import_jobs.lua``.

The script spends most of its time moving every argument between Redis and Lua (about twice the Redis time
of the same writes as plain commands), which caps an import near 40k jobs/s on a machine where Redis could
take 100k. When none of a batch's jobs exist yet (an import into an empty or another queue: the common
case), the same keys are written with plain commands in one MULTI/EXEC guarded by WATCH:

1. ``checks``: WATCH every job key and ``meta-paused``, then read what the script would check first (do any
   of the jobs, or their logs keys, exist; is the queue paused; the id counter; the types of the lists and
   sets written) and open the transaction with MULTI. Nothing is written by this step.
2. If every check passes (``verdict``), ``hashes`` and ``placements`` are queued and EXEC runs them; if a job
   key or ``meta-paused`` changed after the WATCH, Redis runs nothing and EXEC answers nil. If a check
   fails, DISCARD: the caller runs the script, which decides conflicts, locks and errors as before.

The keys come out as the script leaves them: each hash written by one HSET in the file's field order, the
ready ids pushed in order (RPUSH for "head", LPUSH for "tail"), zset members with the same score text, the
debounce keys set only if free, and one PUBLISH on ``delayed`` with the earliest due time. Placements that
read the list while writing ("prio": Bull's priority insert) always go through the script.

``pack`` is hiredis' ``pack_command``: the core packs, the facade sends (the core does no I/O).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .keys import QueueKeys
from .raw_scripts import ImportRow, score_arg

Pack = Callable[[tuple[Any, ...]], bytes]

#: Placements the transaction writes; the others go through the script.
PLACEMENTS: Final = frozenset({"head", "tail", "delayed", "completed", "failed"})
_SETS: Final = ("delayed", "completed", "failed")
_EXPECTED: Final = {"active": b"list", "wait": b"list", "paused": b"list", "priority": b"zset", "delayed": b"zset",
                    "completed": b"zset", "failed": b"zset", "id": b"string"}


def eligible(rows: Sequence[ImportRow]) -> bool:
    """Whether a batch can be written as a transaction (the script decides everything else)."""
    for row in rows:
        placement = row.placement
        if placement not in PLACEMENTS:
            return False
        if placement in _SETS and (row.score is None or math.isnan(row.score)):
            return False  # the script refuses it, naming the job
        if row.priority is not None and (placement != "head" or math.isnan(row.priority)):
            return False
        if row.debounce_id and row.debounce_ttl is None:
            return False
    return bool(rows)


@dataclass(frozen=True)
class NewJobs:
    """A batch packed for the transaction: ``checks`` (WATCH ... MULTI) with the number of replies it gets,
    and ``hashes``, the HSET (and log RPUSH, debounce SET) of every job, queued after a passing check."""

    checks: bytes
    n_checks: int
    hashes: bytes
    n_hashes: int
    id_floor: int | None
    type_keys: tuple[str, ...]  # the suffixes whose TYPE replies follow the counter in the checks


def pack_new_jobs(keys: QueueKeys, rows: Sequence[ImportRow], id_floor: int | None, pack: Pack) -> NewJobs:
    """The batch's checks and writes (``eligible(rows)`` must hold)."""
    base = keys.base
    job_keys = [base + row.id for row in rows]
    # Every HSET first, then log rows and debounce keys: commands on different keys, so within the transaction
    # their order makes no difference; the debounce SETs keep the rows' order (the first row of a deid wins).
    hashes = [pack(("HSET", key, *row.flat)) for key, row in zip(job_keys, rows)]
    hashes += [pack(("RPUSH", key + ":logs", *row.logs)) for key, row in zip(job_keys, rows) if row.logs]
    hashes += [pack(_debounce(base, row)) for row in rows if row.debounce_id and row.debounce_ttl is not None]
    n_hashes = len(hashes)
    used = {"active", "wait", "paused"} | {row.placement for row in rows}
    if any(row.priority is not None for row in rows):
        used.add("priority")
    type_keys = tuple(k for k in ("active", "wait", "paused", "priority", *_SETS) if k in used)
    commands = [pack(("WATCH", *job_keys, keys("meta-paused"))), pack(("EXISTS", *job_keys)),
                pack(("EXISTS", *[k + ":logs" for k in job_keys])), pack(("EXISTS", keys("meta-paused"))),
                pack(("GET", keys("id")))]
    commands += [pack(("TYPE", keys(k))) for k in type_keys]
    commands.append(pack(("MULTI",)))
    return NewJobs(b"".join(commands), len(commands), b"".join(hashes), n_hashes, id_floor, type_keys)


def _debounce(base: str, row: ImportRow) -> tuple[Any, ...]:
    key = base.encode() + b"de:" + row.debounce_id
    if row.debounce_ttl == -1:
        return ("SET", key, row.id, "NX")
    return ("SET", key, row.id, "PX", max(int(row.debounce_ttl or 0), 1), "NX")


def verdict(batch: NewJobs, replies: Sequence[Any]) -> tuple[str, bool]:
    """What the checks' replies say: ("ok", paused) to queue the writes, else why the script must decide
    ("exists", "logs", "counter", "type"; "refused": Redis refused WATCH or MULTI, so no transaction here)."""
    watch, jobs, logs, paused, counter, *rest = replies
    types, multi = rest[:-1], rest[-1]
    if isinstance(watch, Exception) or multi not in (b"OK", "OK"):
        return "refused", False
    if any(isinstance(r, Exception) for r in replies):
        return "type", False  # a key of another type (GET id, EXISTS never): the script names it
    if jobs:
        return "exists", False
    if logs:
        return "logs", False
    if batch.id_floor is not None and _counter(counter) < batch.id_floor:
        return "counter", False
    for suffix, found in zip(batch.type_keys, types):
        found = found.encode() if isinstance(found, str) else found
        if found not in (b"none", _EXPECTED[suffix]):
            return "type", False
    return "ok", bool(paused)


def _counter(value: Any) -> float:
    """The id counter as the script reads it (``tonumber(GET id) or 0``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def pack_placements(keys: QueueKeys, rows: Sequence[ImportRow], paused: bool, pack: Pack) -> tuple[bytes, int]:
    """The ready-list pushes, zset adds and the ``delayed`` message of a batch, with their command count: the
    pushes of "head" and "tail" jobs act on the two ends of the list, so grouped they give the script's order."""
    heads: list[str] = []
    tails: list[str] = []
    prioritised: list[str] = []
    scored: dict[str, list[str]] = {name: [] for name in _SETS}
    next_due: int | None = None
    for row in rows:
        placement = row.placement
        if placement == "head":
            heads.append(row.id)
            if row.priority is not None:
                prioritised += [score_arg(row.priority), row.id]
        elif placement == "tail":
            tails.append(row.id)
        else:
            score = score_arg(row.score or 0.0)  # eligible(): every scored row has its score
            scored[placement] += [score, row.id]
            if placement == "delayed":
                due = math.floor(float(score) / 4096)
                next_due = due if next_due is None else min(next_due, due)
    ready = keys("paused" if paused else "wait")
    commands = []
    if heads:
        commands.append(pack(("RPUSH", ready, *heads)))
    if tails:
        commands.append(pack(("LPUSH", ready, *tails)))
    if prioritised:
        commands.append(pack(("ZADD", keys("priority"), *prioritised)))
    for name in _SETS:
        if scored[name]:
            commands.append(pack(("ZADD", keys(name), *scored[name])))
    if next_due is not None:
        # Idle Node workers re-arm their delay timer on this message (as after an add with a delay).
        commands.append(pack(("PUBLISH", keys("delayed"), str(next_due))))
    return b"".join(commands), len(commands)


