"""Long management operations run in bounded steps and end exactly where one step over everything ends.

clean, empty, obliterate, remove_jobs, retry_jobs and promote_jobs work a few milliseconds (and at most
``batch_size`` jobs) per script call. Each test fills two identical queues, runs the operation in many tiny
steps on one (batch size 7, or a zero time budget: one job per step) and in one step on the other (no
batch limit, an unbounded budget), and compares what they return and the keyspaces they leave. The queues
hold what makes the walks hard: locked jobs, prioritised and lifo jobs, logs, debounce markers, rate-limited
jobs, orphan hashes, the queue's own hashes. Interleaving tests then move jobs between steps (a worker
taking them, a producer adding them) and check that nothing is lost, doubled or left half-removed.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import bullpy
import bullpy._management
import bullpy.queue
from bullpy._core import scripts

from .conftest import delete_prefix, keyspace, scanned_keys

NAME = "q"
NOW = 1_796_000_000_000
ONE_STEP = 10**9
STATES = ("wait", "active", "paused", "delayed", "completed", "failed")


def fill(client: redis.Redis, prefix: str, seed: int, *, paused: bool = False) -> None:
    """A queue of ~200 jobs in every state, the same for the same seed (timestamps spread over 100 s)."""
    rnd = random.Random(seed)
    base = f"{prefix}:{NAME}:"
    pipe = client.pipeline(transaction=False)

    def job(i: int | str, **extra: Any) -> int:
        ts = NOW - rnd.randint(0, 100_000)
        fields = {"name": "__default__", "data": json.dumps({"n": i}), "opts": '{"attempts":1,"delay":0}',
                  "timestamp": ts, "delay": 0, "priority": 0, **extra}
        pipe.hset(base + str(i), mapping=fields)
        if rnd.random() < 0.2:
            pipe.rpush(base + f"{i}:logs", "a row")
        return ts

    i = 0
    for _ in range(60):
        i += 1
        priority = rnd.choice([0, 0, 0, 1, 2])
        extra = {"processedOn": NOW - rnd.randint(0, 100_000)} if rnd.random() < 0.2 else {}
        job(i, priority=priority, **extra)
        (pipe.rpush if rnd.random() < 0.1 else pipe.lpush)(base + "wait", str(i))  # a few lifo jobs
        if priority:
            pipe.zadd(base + "priority", {str(i): priority})
    job("c-5")
    pipe.lpush(base + "wait", "c-5")
    for _ in range(15):
        i += 1
        job(i, processedOn=NOW - rnd.randint(0, 100_000))
        pipe.lpush(base + "active", str(i))
        if rnd.random() < 0.5:
            pipe.set(base + f"{i}:lock", "a-worker-token")
    for _ in range(30):
        i += 1
        ts = job(i, delay=5000)
        pipe.zadd(base + "delayed", {str(i): (ts + 5000) * 4096 + (i & 0xFFF)})
        if rnd.random() < 0.2:
            pipe.hset(base + "limiter:index", str(i), base + "limiter:limited")
            pipe.sadd(base + "limiter:limited", str(i))
    for state in ("completed", "failed"):
        for _ in range(40):
            i += 1
            finished = NOW - rnd.randint(0, 100_000)
            outcome = {"failedReason": "boom"} if state == "failed" else {"returnvalue": "1"}
            job(i, processedOn=finished - 5, finishedOn=finished, **outcome)
            pipe.zadd(base + state, {str(i): finished})
    pipe.hset(base + "3", "deid", "d1")
    pipe.set(base + "de:d1", "3")
    for orphan in ("orphan-1", "orphan-2"):
        job(orphan)
    pipe.hset(base + "meta", "paused", "1")
    pipe.hset(base + "metrics:completed", "count", "3")
    pipe.set(base + "id", str(i))
    if paused:
        pipe.rename(base + "wait", base + "paused")
        pipe.set(base + "meta-paused", "1")
    pipe.execute()


@pytest.fixture
def pair(redis_client: redis.Redis) -> Iterator[Callable[..., tuple[bullpy.Queue, bullpy.Queue]]]:
    """``make(seed)``: two identical queues (stepped, one-step); their keys are deleted afterwards."""
    prefixes: list[str] = []
    queues: list[bullpy.Queue] = []

    def make(seed: int = 0, paused: bool = False) -> tuple[bullpy.Queue, bullpy.Queue]:
        made = []
        for _ in range(2):
            prefix = f"bullpy-test-{uuid.uuid4().hex[:8]}"
            prefixes.append(prefix)
            fill(redis_client, prefix, seed, paused=paused)
            made.append(bullpy.Queue(NAME, redis_client, prefix=prefix))
        queues.extend(made)
        return made[0], made[1]

    yield make
    for queue in queues:
        queue.close()
    for prefix in prefixes:
        delete_prefix(redis_client, prefix)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bullpy.queue, "now_ms", lambda: NOW)  # adds
    monkeypatch.setattr(bullpy._management, "now_ms", lambda: NOW)  # clean


class Steps:
    """Counts a queue's script calls by name, and sets the step budget for what runs inside ``budget``."""

    def __init__(self, queue: bullpy.Queue, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, int] = {}
        self.monkeypatch = monkeypatch
        run = queue._runner.run

        def counting(call: scripts.Call[Any]) -> Any:
            self.calls[call.script] = self.calls.get(call.script, 0) + 1
            return run(call)

        monkeypatch.setattr(queue._runner, "run", counting)

    def budget(self, us: int) -> None:
        self.monkeypatch.setattr(scripts, "STEP_BUDGET_US", us)


