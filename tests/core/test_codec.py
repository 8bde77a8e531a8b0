"""bullpy._core.codec: JSON.stringify / JSON.parse parity and Job.fromJSON parsing of real Bull hashes.

Tables come from protocol §8.1, §2.4 and the hashes Node Bull 4.16.5 really wrote (§10). Tests marked
``node`` run the same inputs through real Node (and the installed bull's lib/job.js) and compare bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bullpy._core.codec import (
    counter_score,
    delayed_score,
    from_json,
    js_number,
    js_number_str,
    js_parse_int,
    to_json,
)
from bullpy._core.jobhash import JobRecord, parse_job_hash

NOW = 1795800000000
BRIDGE = Path(__file__).resolve().parents[2] / "bridge"

# --------------------------------------------------------------------------------------------------------
# to_json
# --------------------------------------------------------------------------------------------------------

TO_JSON_CASES: list[tuple[object, str]] = [
    # §8.1, observed from Node
    ([1e16, 1e-5, 1e-7, 1.0, -0.0], "[10000000000000000,0.00001,1e-7,1,0]"),
    (1e21, "1e+21"),
    (1e20, "100000000000000000000"),
    (123e-20, "1.23e-18"),
    (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (0.1 + 0.2, "0.30000000000000004"),
    (0.000001, "0.000001"),
    (1.5e-7, "1.5e-7"),
    (-2.5e-7, "-2.5e-7"),
    (123456789012345680000.0, "123456789012345680000"),
    (1.5e300, "1.5e+300"),
    (2.0**60, "1152921504606847000"),
    (-1234.5, "-1234.5"),
    (0.0001, "0.0001"),
    (12.5, "12.5"),
    (2**64, "18446744073709551616"),  # Python ints stay exact
    (True, "true"),
    (None, "null"),
    ("", '""'),
    # strings
    ("ünï cødé", '"ünï cødé"'),
    ("\x00\x01\x1f\x7f", '"\\u0000\\u0001\\u001f\x7f"'),
    ('\b\f\n\r\t"\\/', '"\\b\\f\\n\\r\\t\\"\\\\/"'),
    ("\u2028\u2029", '"\u2028\u2029"'),
    ("\ud800", '"\\ud800"'),
    ("a\udfffb", '"a\\udfffb"'),
    ("\ud83d\ude00", '"😀"'),  # a surrogate pair held as two code points is one JS character
    ("😀", '"😀"'),
    # containers, key order
    ({"z": 1, "a": {"y": [1, "x", None], "b": False}}, '{"z":1,"a":{"y":[1,"x",null],"b":false}}'),
    ((1, (2,), []), "[1,[2],[]]"),
    ({}, "{}"),
    ({"b": 1, "10": 2, "a": 3, "2": 4, "4294967295": 5, "01": 6, "-1": 7}, '{"2":4,"10":2,"b":1,"a":3,"4294967295":5,"01":6,"-1":7}'),
    ({"b": 1, 3: "x", -1: "y"}, '{"3":"x","b":1,"-1":"y"}'),
    ({1: "int", "1": "str"}, '{"1":"str"}'),  # one JS property; the later assignment wins
    ({"price": 10.0, "qty": 3, "ratio": 0.25}, '{"price":10,"qty":3,"ratio":0.25}'),
    ({"note": "v1.0, e+5 ok", "v": 1.0}, '{"note":"v1.0, e+5 ok","v":1}'),
    ({"note": "v1.0, e+5 ok"}, '{"note":"v1.0, e+5 ok"}'),  # false positive of the fast path's scan
    ({"k\ud800": "\ud800", "n": 1e-7}, '{"k\\ud800":"\\ud800","n":1e-7}'),
    # the bulk-load shape
    (
        {"number": "5511999990001", "message": "Hello Ana, your code is 1234", "delay": 0},
        '{"number":"5511999990001","message":"Hello Ana, your code is 1234","delay":0}',
    ),
    # dates: Date.prototype.toJSON
    (dt.datetime(2020, 1, 2, 3, 4, 5, 6789, tzinfo=dt.timezone.utc), '"2020-01-02T03:04:05.006Z"'),
    (
        {"at": dt.datetime(2026, 11, 7, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-3)))},
        '{"at":"2026-11-08T02:30:00.000Z"}',
    ),
    (dt.date(2024, 2, 29), '"2024-02-29T00:00:00.000Z"'),
]


@pytest.mark.parametrize(("value", "expected"), TO_JSON_CASES)
def test_to_json_matches_json_stringify(value: object, expected: str) -> None:
    assert to_json(value) == expected


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ({"price": math.nan}, ValueError, "data['price']: NaN is not allowed (JavaScript would write null)"),
        ({"a": [1, math.inf]}, ValueError, "data['a'][1]: Infinity is not allowed"),
        (-math.inf, ValueError, "data: -Infinity is not allowed"),
        ({"tags": {"a"}}, TypeError, "data['tags']: object of type set is not JSON serialisable"),
        ({"x": [b"raw"]}, TypeError, "data['x'][0]: object of type bytes is not JSON serialisable"),
        ({"o": object()}, TypeError, "data['o']: object of type object is not JSON serialisable"),
        ({"n": {1.5: 1}}, TypeError, "data['n']: key 1.5 of type float is not a string"),
        ({True: 1}, TypeError, "data: key True of type bool is not a string"),
        ({None: 1}, TypeError, "data: key None of type NoneType is not a string"),
        ({(1, 2): 1}, TypeError, "data: key (1, 2) of type tuple is not a string"),
        ({"when": dt.datetime(2020, 1, 1)}, TypeError, "data['when']: naive datetime"),
    ],
)
def test_to_json_refuses_what_javascript_would_mangle(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        to_json(value, where="data")
    assert str(info.value).startswith(message)


def test_to_json_names_a_circular_reference() -> None:
    loop: list[Any] = [1]
    loop.append({"again": loop})
    with pytest.raises(ValueError, match=r"value\[1\]\['again'\]: circular reference"):
        to_json(loop)


def test_to_json_default_root_name() -> None:
    with pytest.raises(ValueError, match=r"^value\['p'\]: NaN"):
        to_json({"p": math.nan})


# --------------------------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "expected"),
    [(2.5, "2.5"), (5, "5"), (5.0, "5"), (0, "0"), (-0.0, "0"), (1099511627776, "1099511627776"),
     (1e21, "1e+21"), (math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")],
)
def test_js_number_str(x: float, expected: str) -> None:
    assert js_number_str(x) == expected


def test_js_number_str_refuses_bool() -> None:
    with pytest.raises(TypeError):
        js_number_str(True)


PARSE_INT_CASES: list[tuple[str | None, int | None]] = [
    ("42", 42), ("  -12abc", -12), ("+5", 5), ("1.7e12", 1), ("1795799502231.5", 1795799502231),
    ("0x1f", 31), ("-0X10", -16), ("0x", None), ("", None), ("abc", None), (None, None), ("-", None),
    ("\u00a0\ufeff\u2028 7", 7), ("\x1c7", None), ("١٢", None), ("007", 7), ("-0", 0), ("12 34", 12),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_INT_CASES)
def test_js_parse_int(text: str | None, expected: int | None) -> None:
    assert js_parse_int(text) == expected


NUMBER_CASES: list[tuple[str, int | float | None]] = [
    ("", 0), ("  ", 0), ("42", 42), (" 0x1F ", 31), ("1e3", 1000), ("-0x10", None), ("0b101", 5),
    ("0o17", 15), ("Infinity", math.inf), ("-Infinity", -math.inf), ("inf", None), ("+.5", 0.5),
    ("5.", 5), ("1_000", None), ("nan", None), ("12px", None), ("\u00a012\ufeff", 12), ("2.5", 2.5),
    ("-7", -7), ("9007199254740993", 9007199254740992.0), ("1e21", 1e21),
]


@pytest.mark.parametrize(("text", "expected"), NUMBER_CASES)
def test_js_number(text: str, expected: int | float | None) -> None:
    got = js_number(text)
    assert got == expected
    assert type(got) is type(expected)


def test_delayed_scores_match_captured_zsets() -> None:
    # §10.3: job 3 added with delay 3600000 (addJob, counter 3)
    assert counter_score(1795800097290 + 3600000, 3) == 7355611944099843
    # §10.4: repeat iterations added by addJob with counters 5 and 4
    assert counter_score(1795800300000, 5) == 7355598028800005
    assert counter_score(1795863600000, 4) == 7355857305600004
    assert counter_score(1, 4096 + 7) == 4096 + 7
    # §10.3: backoff retry of job 4 (moveToDelayedArgs: jobId & 0xfff)
    assert delayed_score(1795799502442, "4") == 7355594762002436
    assert delayed_score(1000, "strid") == 1000 * 4096
    assert delayed_score(1000, "12345") == 1000 * 4096 + 57
    assert delayed_score(1000, "-1") == 1000 * 4096 + 4095
    assert delayed_score(1000, "0x10") == 1000 * 4096 + 16
    assert delayed_score(1000, "4294967297") == 1000 * 4096 + 1  # ToInt32 wraps
    assert delayed_score(1000, "1.9") == 1000 * 4096 + 1
    assert delayed_score(0, "4") == 0
    assert delayed_score(-5, "4") == 0


# --------------------------------------------------------------------------------------------------------
# from_json
# --------------------------------------------------------------------------------------------------------


def test_from_json_is_json_parse() -> None:
    assert from_json(b'{"b":1,"1":2,"a":[{"3":0,"x":1,"0":2}]}') == {"1": 2, "b": 1, "a": [{"0": 2, "3": 0, "x": 1}]}
    assert list(from_json('{"b":1,"1":2}')) == ["1", "b"]
    assert list(from_json('{"\\u0031":1,"b":2,"0":3}')) == ["0", "1", "b"]
    assert from_json(' "ünï" ') == "ünï"
    assert from_json("12345678901234567890") == 12345678901234567890
    assert from_json('{"a":1,"a":2}') == {"a": 2}
    assert from_json(b'"\xff"') == "\ufffd"  # invalid UTF-8 decodes to U+FFFD, as in ioredis
    for bad in ["NaN", "[Infinity]", "-Infinity", "", "{'a':1}", "not json", "[1,]", "\ufeff{}"]:
        with pytest.raises(ValueError):
            from_json(bad)


def test_round_trip_keeps_bytes() -> None:
    for text in ['{"attempts":3,"backoff":{"type":"exponential","delay":2000},"delay":0,"timestamp":1795800097275}',
                 '{"a":"ünï cødé","b":[1.5,1e-7,null,true]}', '"\\ud800"', '{"2":1,"x":{"1":[]}}']:
        assert to_json(from_json(text)) == text


# --------------------------------------------------------------------------------------------------------
# parse_job_hash: hashes Node really wrote (§10) and the tolerance table (§2.4)
# --------------------------------------------------------------------------------------------------------

STACK = (
    "Error: whatsapp not ready\n    at Queue.<anonymous> (/app/scenZ.js:9:11)\n"
    "    at handlers.<computed> (/app/node_modules/bull/lib/queue.js:733:42)\n"
    "    at Queue.processJob (/app/node_modules/bull/lib/queue.js:1210:22)\n"
    "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"
)

# (job id, hash, Node's JSON.stringify(job.toJSON()) when the doc captured it, else None)
CAPTURED: dict[str, tuple[str, dict[str, str], str | None]] = {
    "10.1 completed": (
        "1",
        {
            "data": '{"number":"5511999999999@c.us","message":"hi","delay":0}',
            "processedOn": "1795800097315",
            "progress": "100",
            "priority": "0",
            "opts": '{"attempts":3,"backoff":{"type":"exponential","delay":2000},"delay":0,"timestamp":1795800097275}',
            "timestamp": "1795800097275",
            "name": "send",
            "returnvalue": '{"success":true,"messageId":"abc123"}',
            "delay": "0",
            "finishedOn": "1795800097318",
        },
        '{"id":"1","name":"send","data":{"number":"5511999999999@c.us","message":"hi","delay":0},'
        '"opts":{"attempts":3,"backoff":{"type":"exponential","delay":2000},"delay":0,"timestamp":1795800097275},'
        '"progress":100,"delay":0,"timestamp":1795800097275,"attemptsMade":0,"stacktrace":[],'
        '"returnvalue":{"success":true,"messageId":"abc123"},"debounceId":null,"finishedOn":1795800097318,'
        '"processedOn":1795800097315}',
    ),
    "10.2 failed": (
        "2",
        {
            "name": "broken",
            "data": '{"number":"x"}',
            "failedReason": "whatsapp not ready",
            "delay": "0",
            "stacktrace": json.dumps([STACK, STACK], separators=(",", ":")),
            "finishedOn": "1795800097422",
            "processedOn": "1795800097421",
            "attemptsMade": "2",
            "opts": '{"attempts":2,"backoff":{"type":"fixed","delay":100},"delay":0,"timestamp":1795800097289}',
            "priority": "0",
            "timestamp": "1795800097289",
        },
        '{"id":"2","name":"broken","data":{"number":"x"},'
        '"opts":{"attempts":2,"backoff":{"type":"fixed","delay":100},"delay":0,"timestamp":1795800097289},'
        '"progress":0,"delay":0,"timestamp":1795800097289,"attemptsMade":2,"failedReason":"whatsapp not ready",'
        f'"stacktrace":{json.dumps([STACK, STACK], separators=(",", ":"))},"returnvalue":null,"debounceId":null,'
        '"finishedOn":1795800097422,"processedOn":1795800097421}',
    ),
    "10.2 stalled": (
        "s1",
        {
            "stalledCounter": "2",
            "failedReason": "job stalled more than allowable limit",
            "finishedOn": "1795799536731",
            "processedOn": "1795799535678",
        },
        None,
    ),
    "10.3 delayed": (
        "3",
        {
            "name": "send",
            "data": '{"number":"1","message":"later"}',
            "opts": '{"delay":3600000,"attempts":1,"timestamp":1795800097290}',
            "timestamp": "1795800097290",
            "delay": "3600000",
            "priority": "0",
        },
        '{"id":"3","name":"send","data":{"number":"1","message":"later"},'
        '"opts":{"delay":3600000,"attempts":1,"timestamp":1795800097290},"progress":0,"delay":3600000,'
        '"timestamp":1795800097290,"attemptsMade":0,"stacktrace":[],"returnvalue":null,"debounceId":null,'
        '"finishedOn":null,"processedOn":null}',
    ),
    "10.4 repeat": (
        "repeat:c684be42abbfd5c099802057d47f7bb5:1795863600000",
        {
            "timestamp": "1795800097316",
            "delay": "63502684",
            "name": "report",
            "data": "{}",
            "priority": "0",
            "opts": '{"repeat":{"count":1,"key":"report:::America/Sao_Paulo:0 8 * * *","cron":"0 8 * * *",'
            '"tz":"America/Sao_Paulo"},"jobId":"repeat:c684be42abbfd5c099802057d47f7bb5:1795863600000",'
            '"delay":63502684,"timestamp":1795800097316,"prevMillis":1795863600000,"attempts":1}',
        },
        None,
    ),
    "2.3 debounce": (
        "7",
        {
            "name": "__default__",
            "data": '{"a":1}',
            "opts": '{"debounce":{"id":"deb1","ttl":30000},"attempts":1,"delay":0,"timestamp":1795799465979}',
            "timestamp": "1795799465979",
            "delay": "0",
            "priority": "0",
            "deid": "deb1",
        },
        None,
    ),
    "2.3 preventParsingData": (
        "8",
        {
            "name": "__default__",
            "data": '"raw-not-json"',
            "opts": '{"preventParsingData":true,"attempts":1,"delay":0,"timestamp":1795799465979}',
            "timestamp": "1795799465979",
            "delay": "0",
            "priority": "2.5",
        },
        None,
    ),
}

# §2.4 tolerance table (hashes written with plain HSET) and further Node quirks of fromJSON
TOLERATED: dict[str, dict[str, str]] = {
    "all six fields, opts {}": {"name": "n", "data": '{"a":1}', "opts": "{}", "timestamp": "1795800000001",
                                "delay": "0", "priority": "0"},
    "no opts": {"name": "n", "data": '{"a":1}', "timestamp": "1795800000001", "delay": "0", "priority": "0"},
    "only data": {"data": '{"a":1}'},
    "empty hash": {},
    "attempts string, backoff number": {"data": "{}", "opts": '{"attempts":"3","backoff":1000}'},
    "python spacing, fractional timestamp": {"data": '{"a": 1, "b": [1, 2]}', "opts": '{"attempts": 2}',
                                             "timestamp": "1795800000001.5", "delay": "0"},
    "garbage fields": {"data": "{}", "progress": "42", "attemptsMade": "2", "stacktrace": "garbage",
                       "returnvalue": "not-json", "failedReason": "x"},
    "bad progress, empty returnvalue": {"progress": "{oops", "returnvalue": "", "stacktrace": '{"a":1}'},
    "falsy returnvalue": {"returnvalue": "0", "finishedOn": "0", "processedOn": "", "failedReason": ""},
    "falsy data": {"data": "0", "progress": '{"step":2}', "returnvalue": "false"},
    "id field wins": {"id": "other", "name": "", "data": '"just a string"'},
    "odd opts": {"opts": '{"delay":"1000","attempts":2.7,"backoff":0,"timestamp":"x","3":1,"z":{"2":0,"1":0}}'},
    "odd opts 2": {"opts": '{"delay":null,"attempts":null,"backoff":{"type":"fixed"},"debounce":{"id":5}}'},
    "odd opts 3": {"opts": '{"delay":[5],"attempts":[],"backoff":false,"debounce":"x"}', "deid": ""},
    "odd opts 4": {"opts": '{"delay":"0x10","attempts":"1e3","backoff":-1.5}'},
    "opts array": {"opts": "[1,2]", "data": "[]"},
    "opts string": {"opts": '"ab😀"', "data": "null"},
    "opts number": {"opts": "5", "data": "{}"},
    "preventParsingData without data": {"opts": '{"preventParsingData":1}'},
    "debounce without deid": {"opts": '{"debounce":{"id":"d2"}}'},
    "hex and spaced numbers": {"delay": " 0x10", "timestamp": "1e12", "attemptsMade": "abc", "retriedOn": "12"},
    "stacktrace non-strings": {"stacktrace": '[1,null,{"a":1}]', "stalledCounter": "x", "priority": "junk"},
}


def _as_bytes(h: dict[str, str]) -> dict[bytes, bytes | str]:
    return {k.encode(): v.encode() for k, v in h.items()}


@pytest.mark.parametrize("case", [k for k, v in CAPTURED.items() if v[2] is not None])
def test_parse_job_hash_reproduces_captured_to_json(case: str) -> None:
    job_id, fields, expected = CAPTURED[case]
    record = parse_job_hash(job_id, _as_bytes(fields), now_ms=NOW)
    assert to_json(record.to_node_json()) == expected


def test_parse_job_hash_fields() -> None:
    job_id, fields, _ = CAPTURED["10.2 failed"]
    r = parse_job_hash(job_id, fields, now_ms=NOW)
    assert (r.id, r.name, r.attempts_made, r.failed_reason) == ("2", "broken", 2, "whatsapp not ready")
    assert r.stacktrace == [STACK, STACK] and r.returnvalue is None and r.retried_on is None
    assert (r.finished_on, r.processed_on, r.delay, r.timestamp, r.priority) == (
        1795800097422, 1795800097421, 0, 1795800097289, 0)
    assert r.raw == fields

    stalled = parse_job_hash("s1", CAPTURED["10.2 stalled"][1], now_ms=NOW)
    assert stalled.stalled_counter == 2 and stalled.attempts_made == 0 and stalled.stacktrace == []
    assert stalled.delay is None and stalled.timestamp is None and stalled.name == "__default__"
    assert stalled.opts == {"attempts": 1, "delay": 0, "timestamp": NOW}

    deb = parse_job_hash("7", CAPTURED["2.3 debounce"][1], now_ms=NOW)
    assert deb.debounce_id == "deb1" and deb.to_node_json()["debounceId"] == "deb1"

    raw = parse_job_hash("8", CAPTURED["2.3 preventParsingData"][1], now_ms=NOW)
    assert raw.data == '"raw-not-json"' and raw.priority == 2.5

    rep = parse_job_hash(CAPTURED["10.4 repeat"][0], CAPTURED["10.4 repeat"][1], now_ms=NOW)
    assert list(rep.opts) == ["repeat", "jobId", "delay", "timestamp", "prevMillis", "attempts"]


def test_parse_job_hash_applies_node_defaults() -> None:
    r = parse_job_hash("9", TOLERATED["attempts string, backoff number"], now_ms=NOW)
    assert r.opts == {"attempts": 3, "backoff": {"type": "fixed", "delay": 1000}, "delay": 0, "timestamp": NOW}
    assert list(r.opts) == ["attempts", "backoff", "delay", "timestamp"]

    r = parse_job_hash("9", TOLERATED["garbage fields"], now_ms=NOW)
    assert (r.progress, r.attempts_made, r.stacktrace, r.returnvalue, r.failed_reason) == (42, 2, [], None, "x")

    r = parse_job_hash("9", TOLERATED["python spacing, fractional timestamp"], now_ms=NOW)
    assert r.timestamp == 1795800000001 and r.data == {"a": 1, "b": [1, 2]}

    r = parse_job_hash("9", TOLERATED["odd opts"], now_ms=NOW)
    assert r.opts == {"3": 1, "delay": 1000, "attempts": 2, "backoff": {"type": "fixed", "delay": 0},
                      "timestamp": "x", "z": {"1": 0, "2": 0}}
    assert list(r.opts) == ["3", "delay", "attempts", "backoff", "timestamp", "z"]

    node = parse_job_hash("9", TOLERATED["falsy returnvalue"], now_ms=NOW).to_node_json()
    assert node["returnvalue"] is None and node["finishedOn"] is None and node["failedReason"] == ""
    assert "failedReason" not in parse_job_hash("9", {}, now_ms=NOW).to_node_json()


def test_record_equality_ignores_raw() -> None:
    a = parse_job_hash("1", {"data": "{}", "x": "1"}, now_ms=NOW)
    b = parse_job_hash("1", {"data": "{}"}, now_ms=NOW)
    assert a == b and a.raw != b.raw
    assert isinstance(a, JobRecord)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"data": "not json"}, "job 'x': field 'data' is not valid JSON"),
        ({"data": "{}", "opts": "null"}, "job 'x': field 'opts' is JSON null"),
        ({"data": "{}", "opts": "{bad"}, "job 'x': field 'opts' is not valid JSON"),
        ({"data": "NaN"}, "job 'x': field 'data' is not valid JSON"),
    ],
)
def test_parse_job_hash_raises_where_node_throws(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_job_hash("x", fields, now_ms=NOW)


# --------------------------------------------------------------------------------------------------------
# Against real Node
# --------------------------------------------------------------------------------------------------------

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")


def _node(script: str, payload: object) -> Any:
    """Run ``script`` with ``input`` (parsed from stdin) in node; return its JSON stdout."""
    prelude = "const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
    proc = subprocess.run(
        ["node", "-e", prelude + script],
        input=json.dumps(payload, ensure_ascii=True),  # ASCII transport keeps lone surrogates intact
        capture_output=True, text=True, encoding="utf-8", check=True, timeout=60, cwd=BRIDGE,
    )
    return json.loads(proc.stdout)


def _random_doubles(n: int, rng: random.Random) -> list[float]:
    out: list[float] = []
    while len(out) < n:
        if len(out) % 2:
            x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        else:  # near the formatting thresholds, where layouts switch
            x = rng.uniform(1, 10) * 10.0 ** rng.randint(-12, 25) * rng.choice([1, -1])
            if rng.random() < 0.2:
                x = float(round(x))
        if math.isfinite(x):
            out.append(x)
    return out


def _random_strings(n: int, rng: random.Random) -> list[str]:
    pool = [chr(c) for c in range(0x20)] + ['"', "\\", "/", "\x7f", "\u2028", "\u2029", "é", "ü", "😀",
                                            "\ud800", "\udbff", "\udc00", "\udfff", "\ufeff", "a", "1", " "]
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 12))) for _ in range(n)]


@pytest.mark.node
@needs_node
def test_to_json_equals_node_json_stringify() -> None:
    rng = random.Random(20261107)
    floats = _random_doubles(2000, rng)
    strings = _random_strings(500, rng)
    keyed = [{"b": 1, "10": 2, "a": 3, "2": 4, "4294967294": 5, "4294967295": 6, "01": 7, "-1": 8, "1.5": 9}]
    nested = [{"price": f, "tags": [s, f / 3]} for f, s in zip(floats[:300], strings[:300])]
    values: list[Any] = [*floats, *strings, *keyed, *nested, [1e16, 1e-5, 1e-7, 1.0, -0.0], 10.0, -0.0]
    # Python's json.dumps transports floats exactly (repr round-trips) and strings as \u escapes.
    node_out = _node("console.log(JSON.stringify(input.map(v => JSON.stringify(v))));", values)
    mismatches = [(v, to_json(v), n) for v, n in zip(values, node_out) if to_json(v) != n]
    assert not mismatches[:5]
    assert len(node_out) == len(values)


@pytest.mark.node
@needs_node
def test_number_helpers_equal_node() -> None:
    texts = [t for t, _ in NUMBER_CASES] + [t for t, _ in PARSE_INT_CASES if t is not None]
    texts += ["0x1fffffffffffff1", "  -12.5e3xyz", "1e-7", ".5e1", "0X1G", "\t\n0b11\r", "1__0", "0.0000001"]
    node_out = _node(
        "console.log(JSON.stringify(input.map(s => [String(Number(s)), String(parseInt(s)),"
        " (Number(s) & 0xfff)])));",
        texts,
    )
    for text, (number, parsed, low12) in zip(texts, node_out):
        n = js_number(text)
        assert (js_number_str(n) if n is not None else "NaN") == number, text
        p = js_parse_int(text)
        assert (js_number_str(float(p)) if p is not None else "NaN") == parsed, text
        assert delayed_score(1, text) - 4096 == low12, text


@pytest.mark.node
@needs_node
def test_from_json_key_order_equals_node() -> None:
    texts = ['{"b":1,"1":2,"a":{"9":0,"z":1,"0":2}}', '{"\\u0032":1,"x":2,"1":3}', '[{"10":1,"9":2}]',
             '{"4294967294":1,"4294967295":2,"b":0,"00":3}']
    node_out = _node("console.log(JSON.stringify(input.map(t => JSON.stringify(JSON.parse(t)))));", texts)
    assert [to_json(from_json(t)) for t in texts] == node_out


@pytest.mark.node
@needs_node
@pytest.mark.skipif(not (BRIDGE / "node_modules" / "bull").is_dir(), reason="bridge/node_modules missing")
def test_parse_job_hash_equals_node_job_from_json() -> None:
    """The installed bull's own Job.fromJSON(...).toJSON() on every hash above, Date.now pinned to NOW."""
    hashes = {**{k: (v[0], v[1]) for k, v in CAPTURED.items()}, **{k: ("9", v) for k, v in TOLERATED.items()}}
    script = f"""
    Date.now = () => {NOW};
    const Job = require('bull/lib/job');
    const queue = {{ toKey: k => 'bull:q:' + k }};
    console.error = () => {{}};  // fromJSON logs unparsable progress
    const out = {{}};
    for (const [name, [id, hash]] of Object.entries(input)) {{
      try {{ out[name] = JSON.stringify(Job.fromJSON(queue, hash, id)); }}
      catch (e) {{ out[name] = 'throws'; }}
    }}
    console.log(JSON.stringify(out));
    """
    node_out = _node(script, hashes)
    for name, (job_id, fields) in hashes.items():
        ours = to_json(parse_job_hash(job_id, _as_bytes(fields), now_ms=NOW).to_node_json())
        assert ours == node_out[name], name


@pytest.mark.node
@needs_node
@pytest.mark.skipif(not (BRIDGE / "node_modules" / "bull").is_dir(), reason="bridge/node_modules missing")
def test_node_throws_where_parse_job_hash_raises() -> None:
    bad = [{"data": "not json"}, {"data": "{}", "opts": "null"}, {"opts": "{bad"}, {"data": "NaN"}]
    script = """
    const Job = require('bull/lib/job');
    const queue = { toKey: k => 'bull:q:' + k };
    console.log(JSON.stringify(input.map(h => { try { Job.fromJSON(queue, h, 'x'); return 'ok'; }
                                                catch (e) { return 'throws'; } })));
    """
    assert _node(script, bad) == ["throws"] * len(bad)
