"""The dashboard's throughput chart: completed and failed jobs per minute as an inline SVG with axes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import _display as D

_COMPLETED, _FAILED = D.STATE_COLORS["completed"], D.STATE_COLORS["failed"]
_AXIS = "#888"
_GRID = "#e5e5e5"


@dataclass
class Throughput:
    """Jobs finished per minute, index 0 the current (open) minute."""

    source: str  # "metrics" (Bull's metrics keys), else "samples" (finish times of recent jobs, sampled counts)
    completed: list[int]
    failed: list[int]
    since: int | None = None  # for samples: when sampling started (epoch ms)
    #: for samples: the finish times read cover the minutes from here on (None: every minute shown)
    covered_since: int | None = None
    recent: int = 0  # for samples: how many of the newest completed and failed jobs were read
    at: int = 0  # when it was read (epoch ms)


def nice_step(peak: float, ticks: int = 4) -> int:
    """A round step (1, 2, 5 times a power of ten) so that ``ticks`` steps cover ``peak``."""
    raw = max(peak / ticks, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return int(factor * power)
    return int(10 * power)  # pragma: no cover


def svg(t: Throughput, *, width: int = 600, height: int = 150) -> str:
    """Stacked bars per minute (oldest left, the open minute right), a y axis in jobs per minute, an x axis
    in minutes ago; each bar's tooltip gives its numbers."""
    minutes = len(t.completed)
    left, right, top, bottom = 34, 6, 8, 20
    pw, ph = width - left - right, height - top - bottom
    peak = max([c + f for c, f in zip(t.completed, t.failed)] or [0])
    step = nice_step(peak)
    ymax = max(step * math.ceil(peak / step), step)
    out = [(f"<svg class='bullpy-throughput-chart' viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
            f"role='img' xmlns='http://www.w3.org/2000/svg' font-size='10' font-family='sans-serif'>"
            f"<title>jobs finished per minute, last {minutes} min</title>")]
    for value in range(0, ymax + 1, step):
        y = top + ph - ph * value / ymax
        out.append(f"<line x1='{left}' x2='{left + pw}' y1='{y:.1f}' y2='{y:.1f}' stroke='{_GRID if value else _AXIS}'/>"
                   f"<text x='{left - 4}' y='{y + 3:.1f}' text-anchor='end' fill='{_AXIS}'>{value:,}</text>")
    bar = pw / max(minutes, 1)
    if t.covered_since is not None and t.at:
        # Minutes older than the oldest finish read: more jobs finished than were read, so they are shaded.
        uncovered = minutes - (t.at // 60_000 - t.covered_since // 60_000)
        if uncovered > 0:
            out.append(f"<rect x='{left}' y='{top}' width='{uncovered * bar:.1f}' height='{ph}' fill='#f2f2f2'>"
                       f"<title>before {D.short_time(t.covered_since)} UTC: only counts sampled while the "
                       f"dashboard ran</title></rect>")
    for age in range(minutes):
        c, f = t.completed[age], t.failed[age]
        if not c and not f:
            continue
        x = left + (minutes - 1 - age) * bar
        hc, hf = ph * c / ymax, ph * f / ymax
        label = "this minute" if age == 0 else f"{age} min ago"
        out.append(f"<g><title>{label}: {c:,} completed, {f:,} failed</title>"
                   f"<rect x='{x + 0.5:.1f}' y='{top + ph - hc:.1f}' width='{max(bar - 1, 1):.1f}' height='{hc:.1f}' "
                   f"fill='{_COMPLETED}'/>"
                   f"<rect x='{x + 0.5:.1f}' y='{top + ph - hc - hf:.1f}' width='{max(bar - 1, 1):.1f}' "
                   f"height='{hf:.1f}' fill='{_FAILED}'/></g>")
    every = 15 if minutes >= 45 else 10 if minutes >= 20 else 5 if minutes >= 10 else 1
    for age in range(0, minutes, every):
        x = left + (minutes - 1 - age) * bar + bar / 2
        text = "now" if age == 0 else f"-{age} min"
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top + ph}' y2='{top + ph + 3}' stroke='{_AXIS}'/>"
                   f"<text x='{x:.1f}' y='{height - 6}' text-anchor='middle' fill='{_AXIS}'>{text}</text>")
    out.append(f"<line x1='{left}' x2='{left}' y1='{top}' y2='{top + ph}' stroke='{_AXIS}'/>"
               f"<text x='{left + 4}' y='{top + 2}' fill='{_AXIS}' dominant-baseline='hanging'>jobs/min</text></svg>")
    return "".join(out)


def html(t: Throughput) -> str:
    """The chart with its legend, totals and where the numbers come from."""
    if t.source == "metrics":
        where = "Bull's metrics"
    else:
        where = f"finish times of the newest {t.recent:,} completed and failed jobs"
        if t.covered_since is not None and t.since is not None:
            where += f"; before {D.short_time(t.covered_since)} UTC: counts sampled since {D.short_time(t.since)} UTC"
    minutes = len(t.completed)
    total_c, total_f = sum(t.completed), sum(t.failed)
    swatch = "display:inline-block;width:9px;height:9px;border-radius:2px;margin:0 3px 0 8px;background:"
    return (
        f"<div class='bullpy-throughput bullpy-chart' data-bullpy-source='{t.source}'>"
        f"<div><b>Throughput</b> <span style='{D.MUTED}'>last {minutes} min</span>"
        f"<span style='{swatch}{_COMPLETED}'></span>completed <span style='{swatch}{_FAILED}'></span>failed</div>"
        f"{svg(t)}"
        f"<div>this minute: <b data-bullpy-rate='completed'>{t.completed[0]:,}</b> completed, "
        f"<b data-bullpy-rate='failed'>{t.failed[0]:,}</b> failed · last {minutes} min: {total_c:,} completed, "
        f"{total_f:,} failed <span style='{D.MUTED}'>({D.esc(where)})</span></div></div>"
    )
