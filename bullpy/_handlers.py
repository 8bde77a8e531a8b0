"""A worker's handlers: which one runs a job (by name, ``"*"`` for the rest) and how it is called (plain in
the job's thread, ``async def`` on one event loop thread, with Bull's ``timeout`` in a thread of its own).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import JobTimeout

if TYPE_CHECKING:
    from .job import Job

Handler = Callable[["Job"], Any]


class Handlers:
    """The handlers of one worker, by job name, and the threads that run the ones that need them."""

    def __init__(self) -> None:
        self.by_name: dict[str, Handler] = {}
        self._async: dict[Handler, bool] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._size = 1

    def add(self, name: str, handler: Handler) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a handler's job name must be a non-empty string, got {name!r}")
        if not callable(handler):
            raise TypeError(f"the handler for {name!r} must be callable")
        self.by_name[name] = handler

    def add_all(self, handler: Handler | Mapping[str, Handler]) -> None:
        """One handler for every name, or a mapping of name to handler (``"*"``: every other name)."""
        if isinstance(handler, Mapping):
            for name, fn in handler.items():
                self.add(name, fn)
        else:
            self.add("*", handler)

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def for_name(self, name: str) -> Handler | None:
        return self.by_name.get(name) or self.by_name.get("*")

    def open(self, concurrency: int) -> None:
        """Make ready to call handlers (the timeout pool is made on the first job with a ``timeout``)."""
        self._size = concurrency

    def call(self, handler: Handler, job: Job, timeout_ms: int | None) -> Any:
        """Run ``handler(job)`` and return its result; JobTimeout after ``timeout_ms`` (the handler is left
        running, as Node leaves its promise)."""
        if self._is_async(handler):
            future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(handler(job), self._event_loop())
        elif timeout_ms is None:
            result = handler(job)
            if inspect.isawaitable(result):
                return asyncio.run_coroutine_threadsafe(_await(result), self._event_loop()).result()
            return result
        else:
            future = self._timeout_pool().submit(handler, job)
        try:
            return future.result(timeout=None if timeout_ms is None else timeout_ms / 1000)
        except concurrent.futures.TimeoutError:
            # As in Node the handler is not cancelled (a thread cannot be); the job fails now.
            future.cancel()
            raise JobTimeout(timeout_ms or 0) from None

    def close(self) -> None:
        with self._lock:
            pool, loop = self._pool, self._loop
            self._pool = self._loop = None
        if pool is not None:
            pool.shutdown(wait=False)
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)

    def _is_async(self, handler: Handler) -> bool:
        known = self._async.get(handler)
        if known is None:
            known = self._async[handler] = inspect.iscoroutinefunction(handler)
        return known

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="bullpy-asyncio", daemon=True).start()
                self._loop = loop
            return self._loop

    def _timeout_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self._size, thread_name_prefix="bullpy-handler")
            return self._pool


async def _await(awaitable: Any) -> Any:
    return await awaitable


def handler_stack(exc: BaseException) -> str:
    """The traceback of a handler's error, without bullpy's own frames above the handler."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in _OWN_FILES:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip("\n")


_OWN_FILES = {str(Path(__file__).with_name(name)) for name in ("_handlers.py", "_running.py", "worker.py")}
