"""bullpy._core.rows: column-wise JSON equals to_json (and Node's JSON.stringify) on the codec's corpora; a
chunk's options spliced per row equal what prepare_job (Queue.add) encodes for the same job."""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import pytest

from bullpy._core import rows
from bullpy._core.codec import to_json
from bullpy._core.options import prepare_job

from .test_codec import (
    TO_JSON_CASES,
    _node,
    _random_doubles,
    _random_strings,
    needs_node,
)

NOW = 1795800000000


def _kind(value: Any) -> str:
    if value is None:
        return "str"
    if type(value) is str:
        return "str"
    if type(value) is bool:
        return "bool"
    if type(value) is int:
        return "int"
    if type(value) is float:
        return "float"
    return "json"


def _corpus() -> list[Any]:
    rng = random.Random(20261127)
    ints = [0, 1, -1, 12, 2**31, 2**53 - 1, 2**53, 2**53 + 1, -(2**60), 2**64, 10**30, 5511999990001]
    floats = _random_doubles(1500, rng) + [1e16, 1e-5, 1e-7, 1.0, -0.0, 10.0, 0.1 + 0.2, 2.0**60, 1e21, 5e-324,
                                           123456789012345680000.0, 0.0001, 1.5e300, 12.5, -1234.5]
    scalars = [v for v, _ in TO_JSON_CASES if isinstance(v, (str, int, float)) or v is None]
    return [*scalars, *ints, *floats, *_random_strings(400, rng), True, False, None]


def test_encode_column_equals_to_json_value_by_value() -> None:
    values = _corpus()
    by_kind: dict[str, list[Any]] = {}
    for v in values:
        by_kind.setdefault(_kind(v), []).append(v)
    for kind, column in by_kind.items():
        assert rows.encode_column(column, kind) == [to_json(v) for v in column], kind
        assert rows.encode_column(column + [None], kind)[-1] == "null"
    # ints and floats mixed in a float column, as a frame's float column with integral values writes them
    mixed = by_kind["int"] + by_kind["float"]
    assert rows.encode_column(mixed, "float") == [to_json(v) for v in mixed]
    nested = [{"a": [1, "x", None]}, [1.5, {"10": 1, "2": 2}], "plain", 7, dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)]
    assert rows.encode_column(nested, "json") == [to_json(v) for v in nested]


@pytest.mark.parametrize(("values", "kind", "error"), [
    ([1.0, math.inf], "float", ValueError), ([math.nan], "float", ValueError), (["1"], "int", TypeError),
    ([True], "int", TypeError), ([1], "bool", TypeError), ([{1, 2}], "json", TypeError), ([1], "nope", ValueError),
])
def test_encode_column_refuses_what_its_kind_cannot_write(values: list[Any], kind: str, error: type) -> None:
    with pytest.raises(error):
        rows.encode_column(values, kind, where="data['x']")


def _random_rows(n: int) -> tuple[list[str], list[list[Any]]]:
    rng = random.Random(7)
    keys = ["number", "10", "message", "2", "k\ud800", "50%", "0", "01", "delay", "ü"]
    values = _corpus()
    columns = []
    for _ in keys:
        kind = rng.choice(["str", "int", "float", "json"])
        pool = [v for v in values if _kind(v) == kind or (kind == "json")]
        columns.append([rng.choice(pool) for _ in range(n)])
    return keys, columns


def _rows_via_columns(keys: list[str], columns: list[list[Any]]) -> list[str]:
    kinds = []
    for column in columns:
        found = {_kind(v) for v in column if v is not None}
        kinds.append(found.pop() if len(found) == 1 else "json")
    fragments = [rows.encode_column(c, k) for c, k in zip(columns, kinds)]
    return rows.encode_rows(keys, fragments, len(columns[0]))


def test_encode_rows_equals_to_json_of_each_row_dict() -> None:
    keys, columns = _random_rows(300)
    expected = [to_json(dict(zip(keys, row))) for row in zip(*columns)]
    assert _rows_via_columns(keys, columns) == expected
    assert rows.encode_rows([], [], 3) == ["{}"] * 3
    assert rows.encode_rows(["a"], [['"x"']], 1) == ['{"a":"x"}']
    with pytest.raises(ValueError, match="repeated"):
        rows.encode_rows(["a", "a"], [["1"], ["2"]], 1)