def same(a: bullpy.Queue, b: bullpy.Queue, client: redis.Redis) -> None:
    def normalised(queue: bullpy.Queue) -> dict[str, Any]:
        # limiter:index values name the queue's own key: drop the prefix so the two runs compare.
        return json.loads(json.dumps(keyspace(client, queue.prefix)).replace(queue.prefix, "<prefix>"))

    left, right = normalised(a), normalised(b)
    assert sorted(left) == sorted(right), set(left) ^ set(right)
    for key in left:
        assert left[key] == right[key], key


def one_step(queue: bullpy.Queue, monkeypatch: pytest.MonkeyPatch, action: Callable[[], Any]) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr(scripts, "STEP_BUDGET_US", ONE_STEP)
        return action()


# --- clean --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("limit", [0, 1, 7, 25])
@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry"])
def test_clean_in_steps_ends_as_one_step(
    pair: Callable[..., tuple[bullpy.Queue, bullpy.Queue]], redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch, state: str, limit: int, dry_run: bool,
) -> None:
    for grace in (0, 50_000):
        stepped, whole = pair(seed=limit, paused=state == "paused")
        steps = Steps(stepped, monkeypatch)
        got = stepped.clean(grace, state, limit, dry_run=dry_run, batch_size=7)
        want = one_step(whole, monkeypatch, lambda q=whole, g=grace: q.clean(g, state, limit, dry_run=dry_run,
                                                                             batch_size=ONE_STEP))
        assert got == want
        assert got or state == "active"
        same(stepped, whole, redis_client)
        if len(got) > 7:
            assert steps.calls["clean_jobs_in_set"] > len(got) // 7


@pytest.mark.parametrize("state", STATES)
def test_clean_with_no_time_budget_takes_one_job_per_step(
    pair: Callable[..., tuple[bullpy.Queue, bullpy.Queue]], redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch, state: str,
) -> None:
    for limit, dry_run in ((0, False), (9, False), (0, True), (30, True)):
        stepped, whole = pair(seed=3, paused=state == "paused")
        steps = Steps(stepped, monkeypatch)
        steps.budget(0)
        got = stepped.clean(30_000, state, limit, dry_run=dry_run)
        want = one_step(whole, monkeypatch, lambda q=whole, n=limit, d=dry_run: q.clean(30_000, state, n, dry_run=d,
                                                                                        batch_size=ONE_STEP))
        assert got == want
        same(stepped, whole, redis_client)
        assert steps.calls["clean_jobs_in_set"] >= len(got)


def test_clean_keeps_node_order_and_locked_jobs(queue: bullpy.Queue, redis_client: redis.Redis) -> None:
    ids = [j.id for j in queue.add_bulk([{"data": {"n": n}, "opts": {"timestamp": NOW - 1000}}
                                         for n in range(20)])]  # type: ignore[union-attr]
    redis_client.set(queue.keys.lock(ids[3]), "token")
    # Node lists the whole list left to right: newest first.
    assert queue.clean(0, "wait", dry_run=True, batch_size=3) == [i for i in reversed(ids) if i != ids[3]]
    # With a limit: windows of `limit` from the head, each read left to right ("4" is locked).
    assert queue.clean(0, "wait", 5, batch_size=2) == ["5", "3", "2", "1", "10"]
    assert redis_client.lrange(queue.keys("wait"), 0, -1) == [str(n) for n in [*range(20, 10, -1), 9, 8, 7, 6, 4]]


