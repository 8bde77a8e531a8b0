"""The same operations done once by Node Bull and once by bullpy leave equal Redis keyspaces.

Each scenario is a list of neutral steps run twice: by the Node peer on one prefix and by bullpy on
another. The keyspaces are then compared key by key (types, members, order, scores, hash fields and
values) after normalising what legitimately differs between two runs: the clock (only for repeatable
iterations, whose timestamp Node always takes from the clock) and nothing else. Explicit ``timestamp``
options make every other job byte-identical.

Where bullpy deliberately diverges from Node (docs/divergences.md), the test names exactly the
difference it expects and nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


import bullpy

from ..conftest import keyspace
from .peer import Peer

T0 = 1795800000000  # a fixed creation time, so both runs write the same bytes
CAMEL = {
    "job_id": "jobId", "remove_on_complete": "removeOnComplete", "remove_on_fail": "removeOnFail",
    "stack_trace_limit": "stackTraceLimit", "prevent_parsing_data": "preventParsingData",
    "start_date": "startDate", "end_date": "endDate",
}


def camel(opts: Any) -> Any:
    """Bull's names for the option keys (and for those of ``repeat``); data and option values keep theirs."""
    if not isinstance(opts, dict):
        return opts
    out = {CAMEL.get(k, k): v for k, v in opts.items()}
    if isinstance(out.get("repeat"), dict):
        out["repeat"] = {CAMEL.get(k, k): v for k, v in out["repeat"].items()}
    return out


Step = tuple[Any, ...]

PRODUCER_STEPS: list[Step] = [
    ("add", None, {"a": 1}, {"timestamp": T0}),
    ("add", "email", {"to": "ünï cødé", "n": [1, 2.5, -0.0, 1e21, 1e-7]}, {"timestamp": T0 + 1}),
    ("add", None, {"number": "5511999999999", "message": "hi", "delay": 0},
     {"attempts": 3, "backoff": {"type": "exponential", "delay": 2000}, "timestamp": T0 + 2}),
    ("add", None, {}, {"attempts": 2, "backoff": 5000, "timestamp": T0 + 3}),
    ("add", None, {"p": 5}, {"priority": 5, "timestamp": T0 + 4}),
    ("add", None, {"p": 2}, {"priority": 2, "timestamp": T0 + 5}),
    ("add", None, {"p": 2, "second": True}, {"priority": 2, "timestamp": T0 + 6}),
    ("add", None, {"later": True}, {"delay": 60000, "timestamp": T0 + 7}),
    ("add", None, {"lifo": True}, {"lifo": True, "timestamp": T0 + 8}),
    ("add", None, {"c": "first"}, {"job_id": "my-custom-id", "timestamp": T0 + 9}),
    ("add", None, {"c": "dup"}, {"job_id": "my-custom-id", "timestamp": T0 + 10}),
    ("add", "edge", {"x": 1}, {"job_id": "ünï cødé:{x} 1", "timestamp": T0 + 11}),
    ("add", None, {"num": True}, {"job_id": 12345, "timestamp": T0 + 12}),
    ("add", None, {}, {"remove_on_complete": 10, "remove_on_fail": {"age": 3600, "count": 100},
                       "timestamp": T0 + 13}),
    ("add", None, {}, {"remove_on_complete": True, "remove_on_fail": True, "timestamp": T0 + 14}),
    ("add", None, {}, {"timeout": 5000, "stack_trace_limit": 3, "timestamp": T0 + 15}),
    ("add", None, "raw-not-json", {"prevent_parsing_data": True, "timestamp": T0 + 16}),
    ("add", None, {"d": 1}, {"debounce": {"id": "deb1"}, "timestamp": T0 + 17}),
    ("add", None, {"d": 2}, {"debounce": {"id": "deb1"}, "timestamp": T0 + 18}),
    ("add", None, None, {"timestamp": T0 + 19}),
    ("add", "delayed-prio", {}, {"delay": 120000, "priority": 3, "timestamp": T0 + 20}),
    ("bulk", [
        {"name": "bn", "data": {"b": 1}, "opts": {"priority": 2, "timestamp": T0 + 21}},
        {"data": {"b": 2}, "opts": {"timestamp": T0 + 22}},
        {"name": "bn", "data": {"b": 3}, "opts": {"delay": 5000, "timestamp": T0 + 23}},
    ]),
    ("add", "daily", {"r": 1}, {"repeat": {"every": 86_400_000}}),
    ("add", "tzjob", {"r": 2}, {"job_id": "rid", "repeat": {"cron": "0 9 * * 1", "tz": "Europe/Paris",
                                                            "end_date": 4102444800000, "limit": 50}}),
]

