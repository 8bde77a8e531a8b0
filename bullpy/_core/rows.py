"""Many jobs that share a name and options, built column by column: what lib/queue.js ``addBulk`` writes for
them (lib/job.js ``Job.create`` per job: ``JSON.stringify(data)``, ``setDefaultOpts``, ``JSON.stringify(opts)``).

A campaign adds thousands of jobs whose options differ only in a few members (the job id, a delay, a
priority). Encoding each job's data and options from scratch costs more Python than Redis needs to store it,
so here:

* **data** is built a column at a time: every value of a column goes through one C-speed encoder chosen by the
  column's kind (``str``, ``int``, ``float``, ``bool``; ``json`` for anything else, through ``to_json``), and
  each row's object is spliced from its columns' fragments, keys in JavaScript's order. Each fragment equals
  ``to_json(value)`` byte for byte (tests/core/test_rows.py, against Node's ``JSON.stringify`` too);
* **options** are validated and encoded once per chunk (``RowTemplate``), with markers where the per-row
  members go, so a row only splices its id, delay, priority or attempts into the shared JSON;
* the chunk goes to ``add_jobs.lua`` in its *row layout*: shared values once, then per row only what varies
  (data always; id, opts, delay, priority when they differ), which is what redis-py packs and Redis parses.

Pure: no redis, no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Final

from .codec import (
    _MAX_SAFE_INTEGER,
    _encode_str,
    _fix_surrogates,
    _float_str,
    _js_key_order,
    _quote,
    js_number_str,
    text,
    to_json,
)
from .options import _plain, check_name, set_default_opts, validate_options

__all__ = ["COLUMN_KINDS", "ROW_OPTIONS", "RowTemplate", "encode_column", "encode_rows", "parse_rows_reply",
           "row_args", "row_template"]

#: How a column's values are encoded: ``str`` (str or None), ``int`` (int or None), ``float`` (finite float,
#: int or None), ``bool`` (bool or None), ``json`` (any value ``to_json`` writes).
COLUMN_KINDS: Final = ("str", "int", "float", "bool", "json")

_BOOL: Final = {True: "true", False: "false", None: "null"}


# --- data, a column at a time ----------------------------------------------------------------------------

def _str_value(v: Any) -> str:
    return "null" if v is None else _quote(v)


def _int_value(v: Any) -> str:
    if v is None:
        return "null"
    if type(v) is bool or not isinstance(v, int):
        raise TypeError(f"expected an int, got {type(v).__name__} {v!r}")
    return int.__repr__(v)


def _float_value(v: Any) -> str:
    # What to_json writes for a float: an integral float within 2**53 as the int JS prints; a float whose
    # repr is in fixed notation with a fraction as that repr (JS prints the same shortest digits, also in fixed
    # notation from 1e-6 to 1e21, which covers repr's 1e-4 to 1e16); everything else by the spec's layout.
    if v is None:
        return "null"
    if type(v) is not float:
        if isinstance(v, int) and type(v) is not bool:
            return int.__repr__(v)
        raise TypeError(f"expected a number, got {type(v).__name__} {v!r}")
    if v.is_integer():
        return int.__repr__(int(v)) if -_MAX_SAFE_INTEGER <= v <= _MAX_SAFE_INTEGER else _float_str(v)
    if not math.isfinite(v):
        raise ValueError(f"{_float_str(v)} is not allowed (JavaScript would write null)")
    r = float.__repr__(v)
    return _float_str(v) if "e" in r else r


def encode_column(values: Sequence[Any], kind: str, *, where: str = "value") -> list[str]:
    """The JSON text of each value of a column, each equal to ``to_json(value)``; None is ``null``.

    Raises TypeError/ValueError (naming ``where``) for a value the kind does not hold or JSON cannot write:
    callers validate first, so a chunk being written never fails here.
    """
    if kind == "str":
        try:
            out = list(map(_encode_str, values))
        except TypeError:
            out = [_str_value(v) for v in values]
            return out
        # Lone surrogates: JSON.stringify escapes them; found in one pass over the whole column.
        joined = "".join(out)
        if not joined.isascii():
            try:
                joined.encode("utf-8")
            except UnicodeEncodeError:
                out = [q if q.isascii() else _fix_surrogates(q) for q in out]
        return out
    if kind == "int":
        try:
            if all(type(v) is int for v in values):
                return list(map(int.__repr__, values))
            return [_int_value(v) for v in values]
        except TypeError as exc:
            raise TypeError(f"{where}: {exc}") from None
    if kind == "float":
        try:
            return [_float_value(v) for v in values]
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}: {exc}") from None
    if kind == "bool":
        bad = [v for v in values if v is not None and type(v) is not bool]
        if bad:
            raise TypeError(f"{where}: expected a bool, got {type(bad[0]).__name__} {bad[0]!r}")
        return [_BOOL[v] for v in values]
    if kind == "json":
        return [to_json(v, where=where) for v in values]
    raise ValueError(f"unknown column kind {kind!r}; use one of {', '.join(COLUMN_KINDS)}")


def encode_rows(keys: Sequence[str], columns: Sequence[Sequence[str]], rows: int) -> list[str]:
    """Each row's data object, ``{"key":fragment,...}``, from its columns' JSON fragments; keys in the order
    JavaScript gives an object's own properties (array indices first, ascending; then as given)."""
    if len(keys) != len(columns):
        raise ValueError("one column of fragments per key")
    if len(set(keys)) != len(keys):
        raise ValueError(f"repeated data keys: {sorted({k for k in keys if list(keys).count(k) > 1})}")
    if not keys:
        return ["{}"] * rows
    order = _js_key_order(list(keys))
    position = {k: i for i, k in enumerate(keys)}
    ordered = [columns[position[k]] for k in order]
    fmt = "{" + ",".join(_quote(k).replace("%", "%%") + ":%s" for k in order) + "}"
    if len(ordered) == 1:
        head, tail = fmt.split("%s")
        return [head + f + tail for f in ordered[0]]
    return list(map(fmt.__mod__, zip(*ordered)))