# --- empty, obliterate, retry_jobs, promote_jobs ---------------------------------------------------------------
@pytest.mark.parametrize("paused", [False, True])
@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_empty_in_steps_ends_as_one_step(
    pair: Callable[..., tuple[bullpy.Queue, bullpy.Queue]], redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch, paused: bool, batch_size: int,
) -> None:
    stepped, whole = pair(seed=batch_size, paused=paused)
    steps = Steps(stepped, monkeypatch)
    removed = stepped.empty(batch_size=batch_size)
    assert removed == one_step(whole, monkeypatch, lambda: whole.empty(batch_size=ONE_STEP)) == 91
    same(stepped, whole, redis_client)
    assert steps.calls["empty"] >= removed // batch_size
    assert stepped.count() == 0 and redis_client.exists(stepped.keys("meta-paused")) == paused
    for key in ("priority", "limiter:index", "limiter:limited"):
        assert not redis_client.exists(stepped.keys(key))


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_obliterate_in_steps_ends_as_one_step(
    pair: Callable[..., tuple[bullpy.Queue, bullpy.Queue]], redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch, batch_size: int,
) -> None:
    stepped, whole = pair(seed=batch_size)
    steps = Steps(stepped, monkeypatch)
    stepped.obliterate(force=True, count=batch_size)
    one_step(whole, monkeypatch, lambda: whole.obliterate(force=True, count=ONE_STEP))
    same(stepped, whole, redis_client)
    # What is left is what no list or set names (orphans), as Node's obliterate leaves them.
    left = {k.split(":", 2)[2] for k in redis_client.scan_iter(f"{stepped.prefix}:*")}
    assert {"orphan-1", "orphan-2"} <= left <= {"orphan-1", "orphan-2", "orphan-1:logs", "orphan-2:logs"}
    assert steps.calls["obliterate"] >= 186 // batch_size


@pytest.mark.parametrize("state", ["failed", "completed"])
@pytest.mark.parametrize("paused", [False, True])
def test_retry_jobs_in_steps_ends_as_one_step(
    pair: Callable[..., tuple[bullpy.Queue, bullpy.Queue]], redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch, state: str, paused: bool,
) -> None:
    stepped, whole = pair(seed=5, paused=paused)
    steps = Steps(stepped, monkeypatch)
    steps.budget(0)
    stepped.retry_jobs(count=7, state=state)
    one_step(whole, monkeypatch, lambda: whole.retry_jobs(count=ONE_STEP, state=state))
    same(stepped, whole, redis_client)
    assert steps.calls["retry_jobs"] >= 40 // 7
    assert redis_client.zcard(stepped.keys(state)) == 0


def test_promote_jobs_in_batches_ends_as_one_batch(
    pair: Callable[..., tuple[bullpy.Queue, bullpy.Queue]], redis_client: redis.Redis,
) -> None:
    stepped, whole = pair(seed=6)
    promoted = stepped.promote_jobs(batch_size=7)
    assert promoted == whole.promote_jobs(batch_size=ONE_STEP)
    assert len(promoted) == 30
    same(stepped, whole, redis_client)


# --- remove_jobs -----------------------------------------------------------------------------------------------
PATTERNS = ["*", "1*", "*5", "c-*", "[1-3]?", "orphan-*", "?", "nomatch", "meta", "*[^0-9]*", "1\\2"]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry"])
def test_remove_jobs_in_steps_ends_as_one_step(
    pair: Callable[..., tuple[bullpy.Queue, bullpy.Queue]], redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch, pattern: str, dry_run: bool,
) -> None:
    for seed, budget in ((1, None), (2, 0)):
        stepped, whole = pair(seed=seed, paused=seed == 2)
        steps = Steps(stepped, monkeypatch)
        if budget is not None:
            steps.budget(budget)
        got = stepped.remove_jobs(pattern, dry_run=dry_run, batch_size=7)
        want = one_step(whole, monkeypatch,
                        lambda q=whole: q.remove_jobs(pattern, dry_run=dry_run, batch_size=ONE_STEP))
        assert sorted(got) == sorted(want)
        assert len(got) == len(set(got))
        same(stepped, whole, redis_client)
        if not dry_run and pattern == "*":
            # Every unlocked job went; the locked ones and the queue's own hashes stay.
            assert stepped.count() == 0 and redis_client.zcard(stepped.keys("completed")) == 0
            assert redis_client.exists(stepped.keys("meta"), stepped.keys("metrics:completed")) == 2
            locked = [i for i in redis_client.lrange(stepped.keys("active"), 0, -1)
                      if redis_client.exists(stepped.keys.lock(i))]
            assert locked and all(redis_client.exists(stepped.keys.job(i)) for i in locked)


