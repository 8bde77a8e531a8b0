"""bullpy's Lua scripts (``bullpy/lua/*.lua``), read once at import, and one ``Call`` builder per operation.

Each builder mirrors one Bull script interface (lib/scripts.js and lib/commands/*.lua): it names the keys
and arguments, and how to read the reply. Facades run a ``Call`` with EVALSHA (redis-py's ``Script``
reloads on NOSCRIPT) and never build Lua themselves. Arguments are plain strings and JSON, never msgpack,
so every script also runs on ``fakeredis[lua]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Generic, NamedTuple, TypeVar

from ..errors import error_for_code
from .codec import text
from .jobhash import HashFields
from .keys import QueueKeys

T = TypeVar("T")

_INCLUDE = re.compile(r'^-- @include "([a-z_]+)"$', re.MULTILINE)


def _load_sources() -> dict[str, str]:
    root = resources.files("bullpy") / "lua"
    includes = {
        f.name[: -len(".lua")]: f.read_text(encoding="utf-8")
        for f in (root / "includes").iterdir()
        if f.name.endswith(".lua")
    }
    sources: dict[str, str] = {}
    for f in root.iterdir():
        if f.name.endswith(".lua"):
            source = f.read_text(encoding="utf-8")
            # Shared functions are pasted in place of their include line: Redis has no module system.
            sources[f.name[: -len(".lua")]] = _INCLUDE.sub(lambda m: includes[m.group(1)], source)
    return sources


SOURCES: dict[str, str] = _load_sources()


@dataclass(frozen=True)
class Call(Generic[T]):
    """One script invocation: which script, its KEYS and ARGV, and how to read its reply.

    Arguments are text; only the raw-job scripts (import_jobs, remove_moved) also take bytes, so job
    hashes travel exactly as Redis holds them.
    """

    script: str
    keys: list[str]
    args: Sequence[str | bytes]
    parse: Callable[[Any], T]


def _int(reply: Any) -> int:
    return int(reply)


def raise_for_code(job_id: str, command: str) -> Callable[[Any], int]:
    """A parser that turns Bull's negative codes into bullpy's exceptions."""

    def parse(reply: Any) -> int:
        code = int(reply)
        if code < 0:
            raise error_for_code(code, job_id, command)
        return code

    return parse


# --- producing -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobWrite:
    """Everything addJob needs for one job, already encoded as Bull stores it."""

    custom_id: str           # "" for an auto id
    name: str
    data: str                # JSON
    opts: str                # JSON
    timestamp: int
    delay: int               # the hash's delay field (negative delays are stored as 0, as in Node)
    priority: str            # the number as JavaScript prints it, "0" for none
    lifo: bool = False
    debounce_id: str = ""
    debounce_ttl: str = ""
    repeat_key: str = ""
    repeat_next: str = ""
    repeat_must_exist: bool = False  # a worker's next iteration: skip it if the series was removed

    def argv(self) -> list[str]:
        delayed_ts = self.timestamp + self.delay if self.delay else 0
        return [
            self.custom_id, self.name, self.data, self.opts, str(self.timestamp), str(self.delay),
            str(delayed_ts), self.priority, "RPUSH" if self.lifo else "LPUSH", self.debounce_id,
            self.debounce_ttl, self.repeat_key, self.repeat_next, "1" if self.repeat_must_exist else "",
        ]


@dataclass(frozen=True)
class Added:
    """What addJob answered for one job."""

    id: str
    status: str  # "added", "duplicate", "debounced" or "ended" (a removed repeatable series)


def _parse_added(reply: Any) -> list[Added]:
    items = [text(x) for x in reply]
    return [Added(items[i], items[i + 1]) for i in range(0, len(items), 2)]


def add_jobs(keys: QueueKeys, token: str, jobs: Sequence[JobWrite]) -> Call[list[Added]]:
    args = [keys.base, token, str(len(jobs))]
    for job in jobs:
        args.extend(job.argv())
    return Call(
        "add_jobs",
        keys=[keys("wait"), keys("paused"), keys("meta-paused"), keys("id"), keys("delayed"),
              keys("priority"), keys("repeat")],
        args=args,
        parse=_parse_added,
    )


def add_rows(keys: QueueKeys, token: str, row_args: Sequence[str],
             parse: Callable[[Any], T]) -> Call[T]:
    """add_jobs in its row layout: a chunk of jobs that share name and options (``rows.row_args`` builds the
    arguments, ``rows.parse_rows_reply`` reads the reply)."""
    return Call(
        "add_jobs",
        keys=[keys("wait"), keys("paused"), keys("meta-paused"), keys("id"), keys("delayed"),
              keys("priority"), keys("repeat")],
        args=[keys.base, token, *row_args],
        parse=parse,
    )


# --- queue management ------------------------------------------------------------------------------------

def pause(keys: QueueKeys, paused: bool) -> Call[int]:
    src, dst, event = ("wait", "paused", "paused") if paused else ("paused", "wait", "resumed")
    return Call(
        "pause",
        keys=[keys(src), keys(dst), keys("meta-paused"), keys(event), keys("meta")],
        args=[event],
        parse=_int,
    )


#: How long one step of a long operation (clean, empty, obliterate, remove_jobs, retry_jobs) may work, in
#: microseconds, before it returns and lets Redis serve everyone else; the facade runs steps until the
#: operation is done.
#: A step that must then take marked jobs out of a long list (an LREM from the nearer end, ~25 ns an item)
#: stops its loop early by that much, down to a quarter of this.
STEP_BUDGET_US = 5000


def _budget(budget_us: int | None) -> str:
    return str(STEP_BUDGET_US if budget_us is None else budget_us)


def _str_list(reply: Any) -> list[str]:
    return [text(x) for x in reply]


def empty(keys: QueueKeys, batch_size: int, budget_us: int | None = None) -> Call[tuple[int, bool]]:
    """One step of ``empty``: (jobs removed, whether jobs are left)."""
    return Call(
        "empty",
        keys=[keys("wait"), keys("paused"), keys("delayed"), keys("priority"), keys("limiter"),
              keys("limiter:index")],
        args=[keys.base, str(batch_size), _budget(budget_us)],
        parse=lambda reply: (int(reply[0]), bool(int(reply[1]))),
    )


def obliterate(keys: QueueKeys, count: int, force: bool, budget_us: int | None = None) -> Call[int]:
    return Call(
        "obliterate",
        keys=[keys("meta-paused"), keys.base],
        args=[str(count), "force" if force else "", _budget(budget_us)],
        parse=_int,
    )


def clean(
    keys: QueueKeys, state: str, cutoff_ms: int, limit: int, dry_run: bool = False, *, remaining: int = 0,
    batch_size: int = 1000, budget_us: int | None = None, cursor: Sequence[str] = (),
) -> Call[tuple[list[str], list[str]]]:
    """One step of ``clean``: (ids taken by this step, the cursor of the next step; empty when done).

    ``remaining``: how many more jobs the step may take (0: no limit); ``limit`` sets Node's window size.
    """
    return Call(
        "clean_jobs_in_set",
        keys=[keys(state), keys("priority")],
        args=[keys.base, str(cutoff_ms), str(limit), state, "1" if dry_run else "", str(remaining),
              str(batch_size), _budget(budget_us), *cursor],
        parse=lambda reply: (_str_list(reply[0]), _str_list(reply[1])),
    )


def retry_jobs(keys: QueueKeys, state: str, count: int, budget_us: int | None = None) -> Call[int]:
    return Call(
        "retry_jobs",
        keys=[keys.base, keys(state), keys("wait"), keys("meta-paused"), keys("paused")],
        args=[str(count), keys.base, _budget(budget_us)],
        parse=_int,
    )


_GLOB = re.compile(r"([*?\[\]\\])")


def glob_escape(text: str) -> str:
    """Escape SCAN MATCH metacharacters so a queue's own name matches only itself."""
    return _GLOB.sub(r"\\\1", text)


