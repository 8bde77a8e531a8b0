"""Bull's multi-step operations, written once for both facades as generators that do no I/O.

An operation yields steps (a script ``Call``, a ``Read`` of plain commands, or a ``Batch`` of Calls sent
in one round trip), receives each step's parsed reply, and returns its result; a failing step is thrown
back into it. The sync facade drives it with redis-py, ``bullpy.aio`` with ``redis.asyncio``: the loops
(clean's steps, remove_jobs' walks, obliterate's refusals), the validation and the mapping of Bull's reply
codes to exceptions exist once, here, and run without a server in tests.

Mirrors lib/queue.js (clean, empty, obliterate, retryJobs, getJobCountByTypes...) and lib/job.js (getState,
retry, remove, moveToFailed/moveToCompleted from outside a worker). Callers pass the clock (``now_ms``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..errors import (
    JobLocked,
    JobNotFound,
    JobNotInState,
    QueueHasActiveJobs,
    QueueNotPaused,
    UnknownBackoff,
)
from . import options as _options
from . import reads, scripts
from . import repeat as _repeat
from .codec import js_number_str, text, to_json
from .jobhash import JobRecord, WrongType, damaged_record
from .keys import STATE_KEYS, JobState, QueueKeys, check_queue_name, colon_refusal
from .reads import Read
from .scripts import Call
from .work import completed_payload, failed_attempt, keep_jobs

T = TypeVar("T")

#: The states ``clean`` accepts, as Node validates them (``waiting`` is not one of them).
CLEAN_STATES = ("completed", "wait", "active", "paused", "delayed", "failed")
#: Keys a live Bull queue almost always has: `id` (every add increments it, custom job ids too), states, flags.
PRESENCE_KEYS = ("id", "wait", "active", "paused", "delayed", "completed", "failed", "meta-paused", "repeat",
                 "stalled-check")


@dataclass(frozen=True)
class Batch(Generic[T]):
    """Several Calls in one round trip: parsed replies in order (MULTI/EXEC when ``transaction``), or with
    ``raw`` the replies unparsed and errors in their place (a failing call does not stop the others)."""

    calls: Sequence[Call[T]]
    transaction: bool = False
    raw: bool = False


Step = Call[Any] | Read[Any] | Batch[Any]
#: An operation: yields steps, is sent each step's reply, returns its result.
Op = Generator[Step, Any, T]


def run_sync(op: Op[T], step: Callable[[Step], Any]) -> T:
    """Drive an operation with a function that performs one step (the sync facade's driver)."""
    try:
        current = next(op)
        while True:
            try:
                reply = step(current)
            except Exception as exc:
                current = op.throw(exc)
            else:
                current = op.send(reply)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


# --- a queue's settings ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class QueueConfig:
    """A Queue's validated settings, the same for both facades."""

    name: str
    prefix: str
    keys: QueueKeys
    backoff_strategies: frozenset[str]
    local_timezone: str
    default_job_options: dict[str, Any] = field(default_factory=dict)
    #: Why the queue may only be read (its keys could overlap another queue's), or None.
    write_refusal: str | None = None


def queue_config(name: str, prefix: str, default_job_options: Mapping[str, Any] | None,
                 backoff_strategies: Collection[str], local_timezone: str,
                 allow_colon: bool = False) -> QueueConfig:
    """Validate a Queue's settings before it connects: a bad default fails at construction, not at the
    first add; an unknown time zone fails now. A ``:`` in the name or prefix makes the queue read-only
    (``write_refusal``) unless ``allow_colon``."""
    name = check_queue_name(name)
    check_queue_name(prefix, "prefix")
    strategies = frozenset(backoff_strategies)
    _repeat.resolve_tz(local_timezone)
    defaults = dict(default_job_options or {})
    _options.validate_options(defaults, strategies)
    refusal = None if allow_colon else colon_refusal(name, prefix)
    return QueueConfig(name, prefix, QueueKeys(name, prefix), strategies, local_timezone, defaults, refusal)


# --- producing -------------------------------------------------------------------------------------------

Prepare = Callable[[Any, Any, Mapping[str, Any], "dict[str, dict[str, Any]]"], "_options.PreparedJob | None"]


def bulk_writes(jobs: Iterable[Mapping[str, Any]], prepare: Prepare) -> list[scripts.JobWrite]:
    """Validate and encode every item of an ``add_bulk`` (``{"data", "name", "opts"}``) before the first
    write; ``prepare(name, data, opts, cache)`` is the queue's own ``prepare_job``."""
    writes: list[scripts.JobWrite] = []
    cache: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(jobs):
        if not isinstance(item, Mapping):
            raise TypeError(f"add_bulk item {index}: expected a dict with 'data', 'name', 'opts', got {item!r}")
        unknown = set(item) - {"data", "name", "opts"}
        if unknown:
            raise TypeError(f"add_bulk item {index}: unknown keys {sorted(unknown)} (use 'data', 'name', 'opts')")
        opts = dict(item.get("opts") or {})
        if "repeat" in opts:
            raise ValueError(f"add_bulk item {index}: repeatable jobs must be added with add()")
        try:
            prepared = prepare(item.get("name"), item.get("data"), opts, cache)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"add_bulk item {index}: {exc}") from exc
        if prepared is None:  # pragma: no cover - only repeatable jobs end, and they are refused above
            raise ValueError(f"add_bulk item {index}: nothing to add")
        writes.append(prepared.write)
    return writes


