"""A damaged queue never hides the healthy jobs: every library read path, the inspector and a bullpy Worker
over a corpus of damaged jobs (tests/damaged_corpus.py) written next to healthy ones.

What each read must show: every healthy job, once, with its data; every damaged job reported (``damaged`` on a
Job, ``parse_error`` in a frame, ``damaged`` in campaign_status); and Redis unchanged (the keyspace digest).
The worker must run every job Node can read exactly once and fail the rest at once, leaving nothing locked in
``active``. CLI commands over the same corpus: tests/test_damaged_cli.py.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bullpy
import bullpy.aio
from bullpy.widgets import JobInspector

from . import damaged_corpus as dc
from .conftest import wait_until


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)  # bytes: damaged values go in exactly as another program wrote them
    yield client
    client.close()


@pytest.fixture
def corpus(queue: bullpy.Queue, raw: redis.Redis) -> dc.Corpus:
    return dc.write(queue, raw)


def _check_jobs(corpus: dc.Corpus, jobs: list[Any], *, twice_marked: bool) -> None:
    by_id: dict[str, list[Any]] = {}
    for job in jobs:
        by_id.setdefault(job.id, []).append(job)
    for job_id in corpus.healthy:
        assert len(by_id[job_id]) == 1 and by_id[job_id][0].damaged is None, job_id
        assert by_id[job_id][0].data["message"].startswith("hello")
    for job_id, kind in corpus.damaged.items():
        assert len(by_id[job_id]) == 1, (job_id, kind)
        damaged = by_id[job_id][0].damaged
        assert damaged and corpus.says[job_id] in damaged, (job_id, kind, damaged)
    listed_twice = by_id[corpus.twice]
    if twice_marked:
        assert len(listed_twice) == 2 and all("more than one state" in str(j.damaged) for j in listed_twice)


def test_getters_show_healthy_jobs_and_report_each_damaged_one(corpus: dc.Corpus, raw: redis.Redis) -> None:
    queue = corpus.queue
    before = dc.digest(raw, queue.keys.base)
    _check_jobs(corpus, queue.get_jobs(["waiting", "completed"]), twice_marked=True)
    _check_jobs(corpus, queue.get_waiting(), twice_marked=False)
    for job_id in [*corpus.healthy, *corpus.damaged]:
        job = queue.get_job(job_id)
        if corpus.damaged.get(job_id) == "hash-missing":
            assert job is None  # as Node's getJob: nothing to read by id alone
            continue
        assert job is not None and (job.damaged is None) == (job_id in corpus.healthy), job_id
        repr(job)  # printable, whatever the damage
    by_ids = queue.get_jobs_by_ids([*corpus.healthy, *corpus.damaged])
    assert {j.id for j in by_ids} == {*corpus.healthy, *corpus.damaged} - {"damaged-hash-missing"}
    # Node's own reading where Node can read it: U+FFFD for bytes that are not UTF-8, deep data whole.
    assert queue.get_job("damaged-data-not-utf8").data["message"] == "ol\ufffd"  # type: ignore[union-attr]
    assert queue.get_job("damaged-name-not-utf8").name == "caf\ufffd"  # type: ignore[union-attr]
    assert queue.get_job("damaged-data-truncated").data == '{"number":"55119'  # type: ignore[union-attr]
    fields = queue.get_job_fields([*corpus.healthy, "damaged-key-is-string"], ["name"])
    assert [r[0] is not None for r in fields] == [True] * len(corpus.healthy) + [False]
    assert queue.get_job_counts()["waiting"] == len(corpus.healthy) + len(corpus.damaged) + 1
    assert dc.digest(raw, queue.keys.base) == before


def test_frames_show_healthy_rows_and_a_parse_error_for_each_damaged_one(corpus: dc.Corpus, raw: redis.Redis) -> None:
    queue = corpus.queue
    before = dc.digest(raw, queue.keys.base)
    frame = queue.jobs_frame(["waiting"])
    chunks = pd.concat(list(queue.iter_jobs_frames(["waiting"], chunk_rows=5, chunk_size=4)), ignore_index=True)
    for f in (frame, chunks):
        rows = f.set_index("id")
        assert sorted(rows.index) == sorted([*corpus.healthy, *corpus.damaged, corpus.twice])
        assert rows.loc[corpus.healthy, "parse_error"].isna().all()
        assert list(rows.loc[corpus.healthy, "data.message"]) == [f"hello {i}" for i in range(len(corpus.healthy))]
        for job_id in corpus.damaged:
            error = rows.loc[job_id, "parse_error"]
            assert isinstance(error, str) and error, job_id
        assert rows.loc["damaged-data-deep", "data"].startswith("[[[[")  # its text: a frame must print
        repr(f), f.to_json(date_format="iso")
    status = queue.campaign_status(pd.DataFrame({"job_id": [*corpus.healthy, *corpus.damaged]}))
    assert status["damaged"].iloc[: len(corpus.healthy)].isna().all()
    assert status["damaged"].iloc[len(corpus.healthy):].notna().all()
    assert dc.digest(raw, queue.keys.base) == before


def test_inspector_lists_every_job_and_marks_the_damaged(corpus: dc.Corpus, raw: redis.Redis) -> None:
    queue = corpus.queue
    before = dc.digest(raw, queue.keys.base)
    inspector = JobInspector(queue, "waiting", refresh=None, page_size=50)
    try:
        _inspect(corpus, inspector)
    finally:
        inspector.close()
    assert dc.digest(raw, queue.keys.base) == before


def _inspect(corpus: dc.Corpus, inspector: JobInspector) -> None:
    shown = {job.id: job for job in inspector.jobs}
    assert set(shown) == {*corpus.healthy, *corpus.damaged, corpus.twice}
    assert {i for i, job in shown.items() if job.damaged} == set(corpus.damaged)
    lines = [cells for _check, _button, cells in inspector.rows[: len(shown)]]
    assert sum("bullpy-damaged" in "".join(c.value for c in cells) for cells in lines) == len(corpus.damaged)
    for job_id in shown:
        inspector.show(job_id)
        assert ">damaged<" in inspector.detail.value or job_id not in corpus.damaged, job_id
    inspector.show("damaged-opts-null")
    assert "JSON null" in inspector.detail.value
    inspector.set_filter(text="hello")
    assert sorted(j.id for j in inspector.jobs) == sorted(corpus.healthy)


def test_asyncio_getters_report_the_same(corpus: dc.Corpus, raw: redis.Redis, redis_url: str) -> None:
    async def read() -> list[Any]:
        queue = bullpy.aio.Queue(corpus.queue.name, redis_url, prefix=corpus.queue.prefix)
        try:
            return await queue.get_jobs(["waiting", "completed"])
        finally:
            await queue.close()

    before = dc.digest(raw, corpus.queue.keys.base)
    _check_jobs(corpus, asyncio.run(read()), twice_marked=True)
    assert dc.digest(raw, corpus.queue.keys.base) == before


def test_asyncio_names_a_key_of_the_wrong_type(queue: bullpy.Queue, raw: redis.Redis, redis_url: str) -> None:
    queue.add({"n": 1})
    raw.delete(queue.keys("wait"))
    raw.set(queue.keys("wait"), b"not a list")

    async def count() -> None:
        aqueue = bullpy.aio.Queue(queue.name, redis_url, prefix=queue.prefix)
        try:
            await aqueue.get_waiting()
        finally:
            await aqueue.close()

    with pytest.raises(bullpy.WrongKeyType) as info:
        asyncio.run(count())
    assert info.value.key == queue.keys("wait") and "string, not a list" in str(info.value)


def test_worker_runs_what_node_can_read_once_and_fails_the_rest_at_once(corpus: dc.Corpus) -> None:
    queue = corpus.queue
    ran: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    queue.on("error", lambda error, *rest: errors.append(error))

    def handler(job: bullpy.Job) -> str:
        with lock:
            ran.append(job.id)
        return "sent"

    worker = bullpy.Worker(queue, handler, concurrency=4).start()
    try:
        total = len(corpus.healthy) + len(corpus.damaged) + 1
        wait_until(lambda: sum(queue.get_job_counts("completed", "failed").values()) >= total, timeout=30,
                   what="every job finished")
    finally:
        worker.close(timeout=10)
    assert sorted(ran) == sorted(corpus.runnable)  # each once
    counts = queue.get_job_counts()
    assert counts["active"] == counts["waiting"] == 0
    failed = set(queue.get_ranges(["failed"]))
    assert failed == set(corpus.damaged) - corpus.runnable
    assert len(errors) == len(failed)  # one error event per job that could not run
    for job_id in failed:
        assert not queue.raw.job_presence([job_id])[0][1]  # no lock left behind
    assert raw_type(queue, "damaged-key-is-string") == b"string"  # another program's key is not touched
    assert raw_type(queue, "damaged-hash-missing") == b"none"  # no ghost hash written (Node writes one)


def raw_type(queue: bullpy.Queue, job_id: str) -> bytes:
    client = redis.Redis(connection_pool=redis.ConnectionPool(**{
        **queue.client.connection_pool.connection_kwargs, "decode_responses": False}))
    try:
        return bytes(client.type(queue.keys.job(job_id)))
    finally:
        client.close()


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), healthy=st.integers(1, 8), randomised=st.integers(1, 12))
def test_randomised_damage_never_hides_healthy_jobs(make_queue: Any, raw: redis.Redis, seed: int, healthy: int,
                                                    randomised: int) -> None:
    queue = make_queue(f"random-damage-{uuid.uuid4().hex[:8]}")  # a fresh queue per example (the prefix goes)
    corpus = dc.write(queue, raw, healthy=healthy, randomised=randomised, seed=seed)
    before = dc.digest(raw, queue.keys.base)
    _check_jobs(corpus, queue.get_jobs(["waiting", "completed"]), twice_marked=True)
    rows = queue.jobs_frame(["waiting"]).set_index("id")
    assert rows.loc[corpus.healthy, "parse_error"].isna().all()
    assert rows.loc[list(corpus.damaged), "parse_error"].notna().all()
    assert dc.digest(raw, queue.keys.base) == before


def test_migration_moves_the_healthy_jobs_and_leaves_the_damaged_in_bull(corpus: dc.Corpus, raw: redis.Redis,
                                                                        other_prefix: str) -> None:
    pytest.importorskip("bullmq")
    from bullpy.migrate import migrate_to_bullmq

    queue = corpus.queue
    before = dc.digest(raw, queue.keys.base)
    plan = migrate_to_bullmq(queue, target_prefix=other_prefix, states=["waiting"], dry_run=True)
    assert dc.digest(raw, queue.keys.base) == before
    done = migrate_to_bullmq(queue, target_prefix=other_prefix, states=["waiting"])
    for summary in (plan, done):
        skipped = {s.id: s.reason for s in summary.skipped}
        assert set(skipped) == set(corpus.damaged) - {"damaged-hash-missing"}, skipped
        assert all("damaged" in reason for reason in skipped.values())
        assert summary.migrated["wait"] == len(corpus.healthy) + 1  # and the sound job listed twice
    left = set(queue.get_ranges(["waiting"]))
    assert left == set(corpus.damaged)  # left in Bull, untouched (the id with no hash too)
    for job_id in corpus.healthy:  # BullMQ's queue is on the same server and db here
        assert raw.hget(f"{other_prefix}:{queue.name}:{job_id}", "data") is not None


_NAMES = [b"data", b"opts", b"name", b"x", b"timestamp"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from([*_NAMES, b"{}"])), max_size=6)))
def test_the_guessed_layout_of_data_and_opts_never_changes_what_is_read(hashes: list[list[tuple[bytes, bytes]]]) -> None:
    """Export and import look for data and opts where the last hash had them: whatever the hashes before, the
    values read are those a search of the whole hash finds, a value equal to a field's name included. (Field
    names are unique: Redis hashes, and file records, which the reader checks first.)"""
    from bullpy.transfer import format as fmt

    for pairs in hashes:
        flat = [item for name, value in dict(pairs).items() for item in (name, value)]
        assert fmt._data_and_opts(flat) == (fmt.field_value(flat, b"data"), fmt.field_value(flat, b"opts"))
