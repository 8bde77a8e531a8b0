"""The job hash ``P:Q:<id>`` as Node's ``Job.fromJSON`` reads it (lib/job.js ``fromJSON``, ``setDefaultOpts``,
``toJSON``), and as bullpy's readers show it when another program damaged it.

:func:`parse_job_hash` is Node's reading, quirks included, and raises where Node throws.
:func:`read_job_hash` is what every bullpy reader uses: the same reading, JSON nested deeper than Python's
recursion limit read as Node reads it, and a hash Node could not read (or a key that is not a hash) turned
into a record whose ``damaged`` says why, so one damaged job never hides the healthy ones.

Pure: no redis, no I/O, no clock (callers pass ``now_ms``).
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from .codec import (
    DEFAULT_JOB_NAME,
    _js_to_number,
    _js_to_string,
    _js_truthy,
    from_json,
    js_number,
    js_parse_int,
    text,
)

__all__ = ["HashFields", "JobRecord", "DEEP_NOTE", "WrongType", "damaged_record", "mark_damaged", "parse_job_hash", "parse_job_hash_deep", "read_job_hash"]


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job as Node's ``Job.fromJSON`` builds it from the hash ``P:Q:<id>``.

    ``None`` in an int field stands for JavaScript's ``NaN`` / ``undefined`` (field absent or not a number);
    both print as ``null`` in ``toJSON``. ``opts`` holds Node's in-memory options (defaults re-applied).
    ``raw`` is the decoded hash itself, kept for callers that need a field Node ignores; it takes no part
    in equality or repr. Not hashable (dict fields).
    """

    id: str
    name: str
    data: Any  # parsed JSON, or the raw string when opts.preventParsingData
    opts: dict[str, Any]
    progress: Any
    delay: int | None  # the hash field (0 once the job left delayed); opts["delay"] keeps the original
    timestamp: int | None
    attempts_made: int | None  # failed attempts; None only for a non-numeric field (JS NaN)
    failed_reason: str | None  # raw text; None when absent (toJSON then omits the key)
    stacktrace: list[Any]  # one err.stack string per failed attempt, oldest first
    returnvalue: Any
    finished_on: int | None
    processed_on: int | None
    retried_on: int | None
    debounce_id: Any  # str in practice: the deid field, else opts.debounce.id
    priority: int | float  # hash field, read by scripts only (Node's JS ignores it); 0 when absent
    stalled_counter: int  # hash field, not read by Node's JS; 0 when absent
    raw: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    #: Why this hash is not what Bull writes (None for a healthy job): fields Node cannot read (the other
    #: fields are then read as far as they can be), bytes that are not UTF-8 (read as Node reads them, with
    #: U+FFFD), a key that is not a hash, a job listed in two states.
    damaged: str | None = None

    def to_node_json(self) -> dict[str, Any]:
        """Node's ``job.toJSON()``: same keys, order and falsy -> null rules (``to_json`` it to compare)."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "data": self.data if _js_truthy(self.data) else {},  # this.data || {}
            "opts": dict(self.opts),
            "progress": self.progress,
            "delay": self.delay,
            "timestamp": self.timestamp,
            "attemptsMade": self.attempts_made,
        }
        if self.failed_reason is not None:  # undefined members vanish from JSON.stringify
            out["failedReason"] = self.failed_reason
        out["stacktrace"] = list(self.stacktrace)
        # `x || null`: a job that returned 0, false or "" shows returnvalue null; 0 ms shows null too.
        out["returnvalue"] = self.returnvalue if _js_truthy(self.returnvalue) else None
        out["debounceId"] = self.debounce_id if _js_truthy(self.debounce_id) else None
        out["finishedOn"] = self.finished_on or None
        out["processedOn"] = self.processed_on or None
        return out


# An HGETALL reply: bytes from a plain redis-py client, str with decode_responses=True. (Mapping keys are
# invariant, hence the union of two mappings rather than one with a union key type.)
HashFields = Mapping[bytes, bytes | str] | Mapping[str, bytes | str]


def parse_job_hash(job_id: str, fields: HashFields, now_ms: int) -> JobRecord:
    """``Job.fromJSON(queue, HGETALL reply, jobId)`` for one job hash.

    ``now_ms`` is the ``Date.now()`` Node would use for a missing ``opts.timestamp``. An empty mapping (no
    such key) parses like Node's ``fromJSON({})`` would; ``getJob`` returns null before that, and so should the
    caller.

    Raises:
        ValueError: where Node's ``fromJSON`` throws: ``opts`` not JSON or JSON ``null``, ``data`` not JSON
            (without ``preventParsingData``).
    """
    h, not_utf8 = _decoded(fields)

    # json.opts || '{}': an empty field counts as missing.
    try:
        parsed_opts = from_json(h.get("opts") or "{}")
    except ValueError as e:
        raise ValueError(f"job {job_id!r}: field 'opts' is not valid JSON ({e})") from None
    if parsed_opts is None:
        # `opts.preventParsingData` on null throws "Cannot read properties of null" in Node.
        raise ValueError(f"job {job_id!r}: field 'opts' is JSON null, which Node cannot read")

    prevent_parsing = isinstance(parsed_opts, dict) and _js_truthy(parsed_opts.get("preventParsingData"))
    if prevent_parsing:
        data: Any = h.get("data")  # raw string (or undefined) handed over untouched
    else:
        try:
            data = from_json(h.get("data") or "{}")
        except ValueError as e:
            raise ValueError(f"job {job_id!r}: field 'data' is not valid JSON ({e})") from None

    opts = _set_default_opts(parsed_opts, now_ms)

    # new Job() starts _progress at 0; a progress field that fails to parse is logged and left at 0.
    progress: Any = 0
    if h.get("progress"):
        try:
            progress = from_json(h["progress"])
        except ValueError:
            pass

    # this.debounceId from the constructor survives unless a deid field overrides it.
    debounce = opts.get("debounce")
    debounce_id: Any = debounce.get("id") if _js_truthy(debounce) and isinstance(debounce, dict) else None
    if h.get("deid"):
        debounce_id = h["deid"]

    # `if (typeof json.returnvalue === 'string')`: an unparsable value becomes undefined; absent stays null.
    returnvalue: Any = None
    if "returnvalue" in h:
        try:
            returnvalue = from_json(h["returnvalue"])
        except ValueError:
            returnvalue = None

    stacktrace: list[Any] = []
    try:
        traces = from_json(h["stacktrace"]) if "stacktrace" in h else None
    except ValueError:
        traces = None
    if isinstance(traces, list):  # anything but an array -> []
        stacktrace = traces

    priority = js_number(h["priority"]) if "priority" in h else 0
    if priority is None:
        priority = 0

    return JobRecord(
        id=h.get("id") or job_id,  # json.id || jobId
        name=h.get("name") or DEFAULT_JOB_NAME,
        data=data,
        opts=opts,
        progress=progress,
        delay=js_parse_int(h.get("delay")),  # parseInt(undefined) -> NaN, shown as null
        timestamp=js_parse_int(h.get("timestamp")),
        attempts_made=js_parse_int(h.get("attemptsMade") or "0"),  # parseInt(json.attemptsMade || 0)
        failed_reason=h.get("failedReason"),
        stacktrace=stacktrace,
        returnvalue=returnvalue,
        finished_on=js_parse_int(h["finishedOn"]) if h.get("finishedOn") else None,
        processed_on=js_parse_int(h["processedOn"]) if h.get("processedOn") else None,
        retried_on=js_parse_int(h["retriedOn"]) if h.get("retriedOn") else None,
        debounce_id=debounce_id,
        priority=priority,
        stalled_counter=js_parse_int(h.get("stalledCounter")) or 0,
        raw=h,
        damaged=_not_utf8_reason(not_utf8),
    )


def _decoded(fields: HashFields) -> tuple[dict[str, str], list[str]]:
    """The hash as text, and the names of the fields whose bytes are not UTF-8 (read with U+FFFD, as ioredis
    reads them)."""
    try:  # the usual case, one comprehension: str from a decoding client, or bytes that are all UTF-8
        return {k if type(k) is str else k.decode(): v if type(v) is str else v.decode()  # type: ignore[union-attr]
                for k, v in fields.items()}, []
    except (UnicodeDecodeError, AttributeError):
        pass
    h: dict[str, str] = {}
    bad: list[str] = []
    for k, v in fields.items():
        name = text(k)
        if isinstance(v, bytes):
            try:
                h[name] = v.decode("utf-8")
            except UnicodeDecodeError:
                h[name] = v.decode("utf-8", "replace")
                bad.append(name)
        else:
            h[name] = str(v)
    return h, bad


def _not_utf8_reason(names: list[str]) -> str | None:
    if not names:
        return None
    return (f"field{'s' if len(names) > 1 else ''} {', '.join(repr(n) for n in names)} "
            "not valid UTF-8 (read as Node reads it, invalid bytes as U+FFFD)")


def _set_default_opts(parsed: Any, now_ms: int) -> dict[str, Any]:
    # lib/job.js setDefaultOpts, as `new Job()` runs it on the parsed opts. Object.assign({}, x) copies own
    # enumerable properties: a string gives its UTF-16 units under "0", "1", ..., an array its elements,
    # numbers and booleans nothing.
    opts: dict[str, Any]
    if isinstance(parsed, dict):
        opts = dict(parsed)
        # Object.assign *sets* "__proto__" (changing the prototype) instead of copying it; the prototype's
        # effect on later lookups is not mirrored.
        opts.pop("__proto__", None)
    elif isinstance(parsed, list):
        opts = {str(i): e for i, e in enumerate(parsed)}
    elif isinstance(parsed, str):
        units = parsed.encode("utf-16-le", "surrogatepass")
        opts = {
            str(i): units[2 * i : 2 * i + 2].decode("utf-16-le", "surrogatepass")
            for i in range(len(units) // 2)
        }
    else:
        opts = {}

    # Assignment order matters: a key already present keeps its place, missing ones are appended in the
    # order attempts, delay, timestamp (backoff comes last but is only ever kept in place, see below).
    opts["attempts"] = opts["attempts"] if "attempts" in opts else 1
    opts["delay"] = _js_to_number(opts["delay"]) if "delay" in opts else 0
    if "timestamp" not in opts:
        opts["timestamp"] = now_ms
    opts["attempts"] = js_parse_int(_js_to_string(opts["attempts"]))

    # backoffs.normalize: a finite number n -> {type: fixed, delay: n}; other truthy values kept; falsy ->
    # undefined, which JSON.stringify drops (so does the dict here). A missing key gets `undefined` too.
    if "backoff" in opts:
        backoff = opts["backoff"]
        if isinstance(backoff, (int, float)) and not isinstance(backoff, bool) and math.isfinite(backoff):
            opts["backoff"] = {"type": "fixed", "delay": backoff}
        elif not _js_truthy(backoff):
            del opts["backoff"]
    return opts


# ---------------------------------------------------------------------------------------------------------
# Damaged hashes
# ---------------------------------------------------------------------------------------------------------

#: How much deeper than Python's usual allowance a job's JSON may nest when bullpy reads it (Node's JSON.parse
#: reads thousands of levels; Python's json stops at about 1,000): some 25,000 levels, which the C stack of a
#: thread holds. Deeper data is reported as damaged (a worker fails the job at once: docs/divergences.md W2).
DEEP_JSON_ALLOWANCE: Final = 50_000
_deep_lock = threading.Lock()
#: What ``damaged`` says of a job whose JSON was read by the deep path: Node reads it (and a worker runs it),
#: but Python's own printing and json module stop at about 1,000 levels, so readers show its text instead.
DEEP_NOTE: Final = "its JSON nests deeper than Python prints (about 1,000 levels): read as Node reads it"


class WrongType:
    """A reply that is a Redis WRONGTYPE error where a job's hash was read: the key holds another type."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def parse_job_hash_deep(job_id: str, fields: HashFields, now_ms: int) -> JobRecord:
    """:func:`parse_job_hash`, with JSON nested deeper than Python's recursion limit read again with a higher
    limit, one such job at a time (the limit is process-wide: it is restored afterwards); such a record's
    ``damaged`` holds :data:`DEEP_NOTE`.

    Raises:
        ValueError: where Node throws, and for JSON deeper than :data:`DEEP_JSON_ALLOWANCE` allows.
    """
    try:
        return parse_job_hash(job_id, fields, now_ms)
    except RecursionError:
        pass
    with _deep_lock:
        before = sys.getrecursionlimit()
        sys.setrecursionlimit(before + DEEP_JSON_ALLOWANCE)
        try:
            record = parse_job_hash(job_id, fields, now_ms)
            return mark_damaged(record, DEEP_NOTE)
        except RecursionError:
            raise ValueError(
                f"job {job_id!r}: its JSON nests deeper than bullpy reads (about {DEEP_JSON_ALLOWANCE // 2:,} levels)"
            ) from None
        finally:
            sys.setrecursionlimit(before)


