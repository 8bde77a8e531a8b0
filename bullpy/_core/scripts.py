"""bullpy's Lua scripts (``bullpy/lua/*.lua``), read once at import, and one ``Call`` builder per operation.

Each builder mirrors one Bull script interface (lib/scripts.js and lib/commands/*.lua): it names the keys
and arguments, and how to read the reply. Facades run a ``Call`` with EVALSHA (redis-py's ``Script``
reloads on NOSCRIPT) and never build Lua themselves. Arguments are plain strings and JSON, never msgpack,
so every script also runs on ``fakeredis[lua]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Generic, TypeVar

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
