"""The first `bullpy` commands on queues Node Bull filled (click's runner and a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import bullpy
from bullpy.cli import main

from .peer import Peer


@pytest.fixture
def node_filled(make_queue: object, bull: Peer) -> bullpy.Queue:
    queue: bullpy.Queue = make_queue("cli q:{1}")  # type: ignore[operator]
    for i in range(3):
        bull.call(queue, "add", {"i": i})
    bull.call(queue, "add", {"later": True}, {"delay": 60_000})
    bull.call(queue, "add", {"p": 1}, {"priority": 1})
    bull.call(queue, "add", {"__peer": {"fail": "boom"}}, {"jobId": "bad"})
    bull.process(queue, count=5)  # completes four, fails one; the delayed job stays
    bull.call(queue, "pause")
    bull.call(queue, "add", {"after": True})  # lands in the paused list
    return queue


def test_queues_and_stats_on_a_node_filled_queue(node_filled: bullpy.Queue, redis_url: str, bull: Peer) -> None:
    runner = CliRunner()
    base = ["--redis", redis_url, "--prefix", node_filled.prefix, "--format", "json"]
    listed = runner.invoke(main, [*base, "queues"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    node_counts = bull.call(node_filled, "getJobCounts")
    assert rows == [{"queue": "cli q:{1}", **node_counts, "paused_flag": True}]
    stats = runner.invoke(main, [*base, "stats", "cli q:{1}"])
    assert stats.exit_code == 0, stats.output
    row = json.loads(stats.output)[0]
    assert {k: row[k] for k in node_counts} == node_counts
    assert node_counts == {"waiting": 0, "active": 0, "completed": 4, "failed": 1, "delayed": 1, "paused": 1}
    table = runner.invoke(main, [*base[:-2], "--format", "table", "stats", "cli q:{1}"])
    assert "completed" in table.output and "paused_flag" in table.output


def test_unknown_queue_is_an_error(redis_url: str, prefix: str) -> None:
    result = CliRunner().invoke(main, ["--redis", redis_url, "--prefix", prefix, "stats", "nope"])
    assert result.exit_code != 0
    assert "no queue 'nope'" in result.output


def test_password_never_appears_and_help_stays_light() -> None:
    run = subprocess.run([sys.executable, "-m", "bullpy.cli", "--redis", "redis://:hunter2@127.0.0.1:1/0",
                          "stats", "q"], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "127.0.0.1:1" in run.stderr
    assert "hunter2" not in run.stdout + run.stderr
    code = "import sys; from bullpy.cli import main; print('pandas' in sys.modules, 'ipywidgets' in sys.modules)"
    light = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert light.stdout.split() == ["False", "False"]