def read_job_hash(job_id: str, fields: HashFields | WrongType, now_ms: int) -> JobRecord:
    """The job as bullpy's readers show it: Node's reading where Node can read it, else a record whose
    ``damaged`` says why (never raises for what another program wrote)."""
    if isinstance(fields, WrongType):
        return damaged_record(job_id, {}, "its key is not a hash: another program wrote another kind of value "
                              "there (WRONGTYPE)", now_ms)
    try:
        return parse_job_hash_deep(job_id, fields, now_ms)
    except (ValueError, TypeError) as exc:
        return damaged_record(job_id, fields, str(exc), now_ms)


def damaged_record(job_id: str, fields: HashFields, reason: str, now_ms: int) -> JobRecord:
    """A record for a hash Node cannot read: the fields that can be read as Node would, ``data`` as the
    stored text (not parsed), the opts Node's defaults give an empty object, and ``damaged`` = ``reason``."""
    h, not_utf8 = _decoded(fields)
    readable = {k: v for k, v in h.items() if k not in ("data", "opts")}
    try:
        record = parse_job_hash(job_id, readable, now_ms)
    except (ValueError, TypeError, RecursionError):  # the remaining fields are read leniently by Node's rules
        record = parse_job_hash(job_id, {}, now_ms)
    note = _not_utf8_reason(not_utf8)
    damaged = replace(record, data=h.get("data"), raw=h, damaged=reason)
    return mark_damaged(damaged, note) if note else damaged


def mark_damaged(record: JobRecord, reason: str) -> JobRecord:
    """The record with ``reason`` added to what it says is damaged."""
    return replace(record, damaged=f"{record.damaged}; {reason}" if record.damaged else reason)