@dataclass(frozen=True)
class RemoveStep:
    """What one step of remove_jobs answered."""

    cursor: str           # the next SCAN cursor ("0": the scan is over; "" when ids were given)
    removed: list[str]    # ids removed (on a dry run, that would be)
    deferred: list[str]   # matching jobs in no sorted set: in a list, or orphans; left for the list walk
    later: list[str]      # ids the step had no time for: pass them again


def remove_jobs(keys: QueueKeys, pattern: str, cursor: str, count: int = 1000, dry_run: bool = False, *,
                ids: Sequence[str] = (), orphans: bool = False,
                budget_us: int | None = None) -> Call[RemoveStep]:
    """One SCAN step of remove_jobs (or, with ``cursor=""``, the given ``ids``); ``orphans`` also removes
    matching jobs that are in no sorted set (once the lists have been walked for them)."""
    return Call(
        "remove_jobs",
        keys=[keys("active"), keys("wait"), keys("delayed"), keys("paused"), keys("completed"),
              keys("failed"), keys("priority")],
        args=[keys.base, glob_escape(keys.base) + pattern, cursor, str(count), "1" if dry_run else "",
              _budget(budget_us), "1" if orphans else "", *ids],
        parse=lambda reply: RemoveStep(text(reply[0]), *(_str_list(reply[i]) for i in (1, 2, 3))),
    )


