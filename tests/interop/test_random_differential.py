"""Random sequences of producer and management operations leave the keyspace Node Bull leaves.

Hypothesis draws a sequence of 1 to 15 steps (adds with random options and data, bulk adds, pause/resume,
clean, retry, promote, remove, remove_jobs, empty, update, progress, log...), runs it once through the real
Node Bull peer and once through bullpy, each on its own fresh prefix, then compares the two keyspaces and
the steps' outcomes; when they differ Hypothesis shrinks to a minimal failing sequence. ``BULLPY_DIFF_EXAMPLES``
sets the number of sequences (400 by default, about 10 s, for CI; tens of thousands locally).

Determinism. Every job has an explicit ``timestamp`` (Node and bullpy then write the same bytes, delayed
scores included: they are ``(timestamp + delay) * 4096 + counter``). What reads the clock is kept out of the
comparison: ``clean``'s cut-off is ``now - grace``, so timestamps come from bands far from now (a past
band a few days before this test was written, a future band years ahead) and graces either fall below the
age of the past band or exceed the whole past, so Node and bullpy, a millisecond apart, cut at the same
place (this holds while the clock reads between December 2026 and 2036); Node also compares those ages as strings (docs/divergences.md row 7), and every value here has 13
digits, where string and numeric order agree. ``job.retry()`` stamps ``retriedOn`` from the clock: that
one field is blanked. ``promote`` reads no clock. Failed and completed jobs, which retry and clean need,
are made by ``raw`` steps that play a worker's part with fixed times, identically on both prefixes.

Documented divergences (docs/divergences.md) are normalised exactly: after Node's ``empty()`` the hashes of
delayed jobs, the logs of removed jobs and ``meta-paused`` it orphans or drops are put right on Node's side
(row 1); after Node's ``removeJobs`` the queue's ``meta`` hash it deleted is restored (row 6). Inputs where
bullpy is deliberately stricter or safer are not drawn: numeric custom ids an auto id could meet (row 4),
ids equal to queue keys (row 3), ``clean`` of delayed jobs with a limit (row 7), ``retry`` of a job that is
not failed (row 2: skipped on both sides), integers beyond 2**53 in data (JavaScript cannot hold them).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import bullpy

from ..conftest import delete_prefix, keyspace
from .peer import Peer, PeerError
from .test_differential import T0, NodeRunner, PythonRunner, Step, normalise

pytest.importorskip("hypothesis", reason="pip install hypothesis (a dev dependency of this test)")
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("BULLPY_DIFF_EXAMPLES", "400"))
FUTURE = 2_100_000_000_000  # 2036: (FUTURE + delay) * 4096 stays below 2**53
FAR = 4_102_444_800_000  # 2100: delayed scores beyond 2**53, rounded by Redis alike on both sides
BIG_GRACE = 315_576_000_000  # ten years: now - BIG_GRACE is older than every timestamp here (and 13 digits)
FIXED = T0 + 500_000  # when raw steps "take" and "finish" jobs (processedOn / finishedOn)

Outcome = tuple[Any, ...]
Client = Any  # a redis.Redis with decode_responses=True (redis-py types its replies bytes | str)

# --- the strategy -----------------------------------------------------------------------------------------
_text = st.text(st.characters(codec="utf-8"), max_size=8)
# Lone surrogates in data: both write JSON.stringify's \udxxx escape (names and ids refuse them: row 12 bounds).
_data_text = st.text(st.characters(exclude_categories=()), max_size=8)
# Keys JavaScript orders first (array indices, up to 2**32 - 2) and look-alikes it does not.
_keys = st.sampled_from(["1", "10", "2", "01", "-1", "1.5", "4294967294", "4294967295", "a b", "__proto__"]) | _text
_scalars = (st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
            | st.floats(allow_nan=False, allow_infinity=False) | _data_text)
json_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3), max_leaves=8
)
# Non-numeric custom ids (and 12345, far beyond any auto id here): an auto id meeting a numeric custom id is
# divergence row 4; ids equal to queue keys are row 3.
CUSTOM_IDS = ["a", "b", "ünï cødé", "x:1", "01", "1.5", "a*b", "[x]", "a\\b", 12345]
REFS = [str(i) for i in range(1, 11)] + [str(i) for i in CUSTOM_IDS]
_names = st.sampled_from([None, None, "email", "ü name", "a:b"])
_timestamps = st.one_of(st.integers(T0, T0 + 999), st.integers(FUTURE, FUTURE + 999), st.just(FAR))


def _shuffled(dicts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """The same members in any order: Node keeps the caller's order in the stored opts, so bullpy must too."""
    return dicts.flatmap(lambda d: st.permutations(list(d.items())).map(dict))


