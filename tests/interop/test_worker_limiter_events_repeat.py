"""Python workers beside Node workers: the shared rate limiter, global and local events, repeatable jobs
and custom backoff strategies (issue "Done when" 3, 4 and 5 for Python workers).

Every test runs real Node Bull 4.16.5 (bridge/peer.js) and bullpy's Worker on one queue, or the same
work once under each, and checks what Redis holds and what Node observes. Expected repeat ids are
computed here from bull-protocol.md §3.4 with hashlib, independently of bullpy.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import bullpy
from bullpy.worker import Worker

from ..conftest import wait_until
from .peer import Peer, PeerQueue
from .pyworker import make_handler

MakeQueue = Callable[..., bullpy.Queue]


def ms() -> int:
    return int(time.time() * 1000)


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def repeat_key_every(name: str, every: int) -> str:
    return f"{name}:::{every}"  # name : jidPart(":") endPart(":") every


def repeat_key_cron(name: str, cron: str) -> str:
    return f"{name}::::{cron}"  # name : jidPart(":") endPart(":") tz-part(":") cron


def iteration_id(name: str, key: str, millis: int) -> str:
    return f"repeat:{md5(name + ':' + md5(key))}:{millis}"


@pytest.fixture
def make_worker() -> Iterator[Callable[..., Worker]]:
    """Start bullpy Workers; every one is closed afterwards."""
    made: list[Worker] = []

    def make(queue: bullpy.Queue, handler: Any, **settings: Any) -> Worker:
        worker = Worker(queue, handler, **settings)
        made.append(worker)
        return worker.start()

    yield make
    for worker in made:
        worker.close(timeout=5)


# --- 1. the shared rate limiter -------------------------------------------------------------------------
LIMIT_MAX, LIMIT_DURATION, LIMIT_JOBS = 10, 1000, 60


class CounterWatch:
    """Every write of one limiter counter as Redis ran it, on Redis's clock (MONITOR): PSETEX opens a window
    of `duration`, each INCR counts one more take in it. Bull's promise is `max` takes per such *fixed*
    window; the workers' own stamps (processedOn) cannot check it, Node's being read before a script is
    sent, so a stalled process shifts them by whatever the stall lasted."""

    def __init__(self, url: str, key: str) -> None:
        self.key = key
        self.stop_key = f"{key}:stop-watching"
        self.writes: list[tuple[float, str]] = []
        self._client = redis.Redis.from_url(url, decode_responses=True)
        self._ready = threading.Event()
        self._failed: list[BaseException] = []
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._failed:
            pytest.skip(f"this Redis refuses MONITOR: {self._failed[0]}")

    def _watch(self) -> None:
        try:
            with self._client.monitor() as monitor:
                self._ready.set()
                for event in monitor.listen():
                    words = event["command"].split(" ")
                    if event["client_type"] == "lua" and words[0] in ("PSETEX", "INCR") and words[1:2] == [self.key]:
                        self.writes.append((float(event["time"]), words[0]))
                    elif words == ["GET", self.stop_key]:
                        return
        except redis.RedisError as exc:
            self._failed.append(exc)
            self._ready.set()

    def stop(self, client: redis.Redis) -> list[list[float]]:
        """Stop watching; the windows, each the times (s) of its takes."""
        client.get(self.stop_key)
        self._thread.join(10)
        self._client.close()
        windows: list[list[float]] = []
        for at, write in self.writes:
            if write == "PSETEX" or not windows:
                windows.append([])
            windows[-1].append(at)
        return windows


def snapshot_limiter(client: redis.Redis, queue: bullpy.Queue) -> dict[str, Any]:
    """One atomic (MULTI) look at the limiter bookkeeping and the lists it moves jobs between."""
    with client.pipeline(transaction=True) as pipe:
        pipe.get(queue.keys("limiter"))
        pipe.pttl(queue.keys("limiter"))
        pipe.smembers(queue.keys("limiter:limited"))
        pipe.hgetall(queue.keys("limiter:index"))
        pipe.zrange(queue.keys("delayed"), 0, -1, withscores=True)
        pipe.lrange(queue.keys("wait"), 0, -1)
        pipe.lrange(queue.keys("active"), 0, -1)
        counter, pttl, limited, index, delayed, wait, active = pipe.execute()
    return {"counter": counter, "pttl": pttl, "limited": set(limited), "index": index,
            "delayed": dict(delayed), "wait": set(wait), "active": set(active), "at": ms()}


def test_shared_limiter_holds_across_node_and_python_workers(
    bull: Peer, make_queue: MakeQueue, make_worker: Callable[..., Worker], redis_client: redis.Redis,
    redis_url: str,
) -> None:
    queue = make_queue("limited")
    limiter = {"max": LIMIT_MAX, "duration": LIMIT_DURATION}
    # Two Node workers (distinct settings make peer.js open two Bull Queue instances) and two Python ones.
    node_queues = [
        PeerQueue(queue.name, queue.prefix, limiter=limiter, settings={"drainDelay": delay}) for delay in (1, 2)
    ]
    python_runs: list[str] = []
    runs_lock = threading.Lock()

    def record(job: bullpy.Job) -> None:
        with runs_lock:
            python_runs.append(job.id)

    watch = CounterWatch(redis_url, queue.keys("limiter"))
    ids = [j.id for j in queue.add_bulk([{"data": {"n": n}} for n in range(LIMIT_JOBS)])]
    for node_queue in node_queues:
        bull.process(node_queue, concurrency=2)
    for _ in range(2):
        make_worker(make_queue("limited"), make_handler(record=record), concurrency=2, limiter=limiter)

    snapshots: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while queue.get_completed_count() < LIMIT_JOBS and time.monotonic() < deadline:
        snapshots.append(snapshot_limiter(redis_client, queue))
        time.sleep(0.03)
    assert queue.get_job_counts() == {"waiting": 0, "active": 0, "completed": LIMIT_JOBS, "failed": 0,
                                      "delayed": 0, "paused": 0}
    windows = watch.stop(redis_client)

    # Every job ran exactly once, some under Node and some under Python.
    node_runs = [r["id"] for q in node_queues for r in bull.processed(q)]
    assert sorted(node_runs + python_runs, key=int) == ids
    assert node_runs and python_runs, (len(node_runs), len(python_runs))

    # The rate, on Redis's clock: every take, Node's and Python's, was counted on the one shared counter;
    # no window held more than `max`; a window opened only once the one before it had expired, and every
    # take counted in a window came before it expired (1 ms for the clock's rounding).
    assert sum(map(len, windows)) == LIMIT_JOBS, windows
    assert max(map(len, windows)) <= LIMIT_MAX, windows
    for window, following in zip(windows, windows[1:]):
        assert following[0] - window[0] >= LIMIT_DURATION / 1000 - 0.001, (window, following)
    for window in windows:
        assert window[-1] - window[0] < LIMIT_DURATION / 1000 + 0.001, window
    # ...so 60 jobs at 10 a window took at least 6 windows, and the limiter did not starve the queue either.
    assert len(windows) >= LIMIT_JOBS // LIMIT_MAX
    taken = sorted(int(str(redis_client.hget(queue.keys.job(i), "processedOn"))) for i in ids)
    assert (taken[-1] - taken[0]) < (LIMIT_JOBS / LIMIT_MAX + 3) * LIMIT_DURATION

    # Bookkeeping as Node keeps it (§4.4): limited jobs parked in `delayed`, listed in `limiter:limited`
    # and in `limiter:index` (-> the limited set's key), the counter never above `max` and expiring.
    limited_key = queue.keys("limiter:limited")
    parked = [s for s in snapshots if s["limited"]]
    assert parked, "no snapshot saw a rate-limited job"
    assert any(s["limited"] & set(s["delayed"]) for s in parked)
    for s in snapshots:
        assert s["index"] == {job: limited_key for job in s["limited"]}
        assert s["limited"] <= set(s["delayed"]) | s["wait"] | s["active"]
        if s["counter"] is not None:
            assert 1 <= int(s["counter"]) <= LIMIT_MAX
            assert 0 <= s["pttl"] <= LIMIT_DURATION
        for job in s["limited"] & set(s["delayed"]):
            due = s["delayed"][job] / 4096  # (now + delay) * 4096 + counter: due within a few windows
            assert s["at"] - LIMIT_DURATION < due < s["at"] + (LIMIT_JOBS / LIMIT_MAX + 1) * LIMIT_DURATION * 1.1
    # Once everything ran, nothing is left behind.
    assert not redis_client.exists(limited_key, queue.keys("limiter:index"))


def test_limiter_bounce_back_is_refused(queue: bullpy.Queue) -> None:
    with pytest.raises(ValueError, match="bounce_back"):
        Worker(queue, lambda job: None, limiter={"max": 1, "duration": 1000, "bounce_back": True})
    with pytest.raises(ValueError, match="bounceBack"):
        Worker(queue, lambda job: None, limiter={"max": 1, "duration": 1000, "bounceBack": True})
    # bounce_back False is what Node does by default, and accepted.
    Worker(queue, lambda job: None, limiter={"max": 1, "duration": 1000, "bounce_back": False})


# --- 2. events ------------------------------------------------------------------------------------------
class Recorder:
    """Collect (event, args) from ``queue.on`` callbacks, thread-safely."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self._lock = threading.Lock()

    def listen(self, queue: bullpy.Queue, *names: str) -> None:
        for name in names:
            queue.on(name, lambda *args, _name=name: self._add(_name, args))

    def _add(self, name: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self.events.append((name, args))

    def of(self, name: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return [args for n, args in self.events if n == name]


GLOBAL_NAMES = ("global:completed", "global:failed", "global:progress", "global:active", "global:waiting",
                "global:stalled", "global:paused", "global:resumed", "global:drained")


def test_node_worker_events_arrive_in_python_with_node_shapes(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis
) -> None:
    seen = Recorder()
    seen.listen(queue, *GLOBAL_NAMES)

    stalled_job = queue.add({"__peer": {"return": "recovered"}})
    assert stalled_job is not None
    leave_stalled(redis_client, queue, stalled_job)

    jobs = {
        "number": {"__peer": {"return": 42}},
        "undefined": {"__peer": {"returnUndefined": True}},
        "object": {"__peer": {"return": {"ok": True}, "progress": [50, {"step": 2}]}},
        "fail": {"__peer": {"fail": "boom"}},
    }
    ids = {k: bull.call(queue, "add", data)["id"] for k, data in jobs.items()}
    bull.process(queue)
    bull.wait_for_counts(queue, completed=4, failed=1)
    wait_until(lambda: seen.of("global:drained"), 5, "global:drained")
    bull.call(queue, "pause")
    bull.call(queue, "resume")
    wait_until(lambda: seen.of("global:resumed"), 5, "global:resumed")

    assert seen.of("global:stalled") == [(stalled_job.id,)]
    # The Python producer's add is there too: Node ignores whose token a waiting message carries.
    assert seen.of("global:waiting") == [(i, None) for i in [stalled_job.id, *ids.values()]]
    assert sorted(seen.of("global:active")) == sorted((i, "waiting") for i in [stalled_job.id, *ids.values()])
    completed = dict((args[0], args[1:]) for args in seen.of("global:completed"))
    assert completed == {
        stalled_job.id: ('"recovered"', "active"),
        ids["number"]: ("42", "active"),
        ids["undefined"]: (None, "active"),  # the payload had no `val`
        ids["object"]: ('{"ok":true}', "active"),  # the JSON string, unparsed, as Node passes it
    }
    assert seen.of("global:failed") == [(ids["fail"], "boom", "active")]
    assert seen.of("global:progress") == [(ids["object"], 50), (ids["object"], {"step": 2})]
    assert seen.of("global:paused") == [()] and seen.of("global:resumed") == [()]
    assert () in seen.of("global:drained")

    # The iterator yields the same events; it subscribes on its first next(), so the jobs come later.
    later = threading.Timer(0.3, lambda: [bull.call(queue, "add", {"__peer": {"return": [1, None]}}) for _ in range(2)])
    later.start()
    got = []
    for event in queue.events("global:completed", "global:active", timeout=3):
        got.append(event)
        if sum(e.name == "global:completed" for e in got) == 2:
            break
    later.join()
    completions = [e for e in got if e.name == "global:completed"]
    assert [(e.job_id, e.args, e.value) for e in completions] == [
        (jid, ("[1,null]", "active"), [1, None]) for jid in ("6", "7")
    ]
    assert [(e.job_id, e.args) for e in got if e.name == "global:active"] == [("6", ("waiting",)), ("7", ("waiting",))]


#: The same job set for a Node and a Python worker: return values of every JSON type, undefined,
#: progress objects, a final failure, a failure that is retried, a discarded failure.
DIFF_JOBS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"return": 42}, {}),
    ({"return": 1.5}, {}),
    ({"return": "a string"}, {}),
    ({"return": "olá ✓ \"quoted\""}, {}),
    ({"return": True}, {}),
    ({"return": [1, "two", None, 3.5]}, {}),
    ({"return": {"ok": True, "nested": {"n": 1, "list": []}}}, {}),
    ({"returnUndefined": True}, {}),
    ({"progress": [50, {"step": 2, "of": [1, 2]}, "half"], "return": 0}, {}),
    ({"fail": "boom"}, {}),
    ({"failTimes": 1, "return": "second time"}, {"attempts": 2}),
    ({"fail": "thrown away", "discard": True}, {"attempts": 3}),
    ({}, {}),  # the default {"processed": id}
]
DIFF_EVENTS = ["global:completed", "global:failed", "global:progress", "global:waiting", "global:active",
               "global:drained", "global:stalled", "global:paused", "global:resumed"]


