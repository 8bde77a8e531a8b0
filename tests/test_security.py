"""TLS, ACL users and refusals that cannot be survived, each on a private redis-server (never the shared one).

* TLS (``rediss://`` with a throwaway CA and client certificates): bullpy adds, reads and processes jobs,
  and Node Bull reads and processes them too (``NODE_EXTRA_CA_CERTS``); misconfigured TLS is one clear error.
* ACL users: a read-only user reads everything (counts, jobs, frames, states, doctor); its writes fail
  with one RedisPermissionDenied naming NOPERM, the user and the command or script, and change nothing.
* A wrong or missing password and an out-of-memory Redis stop with one clear error.
* No password appears in any message, repr, chained cause, traceback, log record or output.
"""

from __future__ import annotations

import json

import logging
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import bullpy
from bullpy import connection
from bullpy.doctor import diagnose
from bullpy.errors import (
    RedisAuthenticationFailed,
    RedisOutOfMemory,
    RedisPermissionDenied,
    RedisReadOnly,
    RedisUnavailable,
)
from bullpy.worker import Worker

from .conftest import keyspace, wait_until
from .servers import (
    RedisServer,
    RedisServerError,
    TlsFiles,
    make_tls_files,
    start_redis_server,
)

ADMIN_PASSWORD = "adm1n-S3cret-4f9c"
READER_PASSWORD = "r3ader-S3cret-b7e2"
STRICT_PASSWORD = "str1ct-S3cret-0a5d"
WRONG_PASSWORD = "wr0ng-S3cret-99c1"
KEY_PASSWORD = "k3y-S3cret-6d2e"
SECRETS = (ADMIN_PASSWORD, READER_PASSWORD, STRICT_PASSWORD, WRONG_PASSWORD, KEY_PASSWORD)

# What a user that only reads queues needs (bullpy.connection's docstring): counts and ranges are read in
# MULTI/EXEC, job states by a read-only script (redis-py's pipelines ask SCRIPT EXISTS first); scripts run with
# the caller's permissions, so writes inside them are refused too.
READER_RULES = ("-@all", "+@read", "+multi", "+exec", "+evalsha", "+script|load", "+script|exists")


def fast(url: str) -> redis.Redis:
    """A client that fails at once instead of retrying (redis-py 8 retries connection errors with backoff)."""
    return redis.Redis.from_url(url, decode_responses=True, retry=None)


def chain_texts(exc: BaseException) -> str:
    """str and repr of an exception and every cause/context under it, and its formatted traceback."""
    texts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# --- TLS -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("pki"))


def start_tls(folder: Path, pki: TlsFiles, **kwargs: Any) -> RedisServer:
    """TLS only (no plain port), with a password, AOF and noeviction (so the doctor has nothing to say)."""
    try:
        return start_redis_server(folder, "--maxmemory-policy", "noeviction", tls=pki, tls_only=True,
                                  password=ADMIN_PASSWORD, appendonly=True, **kwargs)
    except RedisServerError as exc:
        if "tls" in str(exc).lower():
            pytest.skip(f"this redis-server build has no TLS support: {exc}")
        raise


