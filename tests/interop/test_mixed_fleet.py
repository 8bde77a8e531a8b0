"""A mixed fleet: Node Bull workers and bullpy workers share one queue.

Two Node workers (the session peer and a second peer.js process) and two Python workers (an in-process
``Worker`` and a ``pyworker.py`` subprocess) take jobs from the same Bull keys, retry them with Bull's
backoffs, recover each other's stalled jobs, and never complete a job twice.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis

import bullpy
from bullpy.worker import Worker

from .peer import Peer, PeerQueue
from .pyworker import make_handler

PYWORKER = Path(__file__).resolve().with_name("pyworker.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
FAIL_MESSAGE = "boom always"


# --- helpers -----------------------------------------------------------------------------------------------
class PyWorkerProcess:
    """``tests/interop/pyworker.py`` as a separate OS process; its stdout JSON lines are collected."""

    def __init__(self, redis_url: str, name: str, prefix: str, **env: str) -> None:
        child_env = {
            **os.environ, "REDIS_URL": redis_url, "QUEUE_NAME": name, "BULL_PREFIX": prefix,
            "PYTHONPATH": str(REPO_ROOT), **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(PYWORKER)], env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1,
        )
        self.lines: list[dict[str, Any]] = []
        self.stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._out = threading.Thread(target=self._read_stdout, daemon=True)
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._out.start()
        self._err.start()
        if not self._ready.wait(20):
            self.kill()
            raise RuntimeError("pyworker.py did not get ready:\n" + "\n".join(self.stderr))

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                self.stderr.append(f"[non-JSON stdout] {line.rstrip()}")
                continue
            if message.get("event") == "ready":
                self._ready.set()
            self.lines.append(message)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def events(self, *names: str) -> list[dict[str, Any]]:
        return [line for line in list(self.lines) if line.get("event") in names]

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, the jobs it holds stay active with their locks."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._out.join(5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.join(5)
        self._err.join(5)


@pytest.fixture
def spawn_pyworker(redis_url: str, prefix: str) -> Iterator[Callable[..., PyWorkerProcess]]:
    started: list[PyWorkerProcess] = []

    def spawn(name: str, **env: str) -> PyWorkerProcess:
        worker = PyWorkerProcess(redis_url, name, prefix, **env)
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.stop()


@pytest.fixture
def second_peer(peer: Peer, redis_url: str) -> Iterator[Peer]:
    """Another peer.js: a second Node process, i.e. a second Node Bull worker host."""
    with Peer(redis_url) as other:
        yield other


class PyRecorder:
    """Local completed/failed/stalled events of the in-process Python worker."""

    def __init__(self, queue: bullpy.Queue) -> None:
        self.runs: list[tuple[str, str, int]] = []  # (outcome, id, attemptsMade as taken)
        self.stalled: list[str] = []
        self._lock = threading.Lock()
        queue.on("completed", lambda job, _result: self._add("completed", job))
        queue.on("failed", lambda job, _err: self._add("failed", job))
        queue.on("stalled", lambda job: self._stalled(job))

    def _add(self, outcome: str, job: bullpy.Job) -> None:
        with self._lock:
            self.runs.append((outcome, job.id, job.attempts_made or 0))

    def _stalled(self, job: bullpy.Job | None) -> None:
        if job is not None:
            with self._lock:
                self.stalled.append(job.id)


def job_spec(i: int, sleep: int = 0) -> dict[str, Any]:
    """Job ``i``: 10% always fail, 10% fail once then succeed, the rest succeed; attempts 2 or 3;
    no backoff, fixed 20 ms or exponential 10 ms."""
    behaviour: dict[str, Any] = {"sleep": sleep} if sleep else {}
    if i % 10 == 0:
        behaviour["fail"] = FAIL_MESSAGE
    elif i % 10 == 1:
        behaviour["failTimes"] = 1
    opts: dict[str, Any] = {"attempts": 2 + (i // 10) % 2}
    backoff = [None, {"type": "fixed", "delay": 20}, {"type": "exponential", "delay": 10}][(i // 20) % 3]
    if backoff is not None:
        opts["backoff"] = backoff
    return {"name": "mixed", "data": {"n": i, "__peer": behaviour}, "opts": opts}


def add_half_and_half(queue: bullpy.Queue, bull: Peer, pq: PeerQueue, specs: list[dict[str, Any]],
                      chunk: int = 250) -> dict[int, str]:
    """Python ``add_bulk`` and Node ``addBulk`` in alternating chunks; job ``n`` -> id."""
    ids: dict[int, str] = {}
    for k, start in enumerate(range(0, len(specs), chunk)):
        part = specs[start : start + chunk]
        if k % 2 == 0:
            for spec, job in zip(part, queue.add_bulk(part)):
                ids[spec["data"]["n"]] = job.id
        else:
            for spec, job in zip(part, bull.call(pq, "addBulk", part)):
                ids[spec["data"]["n"]] = str(job["id"])
    assert len(set(ids.values())) == len(specs)
    return ids


def wait_all_finished(queue: bullpy.Queue, total: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = queue.get_job_counts()
        if counts["completed"] + counts["failed"] >= total and counts["active"] == 0:
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"not all {total} jobs finished within {timeout} s: {counts}")
        time.sleep(0.1)


def expected_attempts(spec: Mapping[str, Any]) -> int:
    return int(spec["opts"]["attempts"])


def check_final_states(queue: bullpy.Queue, specs: list[dict[str, Any]], ids: dict[int, str],
                       node_jobs: dict[str, dict[str, Any]], py_jobs: dict[str, bullpy.Job]) -> None:
    """Every job ended as its attempts allow, read the same way by Node and by bullpy."""
    problems: list[str] = []
    failed_ids = set(queue.get_ranges("failed"))
    completed_ids = set(queue.get_ranges("completed"))
    for spec in specs:
        n = spec["data"]["n"]
        job_id = ids[n]
        node, py = node_jobs.get(job_id), py_jobs.get(job_id)
        if node is None or py is None:
            problems.append(f"job {job_id} (n={n}) missing: node={node is not None} py={py is not None}")
            continue
        behaviour = spec["data"]["__peer"]
        attempts = expected_attempts(spec)
        py_made = py.attempts_made or 0
        if "fail" in behaviour:
            ok = (
                job_id in failed_ids and py_made == attempts
                and py.failed_reason == FAIL_MESSAGE and len(py.stacktrace) == attempts
                and py.returnvalue is None
            )
        else:
            failures = 1 if "failTimes" in behaviour else 0
            ok = (
                job_id in completed_ids and py_made == failures
                and py.returnvalue == {"processed": job_id} and len(py.stacktrace) == failures
            )
        if not ok:
            problems.append(
                f"job {job_id} {behaviour} attempts={attempts}: failed={job_id in failed_ids} attemptsMade={py.attempts_made} "
                f"failedReason={py.failed_reason!r} stacktrace={len(py.stacktrace)} returnvalue={py.returnvalue!r}"
            )
        node_view = (node.get("attemptsMade"), node.get("returnvalue"), node.get("failedReason"),
                     len(node.get("stacktrace") or []), node.get("finishedOn"), node.get("processedOn"))
        py_view = (py_made, py.returnvalue, py.failed_reason, len(py.stacktrace), py.finished_on, py.processed_on)
        if node_view != py_view:
            problems.append(f"job {job_id}: Node reads {node_view}, bullpy reads {py_view}")
    assert not problems, f"{len(problems)} jobs wrong, e.g.:\n" + "\n".join(problems[:20])


def read_both_sides(queue: bullpy.Queue, bull: Peer, pq: PeerQueue) -> tuple[dict[str, Any], dict[str, bullpy.Job]]:
    node_jobs = {str(j["id"]): j for j in bull.call(pq, "getJobs", ["completed", "failed"], 0, -1) if j}
    py_jobs = {j.id: j for j in queue.get_jobs(["completed", "failed"])}
    return node_jobs, py_jobs


def node_runs(records: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(r["outcome"], str(r["id"]), r["attemptsMade"]) for r in records if r["outcome"] != "active"]


def pyworker_runs(worker: PyWorkerProcess) -> list[tuple[str, str, int]]:
    return [(line["event"], str(line["id"]), line["attemptsMade"] or 0) for line in worker.events("completed", "failed")]


def settle(collect: Callable[[], int], expected: int, timeout: float = 10.0) -> None:
    """Wait until the workers' own records caught up with Redis (local events follow the scripts)."""
    deadline = time.monotonic() + timeout
    while collect() < expected and time.monotonic() < deadline:
        time.sleep(0.1)