MANAGEMENT_STEPS: list[Step] = [
    ("job", "1", "update", {"a": 2, "updated": "ü"}),
    ("job", "1", "progress", 50),
    ("job", "2", "progress", {"step": 2}),
    ("job", "1", "log", "first line"),
    ("job", "1", "log", "second line"),
    ("pause",),
    ("add", None, {"while": "paused"}, {"timestamp": T0 + 30}),
    ("add", None, {"while": "paused", "p": 1}, {"priority": 1, "timestamp": T0 + 31}),
    ("resume",),
    ("job", "8", "promote"),
    ("job", "2", "remove"),
    ("clean", 0, "wait", 2),
    ("pause",),
    ("add", None, {"paused": "again"}, {"timestamp": T0 + 32}),
]


class NodeRunner:
    def __init__(self, peer: Peer, queue: dict[str, str]) -> None:
        self.peer, self.queue = peer, queue

    def __call__(self, step: Step) -> None:
        kind, *args = step
        if kind == "add":
            name, data, opts = args
            # Node reads a string first argument as the job name, so string data needs an explicit name.
            head = [name] if name is not None else (["__default__"] if isinstance(data, str) else [])
            # JavaScript has no None: Node's `add(undefined)` is what a Python None stands for.
            self.peer.call(self.queue, "add", *head, data if data is not None else {}, camel(opts))
        elif kind == "bulk":
            self.peer.call(self.queue, "addBulk", [
                {k: camel(v) if k == "opts" else v for k, v in item.items()} for item in args[0]
            ])
        elif kind == "job":
            job_id, method, *rest = args
            self.peer.job(self.queue, job_id, method, *rest)
        elif kind in ("pause", "resume"):
            self.peer.call(self.queue, kind)
        elif kind == "clean":
            self.peer.call(self.queue, "clean", *args)
        elif kind == "empty":
            self.peer.call(self.queue, "empty")
        else:  # pragma: no cover
            raise AssertionError(kind)


class PythonRunner:
    def __init__(self, queue: bullpy.Queue) -> None:
        self.queue = queue

    def __call__(self, step: Step) -> None:
        kind, *args = step
        q = self.queue
        if kind == "add":
            name, data, opts = args
            q.add(data, name=name, **opts)
        elif kind == "bulk":
            q.add_bulk(args[0])
        elif kind == "job":
            job_id, method, *rest = args
            job = q.get_job(job_id)
            assert job is not None, job_id
            {"update": job.update, "progress": job.update_progress, "log": job.log,
             "promote": job.promote, "remove": job.remove}[method](*rest)
        elif kind == "pause":
            q.pause()
        elif kind == "resume":
            q.resume()
        elif kind == "clean":
            q.clean(*args)
        elif kind == "empty":
            q.empty()
        else:  # pragma: no cover
            raise AssertionError(kind)


