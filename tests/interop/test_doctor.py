"""bullpy.doctor on queues that real Node Bull broke (or kept healthy).

* a Node worker killed mid-job leaves an active job whose lock expires;
* Node fails a job whose name it has no handler for with its own "Missing process handler" words;
* Node's rate limiter with ``bounceBack: true`` drops jobs from every state, leaving orphan hashes;
* Node's ``jobId: 'wait'`` turns the wait list into a hash (WRONGTYPE from then on);
* a queue Node works on, on a Redis with AOF and noeviction, gives no warnings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import bullpy
import bullpy.connection
from bullpy.doctor import DoctorReport, diagnose
from bullpy.worker import Worker

from ..conftest import wait_until
from ..servers import RedisServer
from .peer import Peer, PeerError, PeerQueue, node_available


def only(report: DoctorReport, code: str) -> Any:
    found = report.by_code(code)
    assert len(found) == 1, report.render()
    return found[0]


@pytest.fixture
def own_peers() -> Iterator[Callable[[str], Peer]]:
    """Node peers of this test alone (one may be made to crash); all stopped afterwards."""
    if not node_available():
        pytest.skip("Node.js or bridge/node_modules is missing: run `npm ci` in bridge/")
    started: list[Peer] = []

    def make(url: str) -> Peer:
        peer = Peer(url)
        started.append(peer)
        return peer

    yield make
    for peer in started:
        peer.stop()


def test_a_node_worker_killed_mid_job_leaves_an_active_job_without_lock(
    redis_url: str, make_queue: Callable[..., bullpy.Queue], redis_client: redis.Redis,
    own_peers: Callable[[str], Peer],
) -> None:
    queue = make_queue("crashy")
    node = own_peers(redis_url)
    job = queue.add({"__peer": {"sleep": 1500, "crash": True}}, name="send")
    assert job is not None
    lock = queue.keys.lock(job.id)
    node.process(PeerQueue(queue.name, queue.prefix, settings={"lockDuration": 600, "stalledInterval": 0}))
    wait_until(lambda: queue.get_active_count() == 1 and redis_client.exists(lock))

    # Mid-job, Node holds the lock and renews it every 300 ms: nothing to report.
    assert "active-without-lock" not in diagnose(queue, recheck_delay=0.2).codes()

    assert node.wait_exit(10) == 137  # the handler killed its own process
    wait_until(lambda: not redis_client.exists(lock), 5)  # lockDuration passes without renewal
    assert queue.get_active_count() == 1
    report = diagnose(queue, recheck_delay=0.2)
    finding = only(report, "active-without-lock")
    assert finding.details == {"count": 1, "job_ids": [job.id], "workers": 0}

    # The fix it names: a running worker's stalled check puts the job back, and it runs to completion.
    worker = Worker(queue, lambda j: "sent again", stalled_interval=200, drain_delay=1).start()
    try:
        wait_until(lambda: queue.get_completed_count() == 1)
    finally:
        worker.close(timeout=10)
    again = queue.get_job(job.id)
    assert again is not None and again.returnvalue == "sent again"
    assert "active-without-lock" not in diagnose(queue, recheck_delay=0.2).codes()


def test_node_fails_a_job_name_it_has_no_handler_for(queue: bullpy.Queue, bull: Peer) -> None:
    sent = queue.add({"n": 1}, name="send")
    reminder = queue.add({"n": 2}, name="reminder")
    retried = queue.add({"n": 3}, name="reminder", attempts=2, backoff=60_000)
    assert sent is not None and reminder is not None and retried is not None
    bull.process(queue, name="send")  # a Node worker with a handler for "send" only
    bull.wait_for_counts(queue, completed=1, failed=1, delayed=1)
    failed = queue.get_job(reminder.id)
    assert failed is not None and failed.failed_reason == "Missing process handler for job type reminder"

    report = diagnose(queue, recheck_delay=0.1)
    finding = only(report, "missing-handler")
    assert finding.details["name"] == "reminder"
    assert (finding.details["failed"], finding.details["retrying"]) == (1, 1)
    assert sorted(finding.details["job_ids"]) == sorted([reminder.id, retried.id])
    assert "queue.process('reminder', fn)" in finding.fix

    # The same through `bullpy doctor`: JSON findings and an exit status that says "problems".
    from click.testing import CliRunner

    from bullpy.cli import main

    url = bullpy.connection.url_for(queue.client)
    cli = CliRunner().invoke(main, ["--redis", url, "--prefix", queue.prefix, "--format", "json", "doctor",
                                    queue.name, "--no-orphans"])
    assert cli.exit_code in (1, 2), cli.output
    codes = {f["code"]: f for f in json.loads(cli.stdout)["findings"]}
    assert codes["missing-handler"]["details"]["name"] == "reminder"
    text = CliRunner().invoke(main, ["--redis", url, "--prefix", queue.prefix, "--format", "table", "doctor",
                                     queue.name])
    assert "missing-handler" in text.stdout and "error(s)" in text.stdout


def test_node_rate_limiter_with_bounce_back_leaves_orphan_jobs(queue: bullpy.Queue, bull: Peer) -> None:
    jobs = [queue.add({"n": n}) for n in range(3)]
    ids = [j.id for j in jobs if j is not None]
    # Bull 4.16.5 removes a rate-limited job from "active" and, with bounceBack, puts it nowhere.
    bull.process(PeerQueue(queue.name, queue.prefix, limiter={"max": 1, "duration": 30_000, "bounceBack": True}))
    wait_until(lambda: queue.get_job_counts("completed", "waiting", "active")
               == {"completed": 1, "waiting": 0, "active": 0})

    report = diagnose(queue, recheck_delay=0.1)
    orphans = only(report, "orphan-jobs")
    assert sorted(orphans.details["job_ids"]) == sorted(ids[1:])
    assert orphans.details["count"] == 2 and "bounceBack" in orphans.message


def test_node_job_id_wait_corrupts_the_queue_and_the_doctor_says_so(queue: bullpy.Queue, bull: Peer,
                                                                   redis_client: redis.Redis) -> None:
    with pytest.raises(PeerError, match="WRONGTYPE"):
        bull.call(queue, "add", {"n": 1}, {"jobId": "wait"})
    assert redis_client.type(queue.keys("wait")) == "hash"
    report = diagnose(queue, recheck_delay=0.1)
    finding = only(report, "wrong-key-type")
    assert finding.message.startswith("a key of the queue has the wrong type, so the job counts cannot be read: "
                                      "WRONGTYPE")
    assert report.exit_code == 2


def test_a_queue_node_works_on_a_healthy_server_is_silent(
    make_redis_server: Callable[..., RedisServer], own_peers: Callable[[str], Peer],
) -> None:
    server = make_redis_server("--maxmemory-policy", "noeviction", appendonly=True)
    queue = bullpy.Queue("message-queue", server.url())
    node = own_peers(server.url())
    try:
        for n in range(4):
            queue.add({"number": f"551199999000{n}", "message": "hi"}, name="send")
        queue.add({"number": "x", "__peer": {"fail": "invalid number: \"x\""}}, name="send")
        node.process(queue, count=5)
        queue.add({"number": "5511999990009", "__peer": {"sleep": 5000}}, name="send")
        wait_until(lambda: queue.get_active_count() == 1)
        queue.add({"number": "5511999990010"}, name="send")
        queue.add({"number": "5511999990011"}, name="send", delay=60_000)

        report = diagnose(queue, recheck_delay=0.2)
        assert report.ok, report.render()
        assert report.codes() == {"memory-per-job"}
        assert queue.get_job_counts("completed", "failed", "active", "waiting", "delayed") == {
            "completed": 4, "failed": 1, "active": 1, "waiting": 1, "delayed": 1}
    finally:
        queue.close()