@pytest.mark.node
@needs_node
def test_column_wise_rows_equal_node_json_stringify() -> None:
    """The chunk encoder against real Node: each row object, built by JSON.parse from an exact transport of the
    same values (ints beyond 2**53 left out: Node cannot hold them), through JSON.stringify."""
    keys, columns = _random_rows(400)
    columns = [[v if not (type(v) is int and abs(v) > 2**53) else 0 for v in column] for column in columns]
    rows_ = [dict(zip(keys, row)) for row in zip(*columns)]
    node_out = _node("console.log(JSON.stringify(input.map(v => JSON.stringify(v))));", rows_)
    assert _rows_via_columns(keys, columns) == node_out
    strings = _random_strings(300, random.Random(3))
    doubles = _random_doubles(1000, random.Random(4))
    node_values = _node("console.log(JSON.stringify(input.map(v => JSON.stringify(v))));", strings + doubles)
    assert rows.encode_column(strings, "str") + rows.encode_column(doubles, "float") == node_values


OPTION_SETS: list[dict[str, Any]] = [
    {},
    {"attempts": 3, "backoff": {"type": "exponential", "delay": 2000}},
    {"remove_on_complete": True, "lifo": True, "timeout": 5000},
    {"delay": 60_000, "priority": 2},
    {"backoff": 1500, "remove_on_fail": {"age": 3600, "count": 10}, "stack_trace_limit": 3},
    {"timestamp": NOW - 5, "attempts": 2},
    {"debounce": {"id": "d1", "ttl": 1000}},
]
ROW_OPTION_SETS = [(), ("job_id",), ("delay",), ("priority", "attempts"), ("attempts", "delay", "job_id")]


@pytest.mark.parametrize("options", OPTION_SETS)
@pytest.mark.parametrize("row_options", ROW_OPTION_SETS)
def test_row_args_equal_prepare_job(options: dict[str, Any], row_options: tuple[str, ...]) -> None:
    defaults = {"remove_on_fail": 100}
    template = rows.row_template("send", options, defaults=defaults, row_options=row_options)
    n = 4
    data = [to_json({"number": f"55{i}", "i": i}) for i in range(n)]
    values: dict[str, list[Any]] = {}
    samples = {"job_id": [f"id-{i}" for i in range(n)], "delay": [0, 5, 0, 70_000], "priority": [0, 1, 2, 3],
               "attempts": [1, 2, 3, 4]}
    for option in row_options:
        values[option] = samples[option]
    args = rows.row_args(template, data, timestamp=NOW, values=values)
    layout, count = args[0], int(args[1])
    name, shared_opts, stamp, shared_delay, shared_priority, push, deid, dettl = args[2:10]
    assert count == n and layout.startswith("rows:")
    letters = layout[5:]
    width = 1 + len(letters)
    per_row = args[10:]
    assert len(per_row) == n * width
    for i in range(n):
        merged = dict(options)
        for option in row_options:
            merged[option] = values[option][i]
        prepared = prepare_job("send", {"number": f"55{i}", "i": i}, merged, defaults=defaults, now_ms=NOW)
        assert prepared is not None
        write = prepared.write
        names = [*(["i"] if "i" in letters else []), "data", *[c for c in "odp" if c in letters]]
        row = dict(zip(names, per_row[i * width : (i + 1) * width]))
        assert row["data"] == write.data
        assert row.get("o", shared_opts) == write.opts
        assert row.get("i", "") == write.custom_id
        assert row.get("d", shared_delay) == str(write.delay)
        assert row.get("p", shared_priority) == write.priority
        assert (name, stamp, push, deid, dettl) == (write.name, str(write.timestamp), "RPUSH" if write.lifo
                                                    else "LPUSH", write.debounce_id, write.debounce_ttl)


def test_row_template_refuses_what_cannot_be_shared() -> None:
    with pytest.raises(ValueError, match="repeatable"):
        rows.row_template(None, {"repeat": {"every": 1000}})
    with pytest.raises(ValueError, match="cannot vary per row"):
        rows.row_template(None, {}, row_options=["backoff"])
    with pytest.raises(TypeError, match="unknown job option"):
        rows.row_template(None, {"atempts": 3})


def test_parse_rows_reply() -> None:
    assert rows.parse_rows_reply([b"aa", b"7,8"], None) == (["7", "8"], ["added", "added"])
    assert rows.parse_rows_reply([b"adb", b"", b"other"], ["x", "y", "z"]) == (
        ["x", "y", "other"], ["added", "duplicate", "debounced"])
    assert rows.parse_rows_reply(["", ""], None) == ([], [])
