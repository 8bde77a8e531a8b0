"""Stepped management on queues Node Bull filled ends where Node's own operation ends, and Node workers
running meanwhile lose and double nothing.

A real Node Bull 4.16.5 fills one queue (jobs its worker completed and failed, with logs; waiting jobs with
priorities, lifo jobs, a debounced job, delayed jobs; old ones and young ones). Each case copies that queue
to two prefixes (DUMP/RESTORE), lets Node run its operation on one copy and bullpy its stepped operation
(batch size 7) on the other, then compares what they return and the keyspaces they leave, naming exactly the
documented divergences (docs/divergences.md). The second half runs bullpy's stepped operations while a Node
worker processes the same queue and checks that every job is processed exactly once or removed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

import bullpy
from bullpy._core import scripts

from ..conftest import delete_prefix, keyspace
from .peer import Peer, PeerQueue

NAME = "chunk q:{1}"
GAP = 4.0  # seconds between the fill's old jobs and its young ones


@dataclass(frozen=True)
class Template:
    prefix: str
    split_ms: int  # halfway between the old jobs and the young ones

    def grace_between(self) -> int:
        """A grace that, from now on for about GAP/2 seconds, takes the old jobs and leaves the young ones:
        the same split whenever a case runs, however long the module has been running."""
        return int(time.time() * 1000) - self.split_ms


@pytest.fixture(scope="module")
def template(peer: Peer, redis_client: redis.Redis) -> Iterator[Template]:
    """The queue Node filled and left still (no worker, nothing locked but one job)."""
    prefix = f"bullpy-test-{uuid.uuid4().hex[:8]}"
    queue = PeerQueue(NAME, prefix=prefix)
    peer.process(queue, concurrency=5, behaviour={"log": ["sent"]})
    for n in range(24):
        peer.call(queue, "add", {"n": n})
    for n in range(16):
        peer.call(queue, "add", {"n": n, "__peer": {"fail": "boom"}})
    peer.wait_for_counts(queue, completed=24, failed=16, timeout=20)
    peer.close(queue)
    for n in range(20):
        peer.call(queue, "add", {"old": n})
    for n, priority in enumerate((3, 1, 2, 1)):
        peer.call(queue, "add", {"prioritised": n}, {"priority": priority})
    for n in range(3):
        peer.call(queue, "add", {"lifo": n}, {"lifo": True})
    peer.call(queue, "add", {"debounced": 1}, {"debounce": {"id": "deb"}})
    for n in range(8):
        peer.call(queue, "add", {"later": n}, {"delay": 60_000 + n})
    old_done = time.time()
    time.sleep(GAP)
    young_from = time.time()
    for n in range(10):
        peer.call(queue, "add", {"young": n})
    for n in range(4):
        peer.call(queue, "add", {"young later": n}, {"delay": 90_000 + n})
    # Bull's stalled-check key lives for one stalledInterval (30 s): it would expire while the module runs,
    # between one copy and the next. No case depends on it.
    redis_client.delete(f"{prefix}:{NAME}:stalled-check")
    volatile = [k for k in redis_client.scan_iter(f"{prefix}:*", count=1000) if redis_client.pttl(k) > 0]
    assert not volatile, f"keys that would expire during the module: {volatile}"
    locked = redis_client.lrange(f"{prefix}:{NAME}:wait", 5, 5)[0]
    redis_client.set(f"{prefix}:{NAME}:{locked}:lock", "a-node-worker")
    peer.close(queue)
    yield Template(prefix, int((old_done + young_from) * 500))
    delete_prefix(redis_client, prefix)


@pytest.fixture
def copies(template: Template, redis_url: str, redis_client: redis.Redis) -> Iterator[Callable[..., list[str]]]:
    """``copies(n, paused=False)``: n fresh prefixes holding the template queue (paused as Node pauses)."""
    raw = redis.Redis.from_url(redis_url)
    made: list[str] = []

    def make(n: int = 2, paused: bool = False) -> list[str]:
        out = []
        for _ in range(n):
            prefix = f"bullpy-test-{uuid.uuid4().hex[:8]}"
            made.append(prefix)  # before copying: a copy that fails half-way is deleted too
            for key in raw.scan_iter(f"{template.prefix}:*".encode(), count=1000):
                ttl = raw.pttl(key)
                raw.restore(prefix.encode() + key[len(template.prefix):], max(ttl, 0), raw.dump(key))  # type: ignore[arg-type]
            if paused:
                base = f"{prefix}:{NAME}:"
                raw.rename(base + "wait", base + "paused")
                raw.set(base + "meta-paused", "1")
                raw.hset(base + "meta", "paused", "1")
            out.append(prefix)
        return out

    yield make
    raw.close()
    for prefix in made:
        delete_prefix(redis_client, prefix)


def snapshot(client: redis.Redis, prefix: str) -> dict[str, Any]:
    return json.loads(json.dumps(keyspace(client, prefix)).replace(prefix, "<prefix>"))


def assert_same(node: dict[str, Any], python: dict[str, Any]) -> None:
    assert sorted(node) == sorted(python), set(node) ^ set(python)
    for key, value in node.items():
        assert value == python[key], key


# --- the same end as Node's own operation --------------------------------------------------------------------
@pytest.mark.parametrize("state", ["wait", "paused", "delayed", "completed", "failed", "active"])
def test_stepped_clean_ends_where_node_clean_ends(
    bull: Peer, template: Template, copies: Callable[..., list[str]], redis_client: redis.Redis, state: str
) -> None:
    for limit in (0, 3, 25):
        if state == "delayed" and limit:
            continue  # Node never removes delayed jobs with a limit (divergence 7)
        for between in (False, True):
            node_prefix, py_prefix = copies(2, paused=state == "paused")
            grace = template.grace_between() if between else 0
            theirs = PeerQueue(NAME, prefix=node_prefix)
            ours = bullpy.Queue(NAME, redis_client, prefix=py_prefix, allow_colon=True)
            before = snapshot(redis_client, py_prefix)
            would = ours.clean(grace, state, limit, dry_run=True, batch_size=7)
            assert snapshot(redis_client, py_prefix) == before
            removed_by_node = bull.call(theirs, "clean", grace, state, limit)
            removed = ours.clean(grace, state, limit, batch_size=7)
            assert removed == would == removed_by_node, (limit, grace)
            assert removed or state == "active"
            if between and not limit and state in ("wait", "paused", "delayed"):
                assert ours.get_job_counts()[{"wait": "waiting"}.get(state, state)], "the young jobs are kept"
            assert_same(snapshot(redis_client, node_prefix), snapshot(redis_client, py_prefix))
            bull.close(theirs)
            ours.close()


@pytest.mark.parametrize("paused", [False, True])
def test_stepped_retry_jobs_ends_where_node_retry_jobs_ends(
    bull: Peer, copies: Callable[..., list[str]], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch,
    paused: bool,
) -> None:
    node_prefix, py_prefix = copies(2, paused=paused)
    bull.call(PeerQueue(NAME, prefix=node_prefix), "retryJobs", {"count": 7})
    monkeypatch.setattr(scripts, "STEP_BUDGET_US", 0)  # a few jobs per step
    bullpy.Queue(NAME, redis_client, prefix=py_prefix, allow_colon=True).retry_jobs(count=7)
    assert_same(snapshot(redis_client, node_prefix), snapshot(redis_client, py_prefix))
    assert redis_client.zcard(f"{py_prefix}:{NAME}:failed") == 0


def test_promote_jobs_in_batches_ends_where_node_promotes_each(
    bull: Peer, copies: Callable[..., list[str]], redis_client: redis.Redis
) -> None:
    node_prefix, py_prefix = copies(2)
    theirs = PeerQueue(NAME, prefix=node_prefix)
    for job_id in redis_client.zrange(f"{node_prefix}:{NAME}:delayed", 0, -1):
        bull.job(theirs, job_id, "promote")
    promoted = bullpy.Queue(NAME, redis_client, prefix=py_prefix, allow_colon=True).promote_jobs(batch_size=7)
    assert len(promoted) == 12
    assert_same(snapshot(redis_client, node_prefix), snapshot(redis_client, py_prefix))


@pytest.mark.parametrize("pattern", ["*", "1*", "?", "[2-4]*", "nomatch"])
def test_stepped_remove_jobs_ends_where_node_remove_jobs_ends(
    bull: Peer, copies: Callable[..., list[str]], redis_client: redis.Redis, pattern: str
) -> None:
    node_prefix, py_prefix = copies(2)
    ours = bullpy.Queue(NAME, redis_client, prefix=py_prefix, allow_colon=True)

    def job_hashes(space: dict[str, Any]) -> set[str]:
        return {key[len(NAME) + 1 :] for key, (kind, _) in space.items() if kind == "hash"}

    would = ours.remove_jobs(pattern, dry_run=True, batch_size=7)
    before = snapshot(redis_client, node_prefix)
    bull.call(PeerQueue(NAME, prefix=node_prefix), "removeJobs", pattern)  # Node returns nothing
    removed = ours.remove_jobs(pattern, batch_size=7)
    node, python = snapshot(redis_client, node_prefix), snapshot(redis_client, py_prefix)
    assert sorted(removed) == sorted(would) == sorted(job_hashes(before) - job_hashes(node))
    assert removed or pattern == "nomatch"
    # Divergence 6: bullpy also deletes the debounce marker of a removed job (as job.remove() does).
    marker = f"{NAME}:de:deb"
    debounced_removed = marker in node and node[marker][1] in removed
    assert set(node) - set(python) == ({marker} if debounced_removed else set())
    assert_same({k: v for k, v in node.items() if k in python}, python)


def test_stepped_empty_ends_as_one_step_and_differs_from_node_only_where_node_orphans(
    bull: Peer, copies: Callable[..., list[str]], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    node_prefix, py_prefix, whole_prefix = copies(3)
    bull.call(PeerQueue(NAME, prefix=node_prefix), "empty")
    assert bullpy.Queue(NAME, redis_client, prefix=py_prefix, allow_colon=True).empty(batch_size=7) == 50
    with monkeypatch.context() as patch:
        patch.setattr(scripts, "STEP_BUDGET_US", 10**9)
        assert bullpy.Queue(NAME, redis_client, prefix=whole_prefix, allow_colon=True).empty(batch_size=10**9) == 50
    python = snapshot(redis_client, py_prefix)
    assert_same(python, snapshot(redis_client, whole_prefix))
    node = snapshot(redis_client, node_prefix)
    # Divergence 1: Node leaves the delayed jobs' hashes, and the logs and debounce marker of what it removed.
    orphans = set(node) - set(python)
    assert any(node[key][0] == "hash" for key in orphans)
    for key in orphans:
        kind, value = node[key]
        if kind == "hash":
            assert json.loads(value["opts"])["delay"] > 0, key
        else:
            assert key.startswith(f"{NAME}:de:") or key.endswith(":logs"), key
    assert not set(python) - set(node)
    assert_same({k: v for k, v in node.items() if k in python}, python)


def test_stepped_obliterate_ends_where_node_obliterate_ends(
    bull: Peer, copies: Callable[..., list[str]], redis_client: redis.Redis
) -> None:
    node_prefix, py_prefix = copies(2)
    bull.call(PeerQueue(NAME, prefix=node_prefix), "obliterate", {"count": 7})
    bullpy.Queue(NAME, redis_client, prefix=py_prefix, allow_colon=True).obliterate(count=7)
    left, node = snapshot(redis_client, py_prefix), snapshot(redis_client, node_prefix)
    # Divergence 8: Node reads a job's debounce id after deleting its hash, so it leaves the marker.
    assert set(node) - set(left) == {f"{NAME}:de:deb"}
    assert_same({k: v for k, v in node.items() if k in left}, left)
    # Left in both: the lock of a waiting job (obliterate deletes the locks of active jobs only).
    assert len(left) == 1 and all(key.endswith(":lock") for key in left), left


# --- Node workers meanwhile -----------------------------------------------------------------------------------
def slowed(queue: bullpy.Queue, monkeypatch: pytest.MonkeyPatch, pause: float = 0.003) -> None:
    """Each script call of ``queue`` is followed by a short pause, so the steps spread over the workers' run."""
    run = queue._runner.run

    def slow(call: scripts.Call[Any]) -> Any:
        reply = run(call)
        time.sleep(pause)
        return reply

    monkeypatch.setattr(queue._runner, "run", slow)


