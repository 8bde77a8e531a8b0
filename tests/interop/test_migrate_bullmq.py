"""``bullpy.migrate.migrate_to_bullmq``: a queue filled by real Node Bull 4.16.5 moves into BullMQ, written
by the Python ``bullmq`` package, and a real BullMQ 6.4.0 Node worker (``bridge/bullmq-worker.js``)
processes every migrated job with its data, priority and delay intact.

Each test migrates into its own BullMQ prefix (deleted afterwards, like the Bull one) on the test Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import redis

import bullpy
import bullpy.migrate
import bullpy.migrate._run
from bullpy.migrate import PRIORITY_LIMIT, migrate_to_bullmq

from ..conftest import delete_prefix, keyspace
from .peer import BRIDGE_DIR, Peer, PeerQueue

pytest.importorskip("bullmq")

QUEUE = "message-queue"
FAR_MS = 3_600_000  # a delay that must survive the move: still delayed, same due time
NEAR_MS = 1_500  # a delay the BullMQ worker must respect


def _bullmq_installed() -> bool:
    return (BRIDGE_DIR / "node_modules" / "bullmq" / "package.json").is_file()


@pytest.fixture
def bullmq_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A fresh BullMQ prefix for this test; every key under it is deleted afterwards."""
    prefix = f"bullpy-test-mq-{uuid.uuid4().hex[:8]}"
    yield prefix
    delete_prefix(redis_client, prefix)


