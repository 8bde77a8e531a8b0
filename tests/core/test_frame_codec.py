"""decode_batch (jobs_frame's columns, a batch at a time) against parse_job_hash (Node's Job.fromJSON rules),
job by job, over ordinary and odd hashes: the fast paths must never change a value, only its speed."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bullpy._core import frame_codec
from bullpy._core.jobhash import parse_job_hash
from bullpy._core.frame_codec import FRAME_FIELDS, decode_batch

STACK = "Error: boom\n    at send (/app/worker.js:12:11)"
OPTS = '{"attempts":3,"backoff":{"type":"exponential","delay":2000},"delay":0,"timestamp":1795800097275}'


def bull(i: int, **extra: str) -> dict[str, str | bytes]:
    """A job hash as Node Bull writes it (addJob-6.lua), plus ``extra`` fields."""
    data = json.dumps({"number": f"55119{i:08d}", "message": f"Olá {i}", "delay": 0}, ensure_ascii=False,
                      separators=(",", ":"))
    return {"name": "send", "data": data, "opts": OPTS, "timestamp": str(1795800097275 + i), "delay": "0",
            "priority": "0", **extra}


ORDINARY = [
    bull(1),
    bull(2, processedOn="1795800097315", finishedOn="1795800097318", returnvalue='{"ok":true}'),
    bull(3, processedOn="1795800097315", finishedOn="1795800097318", failedReason="not ready", attemptsMade="3",
         stacktrace=json.dumps([STACK])),
    bull(4, progress="50"),
]

ODD: dict[str, dict[str, str | bytes]] = {
    "odd delay": {"name": "x", "data": "{}", "opts": '{"delay":"5"}', "timestamp": "1700000000000"},
    "float delay": {"data": "{}", "opts": '{"delay":5.0,"priority":2.5}'},
    "huge delay": {"data": "{}", "opts": '{"delay":1152921504606846976}'},
    "bool delay": {"data": "{}", "opts": '{"delay":true}'},
    "null delay": {"data": "{}", "opts": '{"delay":null}'},
    "string priority": {"data": "{}", "opts": '{"priority":"5"}'},
    "huge priority": {"data": "{}", "opts": '{"priority":1180591620717411303424}'},
    "prevent": {"data": "not json", "opts": '{"preventParsingData":true}', "timestamp": "1700000000001"},
    "prevent false": {"data": '{"a":1}', "opts": '{"preventParsingData":false}'},
    "prevent escaped": {"data": "raw", "opts": '{"preventParsing\\u0044ata":1}'},
    "proto": {"data": "{}", "opts": '{"__proto__":{"delay":9},"delay":5}'},
    "bad progress": {"data": '{"a":1}', "opts": "{}", "progress": "{oops", "returnvalue": "also{bad",
                     "attemptsMade": "2x", "processedOn": "1700000000100", "finishedOn": "0",
                     "failedReason": "boom", "timestamp": " 1700000000002"},
    "array opts": {"data": "[1,2]", "opts": "[3]", "timestamp": "1700000000003"},
    "string opts": {"data": "{}", "opts": '"ab"'},
    "empty opts": {"data": "", "opts": ""},
    "no name": {"data": '{"k":"v"}', "opts": '{"priority":7,"delay":2.5}'},
    "id field": {"id": "other", "data": "{}", "opts": "{}"},
    "big ints": {"data": '{"n":123456789012345678901234567890,"m":-9223372036854775809,"u":18446744073709551615}',
                 "opts": "{}"},
    "nineteen digit strings": {"data": '{"n":"1234567890123456789"}', "opts": "{}"},
    "index keys": {"data": '{"b":1,"1":2,"0":3,"x":{"2":1,"a":2}}', "opts": "{}"},
    "escaped index key": {"data": '{"a":1,"\\u0031":2}', "opts": "{}"},
    "spaced keys": {"data": '{"b": 1, "0": 2}', "opts": '{"delay": 3}'},
    "infinity": {"data": '{"x":1e400}', "opts": "{}"},
    "lone surrogate": {"data": '{"x":"\\ud800"}', "opts": "{}"},
    "duplicate keys": {"data": '{"a":1,"b":2,"a":3}', "opts": "{}"},
    "json null data": {"data": "null", "opts": "{}"},
    "string data": {"data": '"hello"', "opts": "{}"},
    "number data": {"data": "42", "opts": "{}"},
    "times": {"data": "{}", "opts": "{}", "timestamp": "1.7e12", "processedOn": "0x10", "finishedOn": "1_000"},
    "more times": {"data": "{}", "opts": "{}", "timestamp": "99999999999999999999", "processedOn": "",
                   "finishedOn": "abc", "attemptsMade": ""},
    "returnvalues": {"data": "{}", "opts": "{}", "returnvalue": "", "progress": ""},
    "returnvalue zero": {"data": "{}", "opts": "{}", "returnvalue": "0", "progress": '{"a":[1]}'},
    "not utf-8 inside a string": {"data": b'{"a":"\xff\xfe"}', "opts": "{}", "name": b"n\xff",
                                  "failedReason": b"r\xc3"},
    "only stalled fields": {"stalledCounter": "2", "failedReason": "stalled", "finishedOn": "1795799536731"},
}

BROKEN: dict[str, dict[str, str | bytes]] = {
    "data not json": {"data": "{oops", "opts": "{}", "name": "n", "timestamp": "1700000000000"},
    "opts not json": {"data": "{}", "opts": "{oops"},
    "opts null": {"data": "{}", "opts": "null"},
    "not utf-8 and not json": {"data": b"\xff", "opts": "{}"},
    "nan": {"data": '{"x":NaN}', "opts": "{}"},
}


def as_bytes(fields: dict[str, str | bytes]) -> dict[str, bytes]:
    return {k: v if isinstance(v, bytes) else v.encode() for k, v in fields.items()}


def columns(hashes: list[dict[str, bytes]]) -> list[list[bytes | None]]:
    return [[h.get(f) for h in hashes] for f in FRAME_FIELDS]


def expected(job_id: str, fields: dict[str, bytes]) -> tuple[Any, ...]:
    j = parse_job_hash(job_id, fields, 0)
    return (j.id, j.name, j.data, j.opts.get("priority", 0), j.opts["delay"], j.attempts_made, j.progress,
            j.timestamp, j.processed_on, j.finished_on, j.failed_reason, j.returnvalue)


def got(batch: frame_codec.FrameBatch, i: int) -> tuple[Any, ...]:
    return (batch.ids[i], batch.name[i], batch.data[i], batch.priority[i], batch.delay[i], batch.attempts_made[i],
            batch.progress[i], batch.timestamp[i], batch.processed_on[i], batch.finished_on[i],
            batch.failed_reason[i], batch.returnvalue[i])


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0 == True must not pass), key order included."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("with_orjson", [True, False])
def test_every_job_equals_the_full_parse(monkeypatch: pytest.MonkeyPatch, with_orjson: bool) -> None:
    if not with_orjson:
        monkeypatch.setattr(frame_codec, "_orjson", None)
    cases = {f"ordinary-{i}": h for i, h in enumerate(ORDINARY)} | ODD
    hashes = [as_bytes(h) for h in cases.values()]
    ids = list(cases)
    batch = decode_batch(ids, columns(hashes))
    assert batch.ids[: len(ids)] != [] and len(batch.ids) == len(ids)
    for i, (job_id, fields) in enumerate(zip(ids, hashes)):
        assert same(got(batch, i), expected(job_id, fields)), job_id
    errors = batch.errors or [None] * len(ids)
    assert [(ids[i], e) for i, e in enumerate(errors) if e] == [
        ("not utf-8 inside a string", "field 'data' is not valid UTF-8 (shown as Node reads it, invalid bytes as U+FFFD)")]


def test_each_odd_job_alone_and_among_ordinary_ones() -> None:
    # Alone, a batch takes its own fast-path decisions; among ordinary jobs the others must stay exact too.
    for job_id, fields in ODD.items():
        hashes = [as_bytes(fields)] + [as_bytes(h) for h in ORDINARY]
        ids = [job_id] + [f"o{i}" for i in range(len(ORDINARY))]
        batch = decode_batch(ids, columns(hashes))
        for i, (jid, h) in enumerate(zip(ids, hashes)):
            assert same(got(batch, i), expected(jid, h)), (job_id, jid)


def test_damaged_jobs_are_error_rows_beside_healthy_ones() -> None:
    hashes = [as_bytes(ORDINARY[0])] + [as_bytes(h) for h in BROKEN.values()] + [as_bytes(ORDINARY[1])]
    ids = ["ok-1", *BROKEN, "ok-2"]
    batch = decode_batch(ids, columns(hashes))
    assert batch.ids == ids and batch.errors is not None
    assert same(got(batch, 0), expected("ok-1", hashes[0]))
    assert same(got(batch, len(ids) - 1), expected("ok-2", hashes[-1]))
    for i, job_id in enumerate(BROKEN, start=1):
        with pytest.raises(ValueError) as raised:
            parse_job_hash(job_id, hashes[i], 0)
        assert batch.errors[i] == str(raised.value)
        assert batch.data[i] is None and batch.priority[i] is None and batch.delay[i] is None
    assert batch.errors[0] is None and batch.errors[-1] is None
    assert batch.name[1] == "n" and batch.timestamp[1] == 1700000000000


def test_gone_jobs_are_left_out_and_refused_ones_shown() -> None:
    hashes = [as_bytes(ORDINARY[0]), {}, as_bytes(ORDINARY[1]), {}]
    batch = decode_batch(["a", "gone", "b", "wrongtype"], columns(hashes), {3: "WRONGTYPE not a hash"})
    assert batch.ids == ["a", "b", "wrongtype"]
    assert batch.errors == [None, None, "Redis refused to read the job: WRONGTYPE not a hash"]
    assert batch.name[2] is None and batch.data[2] is None
    assert decode_batch(["x"], columns([{}])).ids == []


def test_ordinary_batches_take_the_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    if frame_codec._orjson is None:
        pytest.skip("orjson is not installed")
    calls: list[bytes] = []
    monkeypatch.setattr(frame_codec, "_exact", lambda value: calls.append(value))
    hashes = [as_bytes(bull(i)) for i in range(100)]
    batch = decode_batch([str(i) for i in range(100)], columns(hashes))
    assert calls == [] and batch.errors is None and len(batch.ids) == 100
