"""Bull's events in Python: local events of workers in this process, and global events any worker
(Node or Python) publishes on Redis, decoded as Node's lib/queue.js decodes them.

Global events arrive with Node's arguments: ``global:completed`` -> ``(job_id, returnvalue_json, "active")``
(the value is the JSON *string*, unparsed, as Node passes it), ``global:failed`` -> ``(job_id, reason,
"active")``, ``global:progress`` -> ``(job_id, progress)``, ``global:waiting`` -> ``(job_id, None)``,
``global:active`` -> ``(job_id, "waiting")``, ``global:stalled``/``duplicated``/``debounced`` ->
``(job_id,)``, ``global:paused``/``resumed``/``drained`` -> ``()``.
"""

from __future__ import annotations

import json
import logging
import queue as _queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._core.keys import QueueKeys
    from .queue import Queue

log = logging.getLogger("bullpy")

LOCAL_EVENTS = frozenset({"active", "progress", "completed", "failed", "stalled", "error", "drained", "paused",
                          "resumed", "waiting", "cleaned", "removed", "lock-extension-failed",
                          "recovered"})
# Channels Node subscribes to with a pattern (their messages carry an @token suffix).
_PATTERN_EVENTS = frozenset({"active", "waiting", "stalled", "duplicated", "debounced"})
GLOBAL_EVENTS = frozenset({"completed", "failed", "progress", "paused", "resumed", "drained"} | _PATTERN_EVENTS)


@dataclass(frozen=True)
class Event:
    """One event: its name (``completed``, ``global:failed``...), the job id when there is one, and
    Node's remaining arguments."""

    name: str
    job_id: str | None
    args: tuple[Any, ...]

    @property
    def value(self) -> Any:
        """For ``global:completed``, the return value parsed from its JSON string; else the first extra arg."""
        if not self.args:
            return None
        first = self.args[0]
        if self.name == "global:completed" and isinstance(first, str):
            try:
                return json.loads(first)
            except ValueError:
                return first
        return first


def decode(event: str, payload: str) -> tuple[Any, ...] | None:
    """Node's arguments for one global message, or None when Node would emit nothing."""
    if event in ("completed", "failed"):
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        return (str(data.get("jobId")), data.get("val"), "active")
    if event == "progress":
        try:
            data = json.loads(payload)
            return (str(data["jobId"]), data["progress"])
        except (ValueError, KeyError, TypeError):
            # The legacy form "<id>,<progress JSON>", which Node still understands.
            job_id, _, rest = payload.partition(",")
            try:
                return (job_id, json.loads(rest))
            except ValueError:
                return None
    if event == "waiting":
        return (payload, None)
    if event == "active":
        return (payload, "waiting")
    if event in ("stalled", "duplicated", "debounced"):
        return (payload,)
    if event in ("paused", "resumed", "drained"):
        return ()
    return None


def subscription(keys: QueueKeys, event: str) -> tuple[str, bool]:
    """The channel Node listens on for a global event, or the pattern (True) for the ``event@token`` ones."""
    if event not in GLOBAL_EVENTS:
        raise ValueError(f"unknown global event {event!r}; known: {', '.join(sorted(GLOBAL_EVENTS))}")
    from ._core.scripts import glob_escape

    channel = keys(event)
    return (glob_escape(channel) + "*", True) if event in _PATTERN_EVENTS else (channel, False)


def message_args(base_len: int, message: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]] | None:
    """The event name and Node's arguments for one pub/sub message on a queue's channels (``base_len``:
    the length of ``prefix:name:``), or None when Node would emit nothing."""
    channel = message["channel"]
    channel = channel.decode() if isinstance(channel, bytes) else str(channel)
    data = message["data"]
    payload = data.decode() if isinstance(data, bytes) else str(data)
    event, at, _token = channel[base_len:].partition("@")
    if event in ("waiting", "active", "duplicated", "debounced") and not at:
        return None  # Node ignores these without an @token part
    args = decode(event, payload)
    return None if args is None else (event, args)


