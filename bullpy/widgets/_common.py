"""What the widgets share: the ipywidgets import, background refresh, and reading metrics and settings."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

import redis as _redis

from ..errors import MissingDependency
from ..queue import Queue, find_queues  # find_queues: part of this package's API
from ..server import Server
from ..utils import now_ms

try:
    import ipywidgets as W
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise MissingDependency("ipywidgets", "notebook") from exc

__all__ = [
    "Refresher",
    "W",
    "check_interval",
    "close_tree",
    "eviction_policy",
    "find_queues",
    "finished_per_minute",
    "hide",
    "metrics_per_minute",
    "now_ms",
    "read_metrics",
    "sampled_per_minute",
]


class _Refreshable(Protocol):
    def _tick(self) -> None: ...


class Refresher:
    """Calls ``owner._tick()`` every ``interval`` seconds on a daemon thread that holds only a weak
    reference to the owner, so a widget nobody holds any more stops refreshing when it is collected.

    The kernel is never blocked: the thread only reads Redis and sets widget values (ipykernel sends
    comm messages from any thread). ``stop()`` is immediate, the thread also ends when the owner is
    garbage-collected and when the interpreter's main thread ends (kernel shutdown or restart). An
    interrupt of the kernel reaches the main thread only and leaves the refresh running.
    """

    def __init__(self, owner: _Refreshable, interval: float, name: str) -> None:
        self.interval = interval
        self._owner = weakref.ref(owner)
        self._stop = threading.Event()
        # Stop at once when the owner is collected, not one interval later.
        weakref.finalize(owner, self._stop.set)
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Refresher:
        self.thread.start()
        return self

    def stop(self, wait: float | None = None) -> None:
        self._stop.set()
        if wait is not None and self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(wait)

    @property
    def running(self) -> bool:
        return self.thread.is_alive() and not self._stop.is_set()

    def _loop(self) -> None:
        main = threading.main_thread()
        while not self._stop.wait(self.interval):
            if not main.is_alive():
                return
            owner = self._owner()
            if owner is None:
                return
            try:
                owner._tick()  # the owner shows its own errors; a failure never ends the thread
            except Exception:  # noqa: BLE001, S110 - last resort: never let the thread die on a bug
                pass
            del owner


def check_interval(refresh: float | None) -> float | None:
    """Seconds between two refreshes; None or 0 means refresh only on demand."""
    if refresh is None or refresh == 0:
        return None
    if isinstance(refresh, bool) or not isinstance(refresh, (int, float)) or refresh < 0.05:
        raise ValueError(f"refresh must be a number of seconds >= 0.05 (or None to refresh on demand), got {refresh!r}")
    return float(refresh)


def eviction_policy(redis: Queue | Server | _redis.Redis) -> str | None:
    """Redis's ``maxmemory-policy`` where a queue (or a server, or a client) lives, or None when the server
    will not say: ``Server.eviction_policy``."""
    if isinstance(redis, Queue):
        return redis.server.eviction_policy()
    return (redis if isinstance(redis, Server) else Server(redis)).eviction_policy()


def read_metrics(queue: Queue, points: int) -> dict[str, tuple[dict[str, int], list[int]] | None]:
    """Bull's per-minute metrics of ``completed`` and ``failed`` (``queue.get_metrics_by_types``, one round
    trip) as ``metrics_per_minute`` takes them: ``{type: (meta, data)}`` with data newest first, or None where
    the keys do not exist (only workers started with ``metrics: {maxDataPoints}`` write them)."""
    found = queue.get_metrics_by_types(("completed", "failed"), 0, max(points - 1, 0))
    return {
        kind: None if not m.prev_ts and not m.data
        else ({"count": m.count, "prevTS": m.prev_ts, "prevCount": m.prev_count}, m.data)
        for kind, m in found.items()
    }


def metrics_per_minute(meta: dict[str, int], data: list[int], now: int, minutes: int) -> list[int]:
    """Finished jobs per minute from Bull's metrics, index 0 the current minute.

    Bull's collectMetrics only writes when a job finishes: the hash counts every finish; at the first
    finish of a new minute it pushes the previous minute's total (and a 0 for each minute in between)
    on the head of the data list and moves ``prevTS``/``prevCount`` on. So the minute of ``prevTS`` is
    still open (``count - prevCount``), ``data[i]`` is the minute ``i + 1`` before it, and minutes after
    ``prevTS`` had no finish at all.
    """
    now_minute = now // 60_000
    prev_minute = meta["prevTS"] // 60_000
    buckets = [0] * minutes
    for age in range(minutes):
        minute = now_minute - age
        if minute > prev_minute:
            continue
        if minute == prev_minute:
            buckets[age] = max(meta["count"] - meta["prevCount"], 0)
        else:
            index = prev_minute - 1 - minute
            buckets[age] = data[index] if index < len(data) else 0
    return buckets


def sampled_per_minute(samples: Iterable[tuple[int, int]], now: int, minutes: int) -> list[int]:
    """Finished jobs per minute from successive (time ms, count) samples, index 0 the current minute.

    A count that went down (jobs cleaned or removed on completion) counts as no progress.
    """
    buckets = [0] * minutes
    previous: tuple[int, int] | None = None
    now_minute = now // 60_000
    for at, count in samples:
        if previous is not None:
            age = now_minute - at // 60_000
            if 0 <= age < minutes:
                buckets[age] += max(count - previous[1], 0)
        previous = (at, count)
    return buckets


def finished_per_minute(finished: Iterable[int], now: int, minutes: int, complete_after: int | None = None
                        ) -> list[int | None]:
    """Jobs per minute from their finish times (``finishedOn``), index 0 the current minute; None for the
    minutes before ``complete_after`` (epoch ms), which the jobs read may not cover."""
    now_minute = now // 60_000
    buckets: list[int | None] = [0] * minutes
    if complete_after is not None:
        for age in range(minutes):
            if now_minute - age <= complete_after // 60_000:
                buckets[age] = None
    for at in finished:
        age = now_minute - at // 60_000
        if 0 <= age < minutes and buckets[age] is not None:
            buckets[age] = (buckets[age] or 0) + 1
    return buckets



def close_tree(widget: Any) -> None:
    """Close a widget and every widget inside it (ipywidgets keeps each one until it is closed)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


class RefreshingBox(W.VBox):  # type: ignore[misc]
    """A box that a ``Refresher`` updates in the background: ``refreshing``, ``close()`` that stops it, and
    no reads while no front end shows it."""

    _refresher: Refresher | None = None
    _hidden = False

    def __init__(self, children: Any) -> None:
        super().__init__(children)
        # Track the views the front end shows: a widget whose output was cleared stops reading Redis until
        # it is displayed again (None, the default, would mean "not tracked").
        self._view_count = 0
        self.observe(self._on_views, names="_view_count")

    def _on_views(self, change: dict[str, Any]) -> None:
        self._hidden = bool(change["old"]) and not change["new"]

    def _visible(self) -> bool:
        """Whether a background refresh should read Redis now."""
        return not self._hidden and self.comm is not None

    @property
    def refreshing(self) -> bool:
        """True while the background refresh runs."""
        return self._refresher is not None and self._refresher.running

    def close(self) -> None:
        """Stop refreshing and remove the widget from every view."""
        if self._refresher is not None:
            self._refresher.stop(wait=5)
        for child in self.children:
            close_tree(child)
        super().close()


def hide(widget: Any, hidden: bool) -> None:
    widget.layout.display = "none" if hidden else None