# --- 1. a mixed fleet, 5,000 jobs ---------------------------------------------------------------------------
def test_mixed_fleet_processes_5000_jobs_with_retries_exactly_once(
    bull: Peer, second_peer: Peer, queue: bullpy.Queue, spawn_pyworker: Callable[..., PyWorkerProcess],
) -> None:
    total = 5000
    pq = PeerQueue(queue.name, queue.prefix)
    recorder = PyRecorder(queue)
    bull.process(pq, concurrency=4)
    second_peer.process(pq, concurrency=4)
    in_process = Worker(queue, make_handler(), concurrency=4).start()
    subprocess_worker = spawn_pyworker(queue.name, CONCURRENCY="4")

    specs = [job_spec(i) for i in range(total)]
    started = time.monotonic()
    ids = add_half_and_half(queue, bull, pq, specs)
    counts = wait_all_finished(queue, total, timeout=90)
    elapsed = time.monotonic() - started

    always_fail = sum(1 for s in specs if "fail" in s["data"]["__peer"])
    assert counts == {"waiting": 0, "active": 0, "completed": total - always_fail, "failed": always_fail,
                      "delayed": 0, "paused": 0}
    assert bull.call(pq, "getJobCounts") == queue.get_job_counts()

    node_jobs, py_jobs = read_both_sides(queue, bull, pq)
    check_final_states(queue, specs, ids, node_jobs, py_jobs)
    # A sample read one by one with Node's getJob and bullpy's get_job.
    for n in list(range(0, total, 97)) + [1, 11, 21, 2]:
        node, py = bull.get_job(pq, ids[n]), queue.get_job(ids[n])
        assert node is not None and py is not None
        assert (node.get("returnvalue"), node.get("attemptsMade"), node.get("failedReason")) == (
            py.returnvalue, py.attempts_made or 0, py.failed_reason)

    # Every attempt shows up exactly once in some worker's records: attemptsMade failures, then one completion.
    want_runs = sum(py.attempts_made or 0 for py in py_jobs.values()) + counts["completed"]

    def collect() -> int:
        return (len(node_runs(bull.processed(pq))) + len(node_runs(second_peer.processed(pq)))
                + len(recorder.runs) + len(pyworker_runs(subprocess_worker)))

    settle(collect, want_runs)
    by_worker = {
        "node-1": node_runs(bull.processed(pq)),
        "node-2": node_runs(second_peer.processed(pq)),
        "python-in-process": list(recorder.runs),
        "python-subprocess": pyworker_runs(subprocess_worker),
    }
    runs = [run for worker_runs in by_worker.values() for run in worker_runs]
    assert len(runs) == want_runs, {k: len(v) for k, v in by_worker.items()}
    completions = collections.Counter(job_id for outcome, job_id, _ in runs if outcome == "completed")
    attempts_seen = collections.Counter(job_id for _, job_id, _ in runs)
    twice = {job_id: c for job_id, c in completions.items() if c > 1}
    assert not twice, f"jobs completed more than once: {twice}"
    completed_ids = set(queue.get_ranges("completed"))
    for job_id, py in py_jobs.items():
        done = job_id in completed_ids
        assert completions[job_id] == (1 if done else 0), job_id
        assert attempts_seen[job_id] == (py.attempts_made or 0) + (1 if done else 0), job_id
    # Each attempt was taken with the attemptsMade of the attempts before it.
    per_job = collections.defaultdict(list)
    for _, job_id, made in runs:
        per_job[job_id].append(made)
    assert all(sorted(made) == list(range(len(made))) for made in per_job.values())
    # All four workers did a real share of the work.
    shares = {worker: len(worker_runs) for worker, worker_runs in by_worker.items()}
    assert all(share >= want_runs * 0.05 for share in shares.values()), shares
    assert elapsed < 75, f"{elapsed:.1f} s for {total} no-op jobs"
    in_process.close()


