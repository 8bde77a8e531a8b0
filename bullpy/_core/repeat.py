"""Repeatable jobs: repeat keys, iteration ids and next run times, exactly as Bull 4.16.5 computes them.

Mirrors ``lib/repeatable.js`` (``nextRepeatableJob``, ``getRepeatKey``, ``getRepeatJobId``,
``getNextMillis``, ``_keyToData``, ``getRepeatableJobs``, ``removeRepeatable``/``ByKey``) and the
part of cron-parser 4.9.0 (``lib/expression.js``, ``lib/date.js`` over luxon 3) that Bull calls:
``parseExpression(cron, _.defaults({currentDate}, repeatOpts)).next()``.

Why not croniter: croniter (the project's cron library) disagrees with cron-parser on exactly the
cases a scheduler meets in production, so handing it the expression would move a Node series by an
hour or a day.  Measured against the installed cron-parser:

* DST gaps: ``30 2 * * *`` in America/New_York on 2026-03-08 runs at 03:30 EDT in Node, 03:00 in
  croniter; ``0 2 * * *`` runs at 03:00 in both.
* DST overlaps: ``30 1 * * *`` on 2026-11-01 runs once in Node (the repeated hour is skipped when
  the hour field is restricted), twice in croniter; ``*/30 * * * *`` runs in both copies in Node.
* day-of-month/day-of-week: cron-parser decides "wildcard" by *counting* values (dom: at least as
  many values as the current month has days, February counting 29; dow: exactly 8 values, the way
  ``*`` expands to 0-7), so ``0 0 1 * 0-6`` (7 values: restricted) runs every day, ``0 0 1-30 * 1``
  means "Mondays" in April but "1st-30th or Monday" in May, and ``2-7/2`` includes Sunday.
* six fields are seconds-first (croniter: seconds last); one to four fields are right-aligned onto
  ``0 * * * * *``; ``@yearly/@monthly/@weekly/@daily/@hourly`` only (no ``@midnight``,
  ``@annually``); ``L`` in dom and ``<d>L`` in dow, ``#`` only as a lone ``d#n``, ``?`` as ``*``.
* the search gives up after 10,000 steps (Bull then silently ends the series).

So this module parses expressions with cron-parser's grammar and walks time with cron-parser's step
rules and luxon's wall-clock arithmetic (over :mod:`zoneinfo`), which makes every result identical
to Node's; ``tests/core/test_repeat.py`` checks that differentially against the installed package.
What we refuse, with a ValueError: non-ASCII or control characters in an expression, and
time-zone names :mod:`zoneinfo` does not know (luxon resolves names through ``Intl``).

Pure: no I/O and no clock; callers pass ``now_ms``.  Without ``tz`` Node computes cron times in the
*Node process's* local zone; callers pass that zone as ``local_tz`` (default UTC).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Final

from .cron import PREDEFINED, cron_next, cron_series, parse_cron, resolve_tz, validate_cron

__all__ = [
    "DEFAULT_JOB_NAME",
    "RepeatOptions",
    "RepeatableJob",
    "cron_next",
    "cron_series",
    "iteration_id",
    "iteration_prefix",
    "js_iso_string",
    "key_to_repeat",
    "next_count",
    "next_millis",
    "parse_js_date",
    "parse_repeatable",
    "repeat_key",
    "resolve_tz",
    "validate_cron",
]

DEFAULT_JOB_NAME: Final = "__default__"  # Job.DEFAULT_JOB_NAME

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_MS = timedelta(milliseconds=1)

# --------------------------------------------------------------------------------------------------
# JS helpers: Date parsing/printing, parseInt, UTF-8 for md5
# --------------------------------------------------------------------------------------------------

# ISO forms on which JS `new Date(str)` and luxon `DateTime.fromISO(str, {zone: tz})` agree: a date,
# a time and an explicit offset.  Without an offset JS reads a date-time in the *machine's* zone and
# a bare date as UTC, while cron-parser (luxon) reads both in `tz`, so Node would key and stop the
# series on one instant and bound the cron search on another; we refuse those instead of guessing.
_ISO_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:\d{2})"
)


def parse_js_date(value: object, what: str = "date") -> int:
    """Epoch ms of ``value`` (int ms, tz-aware datetime or ISO string with offset), as JS ``new Date``."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be epoch milliseconds, an aware datetime or an ISO string, not bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        # JS Date truncates a fractional millisecond count toward zero (TimeClip).
        if not math.isfinite(value):
            raise ValueError(f"{what} {value!r} is not a finite number")
        return int(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{what} {value!r} is a naive datetime; pass an aware one (e.g. tzinfo=timezone.utc)")
        return (value - _EPOCH) // _MS
    if isinstance(value, str):
        m = _ISO_RE.fullmatch(value)
        if m is None:
            raise ValueError(
                f"{what} {value!r} is not an ISO date-time with an offset such as "
                "'2027-01-01T00:00:00Z' (Node reads other forms in a machine-dependent zone)"
            )
        y, mo, d, h, mi, s, frac, off = m.groups()
        tzone = _UTC if off == "Z" else timezone(
            (1 if off[0] == "+" else -1) * timedelta(hours=int(off[1:3]), minutes=int(off[4:6]))
        )
        try:
            dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), tzinfo=tzone)
        except ValueError as exc:
            raise ValueError(f"{what} {value!r} is not a valid date: {exc}") from None
        return (dt - _EPOCH) // _MS + (int(frac.ljust(3, "0")) if frac else 0)
    raise TypeError(
        f"{what} must be epoch milliseconds, an aware datetime or an ISO string, not {type(value).__name__}"
    )