def bulk_batch_size(batch_size: object) -> int:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def written_fields(write: scripts.JobWrite) -> dict[str, str]:
    """The hash fields an added job certainly has (the rest of a ``Job`` is read lazily from these)."""
    return {"name": write.name, "data": write.data, "opts": write.opts, "timestamp": str(write.timestamp),
            "delay": str(write.delay), "priority": write.priority}


def add_bulk(keys: QueueKeys, token: str, writes: Sequence[scripts.JobWrite], batch_size: int
             ) -> Op[list[scripts.Added]]:
    """Each batch of ``batch_size`` jobs one atomic script call, all batches one round trip."""
    batch_size = bulk_batch_size(batch_size)
    calls = [scripts.add_jobs(keys, token, writes[i : i + batch_size]) for i in range(0, len(writes), batch_size)]
    if not calls:
        return []
    replies = yield Batch(calls)
    return [added for batch in replies for added in batch]


def check_batch_size(batch_size: object) -> int:
    return _options._int_option("batch_size", batch_size, 1)


def queue_id_pattern(prefix: str) -> str:
    """The SCAN pattern of every queue's id counter ``prefix:<name>:id`` under a prefix (Bull's addJob
    increments it for every job, custom ids too, so every queue that ever held a job has it)."""
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
    return scripts.glob_escape(prefix) + ":*:id"


def queue_name_of(key: Any, prefix: str) -> str:
    """The queue name in an id counter key found with ``queue_id_pattern``."""
    return text(key)[len(prefix) + 1 : -len(":id")]


# --- getters ---------------------------------------------------------------------------------------------
# What a monitor shows (get_stats, FinishedJob, QueueStats) is in .stats.

def get_jobs(keys: QueueKeys, types: str | Sequence[str], start: int, end: int, asc: bool,
             now_ms: int) -> Op[list[JobRecord]]:
    """Node's ``getJobs``: the ids of the states asked for, then their hashes. Jobs removed meanwhile are
    skipped; a damaged one (and one listed in two of the states) is a record whose ``damaged`` says why."""
    listed = yield reads.state_ranges(keys, types, start, end, asc)
    ids = [job_id for _, job_id in listed]
    found = yield reads.jobs(keys, ids, now_ms, states=[state for state, _ in listed], aligned=True)
    missing = [where for where, record in zip(listed, found) if record is None]
    if missing:
        # Removed meanwhile (skipped, as Node's getJobs has null there), or listed with no hash behind it
        # (damaged: reported). One snapshot tells them apart.
        damaged = set((yield reads.listed_without_hash(keys, missing)))
        found = [damaged_record(job_id, {}, f"listed in {state}, but no job hash exists: Node's getJob returns "
                                "null for it", now_ms) if record is None and (state, job_id) in damaged else record
                 for (state, job_id), record in zip(listed, found)]
    return [record for record in found if record is not None]