# --- 2. the same with one worker of each kind killed mid-job ------------------------------------------------
def test_killed_workers_jobs_are_recovered_by_the_survivors(
    bull: Peer, second_peer: Peer, queue: bullpy.Queue, spawn_pyworker: Callable[..., PyWorkerProcess],
    redis_client: redis.Redis,
) -> None:
    total = 1200
    settings = {"lockDuration": 1000, "stalledInterval": 500}
    pq = PeerQueue(queue.name, queue.prefix, settings=settings)
    listener = PeerQueue(queue.name, queue.prefix)  # a plain Node Queue recording global events
    bull.listen(listener, ["global:completed", "global:stalled"])
    bull.listen(pq, ["stalled"])  # the Node survivor's own stalled check
    recorder = PyRecorder(queue)

    bull.process(pq, concurrency=4)                     # Node survivor
    second_peer.process(pq, concurrency=4)              # Node victim
    survivor = Worker(queue, make_handler(), concurrency=4, lock_duration=1000, stalled_interval=500).start()
    victim = spawn_pyworker(queue.name, CONCURRENCY="4", LOCK_DURATION="1000", STALLED_INTERVAL="500")

    specs = [job_spec(i, sleep=50) for i in range(total)]
    ids = add_half_and_half(queue, bull, pq, specs, chunk=100)

    # Let every worker get going, then kill one of each kind while they are sleeping inside jobs.
    deadline = time.monotonic() + 20
    while (len(victim.events("completed", "failed")) < 20 or len(node_runs(second_peer.processed(pq))) < 20) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    node_victim_running = {str(r["id"]) for r in second_peer.processed(pq) if r["outcome"] == "active"}
    os.kill(second_peer.pid, signal.SIGKILL)
    victim.kill()
    killed_at = time.monotonic()
    killed_wall_ms = int(time.time() * 1000)
    second_peer.wait_exit(10)
    py_victim_taken = collections.Counter(str(line["id"]) for line in victim.events("active"))
    py_victim_done = collections.Counter(str(line["id"]) for line in victim.events("completed", "failed"))
    py_victim_running = set((py_victim_taken - py_victim_done).keys())
    assert py_victim_running, "the Python victim was not inside a job when it was killed"
    assert node_victim_running, "the Node victim was not inside a job when it was killed"
    assert queue.get_job_counts()["completed"] < total - total // 10, "killed too late: the jobs were done"

    counts = wait_all_finished(queue, total, timeout=60)
    recovery = time.monotonic() - killed_at
    always_fail = sum(1 for s in specs if "fail" in s["data"]["__peer"])
    assert counts == {"waiting": 0, "active": 0, "completed": total - always_fail, "failed": always_fail,
                      "delayed": 0, "paused": 0}, counts
    assert redis_client.llen(queue.keys("active")) == 0
    assert bull.call(pq, "getJobCounts") == queue.get_job_counts()

    node_jobs, py_jobs = read_both_sides(queue, bull, pq)
    check_final_states(queue, specs, ids, node_jobs, py_jobs)

    # The killed workers' jobs were recovered by the stalled check: stalledCounter 1 each.
    with redis_client.pipeline(transaction=False) as pipe:
        for job_id in ids.values():
            pipe.hget(queue.keys.job(job_id), "stalledCounter")
        counters = dict(zip(ids.values(), pipe.execute()))
    stalled = {job_id for job_id, counter in counters.items() if counter is not None}
    assert all(counters[job_id] == "1" for job_id in stalled), {j: counters[j] for j in stalled}
    # A job whose attempt the victim finished in Redis just before dying (its stdout line never written) is
    # not stalled. Then either that attempt was the last (a finish time from before the kill), or it failed
    # and was retried: the victim's attempt counted, and at least one more after it.
    unrecovered = py_victim_running - stalled
    taken_at = {str(line["id"]): int(line["attemptsMade"] or 0) for line in victim.events("active")}
    finished_before = set()
    for job_id in unrecovered:
        finished_on, made = redis_client.hmget(queue.keys.job(job_id), ["finishedOn", "attemptsMade"])
        if int(finished_on or 0) <= killed_wall_ms or int(made or 0) >= taken_at[job_id] + 2:
            finished_before.add(job_id)
    assert unrecovered == finished_before, f"not recovered: {unrecovered - finished_before}"
    assert node_victim_running & stalled, f"none of the Node victim's jobs {node_victim_running} was recovered"
    # Every recovery was announced on stalled@ and seen by Node, and reported locally by the survivor that did it.
    stalled_events = {str(e["args"][0]) for e in bull.events(listener) if e["event"] == "global:stalled"}
    assert stalled_events == stalled
    node_local = {str(e["args"][0]["id"]) for e in bull.events(pq) if e["event"] == "stalled"}
    assert node_local | set(recorder.stalled) == stalled
    assert not node_local & set(recorder.stalled), "one stall recovered twice"

    # No job completed twice: one global completed event per completed job, whoever completed it.
    settle(lambda: sum(1 for e in bull.events(listener) if e["event"] == "global:completed"), counts["completed"])
    completed_events = collections.Counter(
        str(e["args"][0]) for e in bull.events(listener) if e["event"] == "global:completed")
    completed_ids = set(queue.get_ranges("completed"))
    assert set(completed_events) == completed_ids
    assert all(c == 1 for c in completed_events.values()), {j: c for j, c in completed_events.items() if c > 1}
    # The survivors' and the victims' own records agree (the victims' up to their death).
    records = node_runs(bull.processed(pq)) + list(recorder.runs) + pyworker_runs(victim)
    recorded_completions = collections.Counter(j for outcome, j, _ in records if outcome == "completed")
    assert all(c == 1 for c in recorded_completions.values())
    assert set(recorded_completions) <= completed_ids
    assert recovery < 30
    survivor.close()


