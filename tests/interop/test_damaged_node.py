"""Damaged job hashes (tests/damaged_corpus.py) read by real Node Bull and by bullpy: where Node reads one,
bullpy reads exactly what Node reads (``toJSON`` equal: bytes that are not UTF-8 as U+FFFD, JSON nested
thousands deep whole); where Node's ``getJob`` throws or finds nothing, bullpy reports the job as damaged
(or, for an id with no hash, finds nothing too) instead of failing the read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest
import redis

import bullpy

from .. import damaged_corpus as dc
from .peer import Peer, PeerError
from .test_node_writes_python_reads import assert_same_job


@pytest.fixture
def corpus(make_queue: Callable[..., bullpy.Queue], redis_url: str) -> Iterator[dc.Corpus]:
    raw = redis.Redis.from_url(redis_url)
    try:
        yield dc.write(make_queue(), raw, randomised=0)
    finally:
        raw.close()


def test_bullpy_reads_what_node_reads(corpus: dc.Corpus, bull: Peer) -> None:
    queue = corpus.queue
    for job_id in ("damaged-data-not-utf8", "damaged-name-not-utf8", *corpus.healthy):
        assert_same_job(bull, queue, job_id)
    job = queue.get_job("damaged-data-not-utf8")
    assert job is not None and job.data["message"] == "ol\ufffd" and "not valid UTF-8" in str(job.damaged)


def test_deep_data_reads_whole_as_in_node(corpus: dc.Corpus, bull: Peer, redis_url: str) -> None:
    # 1,500 deep: past what Python's json reads at once, within what the peer can send back (its canonical
    # JSON writer recurses; Node's JSON.parse itself reads 60,000 deep, its JSON.stringify about 5,000).
    raw = redis.Redis.from_url(redis_url)
    raw.hset(corpus.queue.keys.job("deep-1500"), mapping=dc.FIXED["data-deep"]["hash"] | {b"data": dc.nested(1500)})
    raw.close()
    job = corpus.queue.get_job("deep-1500")  # at Python's usual limit, as a user reads it
    assert job is not None and "deeper than Python prints" in str(job.damaged)
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(before + 20_000)  # the peer's reply and the comparison nest 1,500 deep
    try:
        node = bull.get_job(corpus.queue, "deep-1500")
        assert node is not None and job.data == node["data"]
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.parametrize("job_id", ["damaged-opts-null", "damaged-opts-truncated", "damaged-data-truncated",
                                    "damaged-key-is-string", "damaged-key-is-list"])
def test_where_node_throws_bullpy_reports_the_job_damaged(corpus: dc.Corpus, bull: Peer, job_id: str) -> None:
    with pytest.raises(PeerError):
        bull.get_job(corpus.queue, job_id)
    job = corpus.queue.get_job(job_id)
    assert job is not None and corpus.says[job_id] in str(job.damaged)


def test_an_id_with_no_hash_is_no_job_in_either(corpus: dc.Corpus, bull: Peer) -> None:
    assert bull.get_job(corpus.queue, "damaged-hash-missing") is None
    assert corpus.queue.get_job("damaged-hash-missing") is None
    listed = {job.id: job for job in corpus.queue.get_waiting()}  # a listing reports it
    assert "no job hash" in str(listed["damaged-hash-missing"].damaged)