def get_states(keys: QueueKeys, ids: Sequence[str | int]) -> Op[dict[str, str]]:
    """The state of many jobs in one round trip (``missing`` for ids whose job is gone)."""
    wanted = [str(i) for i in ids]
    if not wanted:
        return {}
    states = yield Batch([scripts.get_state(keys, i) for i in wanted])
    return dict(zip(wanted, states))


def get_job_fields(keys: QueueKeys, ids: Sequence[str | int], fields: Sequence[str], batch_size: int,
                   plain: bool) -> Op[list[list[Any]]]:
    """Raw hash fields of many jobs, ``batch_size`` jobs a round trip (a script call, or HMGETs)."""
    batch_size = check_batch_size(batch_size)
    if not fields:
        raise ValueError("fields must name at least one hash field")
    wanted = [str(i) for i in ids]
    rows: list[list[Any]] = []
    for start in range(0, len(wanted), batch_size):
        chunk = wanted[start : start + batch_size]
        if plain:
            rows.extend((yield Read([("HMGET", keys.job(i), *fields) for i in chunk], _hmget_rows(len(fields)),
                                    snapshot=False, wrong_type_in_place=True)))
        else:
            rows.extend((yield scripts.get_job_fields(keys, chunk, list(fields))))
    return rows


def _hmget_rows(width: int) -> Callable[[list[Any]], list[Any]]:
    # A key that is not a hash (another program's) reads as a job with none of the fields.
    return lambda replies: [[None] * width if isinstance(r, WrongType) else r for r in replies]


def count_per_priority(keys: QueueKeys, priorities: Iterable[int]) -> Op[dict[int, int]]:
    """Waiting jobs per priority (0 = jobs without a priority)."""
    unique: list[int] = []
    for p in priorities:
        p = _options.validate_options({"priority": p})["priority"]
        if p not in unique:
            unique.append(p)
    # Ascending keys, the order a JavaScript object with numeric keys has in Node's answer.
    unique.sort()
    counts = yield scripts.counts_per_priority(keys, [js_number_str(p) for p in unique])
    return dict(zip(unique, counts))