def remove_listed_jobs(keys: QueueKeys, state: str, pattern: str, cursor: Sequence[str], *,
                       ids: Sequence[str] = (), batch_size: int = 1000,
                       budget_us: int | None = None) -> Call[tuple[list[str], list[str]]]:
    """One step of remove_jobs' walk over the ``state`` list: the jobs whose id matches ``pattern`` (or, with
    ``pattern=""``, is one of ``ids``). Replies (removed ids, the next cursor; empty when done)."""
    return Call(
        "remove_listed_jobs",
        keys=[keys(state), keys("delayed"), keys("completed"), keys("failed"), keys("priority")],
        args=[keys.base, pattern, str(batch_size), _budget(budget_us), str(len(cursor)), *cursor, *ids],
        parse=lambda reply: (_str_list(reply[0]), _str_list(reply[1])),
    )


def counts_per_priority(keys: QueueKeys, priorities: Sequence[str]) -> Call[list[int]]:
    return Call(
        "counts_per_priority",
        keys=[keys("wait"), keys("paused"), keys("meta-paused"), keys("priority")],
        args=list(priorities),
        parse=lambda reply: [int(x) for x in reply],
    )


def remove_repeatable(keys: QueueKeys, iteration_prefix: str, repeat_key: str) -> Call[bool]:
    return Call(
        "remove_repeatable",
        keys=[keys("repeat"), keys("delayed")],
        args=[iteration_prefix, repeat_key, keys.base],
        parse=lambda reply: int(reply) == 1,
    )


# --- one job ---------------------------------------------------------------------------------------------

def get_state(keys: QueueKeys, job_id: str) -> Call[str]:
    return Call(
        "get_state",
        keys=[keys("completed"), keys("failed"), keys("delayed"), keys("active"), keys("wait"),
              keys("paused"), keys.job(job_id)],
        args=[job_id],
        parse=text,
    )


def update_progress(keys: QueueKeys, job_id: str, progress_json: str, payload_json: str) -> Call[int]:
    return Call(
        "update_progress",
        keys=[keys.job(job_id), keys("progress")],
        args=[progress_json, payload_json],
        parse=raise_for_code(job_id, "updateProgress"),
    )


def update_data(keys: QueueKeys, job_id: str, data_json: str) -> Call[int]:
    return Call(
        "update_data",
        keys=[keys.job(job_id)],
        args=[data_json],
        parse=raise_for_code(job_id, "updateData"),
    )