def leave_stalled(client: redis.Redis, queue: bullpy.Queue, job: bullpy.Job | None) -> str:
    """Put a waiting job where a crashed worker leaves it: in `active`, without a lock, already marked
    by a previous stalled check; the next worker's start-up check requeues it and publishes `stalled@`."""
    assert job is not None
    with client.pipeline(transaction=True) as pipe:
        pipe.lrem(queue.keys("wait"), 1, job.id)
        pipe.lpush(queue.keys("active"), job.id)
        pipe.sadd(queue.keys("stalled"), job.id)
        assert pipe.execute() == [1, 1, 1]
    return job.id


def test_python_worker_events_match_node_worker_events_seen_from_node(
    bull: Peer, make_queue: MakeQueue, make_worker: Callable[..., Worker], redis_client: redis.Redis
) -> None:
    under_node, under_python = make_queue("events-node"), make_queue("events-python")
    local = Recorder()
    local.listen(under_python, "active", "completed", "failed", "progress", "drained", "stalled")
    for queue in (under_node, under_python):
        bull.listen(queue, DIFF_EVENTS)
        for behaviour, options in DIFF_JOBS:
            queue.add({"__peer": behaviour}, **options)
        leave_stalled(redis_client, queue, queue.add({"__peer": {"return": "recovered"}}))

    bull.process(under_node)
    make_worker(under_python, make_handler())
    for queue in (under_node, under_python):
        bull.wait_for_events(queue, "global:drained", timeout=10)
    # Pause and resume: Node's producer on one queue, Python's on the other.
    bull.call(under_node, "pause")
    bull.call(under_node, "resume")
    under_python.pause()
    under_python.resume()
    for queue in (under_node, under_python):
        bull.wait_for_events(queue, "global:resumed", timeout=5)

    def normalised(queue: bullpy.Queue) -> list[tuple[str, list[Any]]]:
        return [(e["event"], e["args"]) for e in bull.events(queue)]  # ids agree: both counters ran 1..n

    node_side, python_side = normalised(under_node), normalised(under_python)
    assert python_side == node_side
    completed = {args[0]: args[1] for name, args in node_side if name == "global:completed"}
    assert [args for name, args in node_side if name == "global:stalled"] == [[str(len(DIFF_JOBS) + 1)]]
    assert completed["8"] is None and completed["1"] == "42" and completed["4"] == '"olá ✓ \\"quoted\\""'

    # The Python worker's own local events.
    n = len(DIFF_JOBS)
    assert sorted(int(job.id) for job, _ in local.of("active")) == sorted([*range(1, n + 2), 11])  # 11 ran twice
    assert [job.id for (job,) in local.of("stalled")] == [str(n + 1)]
    results = {job.id: result for job, result in local.of("completed")}
    assert results["1"] == 42 and results["7"] == {"ok": True, "nested": {"n": 1, "list": []}}
    assert results["8"] is None and results["11"] == "second time" and results["13"] == {"processed": "13"}
    failures = [(job.id, str(error)) for job, error in local.of("failed")]
    assert failures == [("10", "boom"), ("11", "peer failure 0"), ("12", "thrown away")]
    assert [(job.id, value) for job, value in local.of("progress")] == [
        ("9", 50), ("9", {"step": 2, "of": [1, 2]}), ("9", "half")
    ]
    assert local.of("drained"), "the Python worker emitted no local drained"


