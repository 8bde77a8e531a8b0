"""bullpy.exporter on a real Redis: bull_exporter's metrics and the ones it lacks, /health through a Redis
outage, a scrape's round trips whatever the queue's size, a Worker's own metrics, and `bullpy exporter`.

(Queues that Node workers are using, and their figures against Node's own getJobCounts: tests/interop.)"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from click.testing import CliRunner

import bullpy
from bullpy.cli import main
from bullpy.worker import Worker

from .conftest import counting_client, delete_prefix, wait_until

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families

from bullpy.exporter import QueueExporter, WorkerMetrics, render, serve

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: bytes | str) -> Samples:
    """Every sample of a scrape, keyed by (name, labels)."""
    out: Samples = {}
    body = text.decode() if isinstance(text, bytes) else text
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def post(url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.status, json.loads(reply.read())


@pytest.fixture
def exporters() -> Iterator[Callable[..., QueueExporter]]:
    made: list[QueueExporter] = []

    def make(*args: Any, **kwargs: Any) -> QueueExporter:
        exporter = QueueExporter(*args, **kwargs)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.close()


def finish(client: redis.Redis, queue: bullpy.Queue, job_id: str, state: str, processed: int, finished: int) -> None:
    """Move a waiting job to ``state`` as a worker does (its hash and its set), without a worker."""
    client.lrem(queue.keys("wait"), 0, job_id)
    client.zadd(queue.keys(state), {job_id: finished})
    client.hset(queue.keys.job(job_id), mapping={"processedOn": processed, "finishedOn": finished})


def test_figures_equal_get_job_counts_with_bull_exporters_names(
    make_queue: Callable[..., bullpy.Queue], exporters: Callable[..., QueueExporter], redis_url: str, prefix: str,
    redis_client: redis.Redis,
) -> None:
    send, other = make_queue("send"), make_queue("other")
    send.add_bulk([{"data": {"i": i}, "opts": {"timestamp": 1_000}} for i in range(6)])
    send.add({"later": True}, delay=60_000)
    finish(redis_client, send, "1", "completed", 1_000, 2_000)
    finish(redis_client, send, "2", "failed", 1_000, 2_000)
    other.add({"x": 1})
    other.pause()
    exporter = exporters(redis_url, prefix=prefix)
    assert exporter.queues == ["other", "send"]
    found = samples(render(exporter))
    for queue in (send, other):
        labels = {"queue": queue.name, "prefix": prefix}
        counts = queue.get_job_counts()
        for state in ("waiting", "active", "completed", "failed", "delayed", "paused"):
            assert value(found, f"bull_queue_{state}", **labels) == counts[state], (queue.name, state)
        assert value(found, "bull_queue_is_paused", **labels) == int(queue.is_paused())
        assert value(found, "bull_queue_connected_clients", **labels) >= 1
        assert value(found, "bull_queue_blocked_clients", **labels) >= 0
        assert value(found, "bull_queue_workers", **labels) == 0
    # Jobs that finished before the exporter started count in the gauges, not in the counters.
    assert value(found, "bull_queue_completed_total", queue="send", prefix=prefix) == 0
    assert value(found, "bull_queue_metrics_recorded", queue="send", prefix=prefix) == 0
    # The ready time of the longest-waiting job: timestamp 1000, so decades ago.
    assert value(found, "bull_queue_oldest_waiting_age_seconds", queue="send", prefix=prefix) > 10**9
    assert value(found, "bull_queue_complete_duration_count", queue="send", prefix=prefix) == 0
    assert value(found, "bull_exporter_up") == 1 and value(found, "bull_exporter_queues") == 2
    assert f'bull_queue_complete_duration{{prefix="{prefix}",quantile="0.9",queue="send"}} NaN' in \
        render(exporter).decode()


def test_counters_only_go_up_and_histograms_fill_as_jobs_finish(
    queue: bullpy.Queue, exporters: Callable[..., QueueExporter], redis_url: str, prefix: str,
    redis_client: redis.Redis,
) -> None:
    queue.add_bulk([{"data": {"i": i}} for i in range(10)])
    exporter = exporters(redis_url, prefix=prefix)
    labels = {"queue": queue.name, "prefix": prefix}
    first = samples(render(exporter))
    assert value(first, "bull_queue_completed_total", **labels) == 0
    now = int(time.time() * 1000) + 1000
    for job_id in ("1", "2", "3"):
        finish(redis_client, queue, job_id, "completed", now - 2500, now)  # 2.5 s each
    finish(redis_client, queue, "4", "failed", now - 100, now + 1)
    second = samples(render(exporter))
    assert value(second, "bull_queue_completed_total", **labels) == 3
    assert value(second, "bull_queue_failed_total", **labels) == 1
    assert value(second, "bull_queue_processing_duration_seconds_count", **labels, status="completed") == 3
    assert value(second, "bull_queue_processing_duration_seconds_bucket", **labels, status="completed",
                 le="2.5") == 3
    assert value(second, "bull_queue_processing_duration_seconds_bucket", **labels, status="completed",
                 le="1.0") == 0
    assert value(second, "bull_queue_processing_duration_seconds_sum", **labels, status="failed") == 0.101
    assert value(second, "bull_queue_wait_duration_seconds_count", **labels) == 4
    assert value(second, "bull_queue_complete_duration_count", **labels) == 3
    assert value(second, "bull_queue_complete_duration", **labels, quantile="0.9") == 2500  # ms, as bull_exporter
    # Removing finished jobs lowers bull_exporter's gauges, never the counters; the histograms keep their counts.
    for job_id in ("1", "2", "3"):
        queue.get_job(job_id).remove()  # type: ignore[union-attr]
    third = samples(render(exporter))
    assert value(third, "bull_queue_completed", **labels) == 0
    assert value(third, "bull_queue_completed_total", **labels) == 3
    assert value(third, "bull_queue_processing_duration_seconds_count", **labels, status="completed") == 3
    finish(redis_client, queue, "5", "completed", now, now + 2)
    assert value(samples(render(exporter)), "bull_queue_completed_total", **labels) == 4


def test_counters_follow_bulls_metrics_keys_when_workers_record_them(
    queue: bullpy.Queue, exporters: Callable[..., QueueExporter], redis_url: str, prefix: str,
) -> None:
    queue.add_bulk([{"data": {"i": i}, "opts": {"remove_on_complete": True}} for i in range(5)])
    exporter = exporters(redis_url, prefix=prefix)
    labels = {"queue": queue.name, "prefix": prefix}
    samples(render(exporter))
    worker = Worker(queue, lambda job: None, metrics={"max_data_points": 60}).start()
    try:
        wait_until(lambda: queue.get_job_counts()["waiting"] == 0 and not queue.get_job_counts()["active"],
                   what="the jobs done")
    finally:
        worker.close(timeout=5)
    found = samples(render(exporter))
    # removeOnComplete left nothing to observe: the count comes from Bull's metrics hash.
    assert value(found, "bull_queue_completed", **labels) == 0
    assert value(found, "bull_queue_completed_total", **labels) == 5 == queue.get_metrics("completed").count
    assert value(found, "bull_queue_metrics_recorded", **labels) == 1
    # A new exporter starts from Bull's count: the counter carries on across exporter restarts.
    again = exporters(redis_url, prefix=prefix)
    assert value(samples(render(again)), "bull_queue_completed_total", **labels) == 5


def test_workers_paused_state_and_discovery_on_demand(
    make_queue: Callable[..., bullpy.Queue], exporters: Callable[..., QueueExporter], redis_url: str, prefix: str,
) -> None:
    queue = make_queue("first")
    queue.add({})
    exporter = exporters(redis_url, prefix=prefix)
    server = serve(exporter, port=0, host="127.0.0.1")
    try:
        worker = Worker(queue, lambda job: None).start()
        try:
            wait_until(lambda: queue.count_workers() == 1, what="the worker's connection")
            status, body = get(server.url + "/metrics")
            assert status == 200
            assert value(samples(body), "bull_queue_workers", queue="first", prefix=prefix) == 1
        finally:
            worker.close(timeout=5)
        queue.pause()
        assert value(samples(get(server.url + "/metrics")[1]), "bull_queue_is_paused", queue="first",
                     prefix=prefix) == 1
        make_queue("second").add({})
        assert exporter.queues == ["first"]  # found by SCAN at start only, unless asked
        assert post(server.url + "/discover_queues") == (200, {"ok": True, "queues": ["first", "second"]})
        assert value(samples(get(server.url + "/metrics")[1]), "bull_queue_waiting", queue="second",
                     prefix=prefix) == 1
        assert get(server.url + "/nope")[0] == 404
    finally:
        server.close()


def test_health_turns_503_when_redis_stops_and_200_when_it_is_back(
    make_redis_server: Callable[..., Any], exporters: Callable[..., QueueExporter],
) -> None:
    redis_server = make_redis_server()
    url = redis_server.url()
    queue = bullpy.Queue("message-queue", url)
    queue.add({"number": "5511999", "message": "hi"})
    exporter = exporters(url)
    server = serve(exporter, port=0, host="127.0.0.1")
    try:
        assert get(server.url + "/health") == (200, b'{"ok": true}\n')
        assert get(server.url + "/healthz")[0] == 200  # bull_exporter's path
        assert get(server.url + "/metrics")[0] == 200
        redis_server.stop()
        status, body = get(server.url + "/health")
        assert status == 503 and json.loads(body)["ok"] is False
        assert "cannot reach Redis" in json.loads(body)["error"]
        status, body = get(server.url + "/metrics")
        assert status == 503 and body.startswith(b"scrape failed: ")
        redis_server.start()
        wait_until(lambda: get(server.url + "/health")[0] == 200, what="/health back to 200")
        status, body = get(server.url + "/metrics")
        assert status == 200
        assert value(samples(body), "bull_queue_waiting", queue="message-queue", prefix="bull") == 0  # no AOF: empty
        assert value(samples(body), "bull_exporter_up") == 1
    finally:
        server.close()
        queue.close()


MILLION = """
-- KEYS: wait, completed. Add ids ARGV[1]..ARGV[2] to both, 2500 a command, as Bull's addJob LPUSHes and a
-- worker's moveToFinished ZADDs (scores: long ago).
local ids, scored = {}, {}
for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  ids[#ids + 1] = tostring(i)
  scored[#scored + 1] = tostring(i); scored[#scored + 1] = tostring(i)
  if #ids == 2500 then
    redis.call("LPUSH", KEYS[1], unpack(ids)); redis.call("ZADD", KEYS[2], unpack(scored)); ids = {}; scored = {}
  end
end
if #ids > 0 then redis.call("LPUSH", KEYS[1], unpack(ids)); redis.call("ZADD", KEYS[2], unpack(scored)) end
return redis.call("LLEN", KEYS[1])
"""


def test_a_scrape_costs_the_same_round_trips_for_10_and_1_000_000_jobs(
    make_redis_server: Callable[..., Any], exporters: Callable[..., QueueExporter],
) -> None:
    url = make_redis_server().url()
    costs, durations = [], []
    for n in (10, 1_000_000):
        prefix = f"bullpy-test-{uuid.uuid4().hex[:8]}"
        client, trips = counting_client(url)
        try:
            queue = bullpy.Queue("big", client, prefix=prefix)
            queue.add({"first": True}, timestamp=1_000)  # the id counter and one real job hash
            fill = client.register_script(MILLION)
            for start in range(1, n + 1, 100_000):  # short scripts: Redis keeps answering others meanwhile
                fill(keys=[queue.keys("wait"), queue.keys("completed")], args=[start, min(n, start + 99_999)])
            assert queue.get_job_counts("waiting", "completed") == {"waiting": n + 1, "completed": n}
            exporter = exporters(client, prefix=prefix)
            render(exporter)  # the first scrape sets the high-water marks
            now = int(time.time() * 1000) + 1000
            for job_id in ("1", "2"):  # two jobs finish between scrapes, whatever the size
                client.zadd(queue.keys("completed"), {f"done-{job_id}": now})
                client.hset(queue.keys.job(f"done-{job_id}"), mapping={"processedOn": now - 50, "finishedOn": now,
                                                                      "timestamp": now - 100})
            trips.clear()
            start = time.perf_counter()
            found = samples(render(exporter))
            durations.append(time.perf_counter() - start)
            costs.append(list(trips))
            assert value(found, "bull_queue_waiting", queue="big", prefix=prefix) == n + 1
            assert value(found, "bull_queue_completed", queue="big", prefix=prefix) == n + 2
            assert value(found, "bull_queue_completed_total", queue="big", prefix=prefix) == 2
        finally:
            delete_prefix(client, prefix)
            client.close()
    names = [[[command.split()[0] for command in trip] for trip in cost] for cost in costs]
    # INFO clients, CLIENT LIST, then per queue one snapshot (MULTI ... EXEC) and one pipeline of HMGETs.
    assert names[0] == names[1]
    assert len(names[0]) == 4, names[0]
    assert names[0][0] == ["INFO"] and names[0][1] == ["CLIENT"]
    assert names[0][3] == ["HMGET"] * 4  # the wait list's two ends and the two jobs that finished
    # Not a timing test, but a million jobs must not be read: the big scrape stays within a small factor.
    assert durations[1] < max(1.0, 20 * durations[0]), durations


def test_worker_metrics_count_outcomes_and_time_handlers(queue: bullpy.Queue) -> None:
    def handler(job: bullpy.Job) -> Any:
        time.sleep(0.05)
        if job.data.get("fail"):
            raise ValueError("no WhatsApp account")
        return {"sent": True}

    queue.add_bulk([{"data": {"i": i}} for i in range(3)] + [{"data": {"fail": True}}])
    worker = Worker(queue, handler, concurrency=2)
    metrics = WorkerMetrics(worker).serve(0, host="127.0.0.1")
    url = f"http://127.0.0.1:{metrics.port}"
    assert get(url + "/health")[0] == 503  # not running yet
    worker.start()
    try:
        wait_until(lambda: queue.get_job_counts("completed", "failed") == {"completed": 3, "failed": 1},
                   what="the jobs done")
        assert get(url + "/health")[0] == 200
        labels = {"queue": queue.name, "prefix": queue.prefix}

        def counted() -> Samples | None:
            found = samples(get(url + "/metrics")[1])
            return found if value(found, "bullpy_worker_jobs_total", **labels, status="failed") == 1 else None

        found = wait_until(counted, what="the failure counted")
        assert value(found, "bullpy_worker_jobs_total", **labels, status="completed") == 3
        assert value(found, "bullpy_worker_job_duration_seconds_count", **labels, status="completed") == 3
        assert value(found, "bullpy_worker_job_duration_seconds_sum", **labels, status="completed") >= 0.15
        assert value(found, "bullpy_worker_active_jobs", **labels) == 0
        assert value(found, "bullpy_worker_concurrency", **labels) == 2
    finally:
        worker.close(timeout=5)
        metrics.close()
    assert not queue._emitter.listeners("completed")  # close() stops listening


def test_cli_exporter_once_prints_one_scrape(queue: bullpy.Queue, redis_url: str, prefix: str) -> None:
    queue.add({"a": 1})
    result = CliRunner().invoke(main, ["--redis", redis_url, "--prefix", prefix, "exporter", "--once"])
    assert result.exit_code == 0, result.output
    assert value(samples(result.stdout), "bull_queue_waiting", queue=queue.name, prefix=prefix) == 1
    named = CliRunner().invoke(main, ["--redis", redis_url, "--prefix", prefix, "exporter", "nope", "--once",
                                      "--metric-prefix", "mq_"])
    assert named.exit_code == 0, named.output
    assert value(samples(named.stdout), "mq_waiting", queue="nope", prefix=prefix) == 0
