"""The part of cron-parser 4.9.0 (``lib/expression.js``, ``lib/date.js`` over luxon 3) that Bull 4.16.5 calls:
``parseExpression(cron, _.defaults({currentDate}, repeatOpts)).next()``, with cron-parser's grammar, step
rules and luxon's wall-clock arithmetic over :mod:`zoneinfo`. Why not croniter, and what is refused: see
:mod:`bullpy._core.repeat`, which computes Bull's repeat keys and next runs with it.

Pure: no I/O and no clock.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Final, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["PREDEFINED", "cron_next", "cron_series", "parse_cron", "resolve_tz", "validate_cron"]

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_MS = timedelta(milliseconds=1)


def resolve_tz(name: str) -> tzinfo:
    """The zone for an IANA name; ValueError for one :mod:`zoneinfo` does not know."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"tz must be a non-empty IANA zone name, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as 'Europe/Paris')") from None


# --------------------------------------------------------------------------------------------------
# cron-parser 4.9: grammar
# --------------------------------------------------------------------------------------------------

_FIELDS: Final = ("second", "minute", "hour", "dayOfMonth", "month", "dayOfWeek")
_BOUNDS: Final = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_DEFAULTS: Final = ("0", "*", "*", "*", "*", "*")
# February counts 29: cron-parser's table, used both for the "dom is a wildcard" test and for
# rejecting e.g. `0 0 30 2 *`.
_DAYS_IN_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
PREDEFINED: Final = {
    "@yearly": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_ALIASES: Final = {
    "month": {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    "dayOfWeek": {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
}
_VALID_CHARS: Final = {
    "dayOfMonth": re.compile(r"[?,*\dL/-]+"),
    "dayOfWeek": re.compile(r"[?,*\dL#/-]+"),
}
_STANDARD_CHARS: Final = re.compile(r"[,*\d/-]+")
_LOOP_LIMIT: Final = 10_000

Value = Union[int, str]  # a field value; strings are the 'L' forms cron-parser keeps verbatim


class _CronError(ValueError):
    pass


@dataclass(frozen=True)
class _Cron:
    second: tuple[Value, ...]
    minute: tuple[Value, ...]
    hour: tuple[Value, ...]
    dom: tuple[Value, ...]
    month: tuple[Value, ...]
    dow: tuple[Value, ...]
    nth: int  # from `d#n`; 0 when absent


def _num(text: str) -> float:
    """JS unary ``+text`` for the characters a field may hold (digits only, or empty -> 0)."""
    if text == "":
        return 0.0
    return float(text) if text.isdigit() else math.nan


def _sort_key(v: Value) -> tuple[int, float, str]:
    # numbers ascending first, then strings (localeCompare; ASCII 'L' forms sort the same)
    return (0, float(v), "") if isinstance(v, int) else (1, 0.0, v)


def _parse_field(name: str, text: str, lo: int, hi: int) -> list[Value]:
    chars = "L" if name in ("dayOfMonth", "dayOfWeek") else ""
    if name in _ALIASES:
        aliases = _ALIASES[name]

        def alias(m: re.Match[str]) -> str:
            word = m.group(0).lower()
            if word not in aliases:
                raise _CronError(f'cannot resolve alias "{word}" in {name}')
            return str(aliases[word])

        text = re.sub(r"[a-z]{3}", alias, text, flags=re.IGNORECASE)
    if not _VALID_CHARS.get(name, _STANDARD_CHARS).fullmatch(text):
        raise _CronError(f"invalid characters in {name}: {text!r}")
    # '*' wins over '?': with both present the '?' stays and fails below, as in cron-parser.
    if "*" in text:
        text = text.replace("*", f"{lo}-{hi}")
    elif "?" in text:
        text = text.replace("?", f"{lo}-{hi}")

    def has_char(v: object) -> bool:
        return isinstance(v, str) and bool(chars) and any(c in v for c in chars)

    def parse_range(val: str, step_text: str) -> list[Value] | float | str:
        atoms = val.split("-")
        if len(atoms) > 1:
            if not atoms[0]:
                if not atoms[1]:
                    raise _CronError(f"invalid range {val!r} in {name}")
                return -_num(atoms[1]) if len(atoms) == 2 else math.nan  # '-5' -> -5, rejected later
            lo_v, hi_v = _num(atoms[0]), _num(atoms[1])  # atoms past the second are ignored (quirk)
            if math.isnan(lo_v) or math.isnan(hi_v) or lo_v < lo or hi_v > hi:
                raise _CronError(f"range {val!r} in {name} is outside {lo}-{hi}")
            if lo_v > hi_v:
                raise _CronError(f"invalid range {val!r} in {name}")
            step = _num(step_text)
            if math.isnan(step) or step <= 0:
                raise _CronError(f"cannot repeat every {step_text!r} in {name}")
            out: list[Value] = []
            # A day-of-week range ending at 7 (or 0) also yields Sunday as 0 up front; the counter
            # below still treats that 0 as "not pushed", which is how `2-7/2` comes to include Sunday.
            if name == "dayOfWeek" and hi_v % 7 == 0:
                out.append(0)
            counter = step
            for i in range(int(lo_v), int(hi_v) + 1):
                if i not in out and counter % step == 0:
                    counter = 1
                    out.append(i)
                else:
                    counter += 1
            return out
        n = _num(val)
        return val if math.isnan(n) else n

    def parse_repeat(val: str) -> list[Value] | float | str:
        atoms = val.split("/")
        if len(atoms) > 2:
            raise _CronError(f"invalid repeat {val!r} in {name}")
        if len(atoms) == 2:
            start = atoms[0]
            if start == "" or start.isdigit():  # JS `atoms[0] == +atoms[0]`; '' == 0 too
                start = f"{start}-{hi}"
            return parse_range(start, atoms[1])
        return parse_range(val, "1")

    stack: list[Value] = []

    def check(v: float) -> int:
        if math.isnan(v) or v < lo or v > hi:
            raise _CronError(f"value {v:g} in {name} is outside {lo}-{hi}")
        return int(v)

    atoms = text.split(",")
    if not all(atoms):
        raise _CronError(f"empty list item in {name}: {text!r}")
    for atom in atoms:
        result = parse_repeat(atom)
        if isinstance(result, list):
            for v in result:
                stack.append(v if has_char(v) else check(float(v)))  # range values: 7 stays 7
        elif isinstance(result, str) and has_char(result):
            stack.append(result)
        else:
            n = check(math.nan if isinstance(result, str) else result)
            stack.append(n % 7 if name == "dayOfWeek" else n)  # scalar 7 -> 0
    stack.sort(key=_sort_key)
    return stack


def parse_cron(expression: str) -> _Cron:
    if not isinstance(expression, str):
        raise TypeError(f"cron must be a string, not {type(expression).__name__}")
    if re.search(r"[^\x20-\x7e\t]", expression):
        # JS \s and trim() know Unicode spaces Python's split() treats differently; refuse them.
        raise _CronError("cron expression contains non-ASCII or control characters")
    expression = PREDEFINED.get(expression, expression)  # exact match only, as cron-parser
    atoms = re.split(r"[ \t]+", expression.strip(" \t"))
    if len(atoms) > 6:
        raise _CronError("too many fields (at most 6: second minute hour day-of-month month day-of-week)")
    nth = 0
    start = 6 - len(atoms)
    values: list[list[Value]] = []
    for i, name in enumerate(_FIELDS):
        raw = atoms[i - start] if i >= start else ""
        if not raw:
            raw = _DEFAULTS[i]
        elif name == "dayOfWeek" and "#" in raw:
            parts = raw.split("#")
            for sep, what in ((",", ","), ("/", "/"), ("-", "-")):
                if sep in raw:
                    raise _CronError(f"day-of-week '#' cannot be combined with {what!r}")
            n = _num(parts[-1])
            if len(parts) > 2 or math.isnan(n) or not 1 <= n <= 5:
                raise _CronError("day-of-week occurrence after '#' must be 1-5")
            nth, raw = int(n), parts[0]
        lo, hi = _BOUNDS[i]
        values.append(_parse_field(name, raw, lo, hi))
    second, minute, hour, dom, month, dow = values
    if len(month) == 1 and isinstance(month[0], int):
        # A single month bounds the day of month (cron-parser's _handleMaxDaysInMonth).  Only a
        # plain 'L' survives the filter; '5L' compares as NaN and is dropped.
        dim = _DAYS_IN_MONTH[month[0] - 1]
        if isinstance(dom[0], int) and dom[0] > dim:
            raise _CronError("day of month does not exist in the given month")
        dom = sorted((v for v in dom if v == "L" or (isinstance(v, int) and v <= dim)), key=_sort_key)
    return _Cron(tuple(second), tuple(minute), tuple(hour), tuple(dom), tuple(month), tuple(dow), nth)


def validate_cron(expression: str) -> None:
    """Raise ValueError (TypeError for a non-string) unless cron-parser 4.9 would parse ``expression``."""
    try:
        parse_cron(expression)
    except _CronError as exc:
        raise ValueError(f"invalid cron expression {expression!r}: {exc}") from None


# --------------------------------------------------------------------------------------------------
# cron-parser 4.9: search (CronExpression#_findSchedule forward, CronDate over luxon)
# --------------------------------------------------------------------------------------------------


class _NoNext(Exception):
    """cron-parser threw inside next(): past endDate, loop limit, or a bad 'L' weekday."""


@dataclass
class _Local:
    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    ms: int
    weekday: int  # JS getDay(): 0 = Sunday


class _Clock:
    """Luxon DateTime arithmetic on epoch ms in one zone."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone

    def offset(self, ms: int) -> int:
        off = datetime.fromtimestamp(ms // 1000, self.zone).utcoffset()
        return (off or timedelta(0)) // _MS  # an aware datetime always has an offset

    def local(self, ms: int) -> _Local:
        dt = datetime.fromtimestamp(ms // 1000, self.zone)
        return _Local(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, ms % 1000, (dt.weekday() + 1) % 7)

    def to_ms(self, y: int, mo: int, d: int, h: int, mi: int, s: int, ms: int, guess: int) -> int:
        """Luxon objToTS/fixOffset: wall time -> instant, preferring the offset ``guess``.

        Ambiguous (repeated) wall times keep the guessed offset; nonexistent ones (a DST gap) move
        forward by the gap, e.g. 02:30 on a spring-forward night becomes 03:30.
        """
        y += (mo - 1) // 12
        mo = (mo - 1) % 12 + 1
        local_ts = (datetime(y, mo, 1, tzinfo=_UTC) - _EPOCH) // _MS + (
            (((d - 1) * 24 + h) * 60 + mi) * 60 + s
        ) * 1000 + ms
        utc_guess = local_ts - guess
        o2 = self.offset(utc_guess)
        if o2 == guess:
            return utc_guess
        utc_guess -= o2 - guess
        o3 = self.offset(utc_guess)
        if o2 == o3:
            return utc_guess
        return local_ts - min(o2, o3)

    # startOf(unit): truncate the wall clock, keeping the current offset as the guess
    def start_of(self, ms: int, unit: str) -> int:
        t = self.local(ms)
        guess = self.offset(ms)
        if unit == "second":
            return self.to_ms(t.year, t.month, t.day, t.hour, t.minute, t.second, 0, guess)
        if unit == "minute":
            return self.to_ms(t.year, t.month, t.day, t.hour, t.minute, 0, 0, guess)
        if unit == "hour":
            return self.to_ms(t.year, t.month, t.day, t.hour, 0, 0, 0, guess)
        if unit == "day":
            return self.to_ms(t.year, t.month, t.day, 0, 0, 0, 0, guess)
        return self.to_ms(t.year, t.month, 1, 0, 0, 0, 0, guess)  # month

    def add_day(self, ms: int) -> int:  # plus({days: 1}) is calendar math, then startOf('day')
        t = self.local(ms)
        moved = self.to_ms(t.year, t.month, t.day + 1, t.hour, t.minute, t.second, t.ms, self.offset(ms))
        return self.start_of(moved, "day")

    def add_month(self, ms: int) -> int:  # plus({months: 1}) clamps the day, then startOf('month')
        t = self.local(ms)
        y, mo = t.year + t.month // 12, t.month % 12 + 1
        d = min(t.day, _days_in(y, mo))
        moved = self.to_ms(y, mo, d, t.hour, t.minute, t.second, t.ms, self.offset(ms))
        return self.start_of(moved, "month")

    # Hours, minutes and seconds are added as absolute time, then truncated; the "went backwards"
    # guards are cron-parser's (they matter only in zones whose offsets change by sub-hour amounts).
    def add_hour(self, ms: int) -> int:
        n = self.start_of(ms + 3_600_000, "hour")
        return n + 3_600_000 if n <= ms else n

    def add_minute(self, ms: int) -> int:
        n = self.start_of(ms + 60_000, "minute")
        return n + 3_600_000 if n < ms else n

    def add_second(self, ms: int) -> int:
        n = self.start_of(ms + 1000, "second")
        return n + 3_600_000 if n < ms else n

    def subtract_hour(self, ms: int) -> int:  # minus 1h, endOf('hour').startOf('second')
        n = ms - 3_600_000
        t = self.local(n)
        n = self.to_ms(t.year, t.month, t.day, t.hour, 59, 59, 0, self.offset(n))
        return n - 3_600_000 if n >= ms else n


def _days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return _DAYS_IN_MONTH[month - 1]


def _matches(value: int, seq: tuple[Value, ...]) -> bool:
    return any(v == value for v in seq if isinstance(v, int))


class _CronIterator:
    """One ``parseExpression(...)`` result; ``next()`` may be called repeatedly, as on the JS object."""

    def __init__(self, cron: _Cron, current_ms: int, zone: tzinfo, end_ms: int | None) -> None:
        self.cron = cron
        self.clock = _Clock(zone)
        self.current = current_ms
        self.end = end_ms
        # DST bookkeeping survives between next() calls, as the JS instance fields do.
        self.dst_start: int | None = None
        self.dst_end: int | None = None
        self.dom_has_l = any(isinstance(v, str) and "L" in v for v in cron.dom)
        self.dow_l = [v for v in cron.dow if isinstance(v, str) and "L" in v]
        self.hour_specified = len(cron.hour) != 24  # a length test: '0-23,5' counts as specified

    def _shift(self, cur: int, unit: str) -> int:
        """cron-parser's _applyTimezoneShift for a forward step."""
        clock = self.clock
        if unit in ("month", "day"):
            new = clock.add_month(cur) if unit == "month" else clock.add_day(cur)
            if new == cur:  # landed on a nonexistent midnight
                t = clock.local(new)
                if t.minute == 0 and t.second == 0:
                    new = clock.add_hour(new)
                elif t.minute == 59 and t.second == 59:
                    new = clock.subtract_hour(new)
            return new
        before = clock.local(cur).hour
        new = {"hour": clock.add_hour, "minute": clock.add_minute, "second": clock.add_second}[unit](cur)
        t = clock.local(new)
        if t.hour - before == 2 and self.hour_specified:
            self.dst_start = t.hour  # spring forward skipped an hour
        elif t.hour == before and t.minute == 0 and t.second == 0 and self.hour_specified:
            self.dst_end = t.hour  # fall back: the same hour starts again
        return new

    def _last_weekday_match(self, t: _Local) -> bool:
        for expr in self.dow_l:
            # Only the first character names the weekday ('15L' means Monday); 'L5' is an error
            # cron-parser raises during the search, which Bull swallows.
            if not expr[0].isdigit():
                raise _NoNext(f"invalid last weekday of the month expression: {expr}")
            if t.weekday == int(expr[0]) % 7 and t.day + 7 > _days_in(t.year, t.month):
                return True
        return False

    def next(self) -> int:
        cron, clock = self.cron, self.clock
        cur = self.current
        started = cur
        steps = 0
        while steps < _LOOP_LIMIT:
            steps += 1
            if self.end is not None and self.end - cur < 0:
                raise _NoNext("out of the timespan range")
            t = clock.local(cur)
            dom_match = _matches(t.day, cron.dom) or (self.dom_has_l and t.day == _days_in(t.year, t.month))
            dow_match = _matches(t.weekday, cron.dow) or (bool(self.dow_l) and self._last_weekday_match(t))
            dom_wild = len(cron.dom) >= _DAYS_IN_MONTH[t.month - 1]
            dow_wild = len(cron.dow) == 8
            if (not dom_match and (not dow_match or dow_wild)) or (
                dom_wild and not dow_wild and not dow_match
            ):
                cur = self._shift(cur, "day")
                continue
            if cron.nth and -(-t.day // 7) != cron.nth:  # nth occurrence = ceil(day / 7)
                cur = self._shift(cur, "day")
                continue
            if not _matches(t.month, cron.month):
                cur = self._shift(cur, "month")
                continue
            if not _matches(t.hour, cron.hour):
                if self.dst_start != t.hour:
                    self.dst_start = None
                    cur = self._shift(cur, "hour")
                    continue
                if not _matches(t.hour - 1, cron.hour):
                    cur = clock.add_hour(cur)
                    continue
                # the wanted hour was skipped by DST: run in the hour that replaced it
            elif self.dst_end == t.hour:
                self.dst_end = None
                cur = self._shift(cur, "hour")
                continue
            if not _matches(t.minute, cron.minute):
                cur = self._shift(cur, "minute")
                continue
            if not _matches(t.second, cron.second):
                cur = self._shift(cur, "second")
                continue
            if cur == started:  # strictly after currentDate
                cur = self._shift(cur, "second")
                continue
            break
        if steps >= _LOOP_LIMIT:  # note: also when the match is found on the very last step
            raise _NoNext("loop limit exceeded")
        self.current = cur
        return cur


def _zone(tz: str | None, utc: bool, local_tz: str | tzinfo) -> tzinfo:
    if utc:
        return _UTC
    if tz:
        return resolve_tz(tz)
    return resolve_tz(local_tz) if isinstance(local_tz, str) else local_tz


def cron_series(
    cron: str,
    current_ms: int,
    count: int,
    *,
    tz: str | None = None,
    end_date: int | None = None,
    utc: bool = False,
    local_tz: str | tzinfo = "UTC",
) -> list[int]:
    """Up to ``count`` successive ``next()`` results of one cron-parser iterator (stops where Node throws)."""
    try:
        parsed = parse_cron(cron)
    except _CronError as exc:
        raise ValueError(f"invalid cron expression {cron!r}: {exc}") from None
    # An endDate of 0 is falsy in cron-parser and means "no end".
    it = _CronIterator(parsed, current_ms, _zone(tz, utc, local_tz), end_date or None)
    out: list[int] = []
    try:
        for _ in range(count):
            out.append(it.next())
    except _NoNext:
        pass
    return out


def cron_next(
    cron: str,
    current_ms: int,
    *,
    tz: str | None = None,
    end_date: int | None = None,
    utc: bool = False,
    local_tz: str | tzinfo = "UTC",
) -> int | None:
    """``parseExpression(cron, {currentDate, tz, endDate, utc}).next().getTime()``, None where it throws."""
    series = cron_series(cron, current_ms, 1, tz=tz, end_date=end_date, utc=utc, local_tz=local_tz)
    return series[0] if series else None