# --- 3. stalled recovery across languages ------------------------------------------------------------------
def _stall(redis_client: redis.Redis, queue: bullpy.Queue, job_id: str) -> None:
    """What a worker that died right after BRPOPLPUSH leaves behind: the id in active, no lock."""
    with redis_client.pipeline(transaction=True) as pipe:
        pipe.lrem(queue.keys("wait"), 0, job_id)
        pipe.lpush(queue.keys("active"), job_id)
        pipe.execute()
    assert not redis_client.exists(queue.keys.job(job_id) + ":lock")


def test_python_stalled_check_recovers_a_dead_workers_job_and_node_sees_it(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis,
) -> None:
    # The Node worker checks for stalled jobs only once, at start-up (stalledInterval 0), before the stall.
    pq = PeerQueue(queue.name, queue.prefix, settings={"stalledInterval": 0})
    bull.listen(pq, ["global:stalled", "stalled"])
    bull.process(pq, concurrency=2)
    time.sleep(0.5)
    bull.call(pq, "pause", True)  # locally: the Node worker must not take the job before the check
    job = queue.add({"n": 1})
    assert job is not None
    _stall(redis_client, queue, job.id)

    recorder = PyRecorder(queue)
    worker = Worker(queue, make_handler(), stalled_interval=300, lock_duration=1000).start()
    events = bull.wait_for_events(pq, "global:stalled", timeout=10)
    assert [e["args"] for e in events] == [[job.id]]
    # The local event follows the script's reply (and a read of the job): Node may hear the global one first.
    settle(lambda: len(recorder.stalled), 1, timeout=5)
    assert recorder.stalled == [job.id]
    assert not [e for e in bull.events(pq) if e["event"] == "stalled"], "Node's own check recovered it"
    done = _wait_state(queue, job.id, bullpy.JobState.COMPLETED)
    assert redis_client.hget(queue.keys.job(job.id), "stalledCounter") == "1"
    assert done.returnvalue == {"processed": job.id}
    node_view = bull.get_job(pq, job.id)
    assert node_view is not None and node_view["returnvalue"] == {"processed": job.id}
    worker.close()