_keep = st.booleans() | st.integers(0, 5) | st.fixed_dictionaries({"age": st.integers(0, 7200)}) | _shuffled(
    st.fixed_dictionaries({"count": st.integers(0, 5)}, optional={"age": st.integers(0, 7200)}))
_backoff = st.integers(0, 5000) | _shuffled(st.fixed_dictionaries(
    {"type": st.sampled_from(["fixed", "exponential"]), "delay": st.integers(0, 5000)},
    optional={"options": json_values}))
_optional = {
    "job_id": st.sampled_from(CUSTOM_IDS), "priority": st.integers(0, 10) | st.just(2**21) | st.just(3.0),
    "delay": st.sampled_from([0, 0, 1, 1000, 60_000, 1000.0]), "lifo": st.booleans(), "attempts": st.integers(1, 5),
    "backoff": _backoff, "remove_on_complete": _keep, "remove_on_fail": _keep, "timeout": st.integers(1, 10**5),
    "stack_trace_limit": st.integers(0, 10), "prevent_parsing_data": st.booleans(),
}
options = _shuffled(st.fixed_dictionaries({"timestamp": _timestamps}, optional=_optional))


def _bulk_item(name: str | None, data: Any, opts: dict[str, Any]) -> dict[str, Any]:
    return {"data": data, "opts": opts} if name is None else {"name": name, "data": data, "opts": opts}


_ids = st.sampled_from(REFS)


def _refs(pool: str) -> st.SearchStrategy[Any]:
    """A job id, or ``(pool, k)``: the k-th job (mod their number) of a state, picked when the step runs."""
    return _ids | st.tuples(st.just(pool), st.integers(0, 5))

_adds = st.one_of(
    st.tuples(st.just("add"), _names, json_values, options),
    st.tuples(st.just("add"), _names, json_values, options),
    st.tuples(st.just("bulk"), st.lists(st.builds(_bulk_item, _names, json_values, options), min_size=1, max_size=4)),
)
_settle = st.tuples(st.just("raw"), st.just("settle"), st.just("failed"), st.just(FIXED))
steps = st.one_of(
    _adds,
    st.tuples(st.sampled_from(["pause", "resume", "empty"])),
    # Clean of delayed jobs with a limit never removes anything in Node (row 7): limit 0 there.
    st.builds(lambda grace, state, limit: ("clean", grace, state, 0 if state == "delayed" else limit),
              st.sampled_from([0, 3_600_000, BIG_GRACE]),
              st.sampled_from(["completed", "wait", "active", "delayed", "failed", "paused"]), st.integers(0, 3)),
    st.tuples(st.just("remove_jobs"), st.sampled_from(["*", "1*", "?", "[1-3]*", "*a*", "x:*", "ü*"]) | _ids),
    st.tuples(st.just("retry_jobs"), st.integers(1, 4)),
    st.tuples(st.just("job"), _refs("any"), st.just("update"), json_values),
    st.tuples(st.just("job"), _refs("any"), st.just("progress"), st.integers(0, 100) | json_values),
    st.tuples(st.just("job"), _refs("any"), st.just("log"), _text),
    st.tuples(st.just("job"), _refs("any"), st.just("remove")),
    st.tuples(st.just("job"), _refs("delayed"), st.just("promote")),
    st.tuples(st.just("job"), _refs("failed"), st.just("retry")),
    st.tuples(st.just("job"), _refs("failed"), st.just("retry")),  # twice: retry needs a failed job first
    st.tuples(st.just("raw"), st.just("take"), st.booleans()),
    st.tuples(st.just("raw"), st.just("settle"), st.sampled_from(["completed", "failed"]), st.just(FIXED)),
    _settle,
    st.tuples(st.just("raw"), st.just("finish"), st.sampled_from(["completed", "failed"]),
              st.sampled_from([FIXED, FUTURE + 500_000])),
)
# A few adds (and failures) first, so that the management steps mostly meet jobs; 1 to 15 steps in all.
sequences = st.builds(lambda adds, rest: (adds + rest)[:15] or rest, st.lists(_adds | _settle, max_size=6),
                      st.lists(steps, min_size=1, max_size=12))


