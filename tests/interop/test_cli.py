"""`bullpy` commands on queues that real Node Bull filled, through click's runner and as real processes.

The fixture queue holds a job in every state Bull knows: waiting, active (a Node handler holds it),
delayed, prioritised, completed (with a return value), failed (with a stack trace and logs) and a
repeatable definition; a second queue is globally paused with a job in its paused list. Every action
is checked on what Redis then holds and on what Node Bull then sees or does.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

import bullpy
from bullpy.cli import main

from ..conftest import keyspace
from .peer import Peer

CRON = "0 0 1 1 *"  # once a year: the pending iteration never comes due during a test


@dataclass
class Filled:
    queue: bullpy.Queue
    paused: bullpy.Queue
    redis_url: str

    def run(self, *args: str, fmt: str = "json", input: str | None = None) -> Result:
        base = ["--redis", self.redis_url, "--prefix", self.queue.prefix, "--format", fmt]
        return CliRunner().invoke(main, [*base, *args], input=input)

    def json(self, *args: str) -> Any:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def filled(make_queue: Any, bull: Peer, redis_url: str) -> Iterator[Filled]:
    queue: bullpy.Queue = make_queue("cli q:{1}", allow_colon=True)
    for i in range(3):
        bull.call(queue, "add", {"i": i, "__peer": {"return": {"sent": i}}}, {"jobId": f"ok-{i}"})
    bull.call(queue, "add", {"number": "5511", "__peer": {"fail": "number not on WhatsApp", "log": ["tried"]}},
              {"jobId": "bad"})
    bull.call(queue, "add", {"__peer": {"hang": True}}, {"jobId": "busy"})
    bull.process(queue, concurrency=2, count=4)  # one slot stays free beside the hanging job
    bull.wait_for_state(queue, "busy", "active")
    bull.call(queue, "pause", True, True)  # a local pause: this worker takes nothing more, busy stays active
    bull.call(queue, "add", {"w": 1}, {"jobId": "w1"})
    bull.call(queue, "add", {"w": 2}, {"jobId": "w2"})
    bull.call(queue, "add", {"p": 1}, {"jobId": "p1", "priority": 1})
    bull.call(queue, "add", {"later": True}, {"jobId": "later", "delay": 3_600_000})
    bull.call(queue, "add", {"report": True}, {"repeat": {"cron": CRON}})
    paused: bullpy.Queue = make_queue("cli paused")
    bull.call(paused, "add", {"before": True})
    bull.call(paused, "pause")
    bull.call(paused, "add", {"after": True})
    yield Filled(queue, paused, redis_url)


def _stable(client: redis.Redis, prefix: str) -> dict[str, Any]:
    # Node's stalled-jobs check rewrites these on its own clock while the test runs.
    return {k: v for k, v in keyspace(client, prefix).items() if not k.endswith(("stalled-check", ":stalled"))}


def test_queues_stats_jobs_and_job(filled: Filled, bull: Peer) -> None:
    node_counts = bull.call(filled.queue, "getJobCounts")
    assert node_counts == {"waiting": 3, "active": 1, "completed": 3, "failed": 1, "delayed": 2, "paused": 0}
    rows = filled.json("queues")
    assert rows == [
        {"queue": "cli paused", **bull.call(filled.paused, "getJobCounts"), "paused_flag": True},
        {"queue": "cli q:{1}", **node_counts, "paused_flag": False},
    ]
    stats = filled.json("stats", "cli q:{1}")[0]
    assert {k: stats[k] for k in node_counts} == node_counts
    assert stats["workers"] == len(bull.call(filled.queue, "getWorkers")) >= 1

    failed = filled.json("jobs", "cli q:{1}", "--state", "failed")
    assert [(r["id"], r["state"], r["failed_reason"]) for r in failed] == [("bad", "failed", "number not on WhatsApp")]
    everything = filled.json("jobs", "cli q:{1}", "--limit", "100")
    assert sorted(r["id"] for r in everything) == sorted(
        ["bad", "busy", "w1", "w2", "p1", "later", "ok-0", "ok-1", "ok-2",
         *(j["id"] for j in bull.call(filled.queue, "getDelayed") if j["id"].startswith("repeat:"))]
    )
    assert everything[0]["id"] == "bad"  # failed first: what needs attention
    assert [r["id"] for r in filled.json("jobs", "cli q:{1}", "--grep", "WHATSAPP")] == ["bad"]
    assert len(filled.json("jobs", "cli q:{1}", "-n", "2")) == 2
    assert filled.json("jobs", "cli q:{1}", "--state", "completed", "--since", "1h") != []
    time.sleep(0.05)
    assert filled.json("jobs", "cli q:{1}", "--state", "completed", "--since", "10ms") == []
    as_csv = filled.run("jobs", "cli q:{1}", "--state", "waiting", fmt="csv")
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["id"] for r in table] == [j["id"] for j in bull.call(filled.queue, "getWaiting")]

    bad = filled.json("job", "cli q:{1}", "bad")
    node_bad = bull.call(filled.queue, "getJob", "bad")
    assert {k: bad[k] for k in node_bad} == node_bad
    assert bad["state"] == "failed" and bad["logs"] == ["tried"] and bad["stacktrace"]
    assert filled.json("job", "cli q:{1}", "busy")["lock_owner"]  # the Node worker's lock token
    missing = filled.run("job", "cli q:{1}", "nope")
    assert missing.exit_code == 1 and "no job 'nope'" in missing.output

    repeat = filled.json("repeatable", "cli q:{1}")
    node_repeat = bull.call(filled.queue, "getRepeatableJobs")
    assert [(r["key"], r["cron"], r["next"]) for r in repeat] == [(r["key"], r["cron"], r["next"]) for r in node_repeat]

    node_workers = bull.call(filled.queue, "getWorkers")
    assert sorted(w["id"] for w in filled.json("workers", "cli q:{1}")) == sorted(w["id"] for w in node_workers)

    human = filled.run("jobs", "cli q:{1}", "--state", "failed", fmt="table")
    assert "number not on" in human.stdout and "failed_reason" in human.stdout, human.stdout


def test_add_is_read_by_node_and_bad_input_changes_nothing(filled: Filled, bull: Peer, redis_client: redis.Redis
                                                           ) -> None:
    added = filled.json("add", "cli q:{1}", "--data", '{"number": "5511999", "message": "hi", "delay": 0}',
                        "--job-id", "cli-1", "--attempts", "3", "--backoff", "exponential:2s", "--priority", "2",
                        "--remove-on-complete", "100", "--opts", '{"stackTraceLimit": 5}')
    assert added == {"id": "cli-1", "name": "__default__", "duplicate": False, "state": "waiting"}
    node_job = bull.call(filled.queue, "getJob", "cli-1")
    assert node_job["data"] == {"number": "5511999", "message": "hi", "delay": 0}
    assert node_job["opts"] == {"attempts": 3, "backoff": {"type": "exponential", "delay": 2000}, "priority": 2,
                                "removeOnComplete": 100, "stackTraceLimit": 5, "jobId": "cli-1", "delay": 0,
                                "timestamp": node_job["timestamp"]}
    again = filled.json("add", "cli q:{1}", "--data", "{}", "--job-id", "cli-1")
    assert again["duplicate"] is True

    before = _stable(redis_client, filled.queue.prefix)
    for args, message in [
        (["--data", "{not json"], "not valid JSON"),
        (["--data", "{}", "--priority", "-1"], "priority"),
        (["--data", "{}", "--delay", "soon"], "not a duration"),
        (["--data", "{}", "--opts", '{"jobid": 1}'], "unknown job option 'jobid'"),
        (["--data", "{}", "--job-id", "repeat:x"], "reserved"),
        (["--data", "{}", "--cron", "61 * * * *"], "61"),
    ]:
        result = filled.run("add", "cli q:{1}", *args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert _stable(redis_client, filled.queue.prefix) == before


def test_load_then_node_sends_each_row_once(make_queue: Any, bull: Peer, redis_url: str, prefix: str,
                                            tmp_path: Any, redis_client: redis.Redis) -> None:
    campaign = tmp_path / "spring.csv"
    campaign.write_text("customer_id,number,message\n7,0055119,oi\n8,0055118,ola\n9,0055117,hey\n")
    base = ["--redis", redis_url, "--prefix", prefix, "--format", "json"]
    runner = CliRunner()
    dry = runner.invoke(main, [*base, "load", "message-queue", str(campaign), "--job-id", "spring-{customer_id}",
                               "--data", "number,message", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout) == {"queue": "message-queue", "rows": 3, "would_add": 3, "dry_run": True}
    assert keyspace(redis_client, prefix) == {}
    first = runner.invoke(main, [*base, "load", "message-queue", str(campaign), "--job-id", "spring-{customer_id}",
                                 "--data", "number,message", "--attempts", "3", "--backoff", "exponential:2s"])
    assert json.loads(first.stdout) == {"queue": "message-queue", "rows": 3, "added": 3, "dry_run": False}
    again = runner.invoke(main, [*base, "load", "message-queue", str(campaign), "--job-id", "spring-{customer_id}",
                                 "--data", "number,message"])
    assert json.loads(again.stdout)["duplicate"] == 3
    queue = make_queue("message-queue")
    bull.process(queue, count=3)
    sent = sorted((r["id"], r["data"]["number"]) for r in bull.processed(queue))
    assert sent == [("spring-7", "0055119"), ("spring-8", "0055118"), ("spring-9", "0055117")]
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,number\n1,\n")
    before = keyspace(redis_client, prefix)
    failed = runner.invoke(main, [*base, "load", "message-queue", str(bad), "--job-id", "x-{customer_id}"])
    assert failed.exit_code == 1 and "number" in failed.output
    assert keyspace(redis_client, prefix) == before


def test_retry_promote_remove_pause_resume_as_node_sees_them(filled: Filled, bull: Peer) -> None:
    name = "cli q:{1}"
    assert filled.json("retry", name, "--id", "bad") == [{"id": "bad", "result": "retried"}]
    assert bull.job(filled.queue, "bad", "getState") == "waiting"
    mixed = filled.run("retry", name, "--id", "ok-0")
    assert mixed.exit_code == 1 and "could not be retried" in mixed.output
    assert json.loads(mixed.stdout) == [{"id": "ok-0", "result": "is completed"}]

    assert filled.json("promote", name, "--id", "later") == [{"id": "later", "result": "promoted"}]
    assert bull.job(filled.queue, "later", "getState") == "waiting"

    assert filled.json("remove", name, "w2", "--yes") == [{"id": "w2", "result": "removed"}]
    assert bull.call(filled.queue, "getJob", "w2") is None
    locked = filled.run("remove", name, "busy", "--yes")
    assert locked.exit_code == 1 and bull.job(filled.queue, "busy", "getState") == "active"

    assert filled.json("pause", name) == {"queue": name, "paused": True}
    assert bull.call(filled.queue, "isPaused") is True
    assert filled.json("resume", name) == {"queue": name, "paused": False}
    assert bull.call(filled.queue, "isPaused") is False

    # Node's worker (paused locally until now) then runs what was retried and promoted.
    bull.call(filled.queue, "resume", True)
    bull.wait_for_state(filled.queue, "later", "completed")
    bull.wait_for_state(filled.queue, "bad", "failed")
    assert sum(1 for r in bull.processed(filled.queue) if r["id"] == "bad") == 2


DESTRUCTIVE = [
    (["clean", "cli q:{1}", "--state", "completed", "--grace", "0"], "would_remove", 3),
    (["empty", "cli q:{1}"], "would_remove", 5),
    (["obliterate", "cli q:{1}", "--force"], "would_remove_jobs", 10),
    (["remove", "cli q:{1}", "--pattern", "ok-*"], "would_remove", 3),
    (["retry", "cli q:{1}"], "would_retry", 1),
    (["promote", "cli q:{1}", "--all"], "would_promote", 2),
]


@pytest.mark.parametrize(("args", "field", "count"), DESTRUCTIVE, ids=[a[0] for a, _, _ in DESTRUCTIVE])
def test_destructive_commands_refuse_without_yes_and_dry_run_changes_nothing(
    filled: Filled, redis_client: redis.Redis, bull: Peer, args: list[str], field: str, count: int
) -> None:
    before = _stable(redis_client, filled.queue.prefix)
    refused = filled.run(*args)
    assert refused.exit_code == 1 and "refusing to" in refused.output and "--yes" in refused.output
    dry = filled.json(*args, "--dry-run")
    assert dry[field] == count
    assert _stable(redis_client, filled.queue.prefix) == before
    done = filled.run(*args, "--yes")
    assert done.exit_code == 0, done.output
    assert _stable(redis_client, filled.queue.prefix) != before
    counts = bull.call(filled.queue, "getJobCounts")
    if args[0] == "clean":
        assert counts["completed"] == 0
    elif args[0] == "empty":
        assert counts["waiting"] == counts["delayed"] == 0 and counts["active"] == 1
    elif args[0] == "obliterate":
        assert not any(k for k in _stable(redis_client, filled.queue.prefix) if k.startswith("cli q:{1}:")
                       and not k.startswith("cli q:{1}:busy"))
    elif args[0] == "remove":
        assert counts["completed"] == 0 and counts["failed"] == 1
    elif args[0] == "retry":
        assert counts["failed"] == 0 and bull.job(filled.queue, "bad", "getState") == "waiting"
    elif args[0] == "promote":
        assert counts["delayed"] == 0 and bull.job(filled.queue, "later", "getState") == "waiting"


def _in_terminal(args: list[str], answer: bytes) -> tuple[int, str]:
    """Run the CLI with a real terminal on stdin (a pty), answering its question with ``answer``."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "bullpy.cli", *args], stdin=follower, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    os.close(follower)
    try:
        os.write(leader, answer)
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(leader)
    return proc.returncode, out.decode()