def test_node_stalled_check_recovers_a_dead_workers_job_and_python_sees_it(
    bull: Peer, queue: bullpy.Queue, make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis,
) -> None:
    # The Python worker checks only once, at start-up (stalled_interval 0), before the stall.
    recorder = PyRecorder(queue)
    worker = Worker(queue, make_handler(), stalled_interval=0).start()
    seen: list[tuple[Any, ...]] = []
    watcher = make_queue(queue.name)
    watcher.on("global:stalled", lambda *args: seen.append(args))
    time.sleep(0.5)
    worker.pause()  # locally: the Python worker must not take the job before the check
    job = queue.add({"n": 1})
    assert job is not None
    _stall(redis_client, queue, job.id)

    pq = PeerQueue(queue.name, queue.prefix, settings={"stalledInterval": 300, "lockDuration": 1000})
    bull.listen(pq, ["stalled"])
    bull.process(pq)
    local = bull.wait_for_events(pq, "stalled", timeout=10)
    assert [str(e["args"][0]["id"]) for e in local] == [job.id]
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen == [(job.id,)]
    assert recorder.stalled == []
    bull.wait_for_state(pq, job.id, "completed")
    assert redis_client.hget(queue.keys.job(job.id), "stalledCounter") == "1"
    worker.resume()
    worker.close()


def _wait_state(queue: bullpy.Queue, job_id: str, state: bullpy.JobState, timeout: float = 10) -> bullpy.Job:
    deadline = time.monotonic() + timeout
    while True:
        job = queue.get_job(job_id)
        if job is not None and job.get_state() is state:
            # Read again: the hash read above may predate the move into `state` (returnvalue not yet there).
            return queue.get_job(job_id) or job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is {job and job.get_state()}, not {state}")
        time.sleep(0.05)
