"""Bull's plain reads as data (lib/queue.js getJobCounts, getRanges, isPaused, getJob, getJobLogs, getMetrics,
getRepeatableJobs): the Redis commands to send in one round trip and how to read their replies.

A ``Read`` is to pipelined commands what a ``scripts.Call`` is to a script: the sync and the asyncio facades
both run it (a MULTI/EXEC snapshot as Node reads, or a plain pipeline) and hand the replies to its parser,
so each read is written once. Replies may be text or bytes, and a hash may come as a dict (redis-py's reply
callbacks) or as a flat list: the parsers take both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .codec import text
from .jobhash import JobRecord, WrongType, mark_damaged, read_job_hash
from .keys import STATE_KEYS, QueueKeys
from .repeat import RepeatableJob, parse_repeatable

T = TypeVar("T")

#: getJobCounts' default types, in Node's order.
DEFAULT_COUNT_TYPES = ("waiting", "active", "completed", "failed", "delayed", "paused")
#: The types Bull records metrics of (workers started with ``metrics``).
METRICS_TYPES = ("completed", "failed")


@dataclass(frozen=True)
class Read(Generic[T]):
    """Plain commands sent in one round trip, and how to read their replies (a list, one per command).

    ``snapshot``: run them in MULTI/EXEC (a consistent snapshot, as Node reads counts and ranges); over
    ``maxmemory`` Redis refuses MULTI, and the facades then send the same commands as a plain pipeline.
    Without it: a plain pipeline, or the command alone when there is one.

    ``wrong_type_in_place``: a WRONGTYPE refusal of one command (a job's key that is not a hash) reaches the
    parser as a ``WrongType`` reply instead of failing the whole read; any other error still raises.
    """

    commands: Sequence[tuple[Any, ...]]
    parse: Callable[[list[Any]], T]
    snapshot: bool = True
    wrong_type_in_place: bool = False


@dataclass(frozen=True)
class JobLogs:
    """A page of a job's log rows and the total number of rows (Node's ``{logs, count}``)."""

    logs: list[str]
    count: int


@dataclass(frozen=True)
class Metrics:
    """Bull's per-minute metrics of one type (Node's ``getMetrics``): the hash's ``count``, ``prevTS`` and
    ``prevCount`` (0 where absent), the per-minute totals ``data`` (newest first) and how many points exist."""

    count: int
    prev_ts: int
    prev_count: int
    data: list[int]
    points: int


def as_hash(reply: Any) -> Mapping[Any, Any]:
    """An HGETALL reply as a mapping, whether redis-py made it a dict or left it a flat list."""
    if isinstance(reply, Mapping):
        return reply
    items = list(reply or ())
    return dict(zip(items[0::2], items[1::2]))


def _pairs(reply: Any) -> list[tuple[Any, Any]]:
    """A WITHSCORES reply as (member, score) pairs: flat (RESP2), nested (RESP3) or already paired."""
    items = list(reply or ())
    if items and isinstance(items[0], (list, tuple)):
        return [(pair[0], pair[1]) for pair in items]
    return list(zip(items[0::2], items[1::2]))


def parse_types(types: Iterable[str], unique: bool = True) -> list[str]:
    """Node's parseTypeArg: names or comma-separated names, validated (unknown names raise, where Node
    silently drops them); de-duplicated for counts, which are keyed by name."""
    out: list[str] = []
    for item in types:
        if not isinstance(item, str):
            raise TypeError(f"job states are strings, got {item!r}")
        for state in item.split(","):
            state = state.strip()
            if state not in STATE_KEYS:
                raise ValueError(f"unknown job state {state!r}; use one of {', '.join(STATE_KEYS)}")
            if not unique or state not in out:
                out.append(state)
    return out


def _size(keys: QueueKeys, state: str) -> tuple[str, str]:
    return ("LLEN" if STATE_KEYS[state][1] == "list" else "ZCARD", keys.state(state))


def job_counts(keys: QueueKeys, types: Iterable[str], *, snapshot: bool = True) -> Read[dict[str, int]]:
    """Jobs per state, keyed by the names asked for (default: Node's six, in Node's order)."""
    names = parse_types(types) or list(DEFAULT_COUNT_TYPES)
    return Read([_size(keys, state) for state in names],
                lambda replies: {state: int(n) for state, n in zip(names, replies)}, snapshot)


def ranges(keys: QueueKeys, types: str | Sequence[str], start: int, end: int, asc: bool, *,
           snapshot: bool = True) -> Read[list[str]]:
    """Job ids per state, concatenated in the order of ``types`` (the range applies to each)."""
    listed = state_ranges(keys, types, start, end, asc, snapshot=snapshot)
    return Read(listed.commands, lambda replies: [job_id for _, job_id in listed.parse(replies)], snapshot)


def state_ranges(keys: QueueKeys, types: str | Sequence[str], start: int, end: int, asc: bool, *,
                 snapshot: bool = True) -> Read[list[tuple[str, str]]]:
    """``ranges`` as (state, job id) pairs: where each id was listed (the state as its key names it: ``wait``
    for ``waiting``)."""
    # Node's getRanges keeps a state named twice (its ids then appear twice); so does bullpy.
    names = parse_types([types] if isinstance(types, str) else types, unique=False)
    commands: list[tuple[Any, ...]] = []
    for state in names:
        key = keys.state(state)
        if STATE_KEYS[state][1] == "list":
            # Lists: asc reads from the head (the right end, next to run) by mirrored indexes.
            commands.append(("LRANGE", key, -(end + 1), -(start + 1)) if asc else ("LRANGE", key, start, end))
        else:
            commands.append(("ZRANGE", key, start, end) if asc else ("ZREVRANGE", key, start, end))

    def parse(replies: list[Any]) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        for state, reply in zip(names, replies):
            items = [text(x) for x in reply]
            if asc and STATE_KEYS[state][1] == "list":
                items.reverse()
            pairs.extend((STATE_KEYS[state][0], job_id) for job_id in items)
        return pairs

    return Read(commands, parse, snapshot)


def is_paused(keys: QueueKeys) -> Read[bool]:
    """True when the queue is globally paused (``meta-paused`` or BullMQ's ``meta.paused``)."""
    return Read([("EXISTS", keys("meta-paused")), ("HEXISTS", keys("meta"), "paused")],
                lambda replies: bool(int(replies[0])) or bool(int(replies[1])))


def job(keys: QueueKeys, job_id: str, now_ms: int) -> Read[JobRecord | None]:
    """One job's hash (None when it does not exist; a damaged one is a record whose ``damaged`` says why)."""
    def parse(replies: list[Any]) -> JobRecord | None:
        return _job_record(job_id, replies[0], now_ms)

    return Read([("HGETALL", keys.job(job_id))], parse, snapshot=False, wrong_type_in_place=True)


def jobs(keys: QueueKeys, ids: Sequence[str], now_ms: int, *, states: Sequence[str] | None = None,
         aligned: bool = False) -> Read[list[Any]]:
    """Many jobs' hashes in one round trip; ids whose hash is gone are skipped (None in their place when
    ``aligned``), damaged ones are records whose ``damaged`` says why. ``states`` (one per id, as listed)
    lets a job listed in two states be reported."""
    wanted = [str(i) for i in ids]
    twice = _listed_twice(wanted, states) if states is not None else {}

    def parse(replies: list[Any]) -> list[Any]:
        out: list[JobRecord | None] = []
        for job_id, reply in zip(wanted, replies):
            record = _job_record(job_id, reply, now_ms)
            if record is not None and job_id in twice:
                record = mark_damaged(record, twice[job_id])
            if record is not None or aligned:
                out.append(record)
        return out

    return Read([("HGETALL", keys.job(i)) for i in wanted], parse, snapshot=False, wrong_type_in_place=True)


def listed_without_hash(keys: QueueKeys, where: Sequence[tuple[str, str]]) -> Read[list[tuple[str, str]]]:
    """Of (state, job id) pairs (the state as its key names it), those still listed there while no key of
    the job exists, in one snapshot."""
    commands: list[tuple[Any, ...]] = []
    for state, job_id in where:
        listed = ("LPOS", keys(state), job_id) if STATE_KEYS[state][1] == "list" else ("ZSCORE", keys(state), job_id)
        commands += [listed, ("EXISTS", keys.job(job_id))]

    def parse(replies: list[Any]) -> list[tuple[str, str]]:
        return [pair for pair, listed, exists in zip(where, replies[0::2], replies[1::2])
                if listed is not None and not int(exists)]

    return Read(commands, parse)


def _job_record(job_id: str, reply: Any, now_ms: int) -> JobRecord | None:
    if isinstance(reply, WrongType):
        return read_job_hash(job_id, reply, now_ms)
    fields = as_hash(reply)
    return read_job_hash(job_id, fields, now_ms) if fields else None


def _listed_twice(ids: Sequence[str], states: Sequence[str]) -> dict[str, str]:
    """Ids listed in more than one state, each with the reason a reader shows."""
    seen: dict[str, list[str]] = {}
    for job_id, state in zip(ids, states):
        seen.setdefault(job_id, []).append(state)
    return {job_id: f"listed in more than one state ({', '.join(dict.fromkeys(found))}): another program "
                    "moved it without removing it; `bullpy doctor` reports it"
            for job_id, found in seen.items() if len(set(found)) > 1}


def job_logs(keys: QueueKeys, job_id: str, start: int, end: int, asc: bool) -> Read[JobLogs]:
    """A job's log rows (oldest first by default) and their total count."""
    key = keys.logs(job_id)
    page = ("LRANGE", key, start, end) if asc else ("LRANGE", key, -(end + 1), -(start + 1))

    def parse(replies: list[Any]) -> JobLogs:
        logs = [text(r) for r in replies[0]]
        if not asc:
            logs.reverse()
        return JobLogs(logs, int(replies[1]))

    return Read([page, ("LLEN", key)], parse)


def metrics(keys: QueueKeys, types: str | Sequence[str], start: int, end: int) -> Read[dict[str, Metrics]]:
    """``getMetrics`` of several types in one round trip, keyed by type."""
    names = [types] if isinstance(types, str) else list(types)
    for name in names:
        if name not in METRICS_TYPES:
            raise ValueError(f"unknown metrics type {name!r}; use one of {', '.join(METRICS_TYPES)}")
    commands: list[tuple[Any, ...]] = []
    for name in names:
        key = keys(f"metrics:{name}")
        commands += [("HMGET", key, "count", "prevTS", "prevCount"), ("LRANGE", f"{key}:data", start, end),
                     ("LLEN", f"{key}:data")]

    def parse(replies: list[Any]) -> dict[str, Metrics]:
        out: dict[str, Metrics] = {}
        for i, name in enumerate(names):
            meta, data, points = replies[3 * i : 3 * i + 3]
            count, prev_ts, prev_count = (int(value or 0) for value in meta)
            out[name] = Metrics(count, prev_ts, prev_count, [int(x) for x in data], int(points))
        return out

    return Read(commands, parse)


def repeatable_jobs(keys: QueueKeys, start: int, end: int, asc: bool) -> Read[list[RepeatableJob]]:
    """The repeatable job definitions, latest next run first unless ``asc`` (as Node orders them)."""
    end = end or -1  # Node's `end || -1`: an end of 0 means "to the last", as in getRepeatableJobs
    command = "ZRANGE" if asc else "ZREVRANGE"
    return Read([(command, keys("repeat"), start, end, "WITHSCORES")],
                lambda replies: [parse_repeatable(text(k), float(s)) for k, s in _pairs(replies[0])],
                snapshot=False)


def repeatable_count(keys: QueueKeys) -> Read[int]:
    return Read([("ZCARD", keys("repeat"))], lambda replies: int(replies[0]), snapshot=False)


def lock_owner(keys: QueueKeys, job_id: str) -> Read[str | None]:
    """The token of the worker holding a job's lock, or None when the job is not locked."""
    return Read([("GET", keys.lock(job_id))], lambda replies: None if replies[0] is None else text(replies[0]),
                snapshot=False)


def active_count(keys: QueueKeys) -> Read[int]:
    return Read([("LLEN", keys("active"))], lambda replies: int(replies[0]), snapshot=False)


def client_list() -> Read[list[dict[str, str]]]:
    """``CLIENT LIST`` of one server, fields as text."""
    return Read([("CLIENT LIST",)],
                lambda replies: [{text(k): text(v) for k, v in entry.items()} for entry in replies[0]],
                snapshot=False)


def workers_in(clients: Iterable[Mapping[str, str]], keys: QueueKeys) -> list[dict[str, str]]:
    """The clients Node's ``getWorkers`` lists (named ``prefix:base64(name)``), each named by the queue."""
    # Exact match: Node's prefix match would also count workers of queues whose base64 name starts the
    # same (queue "abc" listing workers of "abcd").
    wanted = keys.worker_name
    return [{**entry, "name": keys.name} for entry in clients if entry.get("name") == wanted]