def run_bullmq_worker(
    redis_url: str, prefix: str, *, until: Iterable[str], names: Iterable[str] = (), name: str = QUEUE,
    timeout_s: float = 20.0,
) -> list[dict[str, Any]]:
    """Run bridge/bullmq-worker.js (concurrency 1) until the jobs ``until`` and one job of each of ``names``
    have completed; its job lines."""
    if not _bullmq_installed():
        pytest.skip("npm bullmq is missing in bridge/node_modules: run `npm ci` in bridge/")
    env = {
        **os.environ, "REDIS_URL": redis_url, "QUEUE_NAME": name, "BULLMQ_PREFIX": prefix, "CONCURRENCY": "1",
        "UNTIL_IDS": ",".join(until), "UNTIL_NAMES": ",".join(names), "TIMEOUT_MS": str(int(timeout_s * 1000)),
    }
    proc = subprocess.run(
        ["node", "bullmq-worker.js"], check=False, cwd=BRIDGE_DIR, env=env, capture_output=True, text=True,
        timeout=timeout_s + 15,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 0, f"bullmq-worker.js exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    assert lines[0]["event"] == "ready" and lines[0]["bullmq"] == "6.4.0"
    return [line for line in lines if line["event"] == "job"]


def bull_due(client: redis.Redis, queue: bullpy.Queue, job_id: str) -> int:
    score = client.zscore(queue.keys("delayed"), job_id)
    assert score is not None, f"job {job_id} is not delayed in Bull"
    return int(score) // 4096


def bullmq_counts(client: redis.Redis, prefix: str, name: str = QUEUE) -> dict[str, int]:
    base = f"{prefix}:{name}:"
    return {
        "wait": int(client.llen(base + "wait")), "paused": int(client.llen(base + "paused")),
        "prioritized": int(client.zcard(base + "prioritized")), "delayed": int(client.zcard(base + "delayed")),
        "active": int(client.llen(base + "active")),
    }


def add(bull: Peer, q: PeerQueue, name: str, data: dict[str, Any], opts: dict[str, Any] | None = None) -> str:
    job_id: str = bull.call(q, "add", name, data, opts or {})["id"]
    return job_id


# --- the issue's "Done when": every state, then a real BullMQ worker -----------------------------------------
@pytest.mark.parametrize("page", [10_000, 3], ids=["one-page", "pages-of-3"])
def test_every_state_moves_and_a_real_bullmq_worker_processes_it_intact(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis, redis_url: str, bullmq_prefix: str, page: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # States are collected in bounded pages (no whole-list read on a big queue); small pages must read the same.
    monkeypatch.setattr(bullpy.migrate._run, "_PAGE", page)
    q = PeerQueue(QUEUE, prefix=queue.prefix)
    # Phase 1, a Bull worker: one job fails for good, one completes, one hangs (stays active, locked).
    failed = add(bull, q, "breaks", {"number": "1", "__peer": {"fail": "whatsapp not ready"}}, {"attempts": 1})
    completed = add(bull, q, "send", {"number": "2"})
    active = add(bull, q, "slow", {"number": "3", "__peer": {"hang": True}})
    bull.process(q, concurrency=3)
    bull.wait_for_counts(q, failed=1, completed=1, active=1)
    # Stop that worker without waiting: the hanging job stays active, its lock lives on for 30 s, and no
    # Bull timer promotes delayed jobs behind the test's back.
    bull.close(q, do_not_wait_jobs=True)

    # Phase 2, what will move: plain, prioritised, delayed jobs and two repeatables.
    data = {
        "plain": {"number": "5511999990001", "message": "olá ✓", "nested": {"list": [1, 2.5, None, True]}},
        "default": {"number": "5511999990002", "message": "no name"},
        "retry": {"number": "5511999990003"},
    }
    plain = add(bull, q, "send", data["plain"], {"timeout": 5000, "removeOnComplete": True})
    default = bull.call(q, "add", data["default"])["id"]  # name __default__
    retry = add(bull, q, "send", data["retry"], {"attempts": 3, "backoff": 250})
    prioritised = {
        "p5": add(bull, q, "prio", {"p": 5}, {"priority": 5}),
        "p1": add(bull, q, "prio", {"p": 1}, {"priority": 1}),
        "p3": add(bull, q, "prio", {"p": 3}, {"priority": 3}),
        "p1b": add(bull, q, "prio", {"p": "1b"}, {"priority": 1}),
        "huge": add(bull, q, "prio", {"p": "huge"}, {"priority": 2**22}),
    }
    near = add(bull, q, "later", {"n": "near"}, {"delay": NEAR_MS})
    far = add(bull, q, "later", {"n": "far"}, {"delay": FAR_MS, "jobId": "far-away"})
    bull.call(q, "add", "tick", {"tick": True}, {"repeat": {"every": 1000}})
    bull.call(q, "add", "report", {"report": "daily"},
              {"repeat": {"cron": "0 8 * * *", "tz": "America/Sao_Paulo"}, "attempts": 2})
    near_due, far_due = bull_due(redis_client, queue, near), bull_due(redis_client, queue, far)
    report_next = next(r.next for r in queue.get_repeatable_jobs() if r.name == "report")

    summary = migrate_to_bullmq(queue, target_prefix=bullmq_prefix, batch_size=3)

    # Bull keeps only what a worker holds or finished.
    counts = queue.get_job_counts("wait", "paused", "delayed", "failed", "active", "completed")
    assert counts == {"wait": 0, "paused": 0, "delayed": 0, "failed": 0, "active": 1, "completed": 1}
    assert queue.get_ranges(["active", "completed"]) == [active, completed]
    assert queue.get_repeatable_count() == 0
    assert summary.left_in_source["active"] == 1 and summary.left_in_source["completed"] == 1
    assert summary.migrated["failed"] == 1 and summary.migrated["wait"] == 8
    assert len(summary.schedulers) == 2 and summary.replaced_iterations == 2
    assert summary.dropped_options == {"timeout (BullMQ has no job timeout)": 1}
    assert summary.changed == {f"priority clamped to {PRIORITY_LIMIT}": 1}
    assert not summary.skipped, summary.skipped
    assert "moved 11 jobs" in str(summary) and "active 1" in str(summary)

    # The far job is still delayed in BullMQ, due when Bull had it due.
    base = f"{bullmq_prefix}:{QUEUE}:"
    far_score = redis_client.zscore(base + "delayed", "far-away")
    assert far_score is not None and int(far_score) // 4096 == far_due
    # The cron schedule's first BullMQ iteration is Bull's next run.
    report_id = summary.schedulers[next(k for k in summary.schedulers if k.startswith("report:"))]
    assert redis_client.zscore(base + "repeat", report_id) == report_next
    assert redis_client.hget(f"{base}repeat:{report_id}", "tz") == "America/Sao_Paulo"

    # Due now or soon: the 8 waiting jobs, the failed one, the near one; the tick schedule runs meanwhile.
    due = [plain, default, retry, failed, near, *prioritised.values()]
    runs = run_bullmq_worker(redis_url, bullmq_prefix, until=due, names=["tick"])
    by_id = {run["id"]: run for run in runs}
    assert by_id[plain]["data"] == data["plain"] and by_id[plain]["name"] == "send"
    assert by_id[plain]["opts"]["removeOnComplete"] is True and "timeout" not in by_id[plain]["opts"]
    assert by_id[default]["data"] == data["default"] and by_id[default]["name"] == "__default__"
    assert by_id[retry]["opts"]["attempts"] == 3
    assert by_id[retry]["opts"]["backoff"] == {"type": "fixed", "delay": 250}
    assert by_id[failed]["data"]["number"] == "1" and by_id[failed]["attemptsMade"] == 0
    assert by_id[near]["processedOn"] >= near_due
    assert far not in by_id
    assert any(run["name"] == "tick" for run in runs)
    # Concurrency 1: BullMQ runs its waiting jobs, then the prioritised ones by priority, FIFO within one.
    order = [run["id"] for run in runs if run["name"] == "prio"]
    assert order == [prioritised[k] for k in ("p1", "p1b", "p3", "p5", "huge")]
    assert by_id[prioritised["huge"]]["priority"] == PRIORITY_LIMIT
    assert sorted(run["id"] for run in runs if run["name"] != "tick") == sorted(due)


# --- dry run ------------------------------------------------------------------------------------------------
def test_dry_run_changes_nothing_on_either_side(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis, bullmq_prefix: str
) -> None:
    q = PeerQueue(QUEUE, prefix=queue.prefix)
    add(bull, q, "breaks", {"__peer": {"fail": "no"}})
    bull.process(q)
    bull.wait_for_counts(q, failed=1)
    bull.close()  # no Bull worker may touch the keys while they are compared
    for n in range(3):
        add(bull, q, "send", {"n": n}, {"priority": n})
    add(bull, q, "later", {"n": "later"}, {"delay": FAR_MS})
    bull.call(q, "add", "tick", {}, {"repeat": {"every": 60_000}})
    bull.close()
    before = (keyspace(redis_client, queue.prefix), keyspace(redis_client, bullmq_prefix))

    summary = migrate_to_bullmq(queue, target_prefix=bullmq_prefix, dry_run=True)

    assert (keyspace(redis_client, queue.prefix), keyspace(redis_client, bullmq_prefix)) == before
    assert before[1] == {}
    assert summary.dry_run and summary.migrated == {"wait": 3, "paused": 0, "failed": 1, "delayed": 1}
    assert len(summary.schedulers) == 1 and summary.replaced_iterations == 1
    assert "would move 5 jobs" in str(summary)


# --- idempotence ----------------------------------------------------------------------------------------------
def test_a_rerun_after_a_partial_migration_adds_no_duplicates(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis, redis_url: str, bullmq_prefix: str
) -> None:
    # The way to migrate: pause the Bull queue (globally) so no Bull worker takes anything meanwhile;
    # its waiting jobs then sit in the paused list.
    q = PeerQueue(QUEUE, prefix=queue.prefix)
    ids = [add(bull, q, "send", {"n": n}) for n in range(3)]
    bull.call(q, "pause")
    ids += [add(bull, q, "send", {"n": n}, {"priority": 2}) for n in (3, 4)]
    bull.close()
    assert queue.get_job_counts("wait", "paused") == {"wait": 0, "paused": 5}

    # An interrupted run: written to BullMQ (here: copied), never removed from Bull.
    first = migrate_to_bullmq(queue, target_prefix=bullmq_prefix, keep_source=True)
    assert first.migrated["paused"] == 5 and queue.get_job_counts("paused")["paused"] == 5
    handled: list[int] = []
    again = migrate_to_bullmq(queue, target_prefix=bullmq_prefix, batch_size=2, progress=handled.append)

    assert again.migrated["paused"] == 5 and again.already_in_target == 5
    assert handled == [2, 2, 1]
    assert queue.get_job_counts("paused")["paused"] == 0
    assert bullmq_counts(redis_client, bullmq_prefix) == {
        "wait": 3, "paused": 0, "prioritized": 2, "delayed": 0, "active": 0,
    }
    # BullMQ's own ids continue above the migrated numeric ones instead of overwriting them.
    assert int(redis_client.get(f"{bullmq_prefix}:{QUEUE}:id") or 0) >= max(int(i) for i in ids)
    runs = run_bullmq_worker(redis_url, bullmq_prefix, until=ids)
    assert sorted(run["id"] for run in runs) == sorted(ids)


# --- bad input --------------------------------------------------------------------------------------------------
def test_a_target_that_would_clash_is_refused_and_nothing_changes(
    queue: bullpy.Queue, redis_client: redis.Redis, redis_url: str, bullmq_prefix: str
) -> None:
    queue.add({"n": 1})
    before = keyspace(redis_client, queue.prefix)
    with pytest.raises(ValueError, match="share keys"):
        migrate_to_bullmq(queue, target_prefix=queue.prefix)  # same server, db, prefix and name
    with pytest.raises(ValueError, match="share keys"):
        migrate_to_bullmq(queue, target_redis=redis_url, target_prefix=queue.prefix, target_name=QUEUE)
    with pytest.raises(ValueError, match="contains ':'"):
        migrate_to_bullmq(queue, target_prefix=bullmq_prefix, target_name="a:b")
    with pytest.raises(ValueError, match="never migrated"):
        migrate_to_bullmq(queue, target_prefix=bullmq_prefix, states=("active",))
    other = bullpy.Queue("other", redis_url, prefix=bullmq_prefix)
    other.add({"n": 2}, priority=1)  # a Bull queue where the BullMQ one should go
    bull_target = keyspace(redis_client, bullmq_prefix)
    with pytest.raises(ValueError, match="Bull keys"):
        migrate_to_bullmq(queue, target_prefix=bullmq_prefix, target_name="other")
    other.close()
    assert keyspace(redis_client, queue.prefix) == before
    assert keyspace(redis_client, bullmq_prefix) == bull_target


def test_a_job_a_bull_worker_holds_stays_in_bull_and_its_copy_is_taken_back(
    queue: bullpy.Queue, redis_client: redis.Redis, bullmq_prefix: str
) -> None:
    kept = queue.add({"n": "taken"}, job_id="taken")
    moved = queue.add({"n": "free"}, job_id="free", timeout=100)
    assert kept is not None and moved is not None
    # A Bull worker's moveToActive sets the lock before the job leaves the waiting list for good: the
    # moment when a migration must not delete it.
    redis_client.set(queue.keys.lock("taken"), "a-bull-worker-token", px=30_000)

    summary = migrate_to_bullmq(queue, target_prefix=bullmq_prefix)

    assert [(s.id, s.state) for s in summary.skipped] == [("taken", "wait")]
    assert "took it" in summary.skipped[0].reason and "copy was removed" in summary.skipped[0].reason
    assert summary.migrated["wait"] == 1
    assert queue.get_ranges(["wait"]) == ["taken"] and queue.get_job("taken") is not None
    assert not redis_client.exists(f"{bullmq_prefix}:{QUEUE}:taken")
    assert redis_client.lrange(f"{bullmq_prefix}:{QUEUE}:wait", 0, -1) == ["free"]
    text = str(summary)
    assert f"{queue.prefix}:{QUEUE} -> BullMQ queue {bullmq_prefix}:{QUEUE}" in text
    assert "moved 1 jobs" in text and "timeout (BullMQ has no job timeout): 1 jobs" in text
    assert "'taken' (wait): a Bull worker took it" in text


# --- the command line -----------------------------------------------------------------------------------------
def test_the_cli_asks_dry_runs_then_moves_and_bullmq_processes(
    bull: Peer, queue: bullpy.Queue, redis_client: redis.Redis, redis_url: str, bullmq_prefix: str
) -> None:
    from click.testing import CliRunner

    from bullpy.cli import main

    q = PeerQueue(QUEUE, prefix=queue.prefix)
    ids = [add(bull, q, "send", {"n": n}, {"priority": 1 + n % 2}) for n in range(4)]
    ids.append(add(bull, q, "later", {"n": "soon"}, {"delay": NEAR_MS}))
    bull.close()
    base = ["--redis", redis_url, "--prefix", queue.prefix, "--format", "json", "migrate-to-bullmq", QUEUE,
            "--target-prefix", bullmq_prefix]
    before = (keyspace(redis_client, queue.prefix), keyspace(redis_client, bullmq_prefix))
    refused = CliRunner().invoke(main, base)
    assert refused.exit_code == 1 and "refusing to move 5 jobs" in refused.output
    dry = CliRunner().invoke(main, [*base, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["would_migrate"] == 5 and "would move 5 jobs" in dry.stderr
    assert (keyspace(redis_client, queue.prefix), keyspace(redis_client, bullmq_prefix)) == before
    done = CliRunner().invoke(main, [*base, "--yes"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["migrated"] == 5
    assert queue.get_job_counts("wait", "delayed") == {"wait": 0, "delayed": 0}
    runs = run_bullmq_worker(redis_url, bullmq_prefix, until=ids)
    assert sorted(run["id"] for run in runs) == sorted(ids)