def event_of(name: str, args: tuple[Any, ...]) -> Event:
    """An ``Event`` for a listener's arguments: the job id (a string or a Job's id) first, when there is one."""
    job_id = None
    if args and isinstance(args[0], str):
        job_id = args[0]
    elif args and hasattr(args[0], "id"):
        job_id = args[0].id
    return Event(name, job_id, tuple(args[1:]) if job_id is not None else tuple(args))


class Emitter:
    """on/off/emit for one Queue object; callbacks run on the thread that emits."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[..., Any]]] = {}
        self._lock = threading.Lock()

    def on(self, event: str, callback: Callable[..., Any]) -> None:
        with self._lock:
            self._listeners.setdefault(event, []).append(callback)

    def off(self, event: str, callback: Callable[..., Any] | None = None) -> None:
        with self._lock:
            if callback is None:
                self._listeners.pop(event, None)
            elif callback in self._listeners.get(event, []):
                self._listeners[event].remove(callback)

    def listeners(self, event: str) -> list[Callable[..., Any]]:
        with self._lock:
            return list(self._listeners.get(event, ()))

    def emit(self, event: str, *args: Any) -> None:
        if event not in self._listeners and event != "error":
            return  # the common case on a worker's hot path: nobody listens
        for callback in self.listeners(event):
            try:
                callback(*args)
            except Exception as exc:  # a listener's bug must not stop a worker
                if event == "error":
                    log.exception("error listener failed")
                else:
                    self.emit("error", exc)
        if event == "error" and not self.listeners("error") and args:
            log.error("bullpy: %s", args[0])


class GlobalListener:
    """One pub/sub connection that turns a queue's channels into ``global:*`` events."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._pubsub = queue.client.pubsub()  # type: ignore[no-untyped-call]
        self._confirmed: dict[str, threading.Event] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def subscribe(self, event: str) -> None:
        """Subscribe to one event's channel; returns once Redis confirmed it, so nothing published
        afterwards is missed."""
        name, pattern = subscription(self.queue.keys, event)
        with self._lock:
            if name in self._confirmed:
                return
            confirmed = self._confirmed[name] = threading.Event()
            if pattern:
                self._pubsub.psubscribe(name)
            else:
                self._pubsub.subscribe(name)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"bullpy-events-{self.queue.name}", daemon=True)
                self._thread.start()
        confirmed.wait(timeout=5)

    def _run(self) -> None:
        base_len = len(self.queue.keys(""))
        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.5)
            except Exception as exc:  # connection lost: redis-py reconnects and resubscribes
                if self._stop.is_set():
                    return
                self.queue._emit("error", exc)
                time.sleep(0.5)
                continue
            if not message:
                continue
            kind = message["type"]
            key = message["pattern"] if kind == "pmessage" else message["channel"]
            key = key.decode() if isinstance(key, bytes) else key
            if kind in ("subscribe", "psubscribe"):
                if key in self._confirmed:
                    self._confirmed[key].set()
                continue
            if kind not in ("message", "pmessage"):
                continue
            found = message_args(base_len, message)
            if found is not None:
                self.queue._emit(f"global:{found[0]}", *found[1])

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        try:
            self._pubsub.close()
        except Exception:
            pass


class EventStream:
    """Events as they happen, listened to from the moment it is created (so none is missed between
    creating it and the first ``next``); stops after ``timeout`` seconds without an event."""

    def __init__(self, queue: Queue, names: list[str], timeout: float | None) -> None:
        self.queue = queue
        self.timeout = timeout
        self._inbox: _queue.Queue[Event] = _queue.Queue()
        self._callbacks: list[tuple[str, Callable[..., Any]]] = []
        for name in names:
            callback = self._make_callback(name)
            queue.on(name, callback)
            self._callbacks.append((name, callback))

    def _make_callback(self, name: str) -> Callable[..., Any]:
        def callback(*args: Any) -> None:
            self._inbox.put(event_of(name, args))

        return callback

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        try:
            return self._inbox.get(timeout=self.timeout)
        except _queue.Empty:
            self.close()
            raise StopIteration from None

    def close(self) -> None:
        """Stop listening."""
        for name, callback in self._callbacks:
            self.queue.off(name, callback)
        self._callbacks.clear()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
