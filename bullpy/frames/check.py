"""Checking a campaign frame before its first write: every row, every column, every option value.

``Spec`` holds what ``add_frame`` was asked (checked once, without the rows); ``check_batch`` checks a frame
(or one record batch of a file) against it and returns what writing it needs: how each data column is
encoded, the job ids, each row's earliest send time and zone, the per-row option values. Anything that
would fail or be mangled on the way to a Node worker raises ``FrameError`` naming the rows: missing values,
values JSON cannot write (±inf, sets, naive datetimes, what a ``data=`` function returns), values the
``schema`` does not accept, bad ids and option values. ``column_values`` gives a chunk's JSON-ready values.
"""

from __future__ import annotations

import datetime as dt
import math
import string
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core.codec import to_json
from .._core.keys import check_job_id
from ..errors import FrameError, NumericIdentifierWarning
from ..schema import Schema, parse_schema, schema_accepts, schema_name
from .schedule import parse_window, zone

if TYPE_CHECKING:
    import pandas as pd

    from ..queue import Queue

import pandas as pd

_ROW_OPTIONS = {"priority": (0, 2**53 - 1), "delay": (0, None), "attempts": (1, None)}
_IDENTIFIER = 10_000_000  # 8 digits: phone numbers, customer ids, document numbers


@dataclass(frozen=True)
class Spec:
    """What ``add_frame`` was asked, checked once (columns, options, rate, window, schema)."""

    columns: tuple[str, ...]
    data_columns: tuple[Any, ...] | None  # None: a function
    data_fn: Callable[[Mapping[str, Any]], Any] | None
    name: str | None
    row_columns: dict[str, str]  # option -> column (priority, delay, attempts)
    constant: dict[str, Any]  # options shared by every row (snake_case)
    id_column: Any
    id_template: str | None
    send_at: Any
    interval: float | None
    window: tuple[dt.time, dt.time] | None
    tz: str | None
    tz_column: Any
    schema: Schema
    allowed: frozenset[Any]
    strict: bool

    @property
    def scheduled(self) -> bool:
        """Whether rows get computed due times (and so per-row delays)."""
        return self.send_at is not None or self.interval is not None or self.window is not None


