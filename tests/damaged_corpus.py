"""A corpus of damaged jobs written next to healthy ones, as other programs (old Bull versions, buggy
producers, hand edits) leave them in production Redis: the tests of every read path, the CLI and the worker
run over it (tests/test_damaged.py, tests/test_damaged_cli.py).

Each damaged case is written with a bytes client exactly as another program would write it. ``Corpus`` says
which ids are healthy, which are damaged and how, and ``digest`` gives the whole keyspace of the queue as
bytes, so a test can show that reading changed nothing.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

import redis

import bullpy

from .conftest import scanned_keys

T0 = 1795800000000

# Bull's own fields for a waiting job added at T0 (what Node's addJob writes), as bytes.
def _hash(data: bytes, opts: bytes = b'{"attempts":1,"delay":0,"timestamp":1795800000000}', **more: bytes
          ) -> dict[bytes, bytes]:
    fields = {b"name": b"__default__", b"data": data, b"opts": opts, b"timestamp": str(T0).encode(),
              b"delay": b"0", b"priority": b"0"}
    fields.update({k.encode(): v for k, v in more.items()})
    return fields


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


#: kind -> (how the job's key is written, whether Node's worker can run it, what a reader says of it)
#: The "readable" ones are read as Node reads them (and run by a worker); the others cannot be run.
FIXED: dict[str, dict[str, Any]] = {
    "opts-null": {"hash": _hash(b'{"n":1}', b"null"), "runs": False, "says": "JSON null"},
    "opts-truncated": {"hash": _hash(b'{"n":1}', b'{"attempts":'), "runs": False, "says": "'opts' is not valid JSON"},
    "data-truncated": {"hash": _hash(b'{"number":"55119'), "runs": False, "says": "'data' is not valid JSON"},
    "data-not-utf8": {"hash": _hash(b'{"number":"5511","message":"ol\xe1"}'), "runs": True,
                      "says": "not valid UTF-8"},
    "name-not-utf8": {"hash": {**_hash(b'{"n":2}'), b"name": b"caf\xe9"}, "runs": True, "says": "not valid UTF-8"},
    "data-deep": {"hash": _hash(nested(5000)), "runs": True, "says": "deeper than Python prints"},
    "data-too-deep": {"hash": _hash(nested(60_000)), "runs": False, "says": "nests deeper than bullpy reads"},
    "key-is-string": {"string": b"not a job", "runs": False, "says": "not a hash"},
    "key-is-list": {"list": [b"x", b"y"], "runs": False, "says": "not a hash"},
    "hash-missing": {"runs": False, "says": "no job hash"},
}


@dataclass
class Corpus:
    """What was written: healthy job ids (made by ``queue.add``), damaged ids by kind, and the id listed in
    two states (waiting and completed; its hash is sound)."""

    queue: bullpy.Queue
    healthy: list[str]
    damaged: dict[str, str]  # id -> kind (a FIXED key, or "random:<what>")
    twice: str
    says: dict[str, str] = field(default_factory=dict)  # id -> what a reader's report contains

    @property
    def runnable(self) -> set[str]:
        """Ids a worker runs: the healthy ones, the one listed twice and the damaged ones Node can read."""
        return {*self.healthy, self.twice, *(i for i, k in self.damaged.items()
                                             if FIXED.get(k, {}).get("runs") or k in _RANDOM_RUNS)}


def write(queue: bullpy.Queue, raw: redis.Redis, *, healthy: int = 6, randomised: int = 6, seed: int = 0) -> Corpus:
    """Healthy jobs (added by bullpy, WhatsApp-shaped) interleaved in ``wait`` with every FIXED damaged case
    and ``randomised`` random damages of healthy-looking hashes; one sound job listed both in wait and in
    completed. ``raw`` must be a bytes client on the queue's Redis."""
    keys = queue.keys
    rng = random.Random(seed)
    ids: list[str] = []
    damaged: dict[str, str] = {}
    says: dict[str, str] = {}
    for i in range(healthy):
        ids.append(queue.add({"number": f"55119{i:08d}", "message": f"hello {i}", "delay": 0},
                             timestamp=T0 + i).id)
    healthy_ids = list(ids)
    for kind, case in FIXED.items():
        job_id = f"damaged-{kind}"
        if "hash" in case:
            raw.hset(keys.job(job_id), mapping=case["hash"])
        elif "string" in case:
            raw.set(keys.job(job_id), case["string"])
        elif "list" in case:
            raw.rpush(keys.job(job_id), *case["list"])
        raw.lpush(keys("wait"), job_id)
        damaged[job_id], says[job_id] = kind, case["says"]
    for n in range(randomised):
        job_id = f"random-{n}"
        what, fields = _random_damage(rng)
        raw.hset(keys.job(job_id), mapping=fields)
        raw.lpush(keys("wait"), job_id)
        damaged[job_id], says[job_id] = f"random:{what}", _RANDOM_SAYS[what]
    twice = queue.add({"number": "5511999999999", "message": "listed twice"}, timestamp=T0 + 99).id
    raw.zadd(keys("completed"), {twice: T0 + 100})
    says[twice] = "more than one state"
    return Corpus(queue, healthy_ids, damaged, twice, says)


_RANDOM_RUNS = {"random:not-utf8", "random:deep"}  # Node reads them: a worker runs them
_RANDOM_SAYS = {"truncated-data": "not valid JSON", "truncated-opts": "not valid JSON", "not-utf8": "not valid UTF-8",
                "deep": "deeper than Python prints"}


def _random_damage(rng: random.Random) -> tuple[str, dict[bytes, bytes]]:
    """A healthy job's hash damaged one random way: JSON cut at a random place, invalid UTF-8 bytes spliced
    into the data, or data nested a random depth past what Python's json reads at once."""
    data = ('{"number":"55119%08d","message":"%s","delay":0}'
            % (rng.randrange(10**8), rng.choice(["olá", "hi", "ünï", "🙂 x"]))).encode()
    opts = b'{"attempts":3,"backoff":{"type":"exponential","delay":2000},"delay":0,"timestamp":1795800000000}'
    what = rng.choice(sorted(_RANDOM_SAYS))
    if what == "truncated-data":
        data = data[: rng.randrange(1, len(data) - 1)]
    elif what == "truncated-opts":
        opts = opts[: rng.randrange(1, len(opts) - 1)]
    elif what == "not-utf8":
        at = data.index(b'"message":"') + len(b'"message":"')
        data = data[:at] + bytes([rng.choice([0xff, 0xfe, 0xc3, 0x80, 0xed])]) + data[at:]
    else:
        data = nested(rng.randrange(5000, 20_000))
    return what, _hash(data, opts)


def digest(raw: redis.Redis, prefix: str) -> str:
    """One hash of every key under ``prefix`` (the queue's base key, e.g. ``bull:q``): type and full value."""
    h = hashlib.sha256()
    for key in scanned_keys(raw, bullpy._core.scripts.glob_escape(prefix) + ":*"):
        kind = raw.type(key)
        if kind == b"string":
            value: Any = raw.get(key)
        elif kind == b"list":
            value = raw.lrange(key, 0, -1)
        elif kind == b"set":
            value = sorted(raw.smembers(key))
        elif kind == b"zset":
            value = raw.zrange(key, 0, -1, withscores=True)
        elif kind == b"hash":
            value = sorted(raw.hgetall(key).items())
        else:
            value = None
        h.update(repr((key, kind, value)).encode())
    return h.hexdigest()
