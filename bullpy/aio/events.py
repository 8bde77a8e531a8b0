"""Bull's global events in asyncio code: one pub/sub connection per queue, decoded as ``bullpy.events``
decodes them (the same channels, the same arguments Node gives), delivered to callbacks or iterated with
``async for``."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from ..events import Event, event_of, message_args, subscription

if TYPE_CHECKING:
    from .queue import Queue

__all__ = ["Event", "EventStream", "GlobalListener"]


class GlobalListener:
    """A queue's pub/sub connection and the task that turns its messages into ``global:*`` events."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._pubsub = queue.client.pubsub()
        self._confirmed: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None

    async def subscribe(self, event: str) -> None:
        """Subscribe to one event's channel; returns once Redis confirmed it, so nothing published
        afterwards is missed."""
        name, pattern = subscription(self.queue.keys, event)
        confirmed = self._confirmed.get(name)
        if confirmed is None:
            confirmed = self._confirmed[name] = asyncio.Event()
            if pattern:
                await self._pubsub.psubscribe(name)
            else:
                await self._pubsub.subscribe(name)
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._run(), name=f"bullpy-events-{self.queue.name}")
        await asyncio.wait_for(confirmed.wait(), timeout=5)

    async def _run(self) -> None:
        base_len = len(self.queue.keys(""))
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: redis-py reconnects and resubscribes
                self.queue._emitter.emit("error", exc)
                await asyncio.sleep(0.5)
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
                self.queue._emitter.emit(f"global:{found[0]}", *found[1])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]


def callback_for(callback: Callable[..., Any]) -> Callable[..., Any]:
    """A listener that runs ``callback`` on the event loop: plain functions are called, ``async def`` ones
    (and any awaitable they return) are scheduled as tasks."""
    if not inspect.iscoroutinefunction(callback):
        def plain(*args: Any) -> None:
            result = callback(*args)
            if inspect.isawaitable(result):
                asyncio.ensure_future(result)

        return plain

    def scheduled(*args: Any) -> None:
        asyncio.get_running_loop().create_task(callback(*args))

    return scheduled


class EventStream:
    """Events as they happen, for ``async for``; stops after ``timeout`` seconds without one.

    Listening starts at ``async with`` (or at the first iteration): ``async with queue.events() as stream``
    misses nothing published after the ``with`` line.
    """

    def __init__(self, queue: Queue, names: list[str], timeout: float | None) -> None:
        self.queue = queue
        self.names = names
        self.timeout = timeout
        self._inbox: asyncio.Queue[Event] = asyncio.Queue()
        self._callbacks: list[tuple[str, Callable[..., Any]]] = []
        self._started = False

    async def start(self) -> EventStream:
        """Start listening (subscribing to every channel needed); idempotent."""
        if not self._started:
            self._started = True
            for name in self.names:
                callback = self._make_callback(name)
                self._callbacks.append((name, callback))
                await self.queue._listen(name, callback)
        return self

    def _make_callback(self, name: str) -> Callable[..., Any]:
        def callback(*args: Any) -> None:
            self._inbox.put_nowait(event_of(name, args))

        return callback

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        await self.start()
        try:
            return await asyncio.wait_for(self._inbox.get(), self.timeout)
        except asyncio.TimeoutError:
            self.close()
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop listening."""
        for name, callback in self._callbacks:
            self.queue.off(name, callback)
        self._callbacks.clear()

    async def __aenter__(self) -> EventStream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.close()
