"""Job options: Python keywords -> validated values -> the ``opts`` JSON object Node Bull writes.

Mirrors lib/queue.js ``add``/``addBulk`` (``{...defaultJobOptions, ...opts}``), lib/job.js
``setDefaultOpts`` (attempts, delay, timestamp appended when missing, ``parseInt(attempts)``),
lib/backoffs.js ``normalize`` (a number becomes ``{type: 'fixed', delay: n}``) and lib/repeatable.js
``nextRepeatableJob`` (the iteration's opts layout). Key order matters: ``opts`` is compared byte for
byte with what Node writes, so the user's keyword order is kept exactly as a JS object literal keeps it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypedDict, cast

from . import repeat as _repeat
from .codec import js_number_str, to_json
from .keys import check_job_id, check_text
from .scripts import JobWrite

DEFAULT_JOB_NAME = "__default__"
BUILTIN_BACKOFFS = ("fixed", "exponential")
# Bull documents priorities from 1 (highest) to MAX_INT; 0 means "no priority". Larger numbers lose
# precision as JavaScript numbers and negative ones break Bull's priority placement.
MAX_PRIORITY = 2**53 - 1
# Bounds on what JavaScript and Bull can hold. Every integer option stays a safe JS integer. A delay
# (and a backoff delay) longer than a century is a bug, not a schedule: Bull would keep the job in
# delayed forever. Timestamps end with year 9999 (JavaScript's Date reaches 275760, but Bull's delayed
# score, timestamp * 4096, loses precision long before). Node's setTimeout fires at once for a timeout
# above 2**31 - 1 ms, so that is the largest; attempts share the bound (a count, not a clock).
MAX_SAFE_INTEGER = 2**53 - 1
MAX_DELAY_MS = 3_155_760_000_000  # 100 years of 365.25 days
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_INT32 = 2**31 - 1


class JobOptions(TypedDict, total=False):
    """The keyword options of ``Queue.add``; each maps to one of Bull's camelCase job options."""

    priority: int
    delay: int | _dt.timedelta
    attempts: int
    backoff: int | Mapping[str, Any]
    lifo: bool
    timeout: int
    job_id: str | int
    remove_on_complete: bool | int | Mapping[str, int]
    remove_on_fail: bool | int | Mapping[str, int]
    stack_trace_limit: int
    prevent_parsing_data: bool
    repeat: Mapping[str, Any]
    debounce: Mapping[str, Any]
    timestamp: int


CAMEL: dict[str, str] = {
    "priority": "priority",
    "delay": "delay",
    "attempts": "attempts",
    "backoff": "backoff",
    "lifo": "lifo",
    "timeout": "timeout",
    "job_id": "jobId",
    "remove_on_complete": "removeOnComplete",
    "remove_on_fail": "removeOnFail",
    "stack_trace_limit": "stackTraceLimit",
    "prevent_parsing_data": "preventParsingData",
    "repeat": "repeat",
    "debounce": "debounce",
    "timestamp": "timestamp",
}
_SNAKE = {camel: snake for snake, camel in CAMEL.items()}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_option(name: str, value: object, minimum: int, maximum: int = MAX_SAFE_INTEGER) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = cast(int, value)
    if value < minimum or value > maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _bool_option(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def _ms(name: str, value: object, maximum: int = MAX_DELAY_MS) -> int:
    if isinstance(value, _dt.timedelta):
        return _int_option(name, round(value.total_seconds() * 1000), 0, maximum)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of ms, got {value!r}")
    return _int_option(name, value, 0, maximum)


def _keep_jobs(name: str, value: object) -> bool | int | dict[str, int]:
    """removeOnComplete / removeOnFail: True, False, a count to keep, or {age (seconds), count}."""
    if isinstance(value, bool):
        return value
    if _is_int(value):
        return _int_option(name, value, 0)
    if isinstance(value, Mapping):
        unknown = set(value) - {"age", "count"}
        if unknown:
            raise ValueError(f"{name} accepts the keys 'age' (seconds) and 'count', not {sorted(unknown)}")
        if not value:
            raise ValueError(f"{name} needs 'age' (seconds) or 'count'")
        return {k: _int_option(f"{name}[{k!r}]", v, 0) for k, v in value.items()}
    raise TypeError(f"{name} must be a bool, a count or a dict with 'age'/'count', got {value!r}")


def _backoff(value: object, known: Collection[str]) -> dict[str, Any]:
    if _is_int(value) or isinstance(value, float):
        # backoffs.normalize: any finite number n becomes a fixed backoff of n ms.
        return {"type": "fixed", "delay": _ms("backoff", value)}
    if not isinstance(value, Mapping):
        raise TypeError(f"backoff must be a delay in ms or a dict with 'type', got {value!r}")
    unknown = set(value) - {"type", "delay", "options"}
    if unknown:
        raise ValueError(f"backoff accepts the keys 'type', 'delay' and 'options', not {sorted(unknown)}")
    kind = value.get("type")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"backoff needs a 'type' ({', '.join(BUILTIN_BACKOFFS)} or a custom strategy)")
    if kind not in BUILTIN_BACKOFFS and kind not in known:
        raise ValueError(
            f"unknown backoff type {kind!r}: use 'fixed', 'exponential' or register the custom strategy "
            f"with Queue(..., backoff_strategies=[{kind!r}])"
        )
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "delay":
            out[key] = _ms("backoff['delay']", item)
        elif key == "options":
            to_json(item)  # must be JSON; raises naming the problem
            out[key] = item
        else:
            out[key] = item
    if kind in BUILTIN_BACKOFFS and "delay" not in out:
        raise ValueError(f"backoff type {kind!r} needs a 'delay' in ms")
    return out