# --- 3. repeatable jobs ---------------------------------------------------------------------------------
EVERY_MS = 1000
CRON = "*/1 * * * * *"


def series(redis_client: redis.Redis, queue: bullpy.Queue, name: str) -> list[dict[str, Any]]:
    """The iterations of one job name, oldest first, as raw hashes with opts parsed (key order kept)."""
    out: list[dict[str, Any]] = []
    for key in redis_client.scan_iter(f"{queue.keys('')}repeat:*", count=1000):
        if key.endswith((":lock", ":logs")):
            continue
        fields: dict[str, Any] = redis_client.hgetall(key)  # type: ignore[assignment]
        if fields.get("name") == name:
            fields["opts"] = json.loads(fields["opts"])
            fields["id"] = key[len(queue.keys("")):]
            out.append(fields)
    return sorted(out, key=lambda f: f["opts"]["prevMillis"])


def check_series(iterations: list[dict[str, Any]], name: str, key: str, limit: int | None) -> None:
    millis = [int(f["opts"]["prevMillis"]) for f in iterations]
    assert [f["id"] for f in iterations] == [iteration_id(name, key, m) for m in millis]
    assert all(m % 1000 == 0 for m in millis) and millis == sorted(set(millis))
    assert [f["opts"]["repeat"]["count"] for f in iterations] == list(range(1, len(iterations) + 1))
    assert all(f["opts"]["repeat"]["key"] == key for f in iterations)
    if limit is not None:
        assert len(iterations) == limit and all(f["opts"]["repeat"]["limit"] == limit for f in iterations)
    for f in iterations:
        assert "finishedOn" in f, f"iteration {f['id']} did not finish"
        lateness = int(f["processedOn"]) - int(f["opts"]["prevMillis"])
        assert -50 <= lateness < 1000, f"iteration {f['id']} ran {lateness} ms after its time"


