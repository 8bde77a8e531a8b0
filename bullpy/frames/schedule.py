"""When each row of a campaign is sent: ``rate`` pacing, ``send_at`` times and sending windows per time zone.

Every row gets a due time (epoch ms); ``add_frame`` turns it into the job's delay, and Node workers send it as
any delayed job. The rules, in frame order:

* a row is due no earlier than its base: the load's start, or its ``send_at`` (plus any ``delay``);
* with ``window=("09:00", "20:00")`` it is moved to the first moment at or after its base when the wall clock
  of its zone (``tz``: one zone, or a column of zone names) is inside the window (start included, end
  excluded; a window may span midnight, ``("22:00", "06:00")``). Days with a daylight-saving change get the
  window of their own wall clock;
* with ``rate`` the whole campaign goes out at most one row per interval: row slots are ``start + k * interval``
  and each row takes the first free slot at or after its (windowed) base that is still inside its window,
  so rows whose window is closed wait for its next opening without holding up the others, and rows of one
  zone keep their frame order.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import re
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def parse_window(window: Any) -> tuple[dt.time, dt.time] | None:
    """``("09:00", "20:00")``, ``"09:00-20:00"`` or two ``datetime.time`` -> (start, end) wall-clock times."""
    if window is None:
        return None
    if isinstance(window, str):
        parts = window.split("-")
        if len(parts) != 2:
            raise ValueError(f"window must be like ('09:00', '20:00') or '09:00-20:00', got {window!r}")
        window = tuple(parts)
    if not isinstance(window, (tuple, list)) or len(window) != 2:
        raise ValueError(f"window must be a (start, end) pair such as ('09:00', '20:00'), got {window!r}")
    start, end = (_clock(v) for v in window)
    if start == end:
        raise ValueError(f"window {window!r} opens and closes at the same time; leave window out to send any time")
    return start, end


def _clock(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        if value.tzinfo is not None:
            raise ValueError(f"window times are wall-clock times of each row's zone (tz=), got {value!r}")
        return value
    match = _CLOCK.match(str(value))
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59 or int(match.group(3) or 0) > 59:
        raise ValueError(f"window times must be like '09:00' or '20:30:00', got {value!r}")
    return dt.time(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def zone(name: Any) -> ZoneInfo:
    """A time zone by IANA name (``America/Sao_Paulo``); ValueError for an unknown one."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a time zone is an IANA name such as 'America/Sao_Paulo', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


class _Windows:
    """The sending windows of one zone, as epoch-ms intervals, computed day by day."""

    def __init__(self, tz: ZoneInfo, start: dt.time, end: dt.time) -> None:
        self.tz = tz
        self.start, self.end = start, end
        self.overnight = end <= start
        self._days: dict[dt.date, tuple[int, int]] = {}

    def _bounds(self, day: dt.date) -> tuple[int, int]:
        found = self._days.get(day)
        if found is None:
            opens = dt.datetime.combine(day, self.start, tzinfo=self.tz)
            closes = dt.datetime.combine(day + dt.timedelta(days=1) if self.overnight else day, self.end, tzinfo=self.tz)
            found = self._days[day] = (int(opens.timestamp() * 1000), int(closes.timestamp() * 1000))
        return found

    def at_or_after(self, t: int) -> tuple[int, int]:
        """The first moment >= t inside a window, and when that window closes."""
        day = dt.datetime.fromtimestamp(t / 1000, self.tz).date()
        for offset in range(-1, 3):
            opens, closes = self._bounds(day + dt.timedelta(days=offset))
            if closes > t:
                return max(opens, t), closes
        raise RuntimeError("no sending window within two days")  # pragma: no cover - every day has one


