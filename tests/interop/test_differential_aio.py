"""``bullpy.aio`` leaves the keyspace Node Bull leaves for the same operations: test_differential.py's scenarios
(every producer option, management, the documented divergence of ``empty``), run through the asyncio facade."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis

import bullpy.aio

from ..conftest import keyspace
from .peer import Peer
from .test_differential import (
    MANAGEMENT_STEPS,
    PRODUCER_STEPS,
    NodeRunner,
    Step,
    assert_same,
    normalise,
)


class AsyncPythonRunner:
    """test_differential's PythonRunner, awaited: the same steps through ``bullpy.aio``."""

    def __init__(self, queue: bullpy.aio.Queue) -> None:
        self.queue = queue

    async def __call__(self, step: Step) -> None:
        kind, *args = step
        q = self.queue
        if kind == "add":
            name, data, opts = args
            await q.add(data, name=name, **opts)
        elif kind == "bulk":
            await q.add_bulk(args[0])
        elif kind == "job":
            job_id, method, *rest = args
            job = await q.get_job(job_id)
            assert job is not None, job_id
            await {"update": job.update, "progress": job.update_progress, "log": job.log,
                   "promote": job.promote, "remove": job.remove}[method](*rest)
        elif kind == "pause":
            await q.pause()
        elif kind == "resume":
            await q.resume()
        elif kind == "clean":
            await q.clean(*args)
        elif kind == "empty":
            await q.empty()
        else:  # pragma: no cover
            raise AssertionError(kind)


def run_both_aio(
    bull: Peer, redis_url: str, prefixes: tuple[str, str], steps: list[Step], name: str = "diff q:{1}"
) -> tuple[dict[str, Any], dict[str, Any]]:
    node_prefix, py_prefix = prefixes
    node = NodeRunner(bull, {"name": name, "prefix": node_prefix})
    loop = asyncio.new_event_loop()
    queue = bullpy.aio.Queue(name, redis_url, prefix=py_prefix, allow_colon=True)  # the differential names carry ":" on purpose
    python = AsyncPythonRunner(queue)
    try:
        for step in steps:
            node(step)
            loop.run_until_complete(python(step))
    finally:
        loop.run_until_complete(queue.close())
        loop.close()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return normalise(keyspace(client, node_prefix), name), normalise(keyspace(client, py_prefix), name)
    finally:
        client.close()


def test_asyncio_producer_operations_leave_identical_keyspaces(
    bull: Peer, redis_url: str, two_prefixes: tuple[str, str]
) -> None:
    node, python = run_both_aio(bull, redis_url, two_prefixes, PRODUCER_STEPS)
    assert len(node) >= 30
    assert_same(node, python)


def test_asyncio_management_operations_leave_identical_keyspaces(
    bull: Peer, redis_url: str, two_prefixes: tuple[str, str]
) -> None:
    node, python = run_both_aio(bull, redis_url, two_prefixes, PRODUCER_STEPS + MANAGEMENT_STEPS)
    assert node["diff q:{1}:meta-paused"] == ("string", "1")
    assert_same(node, python)


def test_asyncio_empty_differs_only_where_node_orphans_data(
    bull: Peer, redis_url: str, two_prefixes: tuple[str, str]
) -> None:
    """The same documented divergence as the sync facade (test_differential.py): nothing more."""
    name = "diff q:{1}"
    node, python = run_both_aio(bull, redis_url, two_prefixes, PRODUCER_STEPS + MANAGEMENT_STEPS + [("empty",)],
                                name)
    only_node = {k[len(name) + 1 :] for k in node if k not in python}
    only_python = {k[len(name) + 1 :] for k in python if k not in node}
    assert only_python == {"meta-paused"}
    for key in only_node:
        kind, value = node[f"{name}:{key}"]
        if kind == "hash":
            opts = json.loads(value["opts"])
            assert "repeat" in opts or opts.get("delay", 0) > 0, key
        else:
            assert key.endswith(":logs") or key.startswith("de:"), key
    for key in set(node) & set(python):
        assert node[key] == python[key], f"key {key!r} differs"