def make_spec(queue: Queue, columns: Sequence[Any], *, data: Any, name: str | None, job_id: Any, priority: Any,
              delay: Any, send_at: Any, attempts: Any, backoff: Any, interval: float | None, window: Any, tz: Any,
              schema: Any, allow_null: Any, strict: bool, job_options: Mapping[str, Any]) -> Spec:
    """Check the arguments against the frame's columns (no rows yet); TypeError/ValueError/FrameError."""
    names = [str(c) for c in columns]
    if len(set(names)) != len(names):
        raise FrameError(f"the frame has duplicate column names: {sorted({c for c in names if names.count(c) > 1})}")

    def need(column: Any, what: str) -> None:
        if column not in columns:
            raise FrameError(f"{what}: no column {column!r} in the frame (columns: {names})")

    data_fn = None
    if data is None:
        data_columns: tuple[Any, ...] | None = tuple(columns)
    elif callable(data):
        data_columns, data_fn = None, data
    else:
        if isinstance(data, str):
            raise TypeError("data must be a list of column names or a function row -> data")
        for c in data:
            need(c, "data")
        data_columns = tuple(data)
    row_columns: dict[str, str] = {}
    constant: dict[str, Any] = {}
    for option, value in (("priority", priority), ("delay", delay), ("attempts", attempts)):
        if isinstance(value, str):
            need(value, option)
            row_columns[option] = value
        elif value is not None:
            constant[option] = value
    if backoff is not None:
        constant["backoff"] = backoff
    if "job_id" in job_options:
        raise TypeError("pass job_id as add_frame(job_id=column or template)")
    if "schema" in job_options:  # pragma: no cover - a keyword of add_frame itself
        raise TypeError("schema is add_frame's own keyword")
    constant.update(job_options)
    if "repeat" in constant:
        raise ValueError("repeatable jobs cannot be added from a frame; use queue.add(..., repeat=...)")
    # The shared options through the library's own validation, before any row is looked at.
    queue.add_bulk([{"data": {}, "name": name, "opts": constant}], dry_run=True)

    allowed = frozenset(columns if allow_null is True else (allow_null or ()))
    for c in allowed:
        need(c, "allow_null")
    id_column, id_template = None, None
    if job_id is not None:
        if not isinstance(job_id, str) or not job_id:
            raise TypeError("job_id must be a column name or a template such as 'spring-{customer_id}'")
        if job_id in columns:
            id_column = job_id
        else:
            fields = [f for _, f, _, _ in string.Formatter().parse(job_id) if f]
            if not fields:
                raise FrameError(f"job_id {job_id!r} is neither a column nor a template with {{column}} fields")
            for f in fields:
                need(f, "job_id template")
            id_template = job_id
    if send_at is not None:
        need(send_at, "send_at")
    parsed_window = parse_window(window)
    if parsed_window is not None and tz is None:
        raise ValueError("window needs tz=: the recipients' zone (an IANA name such as 'America/Sao_Paulo') or a "
                         "column of zones")
    tz_column, tz_name = None, None
    if tz is not None:
        if isinstance(tz, str) and tz in columns:
            tz_column = tz
        else:
            zone(tz)
            tz_name = tz
        if parsed_window is None and send_at is None:
            raise ValueError("tz says where rows' clocks are: give it with window= (or with send_at= times "
                             "that have no zone)")
    parsed_schema = parse_schema(schema)
    if parsed_schema and data_columns is not None:
        keys = [str(c) for c in data_columns]
        missing = [k for k in parsed_schema if k not in keys]
        if missing:
            raise FrameError(f"the schema names {missing}, which are not data columns (data: {keys})")
    return Spec(columns=tuple(columns), data_columns=data_columns, data_fn=data_fn, name=name,
                row_columns=row_columns, constant=constant, id_column=id_column, id_template=id_template,
                send_at=send_at, interval=interval, window=parsed_window, tz=tz_name, tz_column=tz_column,
                schema=parsed_schema, allowed=allowed, strict=strict)


@dataclass
class Checked:
    """What writing a checked frame needs (``check_batch``)."""

    kinds: list[tuple[Any, str]]  # (data column, encoding kind: str, int, float, bool, date, json)
    data_json: list[str] | None  # each row's data JSON (a data= function's results)
    ids: list[str] | None
    bases: np.ndarray[Any, Any] | None  # earliest send time per row (epoch ms), None: the load's start
    zones: str | list[str] | None
    options: dict[str, list[int]]  # per-row option values (priority, delay, attempts)


def check_batch(spec: Spec, df: pd.DataFrame, now: int) -> Checked:
    """Check every row of ``df`` (a frame, or a record batch whose index is the file's row numbers)."""
    if not df.index.is_unique:
        raise FrameError("the frame's index has duplicate labels; results are aligned to it",
                         list(df.index[df.index.duplicated()]))
    # Missing values: data and option columns must be complete unless allowed.
    data_cols = list(spec.data_columns or ())
    for c in dict.fromkeys(data_cols + list(spec.row_columns.values())):
        if c in spec.allowed and c not in spec.row_columns.values():
            continue
        missing = df.index[df[c].isna()]
        if len(missing):
            raise FrameError(f"column {c!r} has missing values (NaN/None/NA); pass allow_null=[{c!r}] to send "
                             f"them as null", list(missing))
    kinds = [(c, _check_column(spec, df[c], str(c))) for c in data_cols]
    data_json = _data_function(spec, df) if spec.data_fn is not None else None
    options = {opt: _option_ints(df[col], opt, col) for opt, col in spec.row_columns.items()}
    ids = _ids(spec, df)
    zones: str | list[str] | None = spec.tz
    if spec.tz_column is not None:
        zones = _zones(df, spec.tz_column)
    bases = _send_at(spec, df, now, zones) if spec.send_at is not None else None
    if "delay" in options and spec.scheduled:
        extra = np.asarray(options["delay"], dtype=np.int64)
        bases = (bases if bases is not None else np.full(len(df), now, dtype=np.int64)) + extra
    elif spec.scheduled and isinstance(spec.constant.get("delay"), (int, dt.timedelta)):
        d = spec.constant["delay"]
        ms = int(d.total_seconds() * 1000) if isinstance(d, dt.timedelta) else int(d)
        bases = (bases if bases is not None else np.full(len(df), now, dtype=np.int64)) + ms
    return Checked(kinds=kinds, data_json=data_json, ids=ids, bases=bases, zones=zones, options=options)