def shape(opts: dict[str, Any]) -> list[tuple[str, Any]]:
    """An iteration's opts with the per-run values (id, times) blanked, key order kept (nested too)."""
    blank = {"jobId", "delay", "timestamp", "prevMillis"}
    return [(k, "*" if k in blank else list(v.items()) if isinstance(v, dict) else v) for k, v in opts.items()]


def test_python_repeatables_run_on_schedule_under_python_or_node_workers(
    bull: Peer, make_queue: MakeQueue, make_worker: Callable[..., Worker], redis_client: redis.Redis
) -> None:
    queues = {"python": make_queue("repeat-python"), "node": make_queue("repeat-node")}
    for queue in queues.values():
        queue.add({"k": "every"}, name="every", repeat={"every": EVERY_MS, "limit": 3})
        queue.add({"k": "cron"}, name="cron", repeat={"cron": CRON, "limit": 3})
        queue.add({"k": "forever"}, name="forever", repeat={"every": EVERY_MS})
    make_worker(queues["python"], make_handler(), concurrency=3)
    bull.process(queues["node"], concurrency=3)

    keys = {"every": repeat_key_every("every", EVERY_MS), "cron": repeat_key_cron("cron", CRON),
            "forever": repeat_key_every("forever", EVERY_MS)}
    def limited_done(queue: bullpy.Queue) -> bool:
        finished = [f for n in ("every", "cron") for f in series(redis_client, queue, n) if "finishedOn" in f]
        return len(finished) == 6

    for side, queue in queues.items():
        # The limited series end when their third iteration is taken: nothing further is scheduled.
        wait_until(lambda: limited_done(queue), 8, f"both limited series under {side}")  # noqa: B023
        for name in ("every", "cron"):
            check_series(series(redis_client, queue, name), name, keys[name], limit=3)
        assert queue.remove_repeatable("forever", every=EVERY_MS) is True
    removed_at = ms()
    for side, queue in queues.items():
        assert sorted(redis_client.zrange(queue.keys("repeat"), 0, -1)) == sorted([keys["every"], keys["cron"]])
        assert redis_client.zcard(queue.keys("delayed")) == 0, side
    time.sleep(1.3)
    for side, queue in queues.items():
        forever = series(redis_client, queue, "forever")
        assert len(forever) >= 2 and all("finishedOn" in f for f in forever), side
        check_series(forever, "forever", keys["forever"], limit=None)
        assert all(int(f["opts"]["prevMillis"]) <= removed_at for f in forever), side
        assert queue.get_job_counts("waiting", "delayed", "active") == {"waiting": 0, "delayed": 0, "active": 0}

    # What the Python worker scheduled is what the Node worker scheduled, member for member.
    for name in ("every", "cron"):
        python_opts = [shape(f["opts"]) for f in series(redis_client, queues["python"], name)]
        node_opts = [shape(f["opts"]) for f in series(redis_client, queues["node"], name)]
        assert python_opts == node_opts, name
    # Node's own order (lodash defaultsDeep over {repeat: {count, key}, jobId, delay, timestamp, prevMillis}).
    assert node_opts[1] == [("repeat", [("count", 2), ("key", keys["cron"]), ("cron", CRON), ("limit", 3)]),
                            ("jobId", "*"), ("delay", "*"), ("timestamp", "*"), ("prevMillis", "*"), ("attempts", 1)]


