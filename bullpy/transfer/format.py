"""The export file format: records written and read one at a time, with limits and a SHA-256 checksum.

An export file is a stream of msgpack records (never the whole queue in memory), format ``bullpy-export``
version 2 (version 1 files, written before, are read too: they have no ``damaged`` records and no
``not_hash``, ``damaged`` and ``duplicates`` in their end record):

1. the header ``{"format": "bullpy-export", "version": 2, "queue", "prefix", "exported_at" (ms),
   "bullpy" (version), "states" (what was exported), "source" (host:port db, never a password)}``;
2. one ``{"t": "job", "id", "state", "hash", "logs", ...}`` record per job, states in the order jobs
   flow (delayed, wait, paused, active, completed, failed). ``hash`` is the job hash as Redis holds
   it (field, value, field, value... as msgpack bin: nothing is decoded or re-encoded), ``logs`` the
   log rows. ``score`` is the zset score of delayed (due*4096 + counter bits), completed and failed
   jobs (finishedOn); ``priority`` the score of a waiting job in the ``priority`` zset;
   ``debounce_ttl`` the PTTL of the job's ``de:<deid>`` key (-1: no expiry) while it names the job.
   Lists are written from the tail (the LPUSH end) to the head (the next job to run). A hash whose
   ``data`` or ``opts`` Node or bullpy cannot read (not JSON, not UTF-8, nested too deep to check, opts not
   an object) is still written byte for byte, with ``damaged`` saying why: a reader refuses such a job
   without that mark. Ids without a hash, keys that are not hashes and ids already written are left out
   (counted in the end record);
3. one ``{"t": "repeat", "key", "score"}`` record per repeatable definition (the ``repeat`` zset);
4. one ``{"t": "queue", "paused", "id", "metrics"}`` record: the global pause flag, the job-id counter
   and, for a whole-queue export, the ``metrics:*`` keys;
5. the trailer ``{"t": "end", "records", "counts", "repeat", "dangling", "not_hash", "damaged",
   "duplicates", "sha256"}``: record and job counts, what was left out, and the SHA-256 of every byte before
   it, so a truncated or altered file is detected.

Not exported: locks, ``stalled``/``stalled-check`` (a worker's transient state), limiter keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any, Final

import msgpack  # type: ignore[import-untyped]

try:
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is a dependency
    _fast_loads = json.loads  # type: ignore[assignment]

from ..raw import HashBatch

SCORED: Final = frozenset({"delayed", "completed", "failed"})
JOB_REQUIRED: Final = frozenset({"t", "id", "state", "hash", "logs"})
JOB_FIELDS_V1: Final = JOB_REQUIRED | {"score", "priority", "debounce_ttl"}
JOB_FIELDS: Final = JOB_FIELDS_V1 | {"damaged"}
END_FIELDS_V1: Final = frozenset({"t", "records", "counts", "repeat", "dangling", "sha256"})
END_FIELDS: Final = END_FIELDS_V1 | {"not_hash", "damaged", "duplicates"}
CHUNK: Final = 256 * 1024
MAX_RECORD: Final = 1024 * 1024 * 1024  # a job hash may hold values up to Redis' 512 MB
# msgpack allocates an array or map as soon as it reads its header: a garbage header must not be able to
# claim gigabytes. Arrays hold hash fields and log rows; maps are records (a few keys each).
MAX_ITEMS: Final = 4_000_000
MAX_KEYS: Final = 64


# --- writing ---------------------------------------------------------------------------------------------

class RecordWriter:
    """Packs records onto a stream, hashing every one but the trailer and counting bytes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.packer = msgpack.Packer(use_bin_type=True)
        self.hasher = hashlib.sha256()
        self.records = 0
        self.bytes = 0

    def write(self, record: Mapping[str, Any], *, hashed: bool = True) -> None:
        data: bytes = self.packer.pack(record)
        self.stream.write(data)
        if hashed:
            self.hasher.update(data)
            self.records += 1
        self.bytes += len(data)

    def write_jobs(self, batch: HashBatch, keep: Sequence[int]) -> int:
        """The job records of a batch as ``queue.raw.read_hashes`` read it, at the positions ``keep``, packed
        together (the hashes go out as Redis sent them: nothing is decoded); how many were marked damaged."""
        pack = self.packer.pack
        ids, hashes, state = batch.ids, batch.hashes, batch.state
        scores, priorities, logs, ttls = batch.scores, batch.priorities, batch.logs, batch.debounce_ttls
        damaged = 0
        packed = []
        for i in keep:
            flat = hashes[i]
            record: dict[str, Any] = {"t": "job", "id": ids[i], "state": state, "hash": flat,
                                      "logs": [] if logs is None else logs[i]}
            if scores is not None:
                record["score"] = scores[i]
            if priorities is not None and priorities[i] is not None:
                record["priority"] = priorities[i]
            if ttls and i in ttls:
                record["debounce_ttl"] = ttls[i]
            why = job_damage(flat)
            if why is not None:
                record["damaged"] = why
                damaged += 1
            packed.append(pack(record))
        data = b"".join(packed)
        self.stream.write(data)
        self.hasher.update(data)
        self.records += len(packed)
        self.bytes += len(data)
        return damaged

    def write_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Records packed together: one write and one hash update for the lot."""
        pack = self.packer.pack
        packed = [pack(record) for record in records]
        data = b"".join(packed)
        self.stream.write(data)
        self.hasher.update(data)
        self.records += len(packed)
        self.bytes += len(data)



# --- what Node and bullpy can read of a job hash -------------------------------------------------

def field_value(flat: Sequence[bytes], name: bytes) -> bytes | None:
    """A field's value in a flat field, value list (a value equal to the name is never taken for it)."""
    try:
        at = flat.index(name)
    except ValueError:
        return None
    if at % 2 == 0:
        return flat[at + 1]
    return dict(zip(flat[0::2], flat[1::2])).get(name)


