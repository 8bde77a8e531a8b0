"""Both facades offer the same names with the same parameters: ``bullpy.aio`` awaits what touches Redis."""

from __future__ import annotations

import inspect
from typing import Any

import bullpy
import bullpy.aio
from bullpy.aio.queue import SYNC_ONLY

# What the sync facade's context manager is, the asyncio one's is with ``async with``.
_DUNDERS = {"__enter__": "__aenter__", "__exit__": "__aexit__"}
# Methods that touch no Redis stay plain in both facades; every other public method of bullpy.aio awaits.
_PLAIN = {"off", "events", "to_dict", "discard"}


def public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def shape(fn: Any) -> list[tuple[str, Any, Any]]:
    """A callable's parameters: name, kind and default (annotations name each facade's own classes)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_queue_has_every_sync_method_but_the_listed_sync_only_ones() -> None:
    assert set(SYNC_ONLY) <= public(bullpy.Queue), "SYNC_ONLY names a method the sync Queue no longer has"
    assert public(bullpy.aio.Queue) == public(bullpy.Queue) - set(SYNC_ONLY)


def test_job_has_every_sync_method_and_field() -> None:
    assert public(bullpy.aio.Job) == public(bullpy.Job)


def test_same_parameters_and_defaults() -> None:
    for sync_cls, aio_cls in ((bullpy.Queue, bullpy.aio.Queue), (bullpy.Job, bullpy.aio.Job)):
        for name in sorted(public(aio_cls) | {"__init__"}):
            sync_attr, aio_attr = inspect.getattr_static(sync_cls, name), inspect.getattr_static(aio_cls, name)
            if isinstance(sync_attr, property) or inspect.ismemberdescriptor(sync_attr):
                assert type(aio_attr) is type(sync_attr), f"{aio_cls.__name__}.{name} is not an attribute"
                continue
            assert shape(getattr(sync_cls, name)) == shape(getattr(aio_cls, name)), f"{aio_cls.__name__}.{name}"
    assert shape(bullpy.find_queues) == shape(bullpy.aio.find_queues)


def test_what_touches_redis_is_awaited() -> None:
    for cls in (bullpy.aio.Queue, bullpy.aio.Job):
        for name in public(cls):
            attr = inspect.getattr_static(cls, name)
            if isinstance(attr, property) or inspect.ismemberdescriptor(attr):
                continue
            assert inspect.iscoroutinefunction(attr) == (name not in _PLAIN), f"{cls.__name__}.{name}"
    assert inspect.iscoroutinefunction(bullpy.aio.find_queues)
    assert inspect.iscoroutinefunction(bullpy.aio.Queue.close)
    for sync_name, aio_name in _DUNDERS.items():
        assert hasattr(bullpy.Queue, sync_name) and inspect.iscoroutinefunction(getattr(bullpy.aio.Queue, aio_name))


def test_same_exceptions_and_values() -> None:
    for name in bullpy.aio.__all__:
        if name in bullpy.__all__ and name not in ("Job", "Queue", "find_queues"):
            assert getattr(bullpy.aio, name) is getattr(bullpy, name), name
    errors = [n for n in bullpy.__all__ if isinstance(getattr(bullpy, n), type)
              and issubclass(getattr(bullpy, n), bullpy.BullError)]
    # The errors an asyncio caller can meet are all there (frames, transfer and Node ones are sync-only).
    sync_layers = {"ExportFormatError", "FrameError", "FrameLoadInterrupted", "ImportConflict", "JobTimeout",
                   "MissingDependency", "MissingHandler", "NodeUnavailable"}
    assert set(errors) - sync_layers <= set(bullpy.aio.__all__)