# --- options, once per chunk -----------------------------------------------------------------------------

# Stand in for per-row members while the shared options are validated and encoded.
_MARK: Final = "\x00bullpy-row-{}\x00"
_PLACEHOLDER: Final = {"priority": 1, "delay": 0, "attempts": 1}
#: The options a row may carry a value of its own for (snake_case, as ``Queue.add`` takes them).
ROW_OPTIONS: Final = ("job_id", "priority", "delay", "attempts")
_CAMEL: Final = {"job_id": "jobId", "priority": "priority", "delay": "delay", "attempts": "attempts",
                 "timestamp": "timestamp"}


@dataclass(frozen=True)
class RowTemplate:
    """The options a chunk's jobs share, validated and encoded once.

    ``segments`` is the opts JSON cut where each of ``fields`` (camelCase) goes, in order of appearance; the
    ``timestamp`` member is filled per chunk, the others per row. The rest are the job hash fields and
    addJob arguments shared by every row (``delay``/``priority`` unless given per row).
    """

    name: str
    segments: tuple[str, ...]
    fields: tuple[str, ...]
    row_options: tuple[str, ...]  # snake_case options given per row (of ROW_OPTIONS)
    timestamp: int | None  # a timestamp option every row shares, else None (each chunk's own)
    delay: int
    priority: str
    lifo: bool
    debounce_id: str
    debounce_ttl: str


def row_template(
    name: str | None,
    options: Mapping[str, Any],
    *,
    defaults: Mapping[str, Any] = {},
    known_backoffs: Collection[str] = (),
    row_options: Sequence[str] = (),
) -> RowTemplate:
    """Validate the options every row shares (as ``Queue.add`` would) and encode them once.

    ``row_options`` names the options each row gives a value of its own for (``job_id``, ``priority``,
    ``delay``, ``attempts``): they keep their place in ``options`` if there, else follow it, as a JS object
    literal would. Raises TypeError/ValueError for a bad option (repeatable jobs cannot be added in bulk).
    """
    name = check_name(name)
    unknown = [o for o in row_options if o not in ROW_OPTIONS]
    if unknown:
        raise ValueError(f"options {unknown} cannot vary per row; per-row options: {', '.join(ROW_OPTIONS)}")
    merged: dict[str, Any] = {**defaults, **options}
    if merged.get("repeat") is not None:
        raise ValueError("repeatable jobs cannot be added in bulk; use add(..., repeat=...)")
    marks = {o: _MARK.format(o) for o in row_options}
    for option in row_options:
        merged[option] = marks[option] if option == "job_id" else _PLACEHOLDER[option]
    opts = validate_options(merged, known_backoffs)
    for option in row_options:
        opts[_CAMEL[option]] = marks[option]
    shared_timestamp = opts.get("timestamp")
    set_default_opts(opts, 0)  # attempts, delay, timestamp appended where missing, in Node's order
    if shared_timestamp is None:
        marks["timestamp"] = opts["timestamp"] = _MARK.format("timestamp")
    encoded = to_json(_plain(opts))
    found: list[tuple[int, str]] = []
    for option, mark in marks.items():
        quoted = to_json(mark)
        if encoded.count(quoted) != 1:
            raise ValueError("an option value holds bullpy's reserved marker text")
        found.append((encoded.index(quoted), option))
    found.sort()
    segments: list[str] = []
    at = 0
    for position, option in found:
        segments.append(encoded[at:position])
        at = position + len(to_json(marks[option]))
    segments.append(encoded[at:])
    debounce = opts.get("debounce") or {}
    return RowTemplate(
        name=name,
        segments=tuple(segments),
        fields=tuple(_CAMEL[option] for _, option in found),
        row_options=tuple(row_options),
        timestamp=None if shared_timestamp is None else int(shared_timestamp),
        delay=0 if "delay" in row_options else max(int(opts["delay"]), 0),
        priority="0" if "priority" in row_options else js_number_str(opts.get("priority") or 0),
        lifo=bool(opts.get("lifo")),
        debounce_id=str(debounce.get("id", "")),
        debounce_ttl=str(debounce["ttl"]) if "ttl" in debounce else "",
    )