def exists(keys: QueueKeys, presence_keys: Sequence[str]) -> Op[bool]:
    """True when Redis holds any key of the queue: one round trip for any real queue; a queue with none of
    the usual keys costs a SCAN, which stops at the first key found."""
    found = yield Read([("EXISTS", *(keys(k) for k in presence_keys))], lambda r: int(r[0]), snapshot=False)
    if found:
        return True
    pattern = scripts.glob_escape(keys.base) + "*"
    cursor = "0"
    while True:
        cursor, names = yield Read([("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)],
                                   lambda r: (text(r[0][0]), list(r[0][1])), snapshot=False)
        if names:
            return True
        if cursor == "0":
            return False


# --- repeatable jobs -------------------------------------------------------------------------------------

def remove_repeatable(keys: QueueKeys, name: str | None, repeat: Mapping[str, Any]) -> Call[bool]:
    """Remove a repeatable definition and its next iteration, named as when it was added."""
    job_name = _options.check_name(name)
    spec = _repeat.RepeatOptions.from_user(repeat)
    key = _repeat.repeat_key(job_name, spec)
    return scripts.remove_repeatable(keys, _repeat.iteration_prefix(job_name, spec, key), key)


def remove_repeatable_by_key(keys: QueueKeys, key: str) -> Call[bool]:
    job_name, spec = _repeat.key_to_repeat(key)
    return scripts.remove_repeatable(keys, _repeat.iteration_prefix(job_name, spec, key), key)


# --- management ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CleanPlan:
    status: str
    cutoff: int
    limit: int
    batch_size: int


def plan_clean(grace_ms: object, status: str, limit: object, batch_size: object, now_ms: int) -> CleanPlan:
    """Validate ``clean``'s arguments; one cut-off for every step (and every retry)."""
    if status not in CLEAN_STATES:
        raise ValueError(f"cannot clean unknown queue type {status!r}; use one of {', '.join(CLEAN_STATES)}")
    grace = _options._ms("grace_ms", grace_ms)
    return CleanPlan(status, now_ms - grace, _options._int_option("limit", limit, 0), check_batch_size(batch_size))


def clean(keys: QueueKeys, plan: CleanPlan, dry_run: bool, taken: dict[str, None]) -> Op[list[str]]:
    """Bull's clean in steps of at most ``batch_size`` jobs and a few ms each; ``taken`` collects the ids
    across runs (a clean cut by an outage and run again returns the ids of both)."""
    limit, status = plan.limit, plan.status
    cursor: list[str] = []
    while not limit or len(taken) < limit:
        ids, cursor = yield scripts.clean(
            keys, status, plan.cutoff, limit, dry_run, remaining=limit - len(taken) if limit else 0,
            batch_size=plan.batch_size, cursor=cursor)
        taken.update(dict.fromkeys(ids))
        if not cursor:
            break
    found = list(taken)[: limit or None]
    # Without a limit a list is walked from its head, oldest first; Node lists it left to right.
    return found[::-1] if not limit and STATE_KEYS[status][1] == "list" else found


def empty(keys: QueueKeys, batch_size: int) -> Op[int]:
    """Remove every waiting, paused and delayed job in steps; returns how many."""
    batch_size = check_batch_size(batch_size)
    total = 0
    while True:
        removed, more = yield scripts.empty(keys, batch_size)
        total += int(removed)
        if not more:
            return total


def obliterate(keys: QueueKeys, force: bool, count: int) -> Op[None]:
    """Pause the queue, then delete its jobs and keys in steps; refuses while jobs are active unless ``force``."""
    count = _options._int_option("count", count, 1)
    refused = f"cannot obliterate queue {keys.name!r}: it has active jobs (use force=True)"
    # Node checks the active list only after pausing; checking first leaves a busy queue running.
    if not force and (yield reads.active_count(keys)):
        raise QueueHasActiveJobs(refused)
    yield scripts.pause(keys, True)
    while True:
        code = int((yield scripts.obliterate(keys, count, force)))
        if code == 0:
            return
        if code == -1:
            raise QueueNotPaused(f"cannot obliterate queue {keys.name!r}: it is not paused")
        if code == -2:
            raise QueueHasActiveJobs(refused)


def retry_jobs(keys: QueueKeys, count: int, state: str) -> Op[None]:
    """Move every failed (or completed) job back to waiting, ``count`` per script call."""
    if state not in ("failed", "completed"):
        raise ValueError(f"state must be 'failed' or 'completed', got {state!r}")
    count = _options._int_option("count", count, 1)
    while (yield scripts.retry_jobs(keys, state, count)):
        pass


def promote_jobs(keys: QueueKeys, token: str, ids: Sequence[str | int] | None, batch_size: int) -> Op[list[str]]:
    """Move delayed jobs (the given ids, else every delayed job) to waiting, ``batch_size`` a round trip."""
    batch_size = check_batch_size(batch_size)
    promoted: list[str] = []

    def batch_of(chunk: Sequence[str]) -> Batch[Any]:
        return Batch([scripts.promote(keys, i, token) for i in chunk], raw=True)

    if ids is not None:
        wanted = [str(i) for i in ids]
        for start in range(0, len(wanted), batch_size):
            chunk = wanted[start : start + batch_size]
            replies = yield batch_of(chunk)
            promoted.extend(i for i, reply in zip(chunk, replies) if reply == 0)
        return promoted
    while True:
        # Always the soonest-due window: promoted ids leave the set, skipped ones cannot be there.
        chunk = yield reads.ranges(keys, ["delayed"], 0, batch_size - 1, True)
        if not chunk:
            return promoted
        before = len(promoted)
        replies = yield batch_of(chunk)
        promoted.extend(i for i, reply in zip(chunk, replies) if reply == 0)
        if len(promoted) == before:
            return promoted


def remove_jobs(keys: QueueKeys, pattern: str, dry_run: bool, batch_size: int) -> Op[list[str]]:
    """Remove every unlocked job whose id matches a glob: the wait, paused and active lists are walked once
    for the matching jobs they hold, then the job hashes are scanned for the rest, in bounded steps."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("pattern must be a non-empty glob, e.g. '*' or 'campaign-*'")
    batch_size = check_batch_size(batch_size)
    found: dict[str, None] = {}
    deferred: dict[str, None] = {}

    def walk_lists(pattern: str, ids: Sequence[str]) -> Op[None]:
        for state in ("active", "wait", "paused"):
            cursor: list[str] = []
            while True:
                removed, cursor = yield scripts.remove_listed_jobs(keys, state, pattern, cursor, ids=ids,
                                                                   batch_size=batch_size)
                found.update(dict.fromkeys(removed))
                if not cursor:
                    break

    def step(cursor: str, ids: Sequence[str] = (), orphans: bool = False) -> Op[str]:
        """One SCAN step (or the given ids), then the ids it had no time for; the next SCAN cursor."""
        reply = yield scripts.remove_jobs(keys, pattern, cursor, batch_size, dry_run, ids=ids, orphans=orphans)
        next_cursor = str(reply.cursor)
        while True:
            found.update(dict.fromkeys(reply.removed))
            deferred.update(dict.fromkeys(reply.deferred))
            if not reply.later:
                return next_cursor
            reply = yield scripts.remove_jobs(keys, pattern, "", batch_size, dry_run, ids=reply.later,
                                              orphans=orphans)

    if not dry_run:
        yield from walk_lists(pattern, ())
    cursor = "0"
    while True:
        cursor = yield from step(cursor)
        if cursor == "0":
            break
    # Matching jobs in no sorted set that the first walk did not meet: pushed to a list after the walk
    # passed, or hashes in no state at all. One more walk takes the listed ones, then the rest go.
    left = [i for i in deferred if i not in found]
    for start in range(0, len(left), 1000):
        chunk = left[start : start + 1000]
        yield from walk_lists("", chunk)
        rest = [i for i in chunk if i not in found]
        if rest:
            yield from step("", rest, orphans=True)
    return list(found)


# --- one job ---------------------------------------------------------------------------------------------

def get_state(keys: QueueKeys, job_id: str) -> Op[JobState]:
    """completed, failed, delayed, active, waiting, paused or stuck (Node's order of checks)."""
    state = yield scripts.get_state(keys, job_id)
    if state == "missing":
        raise JobNotFound(job_id, "getState")
    return JobState(state)


def reload(keys: QueueKeys, job_id: str, now_ms: int) -> Op[JobRecord]:
    record = yield reads.job(keys, job_id, now_ms)
    if record is None:
        raise JobNotFound(job_id, "reload")
    return record  # type: ignore[no-any-return]


def retry_job(keys: QueueKeys, job_id: str, state: str, lifo: bool, token: str, now_ms: int) -> Op[None]:
    """Move a failed (or completed) job back to waiting."""
    if state not in ("failed", "completed"):
        raise ValueError(f"state must be 'failed' or 'completed', got {state!r}")
    code = yield scripts.reprocess_job(keys, job_id, state, lifo, token, now_ms)
    if code == 0:
        raise JobNotFound(job_id, "retry")
    if code == -1:
        raise JobLocked(job_id, "retry")
    if code == -2:
        raise JobNotInState(job_id, "retry", f"it is not {state}")


def remove_job(keys: QueueKeys, job_id: str) -> Op[None]:
    """Remove the job from every state with its logs; refuses while a worker holds its lock."""
    code = yield scripts.remove_job(keys, job_id)
    if code == 0:
        raise JobLocked(job_id, "remove")
    if code < 0:
        raise JobNotFound(job_id, "remove")


def check_log(row: object, keep_logs: object) -> None:
    if not isinstance(row, str):
        raise TypeError(f"log rows are strings, got {type(row).__name__}")
    if keep_logs is not None and (not isinstance(keep_logs, int) or keep_logs < 1):
        raise ValueError(f"keep_logs must be a positive integer, got {keep_logs!r}")


def progress_call(keys: QueueKeys, job_id: str, progress: Any) -> Call[int]:
    """Set progress (a number or any JSON value) and publish Bull's ``progress`` event."""
    progress_json = to_json(progress)
    payload = '{"jobId":' + to_json(job_id) + ',"progress":' + progress_json + "}"
    return scripts.update_progress(keys, job_id, progress_json, payload)


def _outside_token(keys: QueueKeys, job_id: str, command: str, force: bool, now_ms: int
                   ) -> Op[tuple[JobRecord, str]]:
    # Read afresh: the attempt count and options decide what moveToFailed does.
    record = yield from reload(keys, job_id, now_ms)
    state = yield from get_state(keys, job_id)
    if state is not JobState.ACTIVE:
        raise JobNotInState(job_id, command, f"it is {state}, not active")
    owner = yield reads.lock_owner(keys, job_id)
    if owner is None:
        return record, "0"  # no live lock: Bull's ignoreLock
    if not force:
        raise JobLocked(job_id, command, "a worker holds its live lock; force=True takes it over")
    # The script releases exactly this lock, or refuses (LockMismatch) if another worker took it meanwhile.
    return record, owner


def move_to_failed(keys: QueueKeys, job_id: str, reason: str, force: bool, discard: bool, now_ms: int
                   ) -> Op[tuple[JobRecord, JobState]]:
    """Fail an active job from outside its worker (Node's ``job.moveToFailed({message}, true)``); returns the
    job as read and where it went (waiting, delayed or failed)."""
    record, token = yield from _outside_token(keys, job_id, "moveToFailed", force, now_ms)
    backoff = record.opts.get("backoff")
    kind = backoff.get("type") if isinstance(backoff, Mapping) else None
    if not discard and isinstance(kind, str) and kind not in ("fixed", "exponential"):
        # Only the workers that registered the strategy can compute its delay: refuse before writing.
        raise UnknownBackoff(f"job {job_id!r} retries with the custom backoff strategy {kind!r}, which only "
                             "its workers know; discard=True fails it for good")
    decision = failed_attempt(record, Exception(reason), None, now_ms=now_ms, strategies={}, discarded=discard)
    yield scripts.move_to_failed(keys, job_id, token, decision.attempt, None)
    return record, {"retry": JobState.WAITING, "delay": JobState.DELAYED}.get(decision.attempt.next, JobState.FAILED)


def move_to_completed(keys: QueueKeys, job_id: str, returnvalue: Any, force: bool, now_ms: int) -> Op[JobRecord]:
    """Complete an active job from outside its worker (Node's ``job.moveToCompleted(value, true)``)."""
    record, token = yield from _outside_token(keys, job_id, "moveToCompleted", force, now_ms)
    value_json = to_json(returnvalue)
    yield scripts.move_to_completed(keys, job_id, token, now_ms, value_json,
                                    keep_jobs(record.opts.get("removeOnComplete")),
                                    completed_payload(job_id, value_json), False, 0, None)
    return record