def test_remove_jobs_walks_the_lists_once_not_one_lrem_per_job(
    queue: bullpy.Queue, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue.add_bulk([{"data": {"n": n}, "opts": {"job_id": f"camp-{n}"}} for n in range(300)])
    steps = Steps(queue, monkeypatch)
    assert len(queue.remove_jobs("camp-1*", batch_size=50)) == 111
    # 300 listed ids, 50 per walk step: 6 steps on `wait`, 1 each on the empty `active` and `paused`.
    assert steps.calls["remove_listed_jobs"] == 8
    assert redis_client.llen(queue.keys("wait")) == 189
    assert "" not in redis_client.lrange(queue.keys("wait"), 0, -1)


def test_the_lua_glob_matches_as_redis_scan_match(redis_url: str, prefix: str) -> None:
    """remove_jobs matches listed ids with its own glob: it must agree with SCAN MATCH, byte for byte."""
    raw = redis.Redis.from_url(redis_url)
    rnd = random.Random(11)
    alphabet = [b"a", b"b", b"1", b"-", b"*", b"?", b"[", b"]", b"^", b"\\", b"\xc3\xbc", b"\xff", b"z"]
    ids = sorted({b"".join(rnd.choice([b"a", b"b", b"1", b"-", b"\xc3\xbc", b"z", b"]", b"\\", b"*", b"[", b"\xff"])
                           for _ in range(rnd.randint(1, 5))) for _ in range(200)})
    base = f"{prefix}:glob:".encode()
    raw.mset({base + i: b"1" for i in ids})
    source = (Path(bullpy.__file__).parent / "lua" / "includes" / "glob_match.lua").read_text(encoding="utf-8")
    matcher = raw.register_script(source + "\nlocal out = {}\nfor i = 2, #ARGV do\n"
                                  "  if glob_match(ARGV[1], ARGV[i]) then out[#out + 1] = ARGV[i] end\nend\nreturn out")
    escaped = scripts.glob_escape(base.decode()).encode()
    try:
        for _ in range(600):
            pattern = b"".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 6)))
            want = [k[len(base):] for k in scanned_keys(raw, escaped + pattern, 10_000)]
            assert sorted(matcher(args=[pattern, *ids])) == want, pattern
    finally:
        raw.delete(*(base + i for i in ids))  # not UTF-8: the prefix fixture's client cannot name them
        raw.close()


def test_priority_placement_is_bulls_linsert_from_either_end(redis_client: redis.Redis, prefix: str) -> None:
    """promote (and every other path to a waiting list) places a prioritised job as Bull's LINSERT does,
    reaching the place from the right end when that is shorter."""
    source = (Path(bullpy.__file__).parent / "lua" / "includes" / "priority_insert.lua").read_text(encoding="utf-8")
    place = redis_client.register_script(source + "\npriority_insert(KEYS[1], tonumber(ARGV[1]), ARGV[2], KEYS[2])")
    rnd = random.Random(7)
    wait, priority = f"{prefix}:p:wait", f"{prefix}:p:priority"
    for case in range(300):
        length = rnd.choice([0, 1, 5, 30, 200])
        ids = [f"j{case}-{i}" for i in range(length)]
        redis_client.delete(wait, priority)
        if ids:
            redis_client.rpush(wait, *ids)
        # Prioritised entries, some of them stale (not in the list): count may exceed the list's length.
        entries = {f"p{case}-{i}": rnd.randint(1, 5) for i in range(rnd.choice([0, 3, 40, 260]))}
        if entries:
            redis_client.zadd(priority, entries)
        new_priority = rnd.randint(1, 5)
        count = sum(1 for p in entries.values() if p <= new_priority) + 1
        # Bull: LINDEX len - (count - 1) (negative: from the right), then LINSERT BEFORE it, else RPUSH.
        expected = list(ids)
        at = len(ids) - (count - 1)
        at = at + len(ids) if at < 0 else at
        if 0 <= at < len(ids):
            expected.insert(expected.index(ids[at]), "new")
        else:
            expected.append("new")
        place(keys=[priority, wait], args=[new_priority, "new"])
        assert redis_client.lrange(wait, 0, -1) == expected, (case, length, count)