def row_args(
    template: RowTemplate,
    data: Sequence[str],
    *,
    timestamp: int,
    values: Mapping[str, Sequence[Any]] = {},
) -> list[str]:
    """add_jobs.lua's arguments after the base key and token (its row layout) for one chunk.

    ``data`` is each row's data JSON; ``values`` each per-row option's values (``job_id``: str; ``priority``,
    ``delay``, ``attempts``: validated ints), one per row; ``timestamp`` the chunk's creation time (unless the
    template has a shared one).
    """
    n = len(data)
    if sorted(values) != sorted(template.row_options):
        raise ValueError(f"per-row values for {sorted(template.row_options)} expected, got {sorted(values)}")
    for option, column in values.items():
        if len(column) != n:
            raise ValueError(f"{len(column)} values of {option} for {n} rows")
    stamp = template.timestamp if template.timestamp is not None else timestamp
    # The chunk's timestamp is spliced once; what remains are the per-row members.
    segments = [template.segments[0]]
    row_fields: list[str] = []
    for field, segment in zip(template.fields, template.segments[1:]):
        if field == "timestamp":
            segments[-1] += int.__repr__(stamp) + segment
        else:
            row_fields.append(field)
            segments.append(segment)
    fragments: list[Sequence[str]] = []
    for field in row_fields:
        column = values[_snake(field)]
        if field == "jobId":
            plain = all(type(v) is str for v in column)
            fragments.append(encode_column(column, "str" if plain else "json", where="job_id"))
        else:
            fragments.append(list(map(int.__repr__, column)))
    layout = ""
    per_row: list[Sequence[str]] = []
    if "job_id" in values:
        layout += "i"
        per_row.append([str(v) for v in values["job_id"]])
    per_row.append(data)
    if row_fields:
        layout += "o"
        if len(row_fields) == 1:
            head, tail = segments
            per_row.append([head + f + tail for f in fragments[0]])
        else:
            fmt = "%s".join(s.replace("%", "%%") for s in segments)
            per_row.append(list(map(fmt.__mod__, zip(*fragments))))
    if "delay" in values:
        layout += "d"
        per_row.append([int.__repr__(d) if d > 0 else "0" for d in values["delay"]])
    if "priority" in values:
        layout += "p"
        per_row.append([int.__repr__(p) if p else "0" for p in values["priority"]])
    shared = [
        "rows:" + layout, str(n), template.name, "" if row_fields else segments[0], int.__repr__(stamp),
        int.__repr__(template.delay), template.priority, "RPUSH" if template.lifo else "LPUSH",
        template.debounce_id, template.debounce_ttl,
    ]
    if len(per_row) == 1:
        return [*shared, *data]
    return [*shared, *chain.from_iterable(zip(*per_row))]


def _snake(field: str) -> str:
    return next(s for s, c in _CAMEL.items() if c == field)


_STATUS: Final = {"a": "added", "d": "duplicate", "b": "debounced"}


def parse_rows_reply(reply: Any, ids: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """add_jobs.lua's row-layout reply -> (job ids, statuses) in row order.

    The reply is ``{statuses, auto ids, other ids...}``: one letter per row (``a`` added, ``d`` duplicate,
    ``b`` debounced), the new counter ids joined by commas (rows without a given id), then the existing
    job's id for each debounced row that had a given id.
    """
    letters = text(reply[0])
    n = len(letters)
    auto_text = text(reply[1])
    auto = auto_text.split(",") if auto_text else []
    statuses = ["added"] * n if letters == "a" * n else [_STATUS[c] for c in letters]
    if ids is None:
        if len(auto) != n:
            raise ValueError(f"add_jobs answered {len(auto)} ids for {n} rows")
        return auto, statuses
    others = iter([text(x) for x in reply[2:]])
    out = list(ids)
    if "b" in letters:
        for i, c in enumerate(letters):
            if c == "b":
                out[i] = next(others)
    return out, statuses