# --- running a step ----------------------------------------------------------------------------------------
def raw_step(client: Client, base: str, step: Step) -> Outcome:
    """A worker's part, done the same way on both prefixes: take the next waiting job (Bull's BRPOPLPUSH then
    moveToActive: out of ``priority``, ``processedOn`` set, locked if asked), finish the oldest active one
    (moveToFinished: into ``completed``/``failed`` scored by ``finishedOn``, lock released), or both."""
    if step[1] == "settle":  # take, then finish what was taken
        took = raw_step(client, base, ("raw", "take", False))
        return took if took[0] == "empty" else raw_step(client, base, ("raw", "finish", *step[2:]))
    if step[1] == "take":
        job_id = client.rpoplpush(base + "wait", base + "active")
        if job_id is None:
            return ("empty",)
        client.zrem(base + "priority", job_id)
        client.hset(base + job_id, "processedOn", str(FIXED))
        if step[2]:
            client.set(base + job_id + ":lock", "raw-worker-token")
        return ("took", job_id)
    _, _, state, finished_on = step
    job_id = client.lindex(base + "active", -1)
    if job_id is None:
        return ("empty",)
    client.lrem(base + "active", -1, job_id)
    client.delete(base + job_id + ":lock")
    client.zadd(base + state, {job_id: finished_on})
    fields = {"finishedOn": str(finished_on)}
    if state == "failed":
        fields.update(failedReason="raw failure", stacktrace=json.dumps(["Error: raw failure"]))
    else:
        fields["returnvalue"] = json.dumps({"ok": "ü"})
    client.hset(base + job_id, mapping=fields)
    client.hincrby(base + job_id, "attemptsMade", 1)
    return ("finished", job_id)


def resolve(client: Client, base: str, ref: Any) -> str | None:
    """The job id a step's reference names on this prefix (None: no job to pick)."""
    if isinstance(ref, str):
        return ref
    pool, k = ref
    ids: list[str] = []
    if pool == "any":
        for state in ("wait", "paused", "active"):
            ids += client.lrange(base + state, 0, -1)
    for state in ("delayed", "completed", "failed") if pool == "any" else (pool,):
        ids += client.zrange(base + state, 0, -1)
    return ids[k % len(ids)] if ids else None


class RandomNode(NodeRunner):
    """NodeRunner plus outcomes, missing jobs, the steps it lacks and the repairs of rows 1 and 6."""

    def __init__(self, peer: Peer, queue: dict[str, str], client: Client) -> None:
        super().__init__(peer, queue)
        self.client, self.base = client, f"{queue['prefix']}:{queue['name']}:"

    def run(self, step: Step) -> Outcome:
        kind, *args = step
        base, client = self.base, self.client
        try:
            if kind == "raw":
                return raw_step(client, base, step)
            if kind == "job":
                ref, method, *rest = args
                job_id = resolve(client, base, ref)
                if job_id is None or client.hlen(base + job_id) == 0:
                    return ("missing", job_id)
                if method == "retry" and client.zscore(base + "failed", job_id) is None:
                    return ("skip",)  # Node's retry of a job that is not failed corrupts it (row 2)
                result = self.peer.job(self.queue, job_id, method, *rest)
                return ("ok", job_id, result if method == "log" else None)
            if kind == "clean":
                return ("ok", self.peer.call(self.queue, "clean", *args))
            if kind == "retry_jobs":
                self.peer.call(self.queue, "retryJobs", {"count": args[0]})
            elif kind == "remove_jobs":
                meta = client.hgetall(base + "meta")
                self.peer.call(self.queue, "removeJobs", args[0])
                if meta and not client.exists(base + "meta"):
                    client.hset(base + "meta", mapping=meta)  # row 6: Node deletes the queue's own meta hash
            elif kind == "empty":
                listed = client.lrange(base + "wait", 0, -1) + client.lrange(base + "paused", 0, -1)
                delayed = client.zrange(base + "delayed", 0, -1)
                paused = client.get(base + "meta-paused")
                self(step)
                # Row 1: Node orphans the delayed jobs' hashes and every removed job's logs, and drops meta-paused.
                for job_id in delayed:
                    client.delete(base + job_id)
                for job_id in listed + delayed:
                    client.delete(base + job_id + ":logs")
                if paused is not None and not client.exists(base + "meta-paused"):
                    client.set(base + "meta-paused", paused)
            else:
                self(step)
        except PeerError as exc:
            return ("error", exc.message.splitlines()[0][:80])
        return ("ok", None)


