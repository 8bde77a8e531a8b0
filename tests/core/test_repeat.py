"""bullpy._core.repeat: captured Node values, validation, and a differential run against real Node."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bullpy._core.repeat import (
    RepeatOptions,
    cron_next,
    cron_series,
    iteration_id,
    iteration_prefix,
    js_iso_string,
    key_to_repeat,
    next_count,
    next_millis,
    parse_js_date,
    parse_repeatable,
    repeat_key,
    validate_cron,
)

BRIDGE = Path(__file__).resolve().parents[2] / "bridge"


def iso_ms(text: str) -> int:
    return parse_js_date(text)


# --------------------------------------------------------------------------------------------------
# Captured examples (bull-protocol.md §2.3, §3.4, §10.4)
# --------------------------------------------------------------------------------------------------

CAPTURED = [
    # name, user spec, opts.jobId, now (timestamp), key, iteration id, stored opts.repeat
    (
        "cronjob",
        {"cron": "*/5 * * * *"},
        None,
        1795799465971,
        "cronjob::::*/5 * * * *",
        "repeat:54631e3372af6b17d8075f25f6fca2b7:1795799700000",
        '{"count":1,"key":"cronjob::::*/5 * * * *","cron":"*/5 * * * *"}',
    ),
    (
        "__default__",
        {"every": 10000},
        None,
        1795799465972,
        "__default__:::10000",
        "repeat:69ab270cf0a6444ad745981b4bfe7ff7:1795799470000",
        '{"count":1,"key":"__default__:::10000","every":10000}',
    ),
    (
        "tzjob",
        {"cron": "0 9 * * 1", "tz": "Europe/Paris", "endDate": 4102444800000, "limit": 50},
        "rid",
        1795799465978,
        "tzjob:rid:4102444800000:Europe/Paris:0 9 * * 1",
        "repeat:1f7d670ce8aafefc381b556a5d847070:1796025600000",
        '{"count":1,"key":"tzjob:rid:4102444800000:Europe/Paris:0 9 * * 1","cron":"0 9 * * 1",'
        '"tz":"Europe/Paris","endDate":4102444800000,"limit":50,"jobId":"rid"}',
    ),
    (
        "report",
        {"cron": "0 8 * * *", "tz": "America/Sao_Paulo"},
        None,
        1795800097316,
        "report:::America/Sao_Paulo:0 8 * * *",
        "repeat:c684be42abbfd5c099802057d47f7bb5:1795863600000",
        '{"count":1,"key":"report:::America/Sao_Paulo:0 8 * * *","cron":"0 8 * * *","tz":"America/Sao_Paulo"}',
    ),
]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("name,spec,job_id,now,key,jid,stored", CAPTURED)
def test_captured_first_add(
    name: str, spec: dict[str, Any], job_id: str | None, now: int, key: str, jid: str, stored: str
) -> None:
    repeat = RepeatOptions.from_user(spec).with_job_id(job_id)
    assert repeat_key(name, repeat) == key
    nxt = next_millis(repeat, now, 0)
    assert nxt is not None
    assert iteration_id(name, repeat, key, nxt) == jid
    assert _dumps(repeat.to_opts(next_count(repeat), key)) == stored
    # a worker reading the stored job back recomputes the same key
    again = RepeatOptions.from_opts(json.loads(stored))
    assert repeat_key(name, again) == key
    assert again.count == 1 and next_count(again) == 2
    assert _dumps(again.to_opts(2, key)) == stored.replace('"count":1', '"count":2')


def test_captured_every_limit_series_skips_a_slot() -> None:
    # §3.5: every 1000, limit 3, a slow job in front: 648000, 650000, 651000, then nothing.
    r = RepeatOptions.from_user({"every": 1000, "limit": 3})
    assert next_millis(r, 1795799647200, 0) == 1795799648000
    r2 = RepeatOptions.from_opts({"count": 1, "key": "rep:::1000", "every": 1000, "limit": 3})
    assert next_millis(r2, 1795799649300, 1795799648000) == 1795799650000
    r3 = RepeatOptions.from_opts({"count": 2, "key": "rep:::1000", "every": 1000, "limit": 3})
    assert next_millis(r3, 1795799650010, 1795799650000) == 1795799651000
    r4 = RepeatOptions.from_opts({"count": 3, "key": "rep:::1000", "every": 1000, "limit": 3})
    assert next_millis(r4, 1795799651010, 1795799651000) is None


GET_REPEATABLE = [
    (
        "report:::America/Sao_Paulo:0 8 * * *",
        "1795863600000",
        '{"key":"report:::America/Sao_Paulo:0 8 * * *","name":"report","id":null,"endDate":null,'
        '"tz":"America/Sao_Paulo","cron":"0 8 * * *","every":null,"next":1795863600000}',
    ),
    (
        "ping:::300000",
        "1795800300000",
        '{"key":"ping:::300000","name":"ping","id":null,"endDate":null,"tz":null,"cron":null,'
        '"every":300000,"next":1795800300000}',
    ),
    (
        "r1:::60000",
        1795799640000.0,
        '{"key":"r1:::60000","name":"r1","id":null,"endDate":null,"tz":null,"cron":null,'
        '"every":60000,"next":1795799640000}',
    ),
    (
        "r2:custom::UTC:0 0 * * *",
        1795824000000,
        '{"key":"r2:custom::UTC:0 0 * * *","name":"r2","id":"custom","endDate":null,"tz":"UTC",'
        '"cron":"0 0 * * *","every":null,"next":1795824000000}',
    ),
    (
        "tzjob:rid:4102444800000:Europe/Paris:0 9 * * 1",
        "1796025600000",
        '{"key":"tzjob:rid:4102444800000:Europe/Paris:0 9 * * 1","name":"tzjob","id":"rid",'
        '"endDate":4102444800000,"tz":"Europe/Paris","cron":"0 9 * * 1","every":null,"next":1796025600000}',
    ),
    # Node mis-parses names with ':' (documented, reproduced)
    (
        "a:b:::1000",
        "5",
        '{"key":"a:b:::1000","name":"a","id":"b","endDate":null,"tz":null,"cron":"1000","every":null,"next":5}',
    ),
]


@pytest.mark.parametrize("key,score,expected", GET_REPEATABLE)
def test_parse_repeatable(key: str, score: Any, expected: str) -> None:
    assert _dumps(parse_repeatable(key, score).to_node_json()) == expected


def test_key_to_repeat_and_prefix() -> None:
    name, r = key_to_repeat("cronjob::::*/5 * * * *")
    assert name == "cronjob" and r.cron == "*/5 * * * *" and r.job_id is None
    assert iteration_prefix(name, r, "cronjob::::*/5 * * * *") == "repeat:54631e3372af6b17d8075f25f6fca2b7:"
    name, r = key_to_repeat(":::10000")
    assert name == "__default__" and r.every == 10000
    name, r = key_to_repeat("tzjob:rid:4102444800000:Europe/Paris:0 9 * * 1")
    assert (r.job_id, r.end_date, r.tz) == ("rid", 4102444800000, "Europe/Paris")
    assert iteration_prefix(name, r, "tzjob:rid:4102444800000:Europe/Paris:0 9 * * 1") == (
        "repeat:1f7d670ce8aafefc381b556a5d847070:"
    )


# --------------------------------------------------------------------------------------------------
# next_millis rules
# --------------------------------------------------------------------------------------------------

NOW = 1795799465972
NEXT_MILLIS = [
    ({"every": 10000}, NOW, 0, 1795799470000),
    ({"every": 10000}, NOW, 1795799470000, 1795799480000),  # base = prevMillis when ahead of now
    ({"every": 10000}, 1795799470000, 0, 1795799480000),  # exact multiple: the next one
    ({"every": 10000, "limit": 1}, NOW, 0, 1795799470000),
    ({"every": 10000, "end_date": NOW - 1}, NOW, 0, None),  # now past endDate
    ({"every": 10000, "end_date": NOW}, NOW, 0, 1795799470000),  # not past; may overshoot endDate
    ({"every": 10000, "start_date": NOW + 10**9}, NOW, 0, 1795799470000),  # startDate ignored
    ({"cron": "*/5 * * * *", "start_date": iso_ms("2027-01-01T00:00:00Z")}, NOW, 0,
     iso_ms("2027-01-01T00:05:00Z")),  # startDate itself matches and is skipped (strictly after)
    ({"cron": "*/5 * * * *", "end_date": 1795799600000}, NOW, 0, None),  # next (…700000) > endDate
    ({"cron": "*/5 * * * *", "end_date": 1795799700000}, NOW, 0, 1795799700000),
    ({"cron": "0 0 * * *", "tz": "Asia/Kolkata"}, NOW, 0, iso_ms("2026-11-27T18:30:00Z")),
]


@pytest.mark.parametrize("spec,now,prev,expected", NEXT_MILLIS)
def test_next_millis(spec: dict[str, Any], now: int, prev: int, expected: int | None) -> None:
    assert next_millis(RepeatOptions.from_user(spec), now, prev) == expected


def test_limit_and_count() -> None:
    r = RepeatOptions.from_opts({"count": 50, "key": "k", "cron": "0 9 * * 1", "limit": 50})
    assert next_millis(r, NOW, 0) is None
    assert next_count(RepeatOptions.from_opts({"count": 0})) == 1
    # JSON null limit/endDate end the series in Node (`1 > null`, `now > new Date(null)`)
    assert next_millis(RepeatOptions.from_opts({"every": 1000, "limit": None}), NOW) is None
    assert next_millis(RepeatOptions.from_opts({"every": 1000, "endDate": None}), NOW) is None


def test_no_tz_uses_local_tz() -> None:
    r = RepeatOptions.from_user({"cron": "0 8 * * *"})
    assert next_millis(r, NOW, 0) == iso_ms("2026-11-28T08:00:00Z")
    assert next_millis(r, NOW, 0, local_tz="America/Sao_Paulo") == iso_ms("2026-11-28T11:00:00Z")


# --------------------------------------------------------------------------------------------------
# options: dates, order, from_opts
# --------------------------------------------------------------------------------------------------


def test_dates_and_wire_forms() -> None:
    aware = datetime(2100, 1, 1, tzinfo=timezone.utc)
    r = RepeatOptions.from_user({"end_date": aware, "cron": "0 0 * * *"})
    assert r.end_date == 4102444800000
    assert r.to_opts_members() == {"endDate": "2100-01-01T00:00:00.000Z", "cron": "0 0 * * *"}
    assert repeat_key("n", r) == "n::4102444800000::0 0 * * *"
    r = RepeatOptions.from_user({"every": 5, "endDate": "2100-01-01T01:00:00+01:00"})
    assert r.end_date == 4102444800000 and r.to_opts_members()["endDate"] == "2100-01-01T01:00:00+01:00"
    r = RepeatOptions.from_user({"every": 5, "startDate": 1, "end_date": 4102444800000})
    assert r.to_opts_members() == {"every": 5, "startDate": 1, "endDate": 4102444800000}
    assert js_iso_string(-1) == "1969-12-31T23:59:59.999Z"
    assert parse_js_date(datetime(2026, 1, 1, 0, 0, 0, 1999, tzinfo=timezone(timedelta(hours=1)))) == (
        iso_ms("2025-12-31T23:00:00.001Z")
    )


def test_from_opts_keeps_unknown_members_and_order() -> None:
    stored = {"count": 3, "key": "k", "tz": "UTC", "foo": [1], "cron": "0 0 * * *", "utc": True, "jobId": 7}
    r = RepeatOptions.from_opts(stored)
    assert r.count == 3 and r.key == "k" and r.utc and r.job_id == 7
    assert list(r.to_opts_members().items()) == [
        ("tz", "UTC"), ("foo", [1]), ("cron", "0 0 * * *"), ("utc", True), ("jobId", 7)
    ]
    assert repeat_key("x", r) == "x:7::UTC:0 0 * * *"


def test_with_job_id_keeps_existing_position() -> None:
    r = RepeatOptions.from_user({"job_id": "a", "every": 5}).with_job_id("b")
    assert list(r.to_opts_members().items()) == [("jobId", "b"), ("every", 5)]


ERRORS: list[tuple[Any, type[Exception], str]] = [
    ({"cron": "* * * * *", "every": 5}, ValueError, "not both"),
    ({}, ValueError, "needs 'cron'"),
    ({"tz": "UTC"}, ValueError, "needs 'cron'"),
    ({"every": 0}, ValueError, "> 0"),
    ({"every": -5}, ValueError, "> 0"),
    ({"every": 1.5}, TypeError, "int"),
    ({"every": True}, TypeError, "int"),
    ({"cron": "61 * * * *"}, ValueError, "invalid cron"),
    ({"cron": "* * * * * * *"}, ValueError, "too many"),
    ({"cron": "0 0 30 2 *"}, ValueError, "invalid cron"),
    ({"cron": "0 0 * * foo"}, ValueError, "alias"),
    ({"cron": "*/0 * * * *"}, ValueError, "invalid cron"),
    ({"cron": "0 0 * * 1#6"}, ValueError, "1-5"),
    ({"cron": "0 0 * * 1#2,3"}, ValueError, "'#'"),
    ({"cron": "@midnight"}, ValueError, "invalid cron"),
    ({"cron": "0 9 * *"}, ValueError, "5 or 6 fields"),
    ({"cron": "0 0 * * L"}, ValueError, "'L' in day-of-week"),
    ({"cron": "0 0 * * *\u00a0"}, ValueError, "non-ASCII"),
    ({"cron": ""}, ValueError, "empty"),
    ({"cron": 5}, TypeError, "string"),
    ({"cron": "* * * * *", "tz": "Mars/Base"}, ValueError, "unknown time zone"),
    ({"cron": "* * * * *", "limit": 0}, ValueError, ">= 1"),
    ({"cron": "* * * * *", "limit": "3"}, TypeError, "limit"),
    ({"cron": "* * * * *", "end_date": datetime(2030, 1, 1)}, ValueError, "naive"),
    ({"cron": "* * * * *", "end_date": "2030-01-01"}, ValueError, "offset"),
    ({"cron": "* * * * *", "end_date": "2030-01-01T00:00:00"}, ValueError, "offset"),
    ({"cron": "* * * * *", "end_date": "2030-02-30T00:00:00Z"}, ValueError, "valid date"),
    ({"cron": "* * * * *", "end_date": 1.5}, TypeError, "float"),
    ({"cron": "* * * * *", "start_date": 10, "end_date": 5}, ValueError, "before"),
    ({"cron": "* * * * *", "endDate": 5, "end_date": 5}, ValueError, "twice"),
    ({"cron": "* * * * *", "count": 5}, ValueError, "unknown repeat option"),
    ({"cron": "* * * * *", "job_id": ""}, ValueError, "empty"),
    ([("cron", "* * * * *")], TypeError, "mapping"),
]


@pytest.mark.parametrize("spec,exc,match", ERRORS)
def test_from_user_errors(spec: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        RepeatOptions.from_user(spec)


def test_from_opts_rejects_cron_and_every() -> None:
    with pytest.raises(ValueError, match="both"):
        RepeatOptions.from_opts({"cron": "* * * * *", "every": 5})


@pytest.mark.parametrize("expr", ["@daily", "0 0 1 * 1", "*/10 * * * * *", "0 0 L * *", "0 0 * * 5L", "0 0 ? * 1"])
def test_validate_cron_accepts(expr: str) -> None:
    validate_cron(expr)


def test_loop_limit_and_bad_l_end_silently() -> None:
    assert cron_next("0 0 31 2,4 *", NOW) is None  # parses, never matches: cron-parser gives up
    assert cron_next("0 0 * * L", NOW) is None  # cron-parser throws inside next(); Bull swallows it


# --------------------------------------------------------------------------------------------------
# Differential: the installed cron-parser and Bull's own repeatable.js
# --------------------------------------------------------------------------------------------------

NODE = shutil.which("node")
node_available = pytest.mark.skipif(
    NODE is None or not (BRIDGE / "node_modules" / "cron-parser").is_dir(),
    reason="needs node and bridge/node_modules/cron-parser",
)

NODE_SCRIPT = r"""
const parser = require('cron-parser');
const _ = require('lodash');
const Job = require('bull/lib/job');
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const revive = v => (v && typeof v === 'object' && '$date' in v) ? new Date(v.$date) : v;
(async () => {
  const out = {cron: [], bull: [], list: null, byKey: []};
  for (const c of input.cron) {
    const res = [];
    try {
      const it = parser.parseExpression(c.cron, _.defaults({currentDate: new Date(c.current)}, c.opts));
      for (let i = 0; i < c.n; i++) {
        let t;
        try { t = it.next().getTime(); } catch (e) { break; }
        res.push(t);
      }
      out.cron.push(res);
    } catch (e) { out.cron.push('parse-error'); }
  }
  function Q() {}
  require('bull/lib/repeatable')(Q);
  let created, zadd, removed;
  Job.create = (q, name, data, opts) => { created = JSON.stringify(opts); return Promise.resolve(); };
  const realNow = Date.now;
  const q = Object.create(Q.prototype);
  q.keys = {repeat: 'R', delayed: 'D', '': 'P'};
  q.isReady = () => Promise.resolve(q);
  q.client = {
    zadd: (k, s, m) => { zadd = [s, m]; return Promise.resolve(1); },
    zscore: () => Promise.resolve('1'),
    removeRepeatable: (...a) => { removed = a; return Promise.resolve(); },
    zrevrange: () => Promise.resolve(input.list),
  };
  for (const b of input.bull) {
    created = null; zadd = null; removed = null;
    Date.now = () => b.now;
    const opts = JSON.parse(JSON.stringify(b.opts));
    if (opts.repeat) for (const k of Object.keys(opts.repeat)) opts.repeat[k] = revive(opts.repeat[k]);
    await q.nextRepeatableJob(b.name, {}, opts, b.prev === 0);
    Date.now = realNow;
    await q.removeRepeatable(b.name, opts.repeat);
    out.bull.push({created, zadd, removed: removed.slice(2, 4)});
  }
  out.list = await q.getRepeatableJobs();
  for (const k of input.byKey) { await q.removeRepeatableByKey(k); out.byKey.push(removed.slice(2, 4)); }
  process.stdout.write(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
"""


def run_node(payload: dict[str, Any], tz: str = "UTC") -> Any:
    assert NODE is not None
    proc = subprocess.run(
        [NODE, "-e", NODE_SCRIPT],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=BRIDGE,
        env={**os.environ, "TZ": tz},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


EXPRESSIONS = [
    "*/5 * * * *", "0 9 * * 1", "0 8 * * *", "0 0 1 * *", "0 0 * * 1-5", "0 12 1,15 * *",
    "0 0 1 * 1", "*/10 * * * * *", "30 2 * * *", "30 1 * * *", "0 2 * * *", "0 3 * * *",
    "@daily", "@hourly", "@weekly", "@monthly", "@yearly", "0 0 L * *",
    "0 0 * * 5L", "0 0 * * 1#2", "0 0 15 * 1#3", "0 0 1 * 0-6", "0 0 1-30 * 1", "0 0 * * 2-7/2",
    "15,45 */2 * * *", "0 0-23/3 * * *", "5 4 * * sun", "0 22 * * MON-FRI", "0 0 * JAN,jul *",
    "30 0 0 * * *", "0 30 2 * * *", "*/15 * * * * *", "0 0 12 ? * 3", "0 0 31 * *",
    "0 10 * * 7", "0 0 1,L * *", "59 23 * * *", "0 9-17 * * 1-5", "*/7 * * * *", "0 0 5/10 * *",
    "1-5 3 * * 0,6", "0 0 * * 1-7/3", "0 3 * * 0#5", "0 0 1-29 2 *", "*/30 * * * *",
    "0 */2 * * *", "0 1-3 * * *", "0 0 * * L", "5", "0 9 * *", "0 0 * 2 5L",
    "0,30 1,2 * * *", "0 0 0 * * 0",
]
TZS = ["UTC", "America/Sao_Paulo", "Europe/Paris", "Asia/Kolkata", "America/New_York"]
CURRENT = [
    "2026-01-15T10:17:23.456Z",
    "2026-03-07T12:00:00.000Z",
    "2026-03-08T06:59:59.999Z",  # New York, 1:59:59.999 EST just before spring forward
    "2026-03-28T23:30:00.000Z",  # Paris, the evening before spring forward
    "2026-10-24T23:00:00.000Z",  # Paris, before fall back
    "2026-10-31T12:00:00.000Z",  # New York, before fall back
    "2026-11-01T05:30:00.000Z",  # New York, 01:30 EDT, the first of the two 01:30s
    "2028-02-28T23:59:59.000Z",
    "2026-12-31T23:59:00.000Z",
]


@pytest.mark.node
@node_available
def test_cron_parser_differential() -> None:
    cases: list[dict[str, Any]] = []
    for expr in EXPRESSIONS:
        for tz in TZS:
            for cur in CURRENT:
                cases.append({"cron": expr, "current": iso_ms(cur), "opts": {"tz": tz}, "n": 5})
    # searches that take Node's luxon thousands of steps: fewer combinations
    for tz in TZS:
        for cur in CURRENT[::3]:
            cases.append({"cron": "0 0 29 2 *", "current": iso_ms(cur), "opts": {"tz": tz}, "n": 2})
    cases.append({"cron": "0 0 31 2,4 *", "current": iso_ms(CURRENT[0]), "opts": {"tz": "Europe/Paris"}, "n": 1})
    # endDate, utc and the Node process's own zone (no tz)
    for expr in ["*/5 * * * *", "0 9 * * 1", "0 0 * * *", "30 2 * * *"]:
        start = iso_ms("2026-03-07T12:00:00.000Z")
        cases.append({"cron": expr, "current": start, "opts": {"tz": "America/New_York",
                      "endDate": iso_ms("2026-03-09T12:00:00.000Z")}, "n": 5})
        cases.append({"cron": expr, "current": start, "opts": {"tz": "Asia/Kolkata", "utc": True}, "n": 3})
        cases.append({"cron": expr, "current": start, "opts": {}, "n": 3})
    # luxon makes cron-parser slow (about 1 s per expression here): run chunks in parallel
    chunks = [cases[i::8] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda c: run_node({"cron": c, "bull": [], "list": [], "byKey": []})["cron"], chunks))
    node: list[Any] = [None] * len(cases)
    for i, chunk_result in enumerate(results):
        node[i::8] = chunk_result
    mismatches = []
    for case, expected in zip(cases, node):
        opts = case["opts"]
        try:
            got: Any = cron_series(
                case["cron"], case["current"], case["n"], tz=opts.get("tz"), end_date=opts.get("endDate"),
                utc=opts.get("utc", False), local_tz="UTC",
            )
        except ValueError:
            got = "parse-error"
        if got != expected:
            mismatches.append((case, expected, got))
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ, e.g. {mismatches[:3]}"
    # the Node process's zone stands in for a missing tz
    local = run_node({"cron": [{"cron": "0 8 * * *", "current": NOW, "opts": {}, "n": 3}],
                      "bull": [], "list": [], "byKey": []}, tz="Europe/Paris")["cron"][0]
    assert cron_series("0 8 * * *", NOW, 3, local_tz="Europe/Paris") == local


BULL_CASES: list[tuple[str, dict[str, Any], str | int | None, int]] = [
    ("cronjob", {"cron": "*/5 * * * *"}, None, 1795799465971),
    ("__default__", {"every": 10000}, None, 1795799465972),
    ("tzjob", {"cron": "0 9 * * 1", "tz": "Europe/Paris", "endDate": 4102444800000, "limit": 50}, "rid",
     1795799465978),
    ("report", {"cron": "0 8 * * *", "tz": "America/Sao_Paulo"}, None, 1795800097316),
    ("dated", {"tz": "Asia/Kolkata", "cron": "0 0 * * 1-5",
               "end_date": datetime(2030, 5, 1, 12, 30, 0, 250000, tzinfo=timezone.utc)}, "x:y", NOW),
    ("started", {"cron": "*/10 * * * * *", "start_date": "2027-01-01T00:00:00+05:30"}, None, NOW),
    ("ünï", {"every": 7000, "limit": 3, "job_id": "idé"}, None, NOW),
    ("ended", {"cron": "0 0 * * *", "end_date": NOW + 3600_000}, None, NOW),
    ("sp", {"every": 300000, "start_date": NOW + 10**8, "tz": "UTC"}, 42, NOW),
]


def _node_repeat(spec: dict[str, Any]) -> dict[str, Any]:
    """The user's repeat object as a Node caller would write it (datetimes as Dates)."""
    camel = {"start_date": "startDate", "end_date": "endDate", "job_id": "jobId"}
    return {
        camel.get(k, k): {"$date": parse_js_date(v)} if isinstance(v, datetime) else v for k, v in spec.items()
    }


@pytest.mark.node
@node_available
def test_bull_repeatable_differential() -> None:
    """Key, iteration id, zadd, opts.repeat and removeRepeatable args through Bull's own code."""
    payload: list[dict[str, Any]] = []
    expected: list[dict[str, Any]] = []
    for name, spec, job_id, now in BULL_CASES:
        repeat = RepeatOptions.from_user(spec).with_job_id(job_id)
        opts: dict[str, Any] = {"repeat": _node_repeat(spec)}
        if job_id is not None:
            opts["jobId"] = job_id
        payload.append({"name": name, "opts": opts, "now": now, "prev": 0})
        expected.append({"name": name, "repeat": repeat, "now": now, "prev": 0})
        # three further iterations as a worker would schedule them, each a minute late
        prev = 0
        for _ in range(3):
            key = repeat_key(name, repeat)
            nxt = next_millis(repeat, now, prev)
            if nxt is None:
                break
            stored = json.loads(_dumps(repeat.to_opts(next_count(repeat), key)))
            now, prev = nxt + 60_000, nxt
            repeat = RepeatOptions.from_opts(stored)
            payload.append({"name": name, "opts": {"repeat": stored, "jobId": iteration_id(name, repeat, key, nxt),
                                                   "prevMillis": prev}, "now": now, "prev": prev})
            expected.append({"name": name, "repeat": repeat, "now": now, "prev": prev})
    members = ["report:::America/Sao_Paulo:0 8 * * *", "1795863600000", "a:b:c::UTC:0 0 * * *", "7",
               "x:::abc", "1.5e3", "y:id:12ab::5", "1795800300000.5", "::0::1000", "0"]
    by_key = ["cronjob::::*/5 * * * *", ":::10000", "tzjob:rid:4102444800000:Europe/Paris:0 9 * * 1",
              "w:é:1:2:3:4"]
    node = run_node({"cron": [], "bull": payload, "list": members, "byKey": by_key})

    for exp, got in zip(expected, node["bull"]):
        name, repeat = exp["name"], exp["repeat"]
        key = repeat_key(name, repeat)
        nxt = next_millis(repeat, exp["now"], exp["prev"])
        assert got["removed"] == [iteration_prefix(name, repeat), key], exp
        if nxt is None:
            assert got["created"] is None and got["zadd"] is None, exp
            continue
        assert got["zadd"] == [nxt, key]
        created = json.loads(got["created"])
        assert created["jobId"] == iteration_id(name, repeat, key, nxt)
        assert created["prevMillis"] == nxt and created["delay"] == max(0, nxt - exp["now"])
        assert _dumps(created["repeat"]) == _dumps(repeat.to_opts(next_count(repeat), key))

    ours = [parse_repeatable(members[i], members[i + 1]).to_node_json() for i in range(0, len(members), 2)]
    assert node["list"] == ours
    for key, got in zip(by_key, node["byKey"]):
        name, r = key_to_repeat(key)
        assert got == [iteration_prefix(name, r, key), key]
