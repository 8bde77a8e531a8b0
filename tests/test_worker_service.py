"""``bullpy worker`` as a service, run as a real process: graceful SIGTERM, a supervisor restarting a killed
worker process, one clear line for a handler that cannot be loaded, logs. (Beside Node workers: tests/interop.)
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

import bullpy
from bullpy.cli import main as cli_main
from bullpy.service import ServiceOptions, check_metrics_ports
from bullpy.worker import Worker

from .conftest import wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
HANDLER = "tests.worker_handlers:work"


class ServiceProcess:
    """``python -m bullpy.cli ... worker QUEUE HANDLER *args`` with JSON logs collected from stderr."""

    def __init__(self, redis_url: str, prefix: str, name: str, handler: str, *args: str, record: Path,
                 cwd: Path = REPO_ROOT) -> None:
        argv = [sys.executable, "-m", "bullpy.cli", "--redis", redis_url, "--prefix", prefix, "worker", name, handler,
                "--log-format", "json", *args]
        env = {**os.environ, "BULLPY_TEST_RECORD": str(record), "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line.rstrip("\n"))
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in list(self.lines) if line.get("event") == name]

    def wait_started(self, count: int = 1, timeout: float = 20) -> list[dict[str, Any]]:
        try:
            wait_until(lambda: len(self.events("started")) >= count or self.proc.poll() is not None, timeout,
                       "the worker to start")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its log:\n" + "\n".join(self.raw[-40:])) from None
        assert self.proc.poll() is None, "\n".join(self.raw)
        return self.events("started")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def service(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(name: str, *args: str, handler: str = HANDLER) -> ServiceProcess:
        process = ServiceProcess(redis_url, prefix, name, handler, *args, record=tmp_path / "runs.jsonl")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def runs(tmp_path: Path) -> collections.Counter[str]:
    path = tmp_path / "runs.jsonl"
    if not path.exists():
        return collections.Counter()
    return collections.Counter(json.loads(line)["id"] for line in path.read_text().splitlines() if line)


def test_sigterm_lets_running_jobs_finish_loses_and_doubles_nothing_and_exits_0(
    queue: bullpy.Queue, service: Callable[..., ServiceProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = queue.add_bulk([{"data": {"n": i, "sleep": 300}} for i in range(60)])
    worker = service(queue.name, "--concurrency", "5")
    worker.wait_started()
    wait_until(lambda: len(worker.events("completed")) >= 10, 20, "10 jobs done")
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0, "\n".join(worker.raw[-20:])
    stopping, stopped = worker.events("stopping"), worker.events("stopped")
    assert stopping and stopping[0]["running"] >= 1 and stopped and "given_back" not in stopped[0]
    counts = queue.get_job_counts()
    assert counts["active"] == 0 and counts["completed"] + counts["waiting"] == 60, counts
    assert counts["waiting"] > 0, "killed too late: nothing was left to take"
    # What is left is taken by another worker; every job then ran exactly once.
    monkeypatch.setenv("BULLPY_TEST_RECORD", str(tmp_path / "runs.jsonl"))
    from .worker_handlers import work

    with Worker(queue, work, concurrency=10).start():
        wait_until(lambda: queue.get_completed_count() == 60, 30)
    ran = runs(tmp_path)
    assert sorted(ran) == sorted(j.id for j in jobs) and set(ran.values()) == {1}
    assert len(worker.events("completed")) == counts["completed"]


def test_a_second_signal_or_the_grace_running_out_gives_the_jobs_back(
    queue: bullpy.Queue, service: Callable[..., ServiceProcess], redis_client: redis.Redis,
) -> None:
    jobs = queue.add_bulk([{"data": {"n": i, "sleep": 5000}} for i in range(2)])
    worker = service(queue.name, "-c", "2", "--grace", "0.5", "--lock-duration", "1s", "--stalled-interval", "500ms")
    worker.wait_started()
    wait_until(lambda: queue.get_job_counts()["active"] == 2, 10, "both jobs running")
    t0 = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 1
    assert time.monotonic() - t0 < 4
    assert sorted(worker.events("stopped")[0]["given_back"]) == sorted(j.id for j in jobs)
    # As Node's close(true) leaves them: active, locked until the lock expires, then the stalled check.
    assert queue.get_job_counts()["active"] == 2
    with Worker(queue, lambda job: "again", stalled_interval=300, lock_duration=1000).start():
        wait_until(lambda: queue.get_completed_count() == 2, 15)
    assert [redis_client.hget(queue.keys.job(j.id), "stalledCounter") for j in jobs] == ["1", "1"]


def test_a_killed_worker_process_is_restarted_and_its_jobs_recovered_as_stalled(
    queue: bullpy.Queue, service: Callable[..., ServiceProcess], tmp_path: Path, redis_client: redis.Redis,
) -> None:
    jobs = queue.add_bulk([{"data": {"n": i, "sleep": 1500}} for i in range(4)])
    supervisor = service(queue.name, "--processes", "2", "-c", "2", "--lock-duration", "1s",
                         "--stalled-interval", "500ms")
    first = supervisor.wait_started(2)
    wait_until(lambda: queue.get_job_counts()["active"] == 4, 15, "all four jobs running")
    victim = first[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: queue.get_completed_count() == 4, 30, "all jobs completed")
    died = supervisor.events("process-died")
    assert [d["exit_code"] for d in died] == [-signal.SIGKILL]
    restarted = [s["pid"] for s in supervisor.events("started")]
    assert len(restarted) == 3 and victim in restarted[:2] and restarted[2] not in (first[0]["pid"], first[1]["pid"])
    stalled = [j.id for j in jobs if redis_client.hget(queue.keys.job(j.id), "stalledCounter") == "1"]
    assert len(stalled) == 2, "the killed process's two jobs come back through the stalled check"
    assert {e["job_id"] for e in supervisor.events("stalled")} == set(stalled)
    ran = runs(tmp_path)
    assert all(ran[j.id] == 1 for j in jobs), ran  # the victim died before its jobs' handlers returned
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait(30) == 0, "\n".join(supervisor.raw[-20:])
    assert supervisor.events("supervisor-stopped")[0]["exit_codes"] == {"1": 0, "2": 0}


def test_worker_processes_stop_by_themselves_when_their_supervisor_is_killed(
    queue: bullpy.Queue, service: Callable[..., ServiceProcess],
) -> None:
    supervisor = service(queue.name, "--processes", "2")
    children = [s["pid"] for s in supervisor.wait_started(2)]
    supervisor.proc.kill()
    supervisor.wait(10)

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(lambda: all(gone(pid) for pid in children), 15, "the orphaned worker processes to stop")
    assert {e["pid"] for e in supervisor.events("orphaned")} == set(children)


@pytest.mark.parametrize(("handler", "says"), [
    ("nosuch_module_xyz:send", "handler 'nosuch_module_xyz:send': no module named 'nosuch_module_xyz'"),
    ("tests.worker_handlers:nope", "handler 'tests.worker_handlers:nope': 'tests.worker_handlers' has no attribute"),
    ("tests.worker_handlers:HANDLER_NOT_CALLABLE", "is neither a function nor a mapping"),
    ("tests.worker_handlers", "expected module:function"),
    ("broken_tasks:send", "importing 'broken_tasks' failed: ZeroDivisionError: division by zero"),
])
@pytest.mark.parametrize("processes", [[], ["--processes", "2"]])
def test_a_handler_that_cannot_be_loaded_exits_1_with_one_line(
    redis_url: str, prefix: str, tmp_path: Path, handler: str, says: str, processes: list[str],
) -> None:
    (tmp_path / "broken_tasks.py").write_text("1 / 0\n")
    result = subprocess.run(
        [sys.executable, "-m", "bullpy.cli", "--redis", redis_url, "--prefix", prefix, "worker", "q", handler,
         *processes], check=False, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True,
        timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
    assert says in result.stderr


def test_named_handlers_and_logs(queue: bullpy.Queue, service: Callable[..., ServiceProcess], redis_url: str,
                                 prefix: str, tmp_path: Path) -> None:
    worker = service(queue.name, "-c", "2", handler="tests.worker_handlers:by_name")
    worker.wait_started()
    try:
        a = queue.add({"n": 1}, name="send")
        b = queue.add({"n": 2}, name="report")
        c = queue.add({"n": 3, "fail": "not on WhatsApp"}, name="send", attempts=2)
        assert a and b and c
        wait_until(lambda: queue.get_completed_count() == 2 and queue.get_failed_count() == 1, 20)
        assert queue.get_job(b.id).returnvalue == "caught by *"  # type: ignore[union-attr]
        wait_until(lambda: len(worker.events("failed")) == 2, 10)
        failed = worker.events("failed")
        assert [(f["attempt"], f["attempts"], f["final"], f["reason"]) for f in failed] == [
            (1, 2, False, "not on WhatsApp"), (2, 2, True, "not on WhatsApp")]
        done = {e["job_id"]: e for e in worker.events("completed")}
        assert set(done) == {a.id, b.id} and done[a.id]["job_name"] == "send" and done[a.id]["duration_ms"] >= 0
    finally:
        worker.signal(signal.SIGTERM)
        assert worker.wait(20) == 0

    text = subprocess.Popen(
        [sys.executable, "-m", "bullpy.cli", "--redis", redis_url, "--prefix", prefix, "worker", queue.name,
         "tests.worker_handlers:by_name"], cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "BULLPY_TEST_RECORD": str(tmp_path / "runs.jsonl"), "PYTHONPATH": str(REPO_ROOT)})
    d = queue.add({"n": 4}, name="send")
    assert d
    wait_until(lambda: queue.get_completed_count() == 3, 20)
    text.send_signal(signal.SIGINT)
    _, err = text.communicate(timeout=20)
    assert text.returncode == 0
    lines = err.splitlines()
    completed = re.compile(rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} INFO \[{text.pid}\] completed job {d.id} \(send\) in \d+ ms$")
    assert any(completed.match(line) for line in lines), err
    assert "stopped: every running job finished" in lines[-1]


def test_bad_options_are_refused_before_anything_starts(redis_url: str, prefix: str) -> None:
    runner = CliRunner()
    for args, says in [
        (["--limiter", "20"], "is not MAX/DURATION"),
        (["--limiter-group-key"], "needs --limiter"),
        (["--lock-duration", "soon"], "is not a duration"),
        (["--drain-delay", "1500ms"], "whole seconds"),
        (["--concurrency", "0"], "0 is not in the range"),
    ]:
        result = runner.invoke(cli_main, ["--redis", redis_url, "--prefix", prefix, "worker", "q", HANDLER, *args])
        assert result.exit_code == 2 and says in result.output, (args, result.output)


def test_metrics_port_serves_the_workers_own_metrics_per_process(
    queue: bullpy.Queue, service: Callable[..., ServiceProcess],
) -> None:
    pytest.importorskip("prometheus_client")
    import urllib.request

    from .servers import free_ports

    port = free_ports(2)
    queue.add_bulk([{"data": {"n": i}} for i in range(8)])
    worker = service(queue.name, "--processes", "2", "--metrics-port", str(port))
    worker.wait_started(count=2)
    wait_until(lambda: queue.get_completed_count() == 8, 20, "8 jobs done")

    def completed(p: int) -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=5).read().decode()
        found = re.findall(r'^bullpy_worker_jobs_total\{[^}]*status="completed"[^}]*\} ([0-9.e+]+)$', text, re.M)
        return float(found[0]) if found else 0.0

    # One port per worker process, each counting the jobs it ran: together every job once.
    wait_until(lambda: completed(port) + completed(port + 1) == 8, 10, "the metrics to count 8 jobs")
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).status == 200
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def test_a_metrics_port_in_use_is_refused_before_any_worker_starts(
    queue: bullpy.Queue, service: Callable[..., ServiceProcess], tmp_path: Path,
) -> None:
    """Worker process 2's port taken: one line naming it and nothing started, rather than a supervisor
    restarting a process that can never listen."""
    pytest.importorskip("prometheus_client")
    import socket

    from .servers import free_ports

    port = free_ports(2)
    queue.add_bulk([{"data": {"n": i}} for i in range(3)])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        worker = service(queue.name, "--processes", "2", "--metrics-port", str(port))
        assert worker.wait(30) == 1
    said = "\n".join(worker.raw)
    assert f"metrics port {port + 1} (for worker process 2 of 2) cannot be used" in said, said
    assert not worker.events("started") and not worker.events("supervisor-started"), said
    assert queue.get_job_counts()["waiting"] == 3 and not runs(tmp_path)
    # Past the last port there is none to give.
    with pytest.raises(ValueError, match=r"metrics port 65536 \(for worker process 2 of 2\) is above 65535"):
        check_metrics_ports(ServiceOptions(queue=queue.name, handler=HANDLER, processes=2, metrics_port=65535))