# --- interleaving: what moves between two steps ---------------------------------------------------------------
class Meanwhile:
    """Between two script calls of a queue, run ``action(step_number)`` on the side (a worker, a producer)."""

    def __init__(self, queue: bullpy.Queue, monkeypatch: pytest.MonkeyPatch, action: Callable[[int], None]) -> None:
        run = queue._runner.run
        self.steps = 0
        self.busy = False

        def interleaved(call: scripts.Call[Any]) -> Any:
            reply = run(call)
            if not self.busy:  # the action's own calls (a producer's add) run plainly
                self.busy = True
                self.steps += 1
                try:
                    action(self.steps)
                finally:
                    self.busy = False
            return reply

        monkeypatch.setattr(queue._runner, "run", interleaved)


def no_half_removed_jobs(queue: bullpy.Queue, client: redis.Redis) -> None:
    """Every listed id has its hash; no list holds a removal mark or an id twice."""
    for state in ("wait", "active", "paused"):
        ids = client.lrange(queue.keys(state), 0, -1)
        assert "" not in ids and len(ids) == len(set(ids)), state
        assert all(client.exists(queue.keys.job(i)) for i in ids), state
    for state in ("delayed", "completed", "failed"):
        assert all(client.exists(queue.keys.job(i)) for i in client.zrange(queue.keys(state), 0, -1)), state


@pytest.mark.parametrize("limit", [0, 40])
def test_clean_while_a_worker_takes_and_a_producer_adds(
    queue: bullpy.Queue, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    old = [j.id for j in queue.add_bulk([{"data": {"n": n}, "opts": {"timestamp": NOW - 60_000}}
                                         for n in range(120)])]  # type: ignore[union-attr]
    taken: list[str] = []
    added: list[str] = []

    def meanwhile(step: int) -> None:
        # A worker takes the next job (RPOPLPUSH, then its lock); a producer adds a fresh one.
        job_id = redis_client.rpoplpush(queue.keys("wait"), queue.keys("active"))
        if job_id:
            redis_client.set(queue.keys.lock(job_id), "worker")
            taken.append(job_id)
        job = queue.add({"n": f"new-{step}"}, timestamp=NOW + step)
        assert job is not None
        added.append(job.id)

    Meanwhile(queue, monkeypatch, meanwhile)
    removed = queue.clean(30_000, "wait", limit, batch_size=7)
    assert len(removed) == len(set(removed))
    assert not set(removed) & set(taken) and not set(removed) & set(added)  # taken: locked; added: too young
    if limit:
        assert len(removed) == limit
    else:
        assert set(old) - set(taken) == set(removed)  # every old job: removed, or taken by the worker
    assert redis_client.lrange(queue.keys("active"), 0, -1) == taken[::-1]
    no_half_removed_jobs(queue, redis_client)


def test_remove_jobs_while_jobs_move(queue: bullpy.Queue, redis_client: redis.Redis,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [j.id for j in queue.add_bulk([{"data": {"n": n}} for n in range(150)])]  # type: ignore[union-attr]
    done = queue.add({"n": "done"}, delay=60_000)
    assert done is not None
    taken: list[str] = []
    added: list[str] = []

    def meanwhile(step: int) -> None:
        job_id = redis_client.rpoplpush(queue.keys("wait"), queue.keys("active"))
        if job_id:
            redis_client.set(queue.keys.lock(job_id), "worker")
            taken.append(job_id)
        job = queue.add({"n": step})
        assert job is not None
        added.append(job.id)

    Meanwhile(queue, monkeypatch, meanwhile)
    removed = queue.remove_jobs("*", batch_size=7)
    assert len(removed) == len(set(removed)) and not set(removed) & set(taken)
    # Every job there at the start went, unless a worker holds it; jobs added meanwhile may have gone.
    assert set(ids + [done.id]) - set(taken) <= set(removed)
    assert set(removed) <= set(ids + [done.id] + added)
    no_half_removed_jobs(queue, redis_client)


def test_empty_while_a_producer_adds(queue: bullpy.Queue, redis_client: redis.Redis,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    queue.add_bulk([{"data": {"n": n}} for n in range(100)])
    queue.add_bulk([{"data": {"n": n}, "opts": {"delay": 60_000}} for n in range(20)])

    def meanwhile(step: int) -> None:
        if step < 10:
            queue.add({"n": f"new-{step}"}, priority=2)

    Meanwhile(queue, monkeypatch, meanwhile)
    removed = queue.empty(batch_size=7)
    assert 120 <= removed <= 129
    assert queue.count() == 0 and not redis_client.exists(queue.keys("priority"))
    no_half_removed_jobs(queue, redis_client)