def js_iso_string(ms: int) -> str:
    """``new Date(ms).toISOString()`` (what JSON.stringify writes for a Date)."""
    dt = _EPOCH + ms * _MS
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt:%H:%M:%S}.{ms % 1000:03d}Z"


def _js_parse_int(text: str) -> int | None:
    """JS ``parseInt(text)`` (radix 10); None stands for NaN."""
    m = re.match(r"[\s\ufeff]*([+-]?)(\d+)", text)
    if m is None:
        return None
    n = int(m.group(2))
    if n > 2**53:
        n = int(float(n))  # a JS number: large values lose their low digits
    return -n if m.group(1) == "-" else n


def _js_utf8(text: str) -> bytes:
    # crypto's update(str) encodes UTF-8 with lone surrogates replaced by U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def _md5(text: str) -> str:
    return hashlib.md5(_js_utf8(text)).hexdigest()


# --------------------------------------------------------------------------------------------------
# Repeat options
# --------------------------------------------------------------------------------------------------

_USER_KEYS: Final = {
    "cron": "cron",
    "tz": "tz",
    "every": "every",
    "limit": "limit",
    "start_date": "startDate",
    "startDate": "startDate",
    "end_date": "endDate",
    "endDate": "endDate",
    "job_id": "jobId",
    "jobId": "jobId",
}
_CANONICAL_ORDER: Final = ("cron", "tz", "every", "limit", "startDate", "endDate", "jobId", "utc")