class _Slots:
    """Rate slots ``start + round(k * interval)`` taken so far, as sorted half-open runs of slot numbers."""

    def __init__(self, start: int, interval: float) -> None:
        self.start, self.interval = start, interval
        self.runs: list[list[int]] = []  # [first, end) runs, sorted, disjoint, not adjacent

    def time(self, k: int) -> int:
        return self.start + round(k * self.interval)

    def first_at(self, t: int) -> int:
        """The first slot number whose time is >= t."""
        k = max(0, math.ceil((t - self.start) / self.interval - 1e-9))
        while self.time(k) < t:
            k += 1
        return k

    def free_from(self, k: int) -> int:
        """The first slot number >= k not taken yet."""
        i = bisect.bisect_right(self.runs, [k, math.inf]) - 1
        if i >= 0 and self.runs[i][0] <= k < self.runs[i][1]:
            return self.runs[i][1]
        return k

    def take(self, k: int) -> None:
        i = bisect.bisect_right(self.runs, [k, math.inf])
        left = self.runs[i - 1] if i > 0 and self.runs[i - 1][1] == k else None
        right = self.runs[i] if i < len(self.runs) and self.runs[i][0] == k + 1 else None
        if left is not None and right is not None:
            left[1] = right[1]
            del self.runs[i]
        elif left is not None:
            left[1] = k + 1
        elif right is not None:
            right[0] = k
        else:
            self.runs.insert(i, [k, k + 1])


class Scheduler:
    """Due times for the rows of one campaign, batch after batch in frame order (see the module docstring)."""

    def __init__(self, *, start_ms: int, interval: float | None, window: tuple[dt.time, dt.time] | None) -> None:
        self.start = start_ms
        self.window = window
        self.slots = _Slots(start_ms, interval) if interval is not None else None
        self._zones: dict[str, _Windows] = {}
        self.rows = 0

    def _windows(self, name: str) -> _Windows:
        found = self._zones.get(name)
        if found is None:
            if self.window is None:  # pragma: no cover - callers pass zones only with a window
                raise ValueError("zones need a window")
            found = self._zones[name] = _Windows(zone(name), *self.window)
        return found

    def dues(self, bases: np.ndarray[Any, Any] | None, zones: str | Sequence[str] | None, n: int) -> np.ndarray[Any, Any]:
        """Due times (epoch ms, int64) of the next ``n`` rows; ``bases`` their earliest times (None: the start),
        ``zones`` one zone name or one per row (needed with a window)."""
        first = self.rows
        self.rows += n
        if bases is None:
            bases = np.full(n, self.start, dtype=np.int64)
        else:
            bases = np.maximum(np.asarray(bases, dtype=np.int64), self.start)
        if self.window is None and self.slots is None:
            return bases
        runs = self.slots.runs if self.slots is not None else []
        if (self.window is None and self.slots is not None and runs in ([], [[0, first]])
                and bool((bases == self.start).all())):
            # The plain paced campaign, every row in the next slot (vectorised): row i in slot i.
            ks = np.arange(first, first + n, dtype=np.float64)
            if n:
                if runs:
                    runs[0][1] = first + n
                else:
                    runs.append([first, first + n])
            return self.start + np.round(ks * self.slots.interval).astype(np.int64)
        if zones is None:
            zones = "UTC"
        per_row = [zones] * n if isinstance(zones, str) else list(zones)
        out = np.empty(n, dtype=np.int64)
        for i in range(n):
            base = int(bases[i])
            windows = self._windows(per_row[i]) if self.window is not None else None
            if self.slots is None:
                out[i] = windows.at_or_after(base)[0] if windows is not None else base
                continue
            out[i] = self._slot(base, windows)
        return out

    def _slot(self, base: int, windows: _Windows | None) -> int:
        slots = self.slots
        if slots is None:  # pragma: no cover - only called with a rate
            raise ValueError("no rate")
        t = base
        while True:
            closes = math.inf
            if windows is not None:
                t, closes = windows.at_or_after(t)
            k = slots.free_from(slots.first_at(t))
            when = slots.time(k)
            if when < closes:
                slots.take(k)
                return when
            t = int(closes)  # the window filled up: its next opening
