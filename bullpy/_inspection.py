"""The reads inspection tools (``bullpy doctor``, the CLI) make of a queue with plain commands only, so that a
``+@read`` ACL user and an out-of-memory Redis (MULTI refused) still answer: scores, memory per job, every
job hash by SCAN, ids that are another queue's jobs. ``Queue`` has them as methods."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import redis as _redis

from . import _refusals
from ._core import options as _options
from ._core import scripts
from ._core.codec import text as _text
from ._core.keys import QUEUE_KEY_SUFFIXES, RESERVED_ID_PREFIXES, QueueKeys
from ._core.ops import PRESENCE_KEYS as _PRESENCE_KEYS

# Hashes under ``prefix:name:`` that are the queue's own structure, not jobs (protocol §1.2).
_STRUCTURE_HASHES = frozenset({"meta", "limiter:index", "metrics:completed", "metrics:failed"})
_BATCH = 1000  # ids (or keys) per round trip of the inspection reads


class InspectionReads:
    """Plain-command reads of one queue (mixed into ``bullpy.Queue``)."""

    client: _redis.Redis
    keys: QueueKeys

    def _each(self, ids: Sequence[str], command: Callable[[Any, str], object], size: int = _BATCH) -> list[Any]:
        """``command(pipe, id)`` for each id, in plain pipelines of ``size``; the replies in order."""
        replies: list[Any] = []
        for start in range(0, len(ids), size):
            with _refusals.unavailable_as_error(self.client, keys=self.keys), self.client.pipeline(transaction=False) as pipe:
                for job_id in ids[start : start + size]:
                    command(pipe, str(job_id))
                replies.extend(pipe.execute())
        return replies

    def get_scores(self, state: str, ids: Sequence[str]) -> list[float | None]:
        """Each job's score in a sorted-set state (delayed, completed, failed), None where it is not there."""
        if state not in ("delayed", "completed", "failed"):
            raise ValueError(f"get_scores reads delayed, completed or failed, not {state!r}")
        key = self.keys(state)
        return [None if s is None else float(s) for s in self._each(ids, lambda pipe, i: pipe.zscore(key, i))]

    def get_memory_usage(self, ids: Sequence[str]) -> list[int | None]:
        """``MEMORY USAGE`` of each job's hash in bytes, every field counted; None for a job that is gone."""
        # SAMPLES 0: Redis' default estimates a hash from 5 of its fields, and may miss a job's big ``data``.
        sizes = self._each(ids, lambda pipe, i: pipe.memory_usage(self.keys.job(i), samples=0))
        return [None if n is None else int(n) for n in sizes]

    def scan_job_ids(self, *, count: int = 1000) -> Iterator[str]:
        """Ids of every job hash of the queue, in a state or in none, found with SCAN (never KEYS), ``count``
        keys a round trip; it walks the whole keyspace. As SCAN does, it may yield an id twice when Redis
        resizes its keyspace during the walk."""
        return self._scan_job_ids(_options._int_option("count", count, 1))

    def _scan_job_ids(self, count: int) -> Iterator[str]:
        base = self.keys.base
        pattern = scripts.glob_escape(base) + "*"
        with _refusals.unavailable_as_error(self.client, keys=self.keys):
            try:
                for key in self.client.scan_iter(match=pattern, count=count, _type="hash"):
                    job_id = _job_id_of(_text(key), base)
                    if job_id is not None:
                        yield job_id
            except _redis.ResponseError as exc:
                if "syntax" not in str(exc).lower():
                    raise
                # Redis < 6 has no SCAN ... TYPE: ask TYPE for each key, a batch a round trip.
                keys: list[str] = []
                for key in self.client.scan_iter(match=pattern, count=count):
                    keys.append(_text(key))
                    if len(keys) >= count:
                        yield from self._job_hashes(keys, base)
                        keys = []
                yield from self._job_hashes(keys, base)

    def _job_hashes(self, keys: list[str], base: str) -> Iterator[str]:
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.type(key)
            types = pipe.execute()
        for key, kind in zip(keys, types):
            job_id = _job_id_of(key, base) if _text(kind) == "hash" else None
            if job_id is not None:
                yield job_id

    def other_queue_ids(self, ids: Sequence[str]) -> set[str]:
        """Of these ids, those that are jobs of another queue ``<name>:<head>`` (job ``5`` of queue ``q:a``
        has the key job ``a:5`` of queue ``q`` would have)."""
        asked: list[tuple[str, list[str]]] = []
        for job_id in ids:
            parts = str(job_id).split(":")
            for cut in range(1, len(parts)):
                head = self.keys.base + ":".join(parts[:cut]) + ":"
                asked.append((str(job_id), [head + suffix for suffix in _PRESENCE_KEYS]))
        if not asked:
            return set()
        with _refusals.unavailable_as_error(self.client, keys=self.keys), self.client.pipeline(transaction=False) as pipe:
            for _, keys in asked:
                pipe.exists(*keys)
            replies = pipe.execute()
        return {job_id for (job_id, _), found in zip(asked, replies) if found}


def _job_id_of(key: str, base: str) -> str | None:
    """The job id a hash key under ``base`` names, or None for the queue's own structure keys."""
    job_id = key[len(base):]
    if job_id in _STRUCTURE_HASHES or job_id in QUEUE_KEY_SUFFIXES or job_id.startswith(RESERVED_ID_PREFIXES):
        return None
    return job_id
