"""What `bullpy` prints, at 80, 120 and 200 columns, on the queue Node filled (see test_cli.py's ``filled``).

Every listed job's id and state appear whole on its line; global options work after the command; JSON
ends with a newline; state names are the same everywhere; times say their zone; help is never cut.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

import bullpy
from bullpy.cli import main

from ..conftest import delete_prefix
from .peer import Peer
from .test_cli import Filled, filled  # noqa: F401  (the fixture)

NAME = "cli q:{1}"
WIDTHS = (80, 120, 200)


def table(filled: Filled, width: int, *args: str, env: dict[str, str] | None = None) -> Result:
    base = ["--redis", filled.redis_url, "--prefix", filled.queue.prefix]
    result = CliRunner().invoke(main, [*base, *args], env={"COLUMNS": str(width), **(env or {})})
    assert result.exit_code == 0, result.output
    return result


def node_states(filled: Filled, bull: Peer) -> dict[str, str]:
    ids = [j["id"] for state in ("getWaiting", "getActive", "getDelayed", "getCompleted", "getFailed")
           for j in bull.call(filled.queue, state)]
    return {i: bull.job(filled.queue, i, "getState") for i in ids}


def assert_whole(lines: list[str], expected: dict[str, str]) -> None:
    """Each job on one line that starts with its whole id, then its whole state."""
    by_id = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    for job_id, state in expected.items():
        assert job_id in by_id, (job_id, lines)
        assert by_id[job_id][1] == state, (job_id, by_id[job_id])


@pytest.mark.parametrize("width", WIDTHS)
def test_jobs_fit_the_terminal_with_whole_ids_and_states(filled: Filled, bull: Peer, width: int) -> None:
    expected = node_states(filled, bull)
    listed = table(filled, width, "jobs", NAME, "-n", "100").stdout.splitlines()
    header = listed[0].split()
    assert header[:4] == ["id", "state", "name", "age"] and "attempts" in header
    assert_whole(listed, expected)
    assert header[-2:] == ["failed_reason", "data"]
    for line in listed:
        # A repeat job's long id sticks out of its own line only; every other line fits.
        assert len(line) <= width or line.startswith("repeat:"), (width, line)
    bad = next(line for line in listed if line.startswith("bad "))
    assert "1/1" in bad and "number not on" in bad and '{"number":"5' in bad  # attempts made/allowed
    if width >= 120:
        assert "number not on WhatsApp" in bad

    for state in ("failed", "waiting", "delayed", "active", "completed"):
        lines = table(filled, width, "jobs", NAME, "--state", state).stdout.splitlines()
        wanted = {i: s for i, s in expected.items() if s == state}
        assert_whole(lines, wanted)
        assert len(lines) == 1 + len(wanted)
        assert all(len(line) <= width or line.startswith("repeat:") for line in lines), lines
        assert "data" in lines[0].split()
    waiting = table(filled, width, "jobs", NAME, "--state", "waiting").stdout.splitlines()
    assert all("__default__" in line for line in waiting[1:])  # names are never wrapped or cut

    wide = table(filled, width, "jobs", NAME, "--wide", "-n", "100").stdout.splitlines()
    assert_whole(wide, expected)
    assert {"timestamp", "processed_on", "finished_on"} <= set(wide[0].split())
    picked = table(filled, width, "jobs", NAME, "--columns", "id,state,attempts,data", "-n", "100").stdout
    assert picked.splitlines()[0].split() == ["id", "state", "attempts", "data"]
    assert_whole(picked.splitlines(), expected)


@pytest.mark.parametrize("width", WIDTHS)
def test_other_listings_keep_their_rows_whole(filled: Filled, bull: Peer, width: int) -> None:
    queues = table(filled, width, "queues").stdout.splitlines()
    assert queues[0].split()[:3] == ["queue", "waiting", "active"]
    assert any(line.startswith("cli q:{1} ") for line in queues) and any(line.startswith("cli paused ") for line in queues)
    assert all(len(line) <= width for line in queues)
    stats = table(filled, width, "stats", NAME).stdout.splitlines()
    assert stats[1].startswith("cli q:{1} ") and len(stats) == 2
    workers = table(filled, width, "workers", NAME).stdout.splitlines()
    node_ids = sorted(w["id"] for w in bull.call(filled.queue, "getWorkers"))
    assert workers[0].split()[:6] == ["id", "name", "addr", "age", "idle", "db"]
    assert sorted(line.split()[0] for line in workers[1:]) == node_ids
    assert "fd=" not in "\n".join(workers) and "qbuf" not in workers[0]

    repeat = table(filled, width, "repeatable", NAME).stdout.splitlines()
    key = bull.call(filled.queue, "getRepeatableJobs")[0]["key"]
    assert repeat[0].split()[:3] == ["name", "schedule", "next"] and key in repeat[1]

    # Per-job results of actions: the same whole id and state on each line.
    states = node_states(filled, bull)
    ids = ",".join(states)
    for args in (["retry", NAME, "--id", ids, "--dry-run"], ["remove", NAME, *states, "--dry-run"],
                 ["promote", NAME, "--id", ids, "--dry-run"]):
        lines = table(filled, width, *args).stdout.splitlines()
        assert lines[0].split()[:2] == ["id", "state"], lines
        assert_whole(lines, states)
    for args in (["fail", NAME, *states, "--reason", "x", "--dry-run"], ["complete", NAME, *states, "--dry-run"]):
        lines = table(filled, width, *args).stdout.splitlines()
        assert {line.split()[0] for line in lines[1:]} == set(states)


@pytest.mark.parametrize("width", WIDTHS)
def test_job_shows_several_jobs_for_people(filled: Filled, bull: Peer, width: int) -> None:
    shown = table(filled, width, "job", NAME, "bad", "busy", "w1").stdout
    blocks = shown.split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [f"job {i} of queue {NAME}" for i in ("bad", "busy", "w1")]
    bad = blocks[0]
    fields = {line.split()[0]: line.split(None, 1)[1] for line in bad.splitlines()[1:] if line.startswith("  ")
              and not line.startswith("    ") and len(line.split()) > 1}
    assert fields["state"] == "failed" and fields["attempts_made"] == "1 of 1"
    assert fields["failed_reason"] == "number not on WhatsApp"
    for camel in ("attemptsMade", "failedReason", "processedOn", "finishedOn", "stacktrace\":"):
        assert camel not in bad
    node_bad = bull.call(filled.queue, "getJob", "bad")
    stack = node_bad["stacktrace"][0].splitlines()
    assert f"    [1] {stack[0]}" in bad and f"    {stack[1]}" in bad  # the trace as lines, not one JSON string
    assert '      "number": "5511",' in bad  # data pretty-printed
    assert "  logs (1)\n    tried" in bad
    assert fields["timestamp"].startswith(time.strftime("%Y-", time.localtime(node_bad["timestamp"] / 1000)))
    assert "lock_owner" in blocks[1] and bull.call(filled.queue, "getJob", "busy")["id"] == "busy"

    missing = CliRunner().invoke(main, ["--redis", filled.redis_url, "--prefix", filled.queue.prefix, "job", NAME,
                                        "w1", "nope"])
    assert missing.exit_code == 1 and "job w1 of queue" in missing.stdout and "no job 'nope'" in missing.output
    raw = CliRunner().invoke(main, ["--redis", filled.redis_url, "job", NAME, "bad", "w1", "--format", "json",
                                    "--prefix", filled.queue.prefix])
    lines = raw.stdout.splitlines()
    assert raw.stdout.endswith("\n") and len(lines) == 2
    first = json.loads(lines[0])
    assert {k: first[k] for k in node_bad} == node_bad and first["logs"] == ["tried"]


def test_global_options_work_after_the_command_and_json_ends_with_a_newline(filled: Filled) -> None:
    after = CliRunner().invoke(main, ["jobs", NAME, "--state", "failed", "--format", "json", "--redis",
                                      filled.redis_url, "--prefix", filled.queue.prefix])
    assert after.exit_code == 0, after.output
    assert [r["id"] for r in json.loads(after.stdout)] == ["bad"] and after.stdout.endswith("]\n")
    both = CliRunner().invoke(main, ["--format", "csv", "--redis", filled.redis_url, "--prefix", "nothing-here",
                                     "stats", NAME, "--format", "json", "--prefix", filled.queue.prefix])
    assert both.exit_code == 0 and json.loads(both.stdout)[0]["failed"] == 1  # after the command wins
    for args in (["queues"], ["stats", NAME], ["jobs", NAME], ["job", NAME, "bad"], ["repeatable", NAME],
                 ["workers", NAME], ["logs", NAME, "bad"], ["retry", NAME, "--dry-run"]):
        result = filled.run(*args)
        assert result.exit_code == 0 and result.stdout.endswith("\n"), (args, result.stdout)
        json.loads(result.stdout)
    refused = CliRunner().invoke(main, ["--redis", filled.redis_url, "--prefix", filled.queue.prefix, "clean", NAME,
                                        "--grace", "0"])
    assert refused.exit_code == 1 and "without --yes" in refused.output
    done = CliRunner().invoke(main, ["--redis", filled.redis_url, "clean", NAME, "--grace", "0", "--yes",
                                     "--prefix", filled.queue.prefix, "--format", "json"])
    assert done.exit_code == 0 and json.loads(done.stdout)["removed"] == 3


def test_state_names_are_the_same_everywhere(filled: Filled) -> None:
    waiting = filled.json("jobs", NAME, "--state", "waiting")
    assert filled.json("jobs", NAME, "--state", "wait") == waiting and waiting[0]["state"] == "waiting"
    for state in ("wait", "waiting"):
        dry = filled.json("clean", NAME, "--state", state, "--grace", "0", "--dry-run")
        assert dry == {"queue": NAME, "state": "waiting", "would_remove": 3, "dry_run": True}
    missing_grace = filled.run("clean", NAME, "--state", "completed")
    assert missing_grace.exit_code == 2 and "--grace" in missing_grace.output


def test_times_say_their_zone(filled: Filled, bull: Peer, monkeypatch: pytest.MonkeyPatch) -> None:
    bull.call(filled.queue, "add", {"morning": True}, {"repeat": {"cron": "0 9 * * *", "tz": "America/Sao_Paulo"}})
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        local = table(filled, 200, "job", NAME, "bad").stdout
        assert "+09:00" in local.split("timestamp", 1)[1].splitlines()[0]
        utc = table(filled, 200, "job", NAME, "bad", "--utc").stdout
        assert " UTC" in utc.split("timestamp", 1)[1].splitlines()[0]
        wide = table(filled, 200, "jobs", NAME, "--state", "completed", "--wide").stdout.splitlines()
        assert all(line.count("+09:00") == 3 for line in wide[1:])
        repeat = table(filled, 200, "repeatable", NAME).stdout
        morning = next(line for line in repeat.splitlines() if "0 9 * * *" in line)
        assert " 09:00:00 -03:00 America/Sao_Paulo" in morning  # the next run in its own zone, not "12:00:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_help_is_never_cut_and_a_pipe_gets_the_same_table(filled: Filled) -> None:
    shown = CliRunner().invoke(main, ["--help"], env={"COLUMNS": "80"}).stdout
    commands = shown.split("Commands:", 1)[1]
    assert "..." not in commands
    assert "Remove the jobs of one state older than --grace (Bull's queue.clean); locked jobs" in " ".join(
        commands.split())
    for command in ("events", "logs", "log", "fail", "complete", "profiles", "repeatable"):
        assert f"\n  {command} " in commands
    piped = subprocess.run([sys.executable, "-m", "bullpy.cli", "--redis", filled.redis_url, "--prefix",
                            filled.queue.prefix, "stats", NAME], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "COLUMNS": "100"})
    assert piped.returncode == 0 and piped.stdout.splitlines()[0].split()[:2] == ["queue", "waiting"]
    assert "\x1b[" not in piped.stdout  # no colour off a terminal


def test_workers_only_counts_the_queues_database(filled: Filled, bull: Peer, make_queue: Any) -> None:
    other_db = filled.redis_url.rsplit("/", 1)[0] + "/1"
    peer = Peer(other_db)
    db1 = redis.Redis.from_url(other_db, decode_responses=True)
    try:
        peer.process(filled.queue, behaviour={"hang": True})  # same prefix and name, database 1
        assert len(bull.call(filled.queue, "getWorkers")) > len(filled.json("workers", NAME))  # Node counts db 1
        assert all(w["db"] == "0" for w in filled.json("workers", NAME))
        assert len(filled.json("workers", NAME, "--all-dbs")) == len(bull.call(filled.queue, "getWorkers"))
    finally:
        peer.stop()
        delete_prefix(db1, filled.queue.prefix)
        db1.close()
    idle: bullpy.Queue = make_queue("nobody works here")
    idle.add({"x": 1})
    result = CliRunner().invoke(main, ["--redis", filled.redis_url, "--prefix", filled.queue.prefix, "workers",
                                       "nobody works here"])
    assert result.exit_code == 0 and result.stdout == ""
    assert "no workers connected to queue 'nobody works here'" in result.stderr


def test_import_conflict_names_the_option(filled: Filled, tmp_path: Any) -> None:
    dump = tmp_path / "q.bullpy"
    assert filled.run("export", NAME, "-o", str(dump)).exit_code == 0
    result = filled.run("import", str(dump))
    assert result.exit_code == 1
    assert "--on-conflict skip" in result.output and "on_conflict=" not in result.output


def test_pages_and_grep_over_what_node_wrote(filled: Filled, bull: Peer) -> None:
    everything = [r["id"] for r in filled.json("jobs", NAME, "-n", "100")]
    assert [r["id"] for r in filled.json("jobs", NAME, "-n", "3", "--page", "2")] == everything[3:6]
    assert [r["id"] for r in filled.json("jobs", NAME, "-n", "4", "--offset", "5")] == everything[5:9]
    paged = table(filled, 120, "jobs", NAME, "-n", "3")
    assert "jobs 1-3 shown; more with --page 2" in paged.stderr
    assert filled.run("jobs", NAME, "--page", "2", "--offset", "1").exit_code == 2
    bull.call(filled.queue, "add", {"city": "São Paulo", "number": "5511988"}, {"jobId": "sp"})
    for needle in ("SÃO PAULO", "são", "5511988", "sp"):
        assert [r["id"] for r in filled.json("jobs", NAME, "--state", "wait", "--grep", needle)] == ["sp"], needle
    assert [r["id"] for r in filled.json("jobs", NAME, "--grep", "sent\":1")] == ["ok-1"]  # the return value
    picked = filled.json("jobs", NAME, "--state", "failed", "--columns", "id,age,failed_reason")
    assert list(picked[0]) == ["id", "age", "failed_reason"] and picked[0]["age"] >= 0