@dataclass(frozen=True)
class RepeatOptions:
    """A job's ``opts.repeat``: what the caller asked for plus Bull's ``count`` and ``key``.

    ``start_date``/``end_date`` are epoch ms.  ``*_date_wire`` holds the string Node stores instead of
    the number when the caller gave a Date (its ISO string) or a string (verbatim).  ``order`` is the
    camelCase member order Node writes (the caller's insertion order); ``extra`` keeps members bullpy
    does not model, read from a Node-written job, so they are written back unchanged.
    """

    cron: str | None = None
    tz: str | None = None
    every: int | None = None
    limit: int | None = None
    start_date: int | None = None
    end_date: int | None = None
    job_id: str | int | None = None
    count: int = 0
    key: str | None = None
    utc: bool = False
    start_date_wire: str | None = None
    end_date_wire: str | None = None
    order: tuple[str, ...] = ()
    extra: tuple[tuple[str, Any], ...] = field(default=(), hash=False)

    @classmethod
    def from_user(cls, spec: Mapping[str, Any]) -> RepeatOptions:
        """Validate a caller's ``repeat={...}`` (snake_case, or Bull's camelCase date/id keys)."""
        if not isinstance(spec, Mapping):
            raise TypeError(f"repeat must be a mapping, not {type(spec).__name__}")
        values: dict[str, Any] = {}
        order: list[str] = []
        for k, v in spec.items():
            if not isinstance(k, str) or k not in _USER_KEYS:
                allowed = "cron, tz, every, limit, start_date, end_date, job_id"
                raise ValueError(f"unknown repeat option {k!r} (allowed: {allowed})")
            camel = _USER_KEYS[k]
            if camel in values:
                raise ValueError(f"repeat option {camel!r} given twice ({k!r} and its other spelling)")
            if v is None:
                continue  # None means "not given", as undefined members vanish from Node's JSON
            values[camel] = v
            order.append(camel)

        cron, every = values.get("cron"), values.get("every")
        if cron is not None and every is not None:
            raise ValueError("repeat takes either 'cron' or 'every', not both")
        if cron is None and every is None:
            raise ValueError("repeat needs 'cron' (an expression) or 'every' (milliseconds)")
        if cron is not None:
            if not isinstance(cron, str):
                raise TypeError(f"repeat 'cron' must be a string, not {type(cron).__name__}")
            if not cron.strip():
                raise ValueError("repeat 'cron' is empty")
            validate_cron(cron)
            if len(cron.split()) < 5 and cron not in PREDEFINED:
                # cron-parser right-aligns 1-4 fields onto '0 * * * * *' ('0 9 * *' = hour 0,
                # dom 9, month *, dow *); almost surely a typo, so bullpy refuses it up front.
                raise ValueError(f"invalid cron expression {cron!r}: expected 5 or 6 fields")
            for v in parse_cron(cron).dow:
                if isinstance(v, str) and not v[0].isdigit():
                    # Parses, but cron-parser throws on it at run time and Bull drops the series.
                    raise ValueError(f"invalid cron expression {cron!r}: 'L' in day-of-week needs a weekday, e.g. '5L'")
        if every is not None and (isinstance(every, bool) or not isinstance(every, int)):
            raise TypeError(f"repeat 'every' must be an int of milliseconds, not {type(every).__name__}")
        if every is not None and every <= 0:
            raise ValueError(f"repeat 'every' must be > 0 milliseconds, got {every}")
        tz = values.get("tz")
        if tz is not None:
            if not isinstance(tz, str):
                raise TypeError(f"repeat 'tz' must be a string, not {type(tz).__name__}")
            resolve_tz(tz)
        limit = values.get("limit")
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise TypeError(f"repeat 'limit' must be an int, not {type(limit).__name__}")
            if limit < 1:
                raise ValueError(f"repeat 'limit' must be >= 1, got {limit}")
        job_id = values.get("jobId")
        if job_id is not None:
            if isinstance(job_id, bool) or not isinstance(job_id, (str, int)):
                raise TypeError(f"repeat 'job_id' must be a string, not {type(job_id).__name__}")
            if job_id == "":
                raise ValueError("repeat 'job_id' is empty")

        dates: dict[str, tuple[int | None, str | None]] = {}
        for camel, snake in (("startDate", "start_date"), ("endDate", "end_date")):
            raw = values.get(camel)
            if raw is None:
                dates[camel] = (None, None)
                continue
            if isinstance(raw, float):
                raise TypeError(f"repeat '{snake}' must be int milliseconds, not float")
            ms = parse_js_date(raw, f"repeat '{snake}'")
            # How Node would store it: a number stays a number, a Date becomes its ISO string,
            # a string is kept verbatim.
            wire = js_iso_string(ms) if isinstance(raw, datetime) else raw if isinstance(raw, str) else None
            dates[camel] = (ms, wire)
        start, end = dates["startDate"][0], dates["endDate"][0]
        if start is not None and end is not None and end < start:
            raise ValueError("repeat 'end_date' is before 'start_date'")
        return cls(
            cron=cron,
            tz=tz,
            every=every,
            limit=limit,
            start_date=start,
            end_date=end,
            job_id=job_id,
            start_date_wire=dates["startDate"][1],
            end_date_wire=dates["endDate"][1],
            order=tuple(order),
        )

    @classmethod
    def from_opts(cls, repeat: Mapping[str, Any]) -> RepeatOptions:
        """Read ``opts.repeat`` as stored by Node (camelCase); lenient like Node, strict only on types."""
        if not isinstance(repeat, Mapping):
            raise TypeError(f"opts.repeat must be an object, not {type(repeat).__name__}")
        kw: dict[str, Any] = {}
        extra: list[tuple[str, Any]] = []
        order: list[str] = []
        for k, v in repeat.items():
            if k == "count":
                # `repeat.count ? count + 1 : 1`: anything falsy restarts at 1
                kw["count"] = int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v else 0
                continue
            if k == "key":
                kw["key"] = v if isinstance(v, str) else None
                continue
            order.append(k)
            if k in ("startDate", "endDate"):
                snake = "start_date" if k == "startDate" else "end_date"
                if v is None:
                    # `now > new Date(null)` holds, so a null endDate ends the series; 0 behaves
                    # the same everywhere (falsy for the key and for cron-parser).
                    kw[snake] = 0 if k == "endDate" else None
                else:
                    kw[snake] = parse_js_date(v, f"opts.repeat.{k}")
                    if isinstance(v, str):
                        kw[f"{snake}_wire"] = v
            elif k == "limit":
                # `count > null` is `count > 0`: a null limit ends the series like 0.
                kw["limit"] = 0 if v is None else _as_int(v, "opts.repeat.limit")
            elif k == "every":
                kw["every"] = None if v is None else _as_int(v, "opts.repeat.every")
            elif k in ("cron", "tz"):
                if v is not None and not isinstance(v, str):
                    raise TypeError(f"opts.repeat.{k} must be a string")
                kw[k] = v
            elif k == "jobId":
                if v is not None and (isinstance(v, bool) or not isinstance(v, (str, int))):
                    raise TypeError("opts.repeat.jobId must be a string or number")
                kw["job_id"] = v
            elif k == "utc":
                kw["utc"] = bool(v)
                extra.append((k, v))
            else:
                extra.append((k, v))
        if kw.get("cron") and kw.get("every"):
            raise ValueError("opts.repeat has both cron and every (Node throws on it)")
        return cls(order=tuple(order), extra=tuple(extra), **kw)

    def with_job_id(self, job_id: str | int | None) -> RepeatOptions:
        """The first add's ``repeat.jobId = opts.jobId`` (appended after the caller's members)."""
        if job_id is None or job_id == "":
            return self
        order = self._order()
        return replace(self, job_id=job_id, order=order if "jobId" in order else (*order, "jobId"))

    def _order(self) -> tuple[str, ...]:
        if self.order:
            return self.order
        present = {
            "cron": self.cron, "tz": self.tz, "every": self.every, "limit": self.limit,
            "startDate": self.start_date, "endDate": self.end_date, "jobId": self.job_id,
            "utc": self.utc or None,
        }
        return tuple(k for k in _CANONICAL_ORDER if present[k] is not None)

    def to_opts_members(self) -> dict[str, Any]:
        """The caller's members, camelCase, in the order Node writes them after ``count`` and ``key``."""
        extra = dict(self.extra)
        out: dict[str, Any] = {}
        for k in self._order():
            if k in extra:
                out[k] = extra[k]
            elif k == "cron":
                out[k] = self.cron
            elif k == "tz":
                out[k] = self.tz
            elif k == "every":
                out[k] = self.every
            elif k == "limit":
                out[k] = self.limit
            elif k == "startDate":
                out[k] = self.start_date_wire if self.start_date_wire is not None else self.start_date
            elif k == "endDate":
                out[k] = self.end_date_wire if self.end_date_wire is not None else self.end_date
            elif k == "jobId":
                out[k] = self.job_id
        return out

    def to_opts(self, count: int, key: str) -> dict[str, Any]:
        """The whole ``opts.repeat`` of an iteration: ``{count, key, ...members}``."""
        return {"count": count, "key": key, **self.to_opts_members()}


