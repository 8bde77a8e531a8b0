"""Queues for users' own unit tests, backed by fakeredis: no server needed (``pip install 'bullpy[testing]'``).

    from bullpy.testing import fake_queue

    def test_campaign_enqueues_every_row():
        queue = fake_queue("message-queue")
        enqueue_campaign(queue, rows)
        assert queue.get_job_counts()["waiting"] == len(rows)

fakeredis runs bullpy's own Lua scripts, so what lands in the fake Redis has Bull's layout; it is a
stand-in for unit tests, not evidence that Node Bull accepts it (bullpy's own suite checks that against
real Node Bull on a real Redis).
"""

from __future__ import annotations

from typing import Any

from .errors import MissingDependency
from .queue import Queue


def _fakeredis() -> Any:
    """The fakeredis module, with lupa (its Lua runtime): the ``testing`` extra."""
    try:
        import fakeredis
        import lupa  # noqa: F401  (fakeredis runs EVAL/EVALSHA through it)
    except ImportError as exc:
        raise MissingDependency(exc.name or "fakeredis[lua]", "testing") from exc
    return fakeredis


def fake_redis(**kwargs: Any) -> Any:
    """A fresh in-process fake Redis (``fakeredis.FakeRedis``) with Lua scripting."""
    kwargs.setdefault("decode_responses", True)
    return _fakeredis().FakeRedis(**kwargs)


def fake_queue(name: str = "message-queue", *, server: Any = None, **queue_options: Any) -> Queue:
    """A Queue on an in-process fake Redis; pass ``server`` (a ``fakeredis.FakeServer``) to share one."""
    fakeredis = _fakeredis()
    client = fakeredis.FakeRedis(server=server or fakeredis.FakeServer(), decode_responses=True)
    return Queue(name, client, **queue_options)
