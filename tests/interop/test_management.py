"""Management from Python is seen by running Node workers (issue "Done when 4").

pause stops Node Bull workers and resume restarts them; clean, empty, obliterate, retry, promote and
remove leave Node consistent (its getters agree with Redis), and repeatable definitions are shared.
Each test drives a real Node Bull 4.16.5 worker through bridge/peer.js and checks what it processed,
what Redis holds and what Node's getters say.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

import bullpy

from ..conftest import keyspace, scanned_keys
from .peer import Peer, PeerQueue

#: How long a paused queue must stay untouched by a running worker.
QUIET_S = 1.5


def ms() -> int:
    return int(time.time() * 1000)


def job_id(job: bullpy.Job | None) -> str:
    assert job is not None
    return job.id


def py_job(queue: bullpy.Queue, jid: str) -> bullpy.Job:
    job = queue.get_job(jid)
    assert job is not None, f"job {jid} is missing"
    return job


def node_job(bull: Peer, queue: Any, jid: str) -> dict[str, Any]:
    job = bull.get_job(queue, jid)
    assert job is not None, f"Node finds no job {jid}"
    return job


def zmembers(client: redis.Redis, key: str) -> list[str]:
    return [str(m) for m in client.zrange(key, 0, -1)]


def node_counts(bull: Peer, queue: Any) -> dict[str, int]:
    counts: dict[str, int] = bull.call(queue, "getJobCounts")
    return counts


def queue_keys(client: redis.Redis, queue: bullpy.Queue) -> list[str]:
    """Every key of this queue (``prefix:name:*``), sorted, without the prefix."""
    base = f"{queue.prefix}:{queue.name}:"
    return [k[len(base):] for k in scanned_keys(client, base + "*")]


def settled_ids(bull: Peer, queue: Any) -> list[str]:
    return [r["id"] for r in bull.processed(queue) if r["outcome"] in ("completed", "failed")]


# --- 1. pause / resume --------------------------------------------------------------------------------
def test_python_pause_stops_a_running_node_worker_and_resume_restarts_it(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis
) -> None:
    bull.process(queue, concurrency=2)
    first = job_id(queue.add({"n": 0}))
    bull.wait_for_processed(queue, 1)

    queue.pause()
    assert queue.is_paused()
    assert bull.call(queue, "isPaused") is True
    held = [job_id(queue.add({"n": n})) for n in (1, 2, 3)]
    held += [bull.call(queue, "add", {"n": n})["id"] for n in (4, 5)]
    time.sleep(QUIET_S)

    assert settled_ids(bull, queue) == [first]
    assert sorted(redis_client.lrange(queue.keys("paused"), 0, -1)) == sorted(held)
    assert redis_client.llen(queue.keys("wait")) == 0
    counts = node_counts(bull, queue)
    assert (counts["waiting"], counts["paused"], counts["active"]) == (0, 5, 0)
    for jid in held:
        assert bull.job(queue, jid, "getState") == "paused"

    resumed_at = ms()
    queue.resume()
    runs = bull.wait_for_processed(queue, 6, timeout=5)
    assert not queue.is_paused() and bull.call(queue, "isPaused") is False
    later = [r for r in runs if r["id"] in held]
    assert sorted(r["id"] for r in later) == sorted(held)
    assert all(r["outcome"] == "completed" for r in later)
    # Bull's worker is blocked in BRPOPLPUSH on `wait`; the RENAME back from `paused` wakes it at once.
    assert max(r["start"] for r in later) - resumed_at < 1000
    assert node_counts(bull, queue)["completed"] == 6


def test_node_pause_is_seen_by_python_and_node_resume_processes_python_jobs(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis
) -> None:
    bull.process(queue)
    bull.call(queue, "pause")  # global, as Node's default
    assert queue.is_paused()
    jobs = [job_id(queue.add({"n": n})) for n in (1, 2)]
    assert redis_client.lrange(queue.keys("paused"), 0, -1) == list(reversed(jobs))
    assert redis_client.llen(queue.keys("wait")) == 0
    assert queue.get_job_counts("waiting", "paused") == {"waiting": 0, "paused": 2}
    time.sleep(0.8)
    assert bull.processed(queue) == []

    bull.call(queue, "resume")
    assert not queue.is_paused()
    runs = bull.wait_for_processed(queue, 2, timeout=5)
    assert [r["id"] for r in runs] == jobs  # FIFO kept across the pause
    assert all(py_job(queue, j).get_state() is bullpy.JobState.COMPLETED for j in jobs)


# --- 2. clean -----------------------------------------------------------------------------------------
def test_clean_finished_and_waiting_jobs_keeps_node_consistent(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis
) -> None:
    bull.process(queue, behaviour={"log": ["sent"]})
    old_ok = [job_id(queue.add({"n": n})) for n in (1, 2)] + [bull.call(queue, "add", {"n": 3})["id"]]
    bad = [job_id(queue.add({"n": 4, "__peer": {"fail": "boom"}})),
           bull.call(queue, "add", {"n": 5, "__peer": {"fail": "boom"}})["id"]]
    bull.wait_for_processed(queue, 5)
    time.sleep(1.5)
    newest = job_id(queue.add({"n": 6}))
    bull.wait_for_processed(queue, 6)
    for jid in old_ok + bad + [newest]:
        assert redis_client.exists(queue.keys.logs(jid))

    # A grace reaching halfway back to the older jobs' finish keeps the job that finished just now (whatever
    # time a busy machine took since: the split is 0.75 s from either side).
    finished = {jid: int(redis_client.hget(queue.keys.job(jid), "finishedOn")) for jid in old_ok + [newest]}
    split = (max(finished[j] for j in old_ok) + finished[newest]) // 2
    assert finished[newest] - split >= 700
    assert sorted(queue.clean(int(time.time() * 1000) - split, "completed")) == sorted(old_ok)
    assert node_counts(bull, queue)["completed"] == 1
    assert bull.get_job(queue, newest) is not None
    assert queue.clean(0, "completed") == [newest]
    assert sorted(queue.clean(0, "failed")) == sorted(bad)
    for jid in old_ok + bad + [newest]:
        assert bull.get_job(queue, jid) is None
        assert not redis_client.exists(queue.keys.job(jid), queue.keys.logs(jid))
        assert bull.call(queue, "getJobLogs", jid) == {"logs": [], "count": 0}

    # One job hangs (active, locked); the next three wait behind it (concurrency 1).
    hung = job_id(queue.add({"n": 7, "__peer": {"hang": True}}))
    bull.wait_for_state(queue, hung, "active")
    waiting = [job_id(queue.add({"n": 8})), bull.call(queue, "add", {"n": 9})["id"], job_id(queue.add({"n": 10}))]
    assert queue.clean(0, "active") == []
    assert bull.job(queue, hung, "getState") == "active"
    assert redis_client.exists(queue.keys.lock(hung))

    # With a limit, Node's window is the two next to run (the tail of `wait`): the two oldest.
    removed = queue.clean(0, "wait", limit=2)
    assert sorted(removed) == sorted(waiting[:2])
    assert redis_client.lrange(queue.keys("wait"), 0, -1) == [waiting[2]]
    assert [j["id"] for j in bull.call(queue, "getWaiting")] == [waiting[2]]
    for jid in waiting[:2]:
        assert bull.get_job(queue, jid) is None
    assert node_counts(bull, queue) == {
        "waiting": 1, "active": 1, "completed": 0, "failed": 0, "delayed": 0, "paused": 0,
    }


# --- 3. empty -----------------------------------------------------------------------------------------
def test_empty_removes_waiting_prioritised_and_delayed_jobs_under_a_running_worker(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis
) -> None:
    bull.process(queue)
    done = job_id(queue.add({"n": 0}))
    failed = bull.call(queue, "add", {"n": 0, "__peer": {"fail": "no"}})["id"]
    bull.wait_for_processed(queue, 2)
    busy = job_id(queue.add({"n": 1, "__peer": {"sleep": 1500}}))
    bull.wait_for_state(queue, busy, "active")

    doomed = [
        job_id(queue.add({"n": 2})),
        bull.call(queue, "add", {"n": 3})["id"],
        job_id(queue.add({"n": 4}, priority=2)),
        bull.call(queue, "add", {"n": 5}, {"priority": 1})["id"],
        job_id(queue.add({"n": 6}, delay=60_000)),
        bull.call(queue, "add", {"n": 7}, {"delay": 60_000})["id"],
    ]
    assert node_counts(bull, queue)["delayed"] == 2
    assert queue.empty() == 6

    counts = node_counts(bull, queue)
    assert (counts["waiting"], counts["delayed"], counts["paused"]) == (0, 0, 0)
    assert (counts["completed"], counts["failed"]) == (1, 1)
    assert redis_client.zcard(queue.keys("priority")) == 0
    left = set(queue_keys(redis_client, queue))
    for jid in doomed:
        assert bull.get_job(queue, jid) is None
        assert jid not in left and f"{jid}:logs" not in left  # delayed hashes too, unlike Node's empty
    assert node_job(bull, queue, done)["finishedOn"] is not None
    assert node_job(bull, queue, failed)["failedReason"] == "no"

    # The active job was not touched and finishes; new jobs from both sides are processed.
    after = [job_id(queue.add({"n": 8})), bull.call(queue, "add", {"n": 9})["id"]]
    bull.wait_for_processed(queue, 5, timeout=5)
    assert settled_ids(bull, queue) == [done, failed, busy] + after

    # Emptying a paused queue keeps it paused (Node's empty drops meta-paused but keeps meta.paused).
    queue.pause()
    parked = [job_id(queue.add({"n": 10})), bull.call(queue, "add", {"n": 11}, {"delay": 60_000})["id"],
              bull.call(queue, "add", {"n": 12})["id"]]
    assert node_counts(bull, queue)["paused"] == 2
    assert queue.empty() == 3
    assert node_counts(bull, queue)["paused"] == 0
    assert queue.is_paused() and bull.call(queue, "isPaused") is True
    left = set(queue_keys(redis_client, queue))
    assert not left & set(parked)
    queue.resume()
    last = [bull.call(queue, "add", {"n": 13})["id"], job_id(queue.add({"n": 14}))]
    bull.wait_for_processed(queue, 7, timeout=5)
    assert settled_ids(bull, queue)[-2:] == last


def test_node_empty_leaves_delayed_hashes_where_bullpy_does_not(
    bull: Peer, make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis
) -> None:
    ours, theirs = make_queue("empty-bullpy"), make_queue("empty-node")
    for q in (ours, theirs):
        bull.call(q, "add", {"n": 1}, {"delay": 60_000})
        bull.call(q, "add", {"n": 2})
    ours.empty()
    bull.call(theirs, "empty")
    assert queue_keys(redis_client, ours) == ["id"]
    assert queue_keys(redis_client, theirs) == ["1", "id"]  # Node orphans the delayed job's hash
    assert bull.get_job(theirs, "1") is not None and bull.call(theirs, "getJobCounts")["delayed"] == 0


# --- 4. obliterate ------------------------------------------------------------------------------------
def test_obliterate_refuses_with_active_jobs_then_force_leaves_no_key(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis
) -> None:
    bull.process(queue, behaviour={"log": ["row"]})
    for n in range(2):
        queue.add({"n": n})
    bull.wait_for_processed(queue, 2)
    hung = job_id(queue.add({"n": 2, "__peer": {"hang": True}}))
    bull.wait_for_state(queue, hung, "active")
    queue.add({"n": 3})
    queue.add({"n": 4}, delay=60_000)
    queue.add({"n": 5}, repeat={"every": 60_000})

    before = keyspace(redis_client, queue.prefix)
    with pytest.raises(bullpy.QueueHasActiveJobs):
        queue.obliterate()
    assert keyspace(redis_client, queue.prefix) == before
    assert bull.call(queue, "isPaused") is False

    queue.obliterate(force=True)
    assert queue_keys(redis_client, queue) == []
    assert node_counts(bull, queue) == dict.fromkeys(
        ("waiting", "active", "completed", "failed", "delayed", "paused"), 0
    )
    assert bull.call(queue, "isPaused") is False
    assert bull.call(queue, "getRepeatableJobs") == []

    # A second Node queue object (another "process": the first one's only slot hangs) starts afresh.
    fresh = PeerQueue(queue.name, prefix=queue.prefix, settings={"lockDuration": 20_000})
    bull.process(fresh)
    again = bull.call(fresh, "add", {"n": 6})
    assert again["id"] == "1"  # the id counter went with the queue
    bull.wait_for_processed(fresh, 1)
    assert bull.job(fresh, "1", "getState") == "completed"
    # Nothing of the obliterated queue came back (the hung job's lock is not re-extended).
    assert set(queue_keys(redis_client, queue)) - {"stalled-check"} == {"1", "completed", "id"}


def test_obliterate_after_jobs_finish_then_the_same_node_worker_goes_on(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis
) -> None:
    bull.process(queue, behaviour={"log": ["row"]})
    for n in range(3):
        bull.call(queue, "add", {"n": n})
    queue.add({"n": 3, "__peer": {"fail": "no"}})
    bull.wait_for_processed(queue, 4)
    queue.add({"n": 4}, delay=60_000)

    queue.obliterate()
    assert queue_keys(redis_client, queue) == []
    assert bull.call(queue, "isPaused") is False

    # The running Node worker (idle in BRPOPLPUSH) takes jobs of the re-created queue.
    new = [bull.call(queue, "add", {"n": 5})["id"], job_id(queue.add({"n": 6}))]
    assert new == ["1", "2"]
    runs = bull.wait_for_processed(queue, 6, timeout=5)
    assert [r["id"] for r in runs[-2:]] == new
    assert node_counts(bull, queue)["completed"] == 2


# --- 5. job-level operations --------------------------------------------------------------------------
def test_retry_of_node_failed_jobs_is_processed_again_as_node_retry_would(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis
) -> None:
    bull.process(queue, behaviour={"failTimes": 1, "fail": "first try"})
    ours, theirs = bull.call(queue, "add", {"n": 1})["id"], bull.call(queue, "add", {"n": 2})["id"]
    bull.wait_for_counts(queue, failed=2)

    job = queue.get_job(ours)
    assert job is not None and job.attempts_made == 1
    job.retry()
    bull.job(queue, theirs, "retry")
    bull.wait_for_counts(queue, completed=2, failed=0)
    runs = bull.processed(queue)
    assert sorted((r["id"], r["attemptsMade"], r["outcome"]) for r in runs[2:]) == [
        (ours, 1, "completed"), (theirs, 1, "completed"),
    ]
    a, b = bull.get_job(queue, ours), bull.get_job(queue, theirs)
    assert a is not None and b is not None
    timing = {"id", "data", "opts", "timestamp", "processedOn", "finishedOn", "returnvalue"}
    assert {k: v for k, v in a.items() if k not in timing} == {k: v for k, v in b.items() if k not in timing}
    assert (a["attemptsMade"], a["returnvalue"]) == (1, {"processed": ours})
    assert redis_client.hexists(queue.keys.job(ours), "retriedOn")

    # retry() of a completed job as if failed is refused and changes nothing (Node strips finishedOn).
    done = queue.get_job(ours)
    assert done is not None
    before = redis_client.hgetall(queue.keys.job(ours))
    with pytest.raises(bullpy.JobNotInState):
        done.retry()
    assert redis_client.hgetall(queue.keys.job(ours)) == before
    assert bull.job(queue, ours, "getState") == "completed"

    # retry(state="completed") sends it round once more.
    done.retry(state="completed")
    bull.wait_for_processed(queue, 5)
    assert bull.processed(queue)[-1]["id"] == ours

    # retry_jobs moves every failed job back; the running worker completes them all.
    more = [bull.call(queue, "add", {"n": n})["id"] for n in (3, 4, 5)]
    bull.wait_for_counts(queue, failed=3)
    queue.retry_jobs()
    assert redis_client.zcard(queue.keys("failed")) == 0
    bull.wait_for_counts(queue, failed=0, completed=5)
    assert sorted(r["id"] for r in bull.processed(queue)[-3:]) == sorted(more)


def test_promote_remove_and_remove_jobs_on_node_jobs(
    bull: Peer, make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis
) -> None:
    peer_queue = PeerQueue("manage", prefix=make_queue().prefix, metrics={"maxDataPoints": 10})
    queue = make_queue("manage")
    bull.process(peer_queue)

    delayed = bull.call(peer_queue, "add", {"n": 1}, {"delay": 60_000})["id"]
    assert bull.job(peer_queue, delayed, "getState") == "delayed"
    promoted_at = ms()
    py_job(queue, delayed).promote()
    runs = bull.wait_for_processed(peer_queue, 1, timeout=5)
    assert runs[0]["id"] == delayed and runs[0]["start"] - promoted_at < 1000
    assert node_job(bull, peer_queue, delayed)["delay"] == 0

    hung = bull.call(peer_queue, "add", {"n": 2, "__peer": {"hang": True}})["id"]
    bull.wait_for_state(peer_queue, hung, "active")
    with pytest.raises(bullpy.JobLocked):
        py_job(queue, hung).remove()
    assert bull.job(peer_queue, hung, "getState") == "active"

    waiting = bull.call(peer_queue, "add", {"n": 3}, {"priority": 1})["id"]
    stale = queue.get_job(waiting)
    assert stale is not None
    stale.remove()
    assert bull.get_job(peer_queue, waiting) is None
    assert redis_client.zcard(queue.keys("priority")) == 0
    with pytest.raises(bullpy.JobNotFound):
        stale.remove()

    # remove_jobs("*"): every unlocked job goes; the queue's own hashes (meta, metrics) stay.
    queue.pause()
    parked = [bull.call(peer_queue, "add", {"n": 4})["id"], job_id(queue.add({"n": 5}, delay=60_000))]
    assert redis_client.exists(queue.keys("meta"), queue.keys("metrics:completed")) == 2
    removed = queue.remove_jobs("*")
    assert sorted(removed) == sorted([delayed, *parked])
    assert node_counts(bull, peer_queue) == {
        "waiting": 0, "active": 1, "completed": 0, "failed": 0, "delayed": 0, "paused": 0,
    }
    assert redis_client.exists(queue.keys("meta"), queue.keys("metrics:completed")) == 2
    assert queue.is_paused() and bull.call(peer_queue, "isPaused") is True
    assert bull.job(peer_queue, hung, "getState") == "active"
    assert bull.call(peer_queue, "getMetrics", "completed")["meta"]["count"] == 1
    # Nothing that was removed is ever processed.
    queue.resume()
    time.sleep(0.3)
    assert settled_ids(bull, peer_queue) == [delayed]


def test_update_progress_and_log_from_python_are_seen_by_node(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis
) -> None:
    bull.listen(queue, ["global:progress"])
    raw = redis_client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    raw.subscribe(queue.keys("progress"))
    raw.get_message(timeout=1.0)
    ours = bull.call(queue, "add", "send", {"n": 1})["id"]
    theirs = bull.call(queue, "add", "send", {"n": 2})["id"]
    job = queue.get_job(ours)
    assert job is not None

    job.update({"n": 1, "message": "olá"})
    job.log("queued by python")
    job.log("checked")
    for value in (42, {"step": 2, "of": 3}):
        job.update_progress(value)
        bull.job(queue, theirs, "progress", value)

    seen = bull.get_job(queue, ours)
    assert seen is not None
    assert seen["data"] == {"n": 1, "message": "olá"}
    assert seen["progress"] == {"step": 2, "of": 3}
    assert bull.call(queue, "getJobLogs", ours) == {"logs": ["queued by python", "checked"], "count": 2}

    events = bull.wait_for_events(queue, "global:progress", count=4)
    by_job: dict[str, list[Any]] = {ours: [], theirs: []}
    for event in events:
        by_job[event["args"][0]].append(event["args"][1])
    assert by_job[ours] == by_job[theirs] == [42, {"step": 2, "of": 3}]

    # On the wire the messages are byte-for-byte Node's (job ids swapped), and so is the hash field.
    messages: list[str] = []
    while len(messages) < 4:
        message = raw.get_message(timeout=2.0)
        assert message is not None, messages
        messages.append(message["data"])
    raw.close()
    assert messages[0::2] == [m.replace(f'"jobId":"{theirs}"', f'"jobId":"{ours}"') for m in messages[1::2]]
    assert messages[0] == f'{{"jobId":"{ours}","progress":42}}'
    assert redis_client.hget(queue.keys.job(ours), "progress") == redis_client.hget(
        queue.keys.job(theirs), "progress"
    )

    # The running worker processes the updated data.
    bull.process(queue, count=2)
    assert {r["id"]: r["data"] for r in bull.processed(queue)}[ours] == {"n": 1, "message": "olá"}


# --- 6. repeatable jobs -------------------------------------------------------------------------------
def test_python_repeatable_is_listed_and_removed_by_node(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis
) -> None:
    queue.add({"n": 1}, repeat={"every": 60_000})
    listed = bull.call(queue, "getRepeatableJobs")
    assert [(r["key"], r["every"], r["name"]) for r in listed] == [("__default__:::60000", 60000, "__default__")]
    assert listed == [r.to_node_json() for r in queue.get_repeatable_jobs()]
    iteration = zmembers(redis_client, queue.keys("delayed"))
    assert len(iteration) == 1 and iteration[0].startswith("repeat:")

    bull.call(queue, "removeRepeatable", {"every": 60_000})
    assert redis_client.zcard(queue.keys("repeat")) == 0
    assert redis_client.zcard(queue.keys("delayed")) == 0
    assert not redis_client.exists(queue.keys.job(iteration[0]))
    assert queue.get_repeatable_jobs() == []


def test_node_cron_repeatables_are_removed_by_python(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis
) -> None:
    tz = "America/Sao_Paulo"
    bull.call(queue, "add", "report", {"n": 1}, {"repeat": {"cron": "0 9 * * *", "tz": tz}, "jobId": "daily"})
    bull.call(queue, "add", "report", {"n": 2}, {"repeat": {"cron": "30 18 * * 1-5"}})
    assert redis_client.zcard(queue.keys("repeat")) == 2
    assert redis_client.zcard(queue.keys("delayed")) == 2
    daily_key = f"report:daily::{tz}:0 9 * * *"
    assert daily_key in [r.key for r in queue.get_repeatable_jobs()]

    iterations = zmembers(redis_client, queue.keys("delayed"))
    assert queue.remove_repeatable("report", cron="0 9 * * *", tz=tz, job_id="daily") is True
    assert zmembers(redis_client, queue.keys("repeat")) == ["report::::30 18 * * 1-5"]
    (left,) = zmembers(redis_client, queue.keys("delayed"))
    (gone,) = set(iterations) - {left}
    assert node_job(bull, queue, left)["data"] == {"n": 2}
    assert bull.get_job(queue, gone) is None
    assert [r["key"] for r in bull.call(queue, "getRepeatableJobs")] == ["report::::30 18 * * 1-5"]

    (other,) = queue.get_repeatable_jobs()
    assert queue.remove_repeatable_by_key(other.key) is True
    assert redis_client.zcard(queue.keys("repeat")) == 0
    assert redis_client.zcard(queue.keys("delayed")) == 0
    assert [k for k in queue_keys(redis_client, queue) if k.startswith("repeat:")] == []
    assert bull.call(queue, "getRepeatableJobs") == []
    assert queue.remove_repeatable("report", cron="0 9 * * *", tz=tz, job_id="daily") is False