def add_log(keys: QueueKeys, job_id: str, row: str, keep_logs: int | None) -> Call[int]:
    return Call(
        "add_log",
        keys=[keys.job(job_id), keys.logs(job_id)],
        args=[job_id, row, "" if keep_logs is None else str(keep_logs)],
        parse=raise_for_code(job_id, "addLog"),
    )


def reprocess_job(keys: QueueKeys, job_id: str, state: str, lifo: bool, token: str, now_ms: int) -> Call[int]:
    return Call(
        "reprocess_job",
        keys=[keys.job(job_id), keys.lock(job_id), keys(state), keys("wait"), keys("meta-paused"),
              keys("paused")],
        args=[job_id, "RPUSH" if lifo else "LPUSH", token, str(now_ms)],
        parse=_int,
    )


def get_job_fields(keys: QueueKeys, ids: Sequence[str], fields: Sequence[str]) -> Call[list[list[Any]]]:
    return Call(
        "get_job_fields",
        keys=[keys("id")],
        args=[keys.base, str(len(fields)), *fields, *ids],
        parse=lambda reply: list(reply),
    )


def promote(keys: QueueKeys, job_id: str, token: str) -> Call[int]:
    return Call(
        "promote",
        keys=[keys("delayed"), keys("wait"), keys("paused"), keys("meta-paused"), keys("priority")],
        args=[keys.base, job_id, token],
        parse=raise_for_code(job_id, "promote"),
    )


def remove_job(keys: QueueKeys, job_id: str) -> Call[int]:
    return Call(
        "remove_job",
        keys=[keys("active"), keys("wait"), keys("delayed"), keys("paused"), keys("completed"),
              keys("failed"), keys("priority")],
        args=[keys.base, job_id],
        parse=_int,
    )


# --- working (a worker's side of the protocol) -----------------------------------------------------------

@dataclass(frozen=True)
class Taken:
    """A job a worker now holds: its id and raw hash fields."""

    id: str
    fields: HashFields  # as the client gives them (bytes, or str when it decodes): parse_job_hash decodes once
    #: Set when the id's key held no hash (``none``, or the type another program wrote there): the script
    #: moved the id to ``failed`` without touching the key, and there is nothing to run.
    no_hash: str | None = None


def _parse_taken(reply: Any) -> Taken | None:
    if not reply or isinstance(reply, int):
        return None
    flat = reply[0]
    if isinstance(flat, (str, bytes)):
        return Taken(text(reply[1]), {}, no_hash=text(flat))
    return Taken(text(reply[1]), dict(zip(flat[::2], flat[1::2])))


@dataclass(frozen=True)
class Limiter:
    """Bull's rate limiter: at most ``max`` jobs taken per ``duration`` ms, shared by the whole fleet."""

    max: int
    duration: int
    group_key: bool = False


def _offset(clock_offset: int | None) -> str:
    # The stamp's source: None stamps the now_ms given; an int reads Redis's clock inside the script and adds it.
    return "" if clock_offset is None else str(clock_offset)


def move_to_active(
    keys: QueueKeys, token: str, lock_duration: int, now_ms: int, job_id: str = "", limiter: Limiter | None = None,
    clock_offset: int | None = None,
) -> Call[Taken | None]:
    args = [keys.base, token, str(lock_duration), str(now_ms), job_id]
    if limiter is not None:
        args += [str(limiter.max), str(limiter.duration), "1" if limiter.group_key else ""]
    else:
        args += ["", "", ""]
    args.append(_offset(clock_offset))
    return Call(
        "move_to_active",
        keys=[keys("wait"), keys("active"), keys("priority"), keys.channel("active", token), keys("stalled"),
              keys("limiter"), keys("delayed"), keys("drained")],
        args=args,
        parse=_parse_taken,
    )


@dataclass(frozen=True)
class KeepJobs:
    """removeOnComplete / removeOnFail as the finishing script takes it: count None keeps all, 0 deletes."""

    count: int | None = None
    age: int | None = None


def _finished_reply(job_id: str, command: str) -> Callable[[Any], Taken | None]:
    def parse(reply: Any) -> Taken | None:
        if isinstance(reply, int):
            if reply < 0:
                raise error_for_code(reply, job_id, command)
            return None
        return _parse_taken(reply)

    return parse