def _debounce(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"debounce must be a dict with 'id' and optional 'ttl', got {value!r}")
    unknown = set(value) - {"id", "ttl"}
    if unknown:
        raise ValueError(f"debounce accepts the keys 'id' and 'ttl', not {sorted(unknown)}")
    if not isinstance(value.get("id"), str) or not value["id"]:
        raise ValueError("debounce needs a non-empty string 'id'")
    out: dict[str, Any] = {"id": value["id"]}
    if "ttl" in value:
        out["ttl"] = _int_option("debounce['ttl']", value["ttl"], 1)
    return out


def _job_id(value: object) -> str | int:
    if _is_int(value):
        return cast(int, value)
    if not isinstance(value, str):
        raise TypeError(f"job_id must be a string or an integer, got {type(value).__name__} {value!r}")
    check_job_id(value)
    if value.startswith("repeat:"):
        raise ValueError(f"job_id {value!r} is reserved: ids starting with 'repeat:' are repeatable iterations")
    return value


def validate_options(options: Mapping[str, Any], known_backoffs: Collection[str] = ()) -> dict[str, Any]:
    """Check every keyword option and return Bull's camelCase members, in the caller's order."""
    camel: dict[str, Any] = {}
    for name, value in options.items():
        if name not in CAMEL:
            hint = f" (did you mean {_SNAKE[name]!r}?)" if name in _SNAKE else ""
            raise TypeError(f"unknown job option {name!r}{hint}; known options: {', '.join(CAMEL)}")
        if value is None:
            continue  # an omitted option, as JSON.stringify drops undefined members
        if name == "priority":
            value = _int_option("priority", value, 0, MAX_PRIORITY)
        elif name == "delay":
            value = _ms(name, value)
        elif name == "timestamp":
            value = _ms(name, value, MAX_TIMESTAMP_MS)
        elif name == "attempts":
            value = _int_option("attempts", value, 1, MAX_INT32)
        elif name == "timeout":
            value = _int_option("timeout", value, 1, MAX_INT32)
        elif name == "stack_trace_limit":
            value = _int_option("stack_trace_limit", value, 0)
        elif name in ("lifo", "prevent_parsing_data"):
            value = _bool_option(name, value)
        elif name in ("remove_on_complete", "remove_on_fail"):
            value = _keep_jobs(name, value)
        elif name == "backoff":
            value = _backoff(value, known_backoffs)
        elif name == "job_id":
            value = _job_id(value)
        elif name == "debounce":
            value = _debounce(value)
        elif name == "repeat":
            value = _repeat.RepeatOptions.from_user(value)
        camel[CAMEL[name]] = value
    return camel