def test_node_added_repeatable_is_continued_by_a_python_worker(
    bull: Peer, queue: bullpy.Queue, make_worker: Callable[..., Worker], redis_client: redis.Redis
) -> None:
    bull.call(queue, "add", "nrep", {"from": "node"}, {"repeat": {"every": EVERY_MS, "limit": 3}})
    make_worker(queue, make_handler())
    key = repeat_key_every("nrep", EVERY_MS)
    wait_until(lambda: queue.get_completed_count() >= 3, 6, "3 iterations")
    time.sleep(0.1)
    iterations = series(redis_client, queue, "nrep")
    check_series(iterations, "nrep", key, limit=3)
    assert queue.get_job_counts("waiting", "delayed") == {"waiting": 0, "delayed": 0}
    assert redis_client.zscore(queue.keys("repeat"), key) == int(iterations[-1]["opts"]["prevMillis"])
    # Python's iterations have the members Node's first one has, in Node's order, and Node reads them.
    first, *continued = iterations
    for f in continued:
        count = f["opts"]["repeat"]["count"]
        assert shape(f["opts"]) == [(k, v) if k != "repeat" else (k, [("count", count), *v[1:]])
                                    for k, v in shape(first["opts"])]
        node_view = bull.get_job(queue, f["id"])
        assert node_view is not None and node_view["data"] == {"from": "node"} and node_view["name"] == "nrep"
        assert node_view["opts"]["repeat"] == f["opts"]["repeat"]