def move_to_completed(
    keys: QueueKeys, job_id: str, token: str, finished_on: int, returnvalue_json: str, keep: KeepJobs,
    payload: str, fetch_next: bool, lock_duration: int, metrics_points: int | None, clock_offset: int | None = None,
) -> Call[Taken | None]:
    return Call(
        "move_to_finished",
        keys=[keys("active"), keys("completed"), keys.job(job_id), keys("wait"), keys("priority"),
              keys.channel("active", token), keys("stalled"), keys("metrics:completed")],
        args=[job_id, str(finished_on), "returnvalue", returnvalue_json, token,
              "" if keep.count is None else str(keep.count), "" if keep.age is None else str(keep.age),
              payload, "1" if fetch_next else "0", keys.base, str(lock_duration),
              "" if metrics_points is None else str(metrics_points), _offset(clock_offset)],
        parse=_finished_reply(job_id, "finished"),
    )


@dataclass(frozen=True)
class FailedAttempt:
    """One failed attempt and what follows it: "retry" now, "delay" until a score, or "fail" for good."""

    stacktrace_json: str
    reason: str
    attempts_made: int
    next: str
    lifo: bool = False
    delayed_score: int = 0
    finished_on: int = 0
    keep: KeepJobs = KeepJobs()
    payload: str = ""


def move_to_failed(
    keys: QueueKeys, job_id: str, token: str, attempt: FailedAttempt, metrics_points: int | None,
    clock_offset: int | None = None,
) -> Call[int]:
    if attempt.next == "retry":
        arg7 = "RPUSH" if attempt.lifo else "LPUSH"
    elif attempt.next == "delay":
        arg7 = str(attempt.delayed_score)
    else:
        arg7 = str(attempt.finished_on)
    keep = attempt.keep
    return Call(
        "move_to_failed",
        keys=[keys("active"), keys("failed"), keys.job(job_id), keys("wait"), keys("priority"), keys("stalled"),
              keys("delayed"), keys("meta-paused"), keys("paused"), keys("metrics:failed")],
        args=[job_id, token, attempt.stacktrace_json, attempt.reason, str(attempt.attempts_made), attempt.next,
              arg7, "" if keep.count is None else str(keep.count), "" if keep.age is None else str(keep.age),
              attempt.payload, keys.base, "" if metrics_points is None else str(metrics_points),
              _offset(clock_offset)],
        parse=raise_for_code(job_id, {"retry": "retry", "delay": "delayed"}.get(attempt.next, "failed")),
    )


def extend_locks(keys: QueueKeys, token: str, lock_duration: int, job_ids: Sequence[str]) -> Call[list[bool]]:
    return Call(
        "extend_locks",
        keys=[keys("stalled")],
        args=[keys.base, token, str(lock_duration), *job_ids],
        parse=lambda reply: [bool(int(x)) for x in reply],
    )


def move_stalled_jobs_to_wait(
    keys: QueueKeys, max_stalled_count: int, now_ms: int, stalled_interval: int
) -> Call[tuple[list[str], list[str]]]:
    return Call(
        "move_stalled_jobs_to_wait",
        keys=[keys("stalled"), keys("wait"), keys("active"), keys("failed"), keys("stalled-check"),
              keys("meta-paused"), keys("paused")],
        args=[str(max_stalled_count), keys.base, str(now_ms), str(stalled_interval)],
        parse=lambda reply: ([text(x) for x in reply[0]], [text(x) for x in reply[1]]),
    )


def update_delay_set(keys: QueueKeys, now_ms: int, token: str) -> Call[float | None]:
    return Call(
        "update_delay_set",
        keys=[keys("delayed"), keys("active"), keys("wait"), keys("priority"), keys("paused"), keys("meta-paused")],
        args=[keys.base, str(now_ms), token],
        parse=lambda reply: None if reply is None else float(text(reply)),
    )


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