@pytest.fixture(scope="module")
def tls_server(pki: TlsFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """TLS only (no plain port), client certificates required, and a password."""
    server = start_tls(tmp_path_factory.mktemp("tls"), pki, tls_auth_clients="yes")
    yield server
    server.stop()


def test_python_adds_reads_and_processes_jobs_over_tls(tls_server: RedisServer, pki: TlsFiles) -> None:
    url = tls_server.tls_url()
    assert url.startswith(f"rediss://:{ADMIN_PASSWORD}@127.0.0.1:{tls_server.tls_port}/0?ssl_ca_certs=")
    assert tls_server.port == 0  # nothing but TLS: whatever works below went through it
    prefix = f"tls-{uuid.uuid4().hex[:8]}"
    queue = bullpy.Queue("message-queue", url, prefix=prefix)
    assert repr(queue) == f"<Queue {prefix}:message-queue on 127.0.0.1:{tls_server.tls_port} db 0 (TLS)>"
    assert connection.safe_url(url) == url.replace(ADMIN_PASSWORD, "***")
    job = queue.add({"number": "5511999990001", "message": "hi"}, name="send", attempts=2)
    assert job is not None
    again = queue.get_job(job.id)
    assert again is not None and again.data == {"number": "5511999990001", "message": "hi"}
    assert queue.get_job_counts("waiting") == {"waiting": 1}
    assert [j.id for j in queue.get_jobs(["waiting"])] == [job.id]

    worker = Worker(queue, lambda j: {"sent_to": j.data["number"] + "@c.us"}, drain_delay=1).start()
    try:
        wait_until(lambda: queue.get_completed_count() == 1)
    finally:
        worker.close(timeout=10)
    done = queue.get_job(job.id)
    assert done is not None and done.returnvalue == {"sent_to": "5511999990001@c.us"}

    # url_for keeps the TLS files, so the same connection can be made from the URL alone.
    copy = bullpy.Queue("message-queue", connection.url_for(queue.client), prefix=prefix)
    assert copy.get_job_counts("completed") == {"completed": 1}
    assert "ssl_ca_certs=" + str(pki.ca_cert) in connection.url_for(queue.client)
    assert diagnose(copy, recheck_delay=0.1).codes() == {"memory-per-job"}
    copy.close()
    queue.close()


@pytest.mark.parametrize(("case", "make_url", "words"), [
    ("no CA", lambda s: s.tls_url().split("?")[0], "CERTIFICATE_VERIFY_FAILED"),
    # The server's "certificate required" alert or, depending on timing, an EOF in the handshake.
    ("no client certificate", lambda s: s.tls_url(client_cert=False), "(TLS: check ssl_ca_certs"),
    ("plain redis:// to the TLS port", lambda s: s.tls_url().split("?")[0].replace("rediss", "redis"), ""),
], ids=["no-ca", "no-client-cert", "plain-to-tls"])
def test_tls_misconfiguration_is_one_clear_error(tls_server: RedisServer, case: str,
                                                 make_url: Callable[[RedisServer], str], words: str) -> None:
    queue = bullpy.Queue("q", fast(make_url(tls_server)))
    with pytest.raises(RedisUnavailable) as info:
        queue.get_job_counts()
    message = str(info.value)
    assert message.startswith(f"cannot reach Redis at 127.0.0.1:{tls_server.tls_port} db 0")
    assert words in message
    assert_no_secret(chain_texts(info.value))


@pytest.mark.node
def test_node_bull_reads_and_processes_jobs_over_mutual_tls(pki: TlsFiles, tmp_path: Path) -> None:
    from .interop.peer import Peer, node_available

    if not node_available():
        pytest.skip("Node.js or bridge/node_modules is missing")
    # The server requires client certificates; bridge/lib/redis-config.js reads the CA, the client
    # certificate and its key from the same rediss:// URL parameters redis-py uses.
    server = start_tls(tmp_path / "tls-node", pki)
    try:
        prefix = f"tls-{uuid.uuid4().hex[:8]}"
        url = server.tls_url()
        queue = bullpy.Queue("message-queue", url, prefix=prefix)
        job = queue.add({"number": "5511999990002", "message": "over TLS"}, name="send")
        assert job is not None
        with Peer(url) as bull:
            seen = bull.get_job(queue, job.id)
            assert seen is not None and seen["data"] == {"number": "5511999990002", "message": "over TLS"}
            bull.process(queue, count=1)
            assert_no_secret(bull.stderr_tail(500))
            assert "DEP0123" not in bull.stderr_tail(500)  # no SNI with an IP address
        done = queue.get_job(job.id)
        assert done is not None and done.returnvalue == {"processed": job.id}
        queue.close()
    finally:
        server.stop()


# --- ACL users -------------------------------------------------------------------------------------------

ACL_PREFIX = "acl"


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A password on the default user; ``reader`` (READER_RULES) and ``strict`` (+@read only) limited to
    ``acl:*``; a queue with completed, failed, waiting and delayed jobs written by the admin."""
    server = start_redis_server(tmp_path_factory.mktemp("acl"), "--maxmemory-policy", "noeviction",
                                password=ADMIN_PASSWORD, appendonly=True)
    admin = server.client()
    admin.execute_command("ACL", "SETUSER", "reader", "on", f">{READER_PASSWORD}", f"~{ACL_PREFIX}:*",
                          "resetchannels", *READER_RULES)
    admin.execute_command("ACL", "SETUSER", "strict", "on", f">{STRICT_PASSWORD}", f"~{ACL_PREFIX}:*",
                          "resetchannels", "-@all", "+@read")
    queue = bullpy.Queue("message-queue", server.url(), prefix=ACL_PREFIX)
    worker = Worker(queue, {"send": lambda j: "sent"}, drain_delay=1).start()
    try:
        for n in range(3):
            queue.add({"n": n}, name="send")
        queue.add({"n": 3}, name="unknown")
        wait_until(lambda: queue.get_job_counts("completed", "failed") == {"completed": 3, "failed": 1})
    finally:
        worker.close(timeout=10)
    queue.add({"n": 4}, name="send")
    queue.add({"n": 5}, name="send", delay=3_600_000)
    queue.close()
    yield server
    server.stop()


def as_user(server: RedisServer, user: str, password: str) -> bullpy.Queue:
    return bullpy.Queue("message-queue", server.url(user=user, password=password), prefix=ACL_PREFIX)


def test_a_read_only_user_reads_everything(acl_server: RedisServer) -> None:
    admin = bullpy.Queue("message-queue", acl_server.url(), prefix=ACL_PREFIX)
    reader = as_user(acl_server, "reader", READER_PASSWORD)
    assert reader.get_job_counts() == admin.get_job_counts() == {
        "waiting": 1, "active": 0, "completed": 3, "failed": 1, "delayed": 1, "paused": 0}
    states = ["completed", "failed", "waiting", "delayed"]
    assert [(j.id, j.data) for j in reader.get_jobs(states)] == [(j.id, j.data) for j in admin.get_jobs(states)]
    frame = reader.jobs_frame()
    assert frame.drop(columns=["state"]).equals(admin.jobs_frame().drop(columns=["state"]))
    assert sorted(frame["state"].astype(str)) == ["completed"] * 3 + ["delayed", "failed", "waiting"]
    failed = reader.get_failed()[0]
    assert failed.failed_reason == "Missing process handler for job type unknown"
    assert str(failed.get_state()) == "failed"  # bullpy's read-only get_state script
    assert {k: str(v) for k, v in reader.get_states([failed.id]).items()} == {failed.id: "failed"}

    report = diagnose(reader, recheck_delay=0.1)
    assert [f.code for f in report.problems] == ["missing-handler"]  # the real problem, found by a reader
    assert report.by_code("eviction-policy")[0].details["policy"] == "unknown"  # CONFIG/INFO not allowed
    admin.close()
    reader.close()


def test_a_read_only_user_gets_the_dashboard_and_the_cli(acl_server: RedisServer) -> None:
    from click.testing import CliRunner

    from bullpy.cli import main
    from bullpy.widgets import QueueDashboard

    reader = as_user(acl_server, "reader", READER_PASSWORD)
    dash = QueueDashboard(reader, refresh=None)
    try:
        assert dash.counts == {"message-queue": reader.get_job_counts()}
        assert dash.counts["message-queue"]["completed"] == 3
        # Pausing is a write: the button reports the refusal on the widget and changes nothing.
        dash.panels[0].pause_button.click()
        assert "NOPERM" in dash.status.value
        assert not acl_server.client().exists(f"{ACL_PREFIX}:message-queue:meta-paused")
    finally:
        dash.close()
    url = acl_server.url(user="reader", password=READER_PASSWORD)
    for args in (["stats", "message-queue"], ["jobs", "message-queue", "--state", "failed"],
                 ["job", "message-queue", "4"]):
        result = CliRunner().invoke(main, ["--redis", url, "--prefix", ACL_PREFIX, "--format", "json", *args])
        assert result.exit_code == 0, result.output
    refused = CliRunner().invoke(main, ["--redis", url, "--prefix", ACL_PREFIX, "pause", "message-queue"])
    assert refused.exit_code == 1 and "permission denied (NOPERM)" in refused.output
    assert_no_secret(refused.output)
    reader.close()


def test_a_worker_for_a_read_only_user_fails_at_start_with_one_clear_error(acl_server: RedisServer) -> None:
    import threading

    before = keyspace(acl_server.client(), ACL_PREFIX)
    reader = as_user(acl_server, "reader", READER_PASSWORD)
    threads = threading.active_count()
    with pytest.raises(RedisPermissionDenied, match="user 'reader'"):
        Worker(reader, lambda job: "sent").start()
    assert keyspace(acl_server.client(), ACL_PREFIX) == before
    wait_until(lambda: threading.active_count() <= threads, 5, "the worker's threads to end")
    reader.close()


WRITES: list[tuple[str, Callable[[bullpy.Queue], Any], str]] = [
    ("add", lambda q: q.add({"n": 9}, name="send"), "add_jobs"),
    ("add_bulk", lambda q: q.add_bulk([{"data": {"n": 10}}, {"data": {"n": 11}}]), "add_jobs"),
    ("clean", lambda q: q.clean(0, "completed"), "clean_jobs_in_set"),
    ("pause", lambda q: q.pause(), "pause"),
    ("retry_jobs", lambda q: q.retry_jobs(), "retry_jobs"),
    ("remove", lambda q: q.get_completed()[0].remove(), "remove_job"),
    ("promote", lambda q: q.get_delayed()[0].promote(), "promote"),
]


@pytest.mark.parametrize(("operation", "write", "script"), WRITES, ids=[w[0] for w in WRITES])
def test_a_read_only_users_writes_fail_clearly_and_change_nothing(
    acl_server: RedisServer, operation: str, write: Callable[[bullpy.Queue], Any], script: str,
) -> None:
    admin = acl_server.client()
    before = keyspace(admin, ACL_PREFIX)
    reader = as_user(acl_server, "reader", READER_PASSWORD)
    with pytest.raises(RedisPermissionDenied) as info:
        write(reader)
    error = info.value
    assert isinstance(error, PermissionError) and isinstance(error, bullpy.BullError)
    assert (error.user, error.script, error.where) == ("reader", script, f"127.0.0.1:{acl_server.port} db 0")
    assert str(error).startswith(f"permission denied (NOPERM): Redis at 127.0.0.1:{acl_server.port} db 0 "
                                 f"does not let user 'reader' run a command inside bullpy's {script} script")
    assert "nothing was changed" in str(error)
    assert_no_secret(chain_texts(error))
    assert keyspace(admin, ACL_PREFIX) == before
    reader.close()


def test_a_plus_read_only_user(acl_server: RedisServer) -> None:
    """``+@read`` alone: plain reads and the doctor work; MULTI reads and scripts are refused, clearly."""
    admin = acl_server.client()
    before = keyspace(admin, ACL_PREFIX)
    strict = as_user(acl_server, "strict", STRICT_PASSWORD)
    completed = admin.zrange(f"{ACL_PREFIX}:message-queue:completed", 0, -1)
    assert [j.id for j in strict.get_jobs_by_ids(completed)] == completed
    job = strict.get_job(completed[0])
    assert job is not None and job.returnvalue == "sent"
    assert [f.code for f in diagnose(strict, recheck_delay=0.1).problems] == ["missing-handler"]

    with pytest.raises(RedisPermissionDenied, match="user 'strict' run the 'multi' command") as counts:
        strict.get_job_counts()
    assert counts.value.command == "multi"
    with pytest.raises(RedisPermissionDenied, match="user 'strict' run the 'evalsha' command") as add:
        strict.add({"n": 1})
    assert add.value.command == "evalsha"
    assert_no_secret(chain_texts(counts.value) + chain_texts(add.value))
    assert keyspace(admin, ACL_PREFIX) == before
    strict.close()


def test_keys_outside_the_users_pattern_are_refused(acl_server: RedisServer) -> None:
    other = bullpy.Queue("message-queue", acl_server.url(user="reader", password=READER_PASSWORD), prefix="other")
    with pytest.raises(RedisPermissionDenied, match=r"does not let user 'reader' access the keys \(they are "
                                                    r"outside the user's ~pattern\)"):
        other.get_job("1")
    other.close()


def test_a_wrong_or_missing_password_is_one_clear_error(acl_server: RedisServer) -> None:
    wrong = bullpy.Queue("message-queue", acl_server.url(user="reader", password=WRONG_PASSWORD))
    with pytest.raises(RedisAuthenticationFailed) as info:
        wrong.get_job_counts()
    assert str(info.value) == (
        f"Redis at 127.0.0.1:{acl_server.port} db 0 refused the credentials of user 'reader': invalid "
        "username-password pair or user is disabled. (check the user name and password in the URL or "
        "REDIS_PASSWORD)")
    assert isinstance(info.value, RedisUnavailable) and isinstance(info.value, PermissionError)
    assert_no_secret(chain_texts(info.value))

    anonymous = bullpy.Queue("message-queue", f"redis://127.0.0.1:{acl_server.port}/0")
    with pytest.raises(RedisAuthenticationFailed, match="requires a password and none was given"):
        anonymous.add({"n": 1})
    wrong.close()
    anonymous.close()


# --- out of memory ---------------------------------------------------------------------------------------

def test_an_out_of_memory_redis_refuses_writes_with_one_clear_error(
    make_redis_server: Callable[..., RedisServer],
) -> None:
    server = make_redis_server("--maxmemory-policy", "noeviction", password=ADMIN_PASSWORD)
    admin = server.client()
    queue = bullpy.Queue("message-queue", server.url())
    queue.add({"n": 1}, name="send")
    admin.config_set("maxmemory", "1")  # far below what the server already uses
    before = keyspace(admin, "bull")
    with pytest.raises(RedisOutOfMemory) as info:
        queue.add({"n": 2}, name="send")
    assert str(info.value).startswith(
        f"out of memory (OOM): Redis at 127.0.0.1:{server.port} db 0 refuses writes inside bullpy's add_jobs "
        "script: used memory is above maxmemory")
    assert info.value.script == "add_jobs"
    assert_no_secret(chain_texts(info.value))
    assert keyspace(admin, "bull") == before
    # Over maxmemory Redis refuses every command queued in MULTI, reads included: bullpy's snapshot reads
    # then go as a plain pipeline, so counts, lists, the CLI and the doctor still answer mid-incident.
    assert queue.get_job_counts() == {"waiting": 1, "active": 0, "completed": 0, "failed": 0, "delayed": 0,
                                      "paused": 0}
    assert [j.id for j in queue.get_waiting()] == ["1"] and not queue.is_paused()
    assert queue.get_job_logs("1").count == 0
    assert "memory-per-job" in diagnose(queue, recheck_delay=0.1).codes()
    from click.testing import CliRunner

    from bullpy.cli import main

    stats = CliRunner().invoke(main, ["--redis", server.url(), "--format", "json", "stats", "message-queue"])
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.stdout)[0]["waiting"] == 1
    assert_no_secret(stats.output)
    admin.config_set("maxmemory", "0")
    queue.close()


def test_a_replica_refuses_writes_with_one_clear_error(make_redis_server: Callable[..., RedisServer]) -> None:
    primary = make_redis_server()
    replica = make_redis_server("--replicaof", "127.0.0.1", str(primary.port))
    before = keyspace(replica.client(), "bull")
    queue = bullpy.Queue("message-queue", replica.url())
    with pytest.raises(RedisReadOnly, match=r"read-only \(READONLY\): Redis at 127\.0\.0\.1:\d+ db 0 is a replica and "
                                            "refuses writes inside bullpy's add_jobs script; connect to the primary"):
        queue.add({"n": 1})
    assert keyspace(replica.client(), "bull") == before
    queue.close()


# --- no password anywhere --------------------------------------------------------------------------------

def test_no_password_appears_in_any_error_log_or_output(
    acl_server: RedisServer, make_redis_server: Callable[..., RedisServer], tls_server: RedisServer,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    oom = make_redis_server("--maxmemory-policy", "noeviction", "--maxmemory", "1", password=ADMIN_PASSWORD)
    failures: list[tuple[str, Callable[[], Any]]] = [
        ("wrong password", lambda: bullpy.Queue("q", fast(acl_server.url(user="reader", password=WRONG_PASSWORD)))
         .get_job_counts()),
        ("NOPERM write", lambda: bullpy.Queue("message-queue", fast(acl_server.url(user="reader",
                                              password=READER_PASSWORD)), prefix=ACL_PREFIX).pause()),
        ("NOPERM MULTI", lambda: bullpy.Queue("message-queue", fast(acl_server.url(user="strict",
                                              password=STRICT_PASSWORD)), prefix=ACL_PREFIX).get_jobs("waiting")),
        ("OOM", lambda: bullpy.Queue("q", fast(oom.url())).add({"n": 1})),
        ("unreachable", lambda: bullpy.Queue("q", fast(f"redis://reader:{READER_PASSWORD}@127.0.0.1:1/0")).add({})),
        ("TLS without CA", lambda: bullpy.Queue("q", fast(tls_server.tls_url().split("?")[0])).get_job("1")),
    ]
    seen: list[str] = []
    for case, fail in failures:
        with pytest.raises(bullpy.BullError) as info:
            fail()
        seen.append(f"{case}: {type(info.value).__name__}")
        assert_no_secret(chain_texts(info.value))
    assert seen == [
        "wrong password: RedisAuthenticationFailed", "NOPERM write: RedisPermissionDenied",
        "NOPERM MULTI: RedisPermissionDenied", "OOM: RedisOutOfMemory", "unreachable: RedisUnavailable",
        "TLS without CA: RedisUnavailable",
    ]

    # Everything bullpy prints about a connection masks the passwords.
    urls = [acl_server.url(), acl_server.url(user="reader", password=READER_PASSWORD),
            f"redis://127.0.0.1:{acl_server.port}/0?password={READER_PASSWORD}",
            tls_server.tls_url() + f"&ssl_password={KEY_PASSWORD}"]
    shown = [connection.safe_url(u) for u in urls]
    for url in urls:
        queue = bullpy.Queue("q", url)
        shown += [repr(queue), repr(queue.client), connection.describe(queue.client)]
        with pytest.raises(ValueError) as bad:
            bullpy.Queue("q", url.replace("redis", "http", 1))  # a bad scheme quotes the URL, masked
        shown.append(chain_texts(bad.value))
    shown.append(diagnose(as_user(acl_server, "reader", READER_PASSWORD), recheck_delay=0.1).render())
    assert "***" in shown[0] and "***" in shown[2] and "ssl_password=***" in shown[3]
    out = capsys.readouterr()
    assert_no_secret("\n".join(shown) + caplog.text + out.out + out.err)