def _as_int(v: object, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{what} must be a number")
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError(f"{what} {v!r} is not an integer (bullpy does not model fractional values)")
        return int(v)
    return v


# --------------------------------------------------------------------------------------------------
# Keys and ids
# --------------------------------------------------------------------------------------------------


def _jid_part(repeat: RepeatOptions) -> str:
    return f"{repeat.job_id}:" if repeat.job_id else ":"  # falsy jobId ('' or 0) -> ':'


def repeat_key(name: str, repeat: RepeatOptions) -> str:
    """Bull's repeat key ``name:jobId:endDate:tz:cron`` (``name:jobId:endDate:every`` for every)."""
    # `repeat.endDate ? new Date(endDate).getTime() + ':' : ':'`: a string is truthy even for epoch 0.
    end = f"{repeat.end_date}:" if repeat.end_date is not None and (repeat.end_date or repeat.end_date_wire) else ":"
    if repeat.cron:
        suffix = (f"{repeat.tz}:" if repeat.tz else ":") + repeat.cron
    else:
        suffix = "undefined" if repeat.every is None else str(repeat.every)
    return f"{name}:{_jid_part(repeat)}{end}{suffix}"


def iteration_prefix(name: str, repeat: RepeatOptions, key: str | None = None) -> str:
    """``repeat:<md5>:``, the id prefix removeRepeatable deletes by (``key`` defaults to repeat_key)."""
    if key is None:
        key = repeat_key(name, repeat)
    return f"repeat:{_md5(name + _jid_part(repeat) + _md5(key))}:"


def iteration_id(name: str, repeat: RepeatOptions, key: str, next_millis: int) -> str:
    """The custom job id of the iteration due at ``next_millis``."""
    return f"{iteration_prefix(name, repeat, key)}{next_millis}"


def next_count(repeat: RepeatOptions) -> int:
    """``repeat.count`` of the next iteration."""
    return repeat.count + 1 if repeat.count else 1


def next_millis(
    repeat: RepeatOptions, now_ms: int, prev_millis: int = 0, *, local_tz: str | tzinfo = "UTC"
) -> int | None:
    """When the next iteration is due, or None when Bull would end the series.

    ``prev_millis`` is the current job's ``opts.prevMillis`` (0 on the first add).  ``local_tz`` is the
    Node process's zone, used for cron without ``tz``.
    """
    if repeat.limit is not None and next_count(repeat) > repeat.limit:
        return None
    # Compared with the wall clock, not with the next run: an `every` series schedules one last
    # iteration past endDate (cron stops at endDate inside cron-parser instead).
    if repeat.end_date is not None and now_ms > repeat.end_date:
        return None
    base = max(now_ms, prev_millis or 0)
    if repeat.cron and repeat.every:
        raise ValueError("Both .cron and .every options are defined for this repeatable job")
    if repeat.every:
        # Aligned to multiples of `every` since the epoch; startDate plays no part (4.16.5).
        return (base // repeat.every) * repeat.every + repeat.every
    if not repeat.cron:
        raise ValueError("repeat has neither cron nor every")
    # A future startDate becomes currentDate; cron-parser then looks strictly after it, so a
    # startDate that is itself a match is skipped.
    current = repeat.start_date if repeat.start_date and repeat.start_date > base else base
    found = cron_next(
        repeat.cron, current, tz=repeat.tz, end_date=repeat.end_date, utc=repeat.utc, local_tz=local_tz
    )
    return found or None  # `if (nextMillis)`: 0 would also stop


# --------------------------------------------------------------------------------------------------
# getRepeatableJobs / removeRepeatableByKey
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepeatableJob:
    """One element of Node's ``getRepeatableJobs()``."""

    key: str
    name: str
    id: str | None
    end_date: int | None
    tz: str | None
    cron: str | None
    every: int | None
    next: int | None

    def to_node_json(self) -> dict[str, Any]:
        """Node's object, camelCase, in Node's key order (NaN appears as None, as JSON null)."""
        return {
            "key": self.key,
            "name": self.name,
            "id": self.id,
            "endDate": self.end_date,
            "tz": self.tz,
            "cron": self.cron,
            "every": self.every,
            "next": self.next,
        }


def _key_to_data(key: str) -> tuple[str, str | None, int | None, str | None, str | None]:
    # Node splits the whole key on ':' and takes positions 0-4, so a name or job id containing ':'
    # shifts every later part (e.g. name 'a:b' -> name 'a', id 'b'); we reproduce that verbatim.
    parts = key.split(":")

    def at(i: int) -> str:
        return parts[i] if i < len(parts) else ""

    return at(0), at(1) or None, _js_parse_int(at(2)) or None, at(3) or None, at(4) or None


def _score_text(score: float | int | str) -> str:
    if isinstance(score, str):
        return score
    if isinstance(score, float) and not score.is_integer():
        return f"{score:.17g}"  # Redis's reply format for a double score
    return str(int(score))


def parse_repeatable(key: str, score: float | int | str) -> RepeatableJob:
    """A ``repeat`` zset member and its score, parsed the way ``getRepeatableJobs()`` does."""
    name, jid, end, tz, cron = _key_to_data(key)
    return RepeatableJob(
        key=key,
        name=name,
        id=jid,
        end_date=end,
        tz=tz if cron else None,
        cron=cron,
        every=None if cron else (_js_parse_int(tz) if tz is not None else None),
        next=_js_parse_int(_score_text(score)),
    )


def key_to_repeat(key: str) -> tuple[str, RepeatOptions]:
    """Name and options as ``removeRepeatableByKey`` derives them (pass ``key`` on to iteration_prefix)."""
    name, jid, end, tz, cron = _key_to_data(key)
    repeat = RepeatOptions(
        cron=cron,
        tz=tz if cron else None,
        every=None if cron or tz is None else _js_parse_int(tz),
        end_date=end,
        job_id=jid,
    )
    return name or DEFAULT_JOB_NAME, repeat