# --- 4. custom backoff strategies -----------------------------------------------------------------------
def test_custom_backoff_strategy_and_minus_one_stops_retries(
    make_queue: MakeQueue, make_worker: Callable[..., Worker]
) -> None:
    queue = make_queue("backoff", backoff_strategies=["linear"])
    calls: list[tuple[int, str, Any]] = []
    starts: dict[str, list[int]] = {}

    def linear(attempts_made: int, error: BaseException, options: Any) -> int:
        calls.append((attempts_made, str(error), options))
        step = (options or {}).get("step", 100)
        return -1 if (options or {}).get("stop_after") == attempts_made else attempts_made * step

    def handler(job: bullpy.Job) -> None:
        starts.setdefault(job.id, []).append(ms())
        raise RuntimeError(f"nope {job.attempts_made}")

    with pytest.raises(ValueError, match="linear"):
        make_queue("backoff").add({}, attempts=2, backoff={"type": "linear"})  # an unregistered name
    spaced = queue.add({}, attempts=3, backoff={"type": "linear", "options": {"step": 200}})
    stopped = queue.add({}, attempts=5, backoff={"type": "linear", "options": {"step": 50, "stop_after": 2}})
    assert spaced is not None and stopped is not None
    assert spaced.opts["backoff"] == {"type": "linear", "options": {"step": 200}}
    make_worker(queue, handler, backoff_strategies={"linear": linear}, concurrency=2)
    wait_until(lambda: queue.get_failed_count() == 2, 5, "both jobs to fail for good")

    done = {j: queue.get_job(j) for j in (spaced.id, stopped.id)}
    assert done[spaced.id].attempts_made == 3 and done[spaced.id].failed_reason == "nope 2"  # type: ignore[union-attr]
    assert done[stopped.id].attempts_made == 2 and done[stopped.id].failed_reason == "nope 1"  # type: ignore[union-attr]
    gaps = [b - a for a, b in zip(starts[spaced.id], starts[spaced.id][1:])]
    assert len(gaps) == 2 and 200 <= gaps[0] < 450 and 400 <= gaps[1] < 650, gaps
    assert sorted(c for c in calls if c[2]["step"] == 200) == [(1, "nope 0", {"step": 200}), (2, "nope 1", {"step": 200})]
    assert sorted(c for c in calls if c[2]["step"] == 50) == [(1, "nope 0", {"step": 50, "stop_after": 2}),
                                                              (2, "nope 1", {"step": 50, "stop_after": 2})]