def normalise(space: dict[str, Any], name: str) -> dict[str, Any]:
    """Blank what depends on the clock: repeatable iterations' creation time (Node takes it from the
    clock whatever the caller says) and the debounce key's TTL (not captured at all)."""
    out: dict[str, Any] = {}
    for key, (kind, value) in space.items():
        job_part = key[len(name) + 1 :]
        if kind == "hash" and job_part.startswith("repeat:"):
            value = dict(value)
            value["timestamp"] = "<now>"
            value["delay"] = "<next - now>"
            opts = json.loads(value["opts"])
            opts["timestamp"], opts["delay"] = "<now>", "<next - now>"
            value["opts"] = json.dumps(opts)
        out[key] = (kind, value)
    return out


def run_both(
    bull: Peer, redis_url: str, prefixes: tuple[str, str], steps: list[Step], name: str = "diff q:{1}"
) -> tuple[dict[str, Any], dict[str, Any], Callable[[], None]]:
    node_prefix, py_prefix = prefixes
    node = NodeRunner(bull, {"name": name, "prefix": node_prefix})
    # The name keeps its ':' on purpose (keys are joined verbatim); bullpy wants the explicit opt-in for it.
    queue = bullpy.Queue(name, redis_url, prefix=py_prefix, allow_colon=True)
    python = PythonRunner(queue)
    for step in steps:
        node(step)
        python(step)
    client = queue.client
    return (
        normalise(keyspace(client, node_prefix), name),
        normalise(keyspace(client, py_prefix), name),
        queue.close,
    )


def assert_same(node: dict[str, Any], python: dict[str, Any]) -> None:
    assert sorted(node) == sorted(python), "different keys"
    for key in node:
        assert node[key] == python[key], f"key {key!r} differs"


def test_producer_operations_leave_identical_keyspaces(bull: Peer, redis_url: str, two_prefixes: tuple[str, str]) -> None:
    node, python, close = run_both(bull, redis_url, two_prefixes, PRODUCER_STEPS)
    close()
    assert len(node) >= 30
    assert_same(node, python)


def test_management_operations_leave_identical_keyspaces(bull: Peer, redis_url: str, two_prefixes: tuple[str, str]) -> None:
    node, python, close = run_both(bull, redis_url, two_prefixes, PRODUCER_STEPS + MANAGEMENT_STEPS)
    close()
    assert node["diff q:{1}:meta-paused"] == ("string", "1")
    assert_same(node, python)


def test_empty_differs_only_where_node_orphans_data(
    bull: Peer, redis_url: str, two_prefixes: tuple[str, str]
) -> None:
    """Documented divergence: Node's empty() leaves the hashes of delayed jobs, the logs of every job it
    removes and their debounce markers behind, and on a paused queue deletes meta-paused but keeps
    meta.paused; bullpy removes all of those and keeps the queue paused."""
    name = "diff q:{1}"
    steps = PRODUCER_STEPS + MANAGEMENT_STEPS + [("empty",)]
    node, python, close = run_both(bull, redis_url, two_prefixes, steps, name)
    close()
    only_node = {k[len(name) + 1 :]: v for k, v in node.items() if k not in python}
    only_python = {k[len(name) + 1 :]: v for k, v in python.items() if k not in node}
    orphan_hashes = {k for k, (kind, _) in only_node.items() if kind == "hash"}
    assert orphan_hashes, "Node's empty() was expected to orphan the delayed jobs"
    for job_id in orphan_hashes:
        opts = json.loads(node[f"{name}:{job_id}"][1]["opts"])
        assert "repeat" in opts or opts.get("delay", 0) > 0, f"{job_id} was not a delayed job"
    for key, (kind, value) in only_node.items():
        if key in orphan_hashes:
            continue
        if key.endswith(":logs"):
            assert f"{name}:{key[: -len(':logs')]}" not in python  # logs of a job empty() removed
        else:
            assert key.startswith("de:") and f"{name}:{value}" not in python, key  # its debounce marker
    # bullpy keeps the queue paused (meta-paused stays); Node dropped it while meta.paused remained.
    assert set(only_python) == {"meta-paused"}, only_python
    for key in set(node) & set(python):
        assert node[key] == python[key], f"key {key!r} differs"
