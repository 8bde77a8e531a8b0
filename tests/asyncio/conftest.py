"""Fixtures for ``bullpy.aio``: one event loop per test (no pytest plugin needed) and asyncio Queues on the
test Redis under the test's prefix, closed afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

import bullpy.aio

T = TypeVar("T")


@pytest.fixture
def run() -> Iterator[Callable[[Awaitable[T]], T]]:
    """``run(coroutine)`` on this test's event loop."""
    loop = asyncio.new_event_loop()
    try:
        yield loop.run_until_complete
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.fixture
def make_aio_queue(redis_url: str, prefix: str, run: Callable[[Awaitable[Any]], Any]
                   ) -> Iterator[Callable[..., bullpy.aio.Queue]]:
    made: list[bullpy.aio.Queue] = []

    def make(name: str = "message-queue", **options: Any) -> bullpy.aio.Queue:
        options.setdefault("prefix", prefix)
        queue = bullpy.aio.Queue(name, redis_url, **options)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        run(queue.close())


@pytest.fixture
def aq(make_aio_queue: Callable[..., bullpy.aio.Queue]) -> bullpy.aio.Queue:
    return make_aio_queue()