#: Where the last hash read had its data and opts fields (even positions). The hashes of one queue share a
#: layout: Bull writes their fields in one order, and Redis hands back the same order for the same fields, so
#: the guess saves two list searches per job. It is only a guess: both names are checked where it points.
_where = [2, 4]


def _data_and_opts(flat: Sequence[bytes]) -> tuple[bytes | None, bytes | None]:
    at_data, at_opts = _where
    if at_opts + 1 < len(flat) and at_data + 1 < len(flat) and flat[at_data] == b"data" and flat[at_opts] == b"opts":
        return flat[at_data + 1], flat[at_opts + 1]
    data, opts = field_value(flat, b"data"), field_value(flat, b"opts")
    if data is not None and opts is not None:
        names = flat[0::2]
        if names.count(b"data") == 1 and names.count(b"opts") == 1:
            _where[:] = [names.index(b"data") * 2, names.index(b"opts") * 2]
    return data, opts


def _slow_json(raw: bytes) -> tuple[Any, str | None]:
    """What orjson refused: json decides (it takes lone surrogates, 1e400...). (value, or why not JSON)."""
    try:
        return json.loads(raw), None
    except UnicodeDecodeError:
        return None, "is not UTF-8 text"
    except ValueError:
        return None, "is not JSON"
    except RecursionError:
        return None, "nests deeper than bullpy checks"


def job_damage(flat: Sequence[bytes]) -> str | None:
    """Why Node or bullpy cannot read a job hash's ``data`` or ``opts`` (not JSON, not UTF-8, nested too deep
    to check, opts not an object), or None. Export marks such jobs ``damaged``; a reader refuses them unmarked."""
    data, opts = _data_and_opts(flat)
    try:
        # orjson accepts less than json (lone surrogates, 1e400, ...), never more: json decides those.
        if data is not None:
            _fast_loads(data)
        if opts is None or type(_fast_loads(opts)) is dict:
            return None
        return "field 'opts' is not a JSON object"
    except ValueError:
        pass
    for name, raw in ((b"data", data), (b"opts", opts)):
        if raw is None:
            continue
        value, why = _slow_json(raw)
        if why is not None:
            return f"field {name.decode()!r} {why}"
        if name == b"opts" and not isinstance(value, dict):
            return "field 'opts' is not a JSON object"
    return None