class RandomPython(PythonRunner):
    """PythonRunner plus outcomes, missing jobs and the steps it lacks."""

    def __init__(self, queue: bullpy.Queue, client: Client, base: str) -> None:
        super().__init__(queue)
        self.client, self.base = client, base

    def run(self, step: Step) -> Outcome:
        kind, *args = step
        q = self.queue
        try:
            if kind == "raw":
                return raw_step(self.client, self.base, step)
            if kind == "job":
                ref, method, *rest = args
                job_id = resolve(self.client, self.base, ref)
                job = None if job_id is None else q.get_job(job_id)
                if job is None:
                    return ("missing", job_id)
                if method == "retry" and self.client.zscore(self.base + "failed", job.id) is None:
                    return ("skip",)
                if method == "retry":
                    job.retry()
                elif method == "log":
                    return ("ok", job.id, job.log(*rest))
                else:
                    self(("job", job.id, method, *rest))
                return ("ok", job.id, None)
            elif kind == "clean":
                return ("ok", q.clean(*args))
            elif kind == "retry_jobs":
                q.retry_jobs(args[0])
            elif kind == "remove_jobs":
                q.remove_jobs(args[0])
            else:
                self(step)
        except Exception as exc:  # noqa: BLE001 - an outcome to compare with Node's
            return ("error", f"{type(exc).__name__}: {exc}"[:80])
        return ("ok", None)


# --- comparing -----------------------------------------------------------------------------------------------
def blank_clock(space: dict[str, Any], name: str) -> dict[str, Any]:
    """normalise() of test_differential, plus ``retriedOn``: job.retry() stamps it from each side's clock."""
    out = normalise(space, name)
    for key, (kind, value) in out.items():
        if kind == "hash" and "retriedOn" in value:
            out[key] = (kind, {**value, "retriedOn": "<now>"})
    return out


def describe(node: dict[str, Any], python: dict[str, Any]) -> str:
    lines = [f"only in Node: {k!r} = {node[k]!r}" for k in sorted(set(node) - set(python))]
    lines += [f"only in bullpy: {k!r} = {python[k]!r}" for k in sorted(set(python) - set(node))]
    for key in sorted(set(node) & set(python)):
        if node[key] != python[key]:
            lines.append(f"{key!r} differs:\n    Node:   {node[key]!r}\n    bullpy: {python[key]!r}")
    return "\n".join(lines)


TOTALS = {"sequences": 0, "operations": 0}


@pytest.fixture(scope="module")
def client(redis_url: str) -> Iterator[Client]:
    shared = redis.Redis.from_url(redis_url, decode_responses=True)
    yield shared
    shared.close()
    print(f"\nrandom differential: {TOTALS['sequences']} sequences, {TOTALS['operations']} operations")  # with -s


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sequence=sequences, name=st.sampled_from(["rq", "ünï q", "diff q:{1}"]))
def test_random_sequences_leave_identical_keyspaces(
    peer: Peer, client: Client, sequence: list[Step], name: str
) -> None:
    tag = uuid.uuid4().hex[:10]
    node_prefix, py_prefix = f"bullpy-rdiff-node-{tag}", f"bullpy-rdiff-py-{tag}"
    spec = {"name": name, "prefix": node_prefix}
    queue = bullpy.Queue(name, client, prefix=py_prefix, allow_colon=True)  # not closed: the client is shared
    node = RandomNode(peer, spec, client)
    python = RandomPython(queue, client, f"{py_prefix}:{name}:")
    try:
        outcomes = [(node.run(step), python.run(step)) for step in sequence]
        TOTALS["sequences"] += 1
        TOTALS["operations"] += len(sequence)
        theirs = blank_clock(keyspace(client, node_prefix), name)
        ours = blank_clock(keyspace(client, py_prefix), name)
    finally:
        peer.close(spec, do_not_wait_jobs=True)
        delete_prefix(client, node_prefix)
        delete_prefix(client, py_prefix)
    for step, (outcome, _) in zip(sequence, outcomes):  # --hypothesis-show-statistics: what was exercised
        event(f"{step[0]} {step[2] if step[0] == 'job' else ''}: {outcome[0]}")
    shown = "\n".join(f"  {i}. {step!r}\n       Node {n!r} / bullpy {p!r}"
                      for i, (step, (n, p)) in enumerate(zip(sequence, outcomes), 1))
    # Error messages are each library's own: only that both refused (and what the others returned) must agree.
    assert all(n[:1 if n[0] == "error" else None] == p[:1 if p[0] == "error" else None] for n, p in outcomes), (
        f"outcomes differ, queue {name!r}:\n{shown}")
    assert theirs == ours, f"keyspaces differ, queue {name!r}, after:\n{shown}\n{describe(theirs, ours)}"