def runs_by_job(bull: Peer, queue: bullpy.Queue) -> dict[str, list[str]]:
    runs: dict[str, list[str]] = {}
    for record in bull.processed(queue):
        runs.setdefault(record["id"], []).append(record["outcome"])
    return runs


def nothing_stuck(queue: bullpy.Queue, client: redis.Redis) -> None:
    counts = queue.get_job_counts()
    assert (counts["waiting"], counts["active"], counts["paused"], counts["delayed"]) == (0, 0, 0, 0), counts
    for state in ("completed", "failed"):
        assert all(client.exists(queue.keys.job(i)) for i in client.zrange(queue.keys(state), 0, -1))


def test_clean_of_waiting_jobs_while_node_workers_run(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [j.id for j in queue.add_bulk([{"data": {"n": n}} for n in range(400)])]  # type: ignore[union-attr]
    time.sleep(0.01)
    bull.process(queue, concurrency=8, behaviour={"sleep": 5})
    slowed(queue, monkeypatch)
    removed = queue.clean(0, "wait", batch_size=7)
    bull.wait_for_counts(queue, waiting=0, active=0, timeout=30)
    runs = runs_by_job(bull, queue)
    assert removed and runs, "the clean and the workers were expected to overlap"
    assert all(outcomes == ["completed"] for outcomes in runs.values())  # none ran twice
    assert not set(removed) & set(runs)
    assert set(removed) | set(runs) == set(ids)  # none lost
    assert redis_client.zcard(queue.keys("completed")) == len(runs)
    nothing_stuck(queue, redis_client)


def test_retry_jobs_while_node_workers_run(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    bull.process(queue, concurrency=8, behaviour={"failTimes": 1, "sleep": 2})
    ids = [j.id for j in queue.add_bulk([{"data": {"n": n}} for n in range(300)])]  # type: ignore[union-attr]
    slowed(queue, monkeypatch)
    monkeypatch.setattr(scripts, "STEP_BUDGET_US", 0)
    deadline = time.monotonic() + 60
    while redis_client.zcard(queue.keys("completed")) < len(ids):
        queue.retry_jobs(count=7)  # runs while the first attempts still fail
        assert time.monotonic() < deadline, queue.get_job_counts()
        time.sleep(0.01)
    runs = runs_by_job(bull, queue)
    assert set(runs) == set(ids)
    assert all(outcomes == ["failed", "completed"] for outcomes in runs.values()), Counter(map(tuple, runs.values()))
    nothing_stuck(queue, redis_client)
    assert redis_client.zcard(queue.keys("failed")) == 0


def test_remove_jobs_and_clean_of_finished_jobs_while_node_workers_run(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [j.id for j in queue.add_bulk([{"data": {"n": n}} for n in range(400)])]  # type: ignore[union-attr]
    bull.process(queue, concurrency=8, behaviour={"sleep": 5, "log": ["sent"]})
    slowed(queue, monkeypatch)
    cleaned = queue.clean(0, "completed", batch_size=7)
    removed = queue.remove_jobs("*", batch_size=7)
    bull.wait_for_counts(queue, waiting=0, active=0, timeout=30)
    runs = runs_by_job(bull, queue)
    assert all(outcomes == ["completed"] for outcomes in runs.values())
    assert not set(cleaned) & set(removed)
    # Each job ran once (and was then cleaned, removed or kept as completed), or was removed unrun.
    completed = set(redis_client.zrange(queue.keys("completed"), 0, -1))
    assert set(cleaned) <= set(runs) and completed <= set(runs)
    assert set(runs) | set(removed) == set(ids)
    assert set(runs) - set(cleaned) - set(removed) == completed
    for job_id in set(cleaned) | set(removed):
        assert not redis_client.exists(queue.keys.job(job_id), queue.keys.logs(job_id))
    nothing_stuck(queue, redis_client)


def test_empty_while_node_workers_run(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [j.id for j in queue.add_bulk([{"data": {"n": n}} for n in range(400)])]  # type: ignore[union-attr]
    bull.process(queue, concurrency=8, behaviour={"sleep": 5})
    slowed(queue, monkeypatch)
    removed = queue.empty(batch_size=7)
    bull.wait_for_counts(queue, waiting=0, active=0, timeout=30)
    runs = runs_by_job(bull, queue)
    assert removed and runs
    assert all(outcomes == ["completed"] for outcomes in runs.values())
    assert removed + len(runs) == len(ids)
    assert redis_client.zcard(queue.keys("completed")) == len(runs)
    nothing_stuck(queue, redis_client)