# --- data columns ----------------------------------------------------------------------------------------

def column_kind(series: pd.Series) -> str:
    """How a column is encoded: str, int, float, bool, date (tz-aware times), or json (anything else)."""
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype):
        return "str"
    if isinstance(dtype, pd.CategoricalDtype):
        return "json"
    kind = dtype.kind
    if kind == "b":
        return "bool"
    if kind in "iu":
        return "int"
    if kind == "f":
        return "float"
    if kind == "M":
        return "date"
    if kind == "O":
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred == "string":
            return "str"
    return "json"


def column_values(series: pd.Series, kind: str) -> list[Any]:
    """A column's values ready for ``kind``'s encoder: Python scalars, None for missing, JS date strings."""
    if kind == "date":
        utc = series.dt.tz_convert("UTC")
        text = utc.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return [None if pd.isna(t) else t[:-3] + "Z" for t in text]
    values: list[Any] = series.tolist()
    if kind == "json":
        return [_plain(v) for v in values]
    if series.hasnans:
        return [None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v for v in values]
    return values


def _plain(v: Any) -> Any:
    """One object-column value as Python JSON-ready data (numpy scalars unboxed, times as JS dates)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float):
        return None if math.isnan(v) else v
    if isinstance(v, (pd.Timestamp, dt.datetime)):
        if v.tzinfo is None:
            return v  # to_json refuses it, naming the row
        return _js_date(pd.Timestamp(v))
    if isinstance(v, np.generic):
        return _plain(v.item())
    return v


def _js_date(ts: pd.Timestamp) -> str:
    ts = ts.tz_convert("UTC")
    return str(ts.strftime("%Y-%m-%dT%H:%M:%S.")) + f"{ts.microsecond // 1000:03d}Z"


def _check_column(spec: Spec, series: pd.Series, key: str) -> str:
    kind = column_kind(series)
    accepted = spec.schema.get(key)
    label = f"column {series.name!r}"
    if kind == "date" and series.dt.tz is None:
        rows = list(series.index[series.notna()])
        raise FrameError(f"{label} holds times without a time zone, which add() refuses too (their instant is "
                         f"ambiguous); make them tz-aware, e.g. df[{series.name!r}].dt.tz_localize('UTC')", rows)
    if series.dtype.kind in "mc":
        raise FrameError(f"{label} is {series.dtype}, which JSON cannot write; convert it first",
                         list(series.index))
    if kind == "float":
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        inf = np.isinf(values)
        if inf.any():
            raise FrameError(f"{label} has ±inf, which JSON cannot write (JavaScript would write null)",
                             list(series.index[inf]))
    if kind == "json":
        for label_, v in zip(series.index, series.tolist()):
            value = _plain(v)
            try:
                to_json(value, where=f"data[{key!r}]")
            except (TypeError, ValueError) as exc:
                raise FrameError(str(exc), [label_]) from None
            if accepted is not None and not schema_accepts(value, accepted) and not (
                    value is None and series.name in spec.allowed):
                raise FrameError(f"{label}: the schema wants {schema_name(accepted)}, got {type(value).__name__} "
                                 f"{value!r}", [label_])
    elif accepted is not None:
        _schema_column(spec, series, kind, accepted, label)
    if accepted is None or not (int in accepted or float in accepted):
        _warn_identifiers(series, kind, key)
    return kind


_WRITTEN_AS = {"str": str, "date": str, "int": int, "float": float, "bool": bool}


def _schema_column(spec: Spec, series: pd.Series, kind: str, accepted: tuple[type, ...], label: str) -> None:
    present = series.notna()
    if type(None) not in accepted and series.name not in spec.allowed and not present.all():
        raise FrameError(f"{label}: the schema wants {schema_name(accepted)}, not null", list(series.index[~present]))
    written = _WRITTEN_AS[kind]
    if written in accepted or (written is int and float in accepted):
        return
    if written is float and int in accepted:
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        bad = present.to_numpy() & (np.floor(values) != values)
        if bad.any():
            raise FrameError(f"{label}: the schema wants {schema_name(accepted)}, got numbers with a fraction",
                             list(series.index[bad]))
        return
    hint = (f"; convert it first, e.g. df[{series.name!r}] = df[{series.name!r}].astype(str) (numbers have lost any "
            "leading zeros already: read the file with dtype=str to keep them)") if str in accepted else ""
    raise FrameError(f"{label} is {series.dtype}, written as JSON {_TYPE_WORD[written]}s, but the schema wants "
                     f"{schema_name(accepted)}{hint}", list(series.index[present]))


_TYPE_WORD = {str: "string", int: "number", float: "number", bool: "boolean"}


def _warn_identifiers(series: pd.Series, kind: str, key: str) -> None:
    if kind not in ("int", "float"):
        return
    values = series.dropna().to_numpy(dtype="float64")
    if kind == "float":
        values = values[np.floor(values) == values]
    big = np.abs(values) >= _IDENTIFIER
    if big.any():
        example = series.dropna()[series.dropna().abs() >= _IDENTIFIER].iloc[0]
        warnings.warn(
            f"column {series.name!r} holds integers with 8 or more digits (e.g. {int(example)}), written as JSON "
            f"numbers: a worker expecting text (phone numbers, ids: number.includes(...)) fails on them, and "
            f"JavaScript rounds integers beyond 2**53. Convert it (df[{series.name!r}].astype(str)) and pass "
            f"schema={{{key!r}: str}}, or pass schema={{{key!r}: int}} if numbers are what the worker wants.",
            NumericIdentifierWarning, stacklevel=5)


def _data_function(spec: Spec, df: pd.DataFrame) -> list[str]:
    fn = spec.data_fn
    if fn is None:  # pragma: no cover - callers check
        return []
    out: list[str] = []
    for label, record in zip(df.index, df.to_dict("records")):
        try:
            value = fn(record)
        except Exception as exc:
            raise FrameError(f"the data function failed: {type(exc).__name__}: {exc}", [label]) from exc
        try:
            if spec.schema:
                from ..schema import check_data

                check_data(value, spec.schema)
            out.append(_data_json(value))
        except (TypeError, ValueError) as exc:
            raise FrameError(f"the data function returned {type(value).__name__}: {exc}", [label]) from None
    return out


def _data_json(data: Any) -> str:
    # Queue.add's rule (JSON.stringify(data || {})): JavaScript-falsy data is stored as {}.
    if data is None or data is False or data == "" or (
            isinstance(data, (int, float)) and not isinstance(data, bool) and data == 0):
        return "{}"
    return to_json(data, where="data")


# --- options, ids, times ---------------------------------------------------------------------------------

def _option_ints(series: pd.Series, option: str, column: str) -> list[int]:
    low, high = _ROW_OPTIONS[option]
    if series.dtype.kind == "m" and option == "delay":
        numbers = series.dt.total_seconds() * 1000
    elif series.dtype.kind == "b":
        numbers = pd.Series(np.nan, index=series.index)
    else:
        numbers = pd.to_numeric(series, errors="coerce")
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(values) | (np.floor(values) != values) | (values < low)
    if high is not None:
        bad |= values > high
    if bad.any():
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise FrameError(f"column {column!r}: {option} must be an integer {bound}", list(series.index[bad]))
    return [int(v) for v in values.tolist()]


def _ids(spec: Spec, df: pd.DataFrame) -> list[str] | None:
    if spec.id_column is not None:
        series = df[spec.id_column]
        bad = df.index[series.isna()]
        if len(bad):
            raise FrameError(f"job_id column {spec.id_column!r} has missing values", list(bad))
        ids = [str(v) for v in _id_values(series)]
    elif spec.id_template is not None:
        ids = _format_ids(spec.id_template, df)
    else:
        return None
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids, index=df.index).duplicated(keep=False)
        raise FrameError("job ids repeat within the frame (each row needs its own)", list(df.index[dup]))
    for label, value in zip(df.index, ids):
        try:
            check_job_id(value)
            if value.startswith("repeat:"):
                raise ValueError(f"job_id {value!r} is reserved: ids starting with 'repeat:' are repeatable "
                                 "iterations")
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise FrameError(f"job_id {value!r} holds a lone surrogate, which Redis keys cannot", [label]) from None
        except ValueError as exc:
            raise FrameError(f"job_id: {exc}", [label]) from None
    return ids


def _id_values(series: pd.Series) -> list[Any]:
    values = series.tolist()
    if series.dtype.kind == "f":  # an int column with gaps: 12.0 -> "12"
        return [int(v) if isinstance(v, float) and v.is_integer() else v for v in values]
    return [_plain(v) if not isinstance(v, (str, int)) else v for v in values]


def _format_ids(template: str, df: pd.DataFrame) -> list[str]:
    parts = list(string.Formatter().parse(template))
    fields = [f for _, f, _, _ in parts if f]
    values = {f: _id_values(df[f]) for f in dict.fromkeys(fields)}
    for f in values:
        missing = df.index[df[f].isna()]
        if len(missing):
            raise FrameError(f"job_id template field {f!r} has missing values", list(missing))
    if all(not spec and not conv for _, f, spec, conv in parts if f):
        fmt = "".join(lit.replace("%", "%%") + ("%s" if f else "") for lit, f, _, _ in parts)
        columns = [values[f] for f in fields]  # %s writes str(value), as format() does for these values
        return list(map(fmt.__mod__, zip(*columns))) if columns else [fmt] * len(df)
    return [template.format_map({f: values[f][i] for f in values}) for i in range(len(df))]


def _zones(df: pd.DataFrame, column: Any) -> list[str]:
    series = df[column]
    missing = df.index[series.isna()]
    if len(missing):
        raise FrameError(f"tz column {column!r} has missing zones", list(missing))
    names = [str(v) for v in series.tolist()]
    for name in set(names):
        try:
            zone(name)
        except ValueError as exc:
            raise FrameError(f"tz column {column!r}: {exc}", [lab for lab, n in zip(df.index, names) if n == name]
                             ) from None
    return names


def _send_at(spec: Spec, df: pd.DataFrame, now: int, zones: str | list[str] | None) -> np.ndarray[Any, Any]:
    column = spec.send_at
    raw = df[column]
    try:
        times = raw if raw.dtype.kind == "M" else pd.to_datetime(raw, errors="coerce", format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise FrameError(f"send_at column {column!r}: {exc} (mixed zones? give every time one, or none and tz=)"
                         ) from None
    bad = df.index[times.isna()]
    if len(bad):
        raise FrameError(f"send_at column {column!r} has missing or unreadable times", list(bad))
    if times.dt.tz is None:
        if zones is None:
            raise FrameError(f"send_at column {column!r} has times without a time zone: make them tz-aware or say "
                             "where they are with tz= (a zone, or a column of zones)", list(df.index))
        if isinstance(zones, str):
            times = times.dt.tz_localize(zones, ambiguous="NaT", nonexistent="shift_forward")
        else:
            local = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, UTC]")
            for name, rows in pd.Series(zones, index=df.index).groupby(zones).groups.items():
                local.loc[rows] = times.loc[rows].dt.tz_localize(name, ambiguous="NaT",
                                                                 nonexistent="shift_forward").dt.tz_convert("UTC")
            times = local
        ambiguous = df.index[times.isna()]
        if len(ambiguous):
            raise FrameError(f"send_at column {column!r}: times that happen twice in their zone (a daylight-saving "
                             "change); give them with an offset", list(ambiguous))
    due = times.dt.tz_convert("UTC").dt.as_unit("ms").astype("int64").to_numpy()
    past = due < now
    if past.any() and spec.strict:
        raise FrameError("send_at is in the past (strict=True)", list(df.index[past]))
    return np.asarray(due, dtype=np.int64)
