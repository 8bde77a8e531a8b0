"""The same jobs processed once by a Node Bull worker and once by a bullpy Worker leave equal keyspaces.

Both workers run the same behaviour (bridge/peer.js's handler and tests/interop/pyworker.py), on two
prefixes, over identical jobs. Normalised: the clock (processedOn, finishedOn, the finished sets'
scores, the stalled-check stamp) and the text of stack traces (JavaScript's vs Python's); their number
is kept. Everything else, every key, field, member and order, must be equal.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

import bullpy
from bullpy.worker import Worker

from ..conftest import keyspace
from .peer import Peer
from .pyworker import make_handler

T0 = 1795800000000

JOBS: list[tuple[str | None, dict[str, Any], dict[str, Any]]] = [
    (None, {"n": 1}, {}),
    ("send", {"n": 2, "__peer": {"return": {"success": True, "messageId": "m-2"}}}, {"attempts": 3}),
    (None, {"n": 3, "__peer": {"return": "a string"}}, {}),
    (None, {"n": 4, "__peer": {"return": 0}}, {}),
    (None, {"n": 5, "__peer": {"returnUndefined": True}}, {}),
    (None, {"n": 6, "__peer": {"progress": [10, {"step": 2}], "log": ["one", "ünï"]}}, {}),
    (None, {"n": 7, "__peer": {"failTimes": 1}}, {"attempts": 2}),
    (None, {"n": 8, "__peer": {"failTimes": 2}}, {"attempts": 3, "backoff": 50}),
    (None, {"n": 9, "__peer": {"fail": "whatsapp not ready"}}, {}),
    (None, {"n": 10, "__peer": {"fail": "always"}}, {"attempts": 3, "backoff": {"type": "exponential", "delay": 20},
                                                   "stack_trace_limit": 2}),
    (None, {"n": 11}, {"remove_on_complete": True}),
    (None, {"n": 12, "__peer": {"fail": "gone"}}, {"remove_on_fail": True}),
    (None, {"n": 13}, {"priority": 2}),
    (None, {"n": 14}, {"priority": 1}),
    (None, {"n": 15}, {"lifo": True}),
    (None, {"n": 16}, {"delay": 300}),
    (None, {"n": 17, "__peer": {"fail": "discarded", "discard": True}}, {"attempts": 5}),
    ("named", {"n": 18}, {"job_id": "custom:{1} ü"}),
    (None, {"n": 19}, {"remove_on_complete": 2}),
    (None, {"n": 20, "__peer": {"fail": "x"}}, {"remove_on_fail": {"count": 1}}),
]


def normalise(space: dict[str, Any], name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (kind, value) in space.items():
        suffix = key[len(name) + 1 :]
        if kind == "hash" and "opts" in value:
            value = dict(value)
            for field in ("processedOn", "finishedOn"):
                if field in value:
                    value[field] = "<t>"
            if "stacktrace" in value:
                value["stacktrace"] = f"<{len(json.loads(value['stacktrace']))} stacks>"
        elif kind == "zset" and suffix in ("completed", "failed"):
            value = sorted(member for member, _score in value)
        elif suffix == "stalled-check":
            value = "<t>"
        out[suffix] = (kind, value)
    return out


def load(queue: bullpy.Queue) -> None:
    for i, (name, data, opts) in enumerate(JOBS):
        queue.add(data, name=name, timestamp=T0 + i, **opts)


def wait_done(queue: bullpy.Queue, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = queue.get_job_counts()
        if counts["waiting"] == counts["active"] == counts["delayed"] == 0 and counts["completed"]:
            time.sleep(0.3)  # let the last finishing script settle
            if queue.get_job_counts() == counts:
                return
        time.sleep(0.05)
    raise AssertionError(f"jobs not done: {queue.get_job_counts()}")


def test_python_worker_leaves_the_keyspace_a_node_worker_leaves(
    bull: Peer, redis_url: str, two_prefixes: tuple[str, str], redis_client: redis.Redis
) -> None:
    name = "wdiff q"
    node_prefix, py_prefix = two_prefixes
    node_queue = bullpy.Queue(name, redis_url, prefix=node_prefix)
    py_queue = bullpy.Queue(name, redis_url, prefix=py_prefix)
    load(node_queue)
    load(py_queue)

    bull.process({"name": name, "prefix": node_prefix})
    worker = Worker(py_queue, make_handler()).start()
    try:
        wait_done(node_queue)
        wait_done(py_queue)
    finally:
        worker.close()
    node = normalise(keyspace(redis_client, node_prefix), name)
    python = normalise(keyspace(redis_client, py_prefix), name)
    node_queue.close()
    py_queue.close()

    assert node["completed"][1] and node["failed"][1]
    assert sorted(node) == sorted(python), "different keys"
    for key in node:
        assert node[key] == python[key], f"key {key!r} differs"