def test_a_terminal_is_asked_and_no_means_unchanged(filled: Filled, redis_client: redis.Redis) -> None:
    args = ["--redis", filled.redis_url, "--prefix", filled.queue.prefix, "--format", "json", "clean",
            "cli q:{1}", "--state", "completed", "--grace", "0"]
    before = _stable(redis_client, filled.queue.prefix)
    code, out = _in_terminal(args, b"n\n")
    assert code == 1 and "Remove 3 completed jobs (any age: --grace 0) from queue 'cli q:{1}'?" in out
    assert _stable(redis_client, filled.queue.prefix) == before
    code, out = _in_terminal(args, b"y\n")
    assert code == 0 and '"removed": 3' in out
    assert redis_client.zcard(filled.queue.keys("completed")) == 0


def test_unknown_queue_is_an_error(redis_url: str, prefix: str) -> None:
    for args in (["stats", "nope"], ["jobs", "nope"], ["clean", "nope", "--grace", "1d", "--yes"],
                 ["obliterate", "nope", "--yes"]):
        result = CliRunner().invoke(main, ["--redis", redis_url, "--prefix", prefix, *args])
        assert result.exit_code == 1
        assert "no queue 'nope'" in result.output


def test_real_processes_password_never_appears_and_help_stays_light(filled: Filled) -> None:
    run = subprocess.run([sys.executable, "-m", "bullpy.cli", "--redis", "redis://:hunter2@127.0.0.1:1/0",
                          "stats", "q"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "127.0.0.1:1" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "hunter2" not in run.stdout + run.stderr
    stats = subprocess.run([sys.executable, "-m", "bullpy.cli", "--redis", filled.redis_url, "--prefix",
                            filled.queue.prefix, "stats", "cli q:{1}", "--format", "json"], capture_output=True,
                           text=True, timeout=60)
    assert stats.returncode == 0 and json.loads(stats.stdout)[0]["failed"] == 1  # JSON when asked, also after it
    code = "import sys; from bullpy.cli import main; print('pandas' in sys.modules, 'ipywidgets' in sys.modules)"
    light = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert light.stdout.split() == ["False", "False"]


def test_export_import_copy_and_move(filled: Filled, bull: Peer, redis_client: redis.Redis, tmp_path: Any,
                                     make_queue: Any) -> None:
    from ..conftest import delete_prefix

    dump = tmp_path / "q.bullpy"
    exported = filled.json("export", "cli q:{1}", "-o", str(dump))
    assert exported["jobs"] == 10 and exported["repeatables"] == 1
    kept = dump.read_bytes()
    refused = filled.run("export", "cli q:{1}", "-o", str(dump))
    assert refused.exit_code == 1 and "refusing to overwrite" in refused.output and dump.read_bytes() == kept
    other = f"{filled.queue.prefix}-copy"
    target = bullpy.Queue("cli q:{1}", filled.redis_url, prefix=other, allow_colon=True)
    try:
        into = ["--redis", filled.redis_url, "--prefix", other, "--format", "json"]
        dry = CliRunner().invoke(main, [*into, "import", str(dump), "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert keyspace(redis_client, other) == {}
        # A new queue whose name has ':' is created only on request.
        refused = CliRunner().invoke(main, [*into, "import", str(dump)])
        assert refused.exit_code != 0 and "allow_colon" in refused.output
        assert keyspace(redis_client, other) == {}
        done = CliRunner().invoke(main, [*into, "import", str(dump)], env={"BULLPY_ALLOW_COLON": "1"})
        assert done.exit_code == 0, done.output
        source_counts = bull.call(filled.queue, "getJobCounts")
        # The active job's lock cannot move: it arrives waiting, at the head, as stalled recovery would put it.
        assert bull.call(target, "getJobCounts") == {**source_counts, "active": 0, "waiting": source_counts["waiting"] + 1}
        assert bull.call(target, "getJob", "bad") == bull.call(filled.queue, "getJob", "bad")
        before = keyspace(redis_client, other)
        again = CliRunner().invoke(main, [*into, "import", str(dump)])
        assert again.exit_code == 1 and "already" in again.output
        assert keyspace(redis_client, other) == before
        truncated = tmp_path / "cut.bullpy"
        truncated.write_bytes(dump.read_bytes()[:-40])
        cut = CliRunner().invoke(main, [*into, "import", str(truncated), "--queue", "fresh"])
        assert cut.exit_code == 1 and "Traceback" not in cut.output
        assert keyspace(redis_client, other) == before
        # Node runs what was imported.
        bull.process(target, concurrency=2)
        bull.wait_for_state(target, "w1", "completed")
        bull.close(target, do_not_wait_jobs=True)
    finally:
        target.close()
        delete_prefix(redis_client, other)

    # copy to another queue, then Node runs the copy; move failed jobs back to waiting within the queue.
    copied = filled.json("copy", "cli q:{1}", "copy of q", "--state", "waiting", "--state", "delayed")
    assert copied["jobs"] == 5
    copy_queue = make_queue("copy of q")
    assert sorted(j["id"] for j in bull.call(copy_queue, "getWaiting")) == ["p1", "w1", "w2"]
    refused = filled.run("move", "cli q:{1}", "cli q:{1}", "--state", "failed", "--to-state", "wait")
    assert refused.exit_code == 1 and "refusing to move 1 jobs" in refused.output
    assert bull.job(filled.queue, "bad", "getState") == "failed"
    moved = filled.json("move", "cli q:{1}", "cli q:{1}", "--state", "failed", "--to-state", "wait", "--yes")
    assert moved["jobs"] == 1 and bull.job(filled.queue, "bad", "getState") == "waiting"


def test_load_into_a_node_filled_queue_and_replace_needs_yes(filled: Filled, bull: Peer, tmp_path: Any,
                                                             redis_client: redis.Redis) -> None:
    rows = tmp_path / "more.jsonl"
    rows.write_text('{"customer_id": 1, "number": "5511", "message": "a"}\n'
                    '{"customer_id": 2, "number": "5512", "message": "b"}\n')
    loaded = filled.json("load", "cli q:{1}", str(rows), "--job-id", "more-{customer_id}", "--data",
                         "number,message", "--priority", "3")
    assert loaded == {"queue": "cli q:{1}", "rows": 2, "added": 2, "dry_run": False}
    node_job = bull.call(filled.queue, "getJob", "more-2")
    assert node_job["data"] == {"number": "5512", "message": "b"} and node_job["opts"]["priority"] == 3
    assert bull.call(filled.queue, "getJobCounts")["waiting"] == 5

    dump = tmp_path / "q.bullpy"
    filled.json("export", "cli q:{1}", "-o", str(dump), "--state", "failed")
    filled.json("retry", "cli q:{1}", "--id", "bad")  # the job now differs from the exported one
    before = _stable(redis_client, filled.queue.prefix)
    refused = filled.run("import", str(dump), "--on-conflict", "replace")
    assert refused.exit_code == 1 and "refusing to overwrite 1 existing jobs" in refused.output
    assert _stable(redis_client, filled.queue.prefix) == before
    replaced = filled.json("import", str(dump), "--on-conflict", "replace", "--yes")
    assert replaced["replaced"] == 1 and bull.job(filled.queue, "bad", "getState") == "failed"