def set_default_opts(opts: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """lib/job.js setDefaultOpts: present keys keep their place, missing ones are appended in this order."""
    opts.setdefault("attempts", 1)
    opts.setdefault("delay", 0)
    opts.setdefault("timestamp", now_ms)
    return opts


def encode_data(data: Any) -> str:
    """Job data as Node stores it: ``JSON.stringify(data || {})``, so JavaScript-falsy data becomes {}."""
    if data is None or data is False or data == "" or (
        isinstance(data, (int, float)) and not isinstance(data, bool) and data == 0
    ):
        return "{}"
    if isinstance(data, float) and not math.isfinite(data):
        raise ValueError(f"data: {data!r} is not allowed (JavaScript would write null)")
    return to_json(data, where="data")


def check_name(name: str | None) -> str:
    if name is None:
        return DEFAULT_JOB_NAME
    if not isinstance(name, str) or not name:
        raise ValueError(f"job name must be a non-empty string, got {name!r}")
    return check_text("job name", name)


@dataclass(frozen=True)
class PreparedJob:
    """One job ready for the add script, plus the opts object it stores."""

    write: JobWrite
    opts: dict[str, Any]


def prepare_job(
    name: str | None,
    data: Any,
    options: Mapping[str, Any],
    *,
    defaults: Mapping[str, Any],
    now_ms: int,
    known_backoffs: Collection[str] = (),
    local_tz: str = "UTC",
    cache: dict[str, Any] | None = None,
) -> PreparedJob | None:
    """Validate one ``add`` call and encode it exactly as Node's ``Queue#add`` would.

    Returns None for a repeatable job whose series has already ended (Node adds nothing then).
    ``local_tz`` is the zone Node workers run in: cron series without ``tz`` follow it. ``cache`` lets a
    bulk add validate and encode each distinct set of options once (but for the job id).
    """
    name = check_name(name)
    data_json = encode_data(data)
    merged = {**defaults, **options}
    if cache is not None and "repeat" not in merged:
        fast = _bulk_row(name, data_json, merged, now_ms, known_backoffs, cache)
        if fast is not None:
            return fast
    opts = validate_options(merged, known_backoffs)
    if "repeat" in opts:
        return _prepare_repeat(name, data_json, opts, now_ms, local_tz)
    custom_id = opts.get("jobId")
    set_default_opts(opts, now_ms)
    return PreparedJob(_write(name, data_json, opts, custom_id), _plain(opts))


# Stands in for the job id while a bulk's shared options are validated and encoded once.
_ID_MARK: Final = "\x00bullpy-job-id\x00"


def _bulk_row(name: str, data_json: str, merged: dict[str, Any], now_ms: int, known_backoffs: Collection[str],
              cache: dict[str, Any]) -> PreparedJob | None:
    """A bulk row whose options equal other rows' but for the job id (a campaign): the shared options are
    validated, defaulted and encoded once per bulk, with a marker where the id goes (so the id keeps its
    place in the key order Node writes); each row then only checks its id and splices it into the JSON.
    Equal, byte for byte, to the full path (tests/core/test_options.py). None: take the full path.
    """
    job_id_given = merged.get("job_id")
    shared = {**merged, "job_id": _ID_MARK} if job_id_given is not None else merged
    key = "template:" + repr(shared)
    entry: tuple[Any, ...] | bool | None = cache.get(key)
    if entry is None:
        opts = validate_options(shared, known_backoffs)
        set_default_opts(opts, now_ms)
        encoded = to_json(_plain(opts))
        mark = to_json(_ID_MARK)
        if job_id_given is not None and encoded.count(mark) != 1:
            cache[key] = entry = False
        else:
            head, _, tail = encoded.partition(mark) if job_id_given is not None else (encoded, "", "")
            debounce = opts.get("debounce") or {}
            entry = cache[key] = (
                opts, head, tail, int(opts["timestamp"]), max(int(opts["delay"]), 0),
                js_number_str(opts.get("priority") or 0), bool(opts.get("lifo")), str(debounce.get("id", "")),
                str(debounce["ttl"]) if "ttl" in debounce else "",
            )
    if not isinstance(entry, tuple):
        return None
    template, head, tail, timestamp, delay, priority, lifo, debounce_id, debounce_ttl = entry
    opts = dict(template)
    if job_id_given is None:
        custom_id, opts_json = "", head
    else:
        job_id = opts["jobId"] = _job_id(job_id_given)
        custom_id, opts_json = str(job_id), head + to_json(job_id) + tail
    write = JobWrite(custom_id=custom_id, name=name, data=data_json, opts=opts_json, timestamp=timestamp,
                     delay=delay, priority=priority, lifo=lifo, debounce_id=debounce_id, debounce_ttl=debounce_ttl)
    return PreparedJob(write, opts)


def _plain(opts: dict[str, Any]) -> dict[str, Any]:
    """opts with value objects (RepeatOptions) replaced by their JSON members."""
    return {k: (v.to_opts_members() if isinstance(v, _repeat.RepeatOptions) else v) for k, v in opts.items()}


def _write(
    name: str,
    data_json: str,
    opts: dict[str, Any],
    custom_id: str | int | None,
    repeat_key: str = "",
    repeat_next: str = "",
) -> JobWrite:
    delay = int(opts["delay"])
    debounce = opts.get("debounce") or {}
    return JobWrite(
        custom_id="" if custom_id is None else str(custom_id),
        name=name,
        data=data_json,
        opts=to_json(_plain(opts)),
        timestamp=int(opts["timestamp"]),
        # Job constructor: `this.delay = opts.delay < 0 ? 0 : opts.delay`.
        delay=max(delay, 0),
        priority=js_number_str(opts.get("priority") or 0),
        lifo=bool(opts.get("lifo")),
        debounce_id=str(debounce.get("id", "")),
        debounce_ttl=str(debounce["ttl"]) if "ttl" in debounce else "",
        repeat_key=repeat_key,
        repeat_next=repeat_next,
    )


def _prepare_repeat(
    name: str, data_json: str, opts: dict[str, Any], now_ms: int, local_tz: str
) -> PreparedJob | None:
    """lib/repeatable.js nextRepeatableJob for the first add (``skipCheckExists``)."""
    repeat: _repeat.RepeatOptions = opts["repeat"]
    if "jobId" in opts:
        # Node copies the caller's jobId into repeat.jobId (appended after the caller's members).
        repeat = repeat.with_job_id(opts["jobId"])
    return _iteration(name, data_json, repeat, opts, now_ms, 0, local_tz, must_exist=False)


def prepare_next_iteration(
    name: str, data: Any, opts: Mapping[str, Any], now_ms: int, local_tz: str = "UTC"
) -> PreparedJob | None:
    """The next iteration a worker schedules when it takes a repeatable job (nextRepeatableJob).

    As in Node, the repeat key is recomputed from the job's name and ``opts.repeat`` (``opts.repeat.key``
    is not trusted), ``prevMillis`` comes from the job's opts, and nothing is added when the definition
    has been removed meanwhile (checked atomically with the add).
    """
    repeat = _repeat.RepeatOptions.from_opts(opts["repeat"])
    prev = opts.get("prevMillis") or 0
    if not prev and opts.get("jobId"):
        repeat = repeat.with_job_id(opts["jobId"])
    return _iteration(name, to_json(data), repeat, dict(opts), now_ms, int(prev), local_tz, must_exist=True)


def _iteration(
    name: str,
    data_json: str,
    repeat: _repeat.RepeatOptions,
    opts: dict[str, Any],
    now_ms: int,
    prev_millis: int,
    local_tz: str,
    *,
    must_exist: bool,
) -> PreparedJob | None:
    next_ms = _repeat.next_millis(repeat, now_ms, prev_millis, local_tz=local_tz)
    if next_ms is None:
        return None
    key = _repeat.repeat_key(name, repeat)
    iteration = _repeat.iteration_id(name, repeat, key, next_ms)
    delay = next_ms - now_ms
    # lodash defaultsDeep({repeat: {count, key}, jobId, delay, timestamp, prevMillis}, opts): the
    # iteration's members first, the caller's repeat members after count/key, then the other options.
    merged: dict[str, Any] = {
        "repeat": repeat.to_opts(_repeat.next_count(repeat), key),
        "jobId": iteration,
        "delay": delay if delay > 0 else 0,
        "timestamp": now_ms,
        "prevMillis": next_ms,
    }
    for k, v in opts.items():
        merged.setdefault(k, v)
    set_default_opts(merged, now_ms)
    write = _write(name, data_json, merged, iteration, repeat_key=key, repeat_next=str(next_ms))
    return PreparedJob(dataclasses.replace(write, repeat_must_exist=must_exist), merged)
