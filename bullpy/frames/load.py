"""Campaigns from DataFrames: ``add_frame`` validates a whole frame, then queues one job per row in chunks."""

from __future__ import annotations

import datetime as dt
import math
import re
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._core.codec import to_json
from .._core.keys import check_job_id
from ..errors import FrameError, FrameLoadInterrupted, MissingDependency
from ..retry import RetryPolicy
from ..utils import now_ms

if TYPE_CHECKING:
    import pandas as pd

    from ..queue import Queue

try:
    import pandas as pd
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise MissingDependency("pandas", "pandas") from exc

ALL_STATES = ("waiting", "paused", "active", "delayed", "completed", "failed")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(ms|s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "sec": 1000, "second": 1000, "m": 60_000, "min": 60_000, "minute": 60_000,
            "h": 3_600_000, "hour": 3_600_000, "d": 86_400_000, "day": 86_400_000}


def parse_rate(rate: str | float | None) -> float | None:
    """``"20/min"``, ``"5/s"``, ``"100/h"`` or jobs per second -> milliseconds between two jobs."""
    if rate is None:
        return None
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        if rate <= 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be positive, got {rate!r}")
        return 1000.0 / float(rate)
    if not isinstance(rate, str):
        raise TypeError(f"rate must be like '20/min' or a number per second, got {rate!r}")
    match = _RATE.match(rate)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"rate must be like '20/min', '5/s' or '100/h', got {rate!r}")
    return _UNIT_MS[match.group(2)] / float(match.group(1))


def _template_fields(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


def _js_date(value: Any) -> str:
    """A timestamp as JavaScript's Date.toJSON writes it (naive values are taken as UTC)."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return str(ts.strftime("%Y-%m-%dT%H:%M:%S.")) + f"{ts.microsecond // 1000:03d}Z"


def _column_values(series: pd.Series) -> list[Any]:
    """A column as JSON-ready Python values: numpy scalars unboxed, timestamps as JS dates, NA as None."""
    kind = series.dtype.kind
    if kind == "M":
        return [None if pd.isna(v) else _js_date(v) for v in series]
    values: list[Any] = series.tolist()
    if kind == "O" and _plain_kind(series):
        return values  # all str (or all int/bool): nothing to convert, the common case for text columns
    # Nullable extension dtypes (Int64, boolean, string) hand out pd.NA for gaps: take the general path.
    if kind in "fcOSU" or series.hasnans:
        out: list[Any] = []
        for v in values:
            if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
                out.append(None)
            elif isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
                out.append(int(v))  # pandas turns int columns with gaps into floats; JS writes 12 either way
            elif isinstance(v, (pd.Timestamp, dt.datetime)):
                out.append(_js_date(v))
            elif hasattr(v, "item") and not isinstance(v, (list, dict, str)):
                out.append(v.item())  # numpy scalars in object columns
            else:
                out.append(v)
        return out
    return values


def _plain_kind(series: pd.Series) -> bool:
    """True when an object column holds only str, only ints or only bools (checked in C by pandas)."""
    return not series.hasnans and pd.api.types.infer_dtype(series, skipna=False) in ("string", "integer", "boolean")


class _Plan:
    """Everything validated about a frame before anything is written."""

    data: Any
    data_columns: list[Any] | None
    per_row: dict[str, str]
    constant: dict[str, Any]
    ids: list[str] | None
    fixed_dues: list[int] | None
    offsets: list[int]
    name: str | None
    chunk_size: int
    queue: Queue
    has_delay: bool

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


def add_frame(
    queue: Queue,
    df: pd.DataFrame,
    *,
    data: Sequence[str] | Callable[[Mapping[str, Any]], Any] | None = None,
    name: str | None = None,
    job_id: str | None = None,
    priority: str | int | None = None,
    delay: str | int | None = None,
    send_at: str | None = None,
    attempts: str | int | None = None,
    backoff: int | Mapping[str, Any] | None = None,
    rate: str | float | None = None,
    allow_null: bool | Sequence[str] = False,
    strict: bool = False,
    chunk_size: int = 1000,
    progress: bool = True,
    dry_run: bool = False,
    retry: RetryPolicy | None = None,
    **job_options: Any,
) -> pd.DataFrame:
    """Queue one job per row; returns a frame aligned to ``df.index`` with ``job_id`` and ``status``.

    Args:
        data: the columns that make each job's data (default: all), or a function row -> data.
        name: the job name for every row (default Bull's ``__default__``).
        job_id: a column, or a template such as ``"spring-{customer_id}"``; with ids a re-run adds only
            the rows not queued yet (``status`` ``duplicate`` for the others).
        priority, delay, attempts: a column name or one value for all rows.
        send_at: a datetime column; each job is delayed until then (``strict``: a time in the past is an
            error, else it is sent now).
        rate: pace the campaign, e.g. ``"20/min"``: row *i* (in frame order) waits *i* intervals more.
        allow_null: columns (or True for all) whose missing values become JSON null; elsewhere a missing
            value is an error naming the rows.
        chunk_size: rows per atomic script call.
        progress: show a progress bar (tqdm: a widget in notebooks, text in terminals).
        dry_run: validate and encode every row, write nothing; ``status`` is ``would_add`` (or
            ``duplicate`` where a given job id already exists) and auto ids are left empty.
        retry: how long to retry a chunk cut by a Redis restart or failover (``bullpy.retry.RetryPolicy``;
            default about a minute). Only chunks with job ids are sent again; without ids a chunk cut in
            flight stops the load with ``FrameLoadInterrupted`` naming the rows queued for sure
            (``Queue.chunk_writer`` has the details; with Sentinel a chunk counts once a replica has it).
        job_options: any other ``Queue.add`` option, for every row (``remove_on_complete=...``).
    """
    plan = _validate(queue, df, data=data, name=name, job_id=job_id, priority=priority, delay=delay,
                     send_at=send_at, attempts=attempts, backoff=backoff, rate=rate, allow_null=allow_null,
                     strict=strict, chunk_size=chunk_size, job_options=job_options)
    # With given ids the result reuses them: a million-row load keeps one copy of its ids, not two.
    ids: list[str] = [] if plan.ids is None else plan.ids
    statuses: list[str] = []
    bar = _progress(len(df), progress, f"{queue.name}")
    writer = None if dry_run else queue.chunk_writer(idempotent=plan.ids is not None, total=len(df), retry=retry)
    try:
        for start, jobs in _chunks(plan, df):
            if writer is None:  # dry run
                statuses.extend(_dry_run_statuses(queue, jobs, None if plan.ids is None else
                                                  plan.ids[start : start + len(jobs)]))
                if plan.ids is None:
                    ids.extend([""] * len(jobs))
                if bar is not None:
                    bar.update(len(jobs))
                continue
            chunk_ids, chunk_statuses = writer.add(start, jobs)
            if plan.ids is None:
                ids.extend(chunk_ids)
            statuses.extend(chunk_statuses)
            if bar is not None:
                bar.update(len(jobs))
    finally:
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.close()
    return pd.DataFrame({"job_id": ids, "status": statuses}, index=df.index)


def _dry_run_statuses(queue: Queue, jobs: list[dict[str, Any]], ids: Sequence[str] | None) -> list[str]:
    """What a real run would report for one chunk, read-only: validate, then look up given ids."""
    queue.add_bulk(jobs, dry_run=True)
    if ids is None:
        return ["would_add"] * len(jobs)
    with queue.raw as raw:
        found = raw.job_presence(ids)
    return ["duplicate" if exists else "would_add" for exists, _ in found]


def _validate(queue: Queue, df: pd.DataFrame, **kw: Any) -> _Plan:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"add_frame needs a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(kw["chunk_size"], int) or kw["chunk_size"] < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {kw['chunk_size']!r}")
    if not df.index.is_unique:
        raise FrameError("the frame's index has duplicate labels; results are aligned to it", 
                         list(df.index[df.index.duplicated()]))
    columns = [str(c) for c in df.columns]
    if len(set(columns)) != len(columns):
        raise FrameError(f"the frame has duplicate column names: {sorted({c for c in columns if columns.count(c) > 1})}")

    def need(column: str, what: str) -> None:
        if column not in df.columns:
            raise FrameError(f"{what}: no column {column!r} in the frame (columns: {columns})")

    data = kw["data"]
    if data is None:
        data_columns = [c for c in df.columns]
    elif callable(data):
        data_columns = None
    else:
        if isinstance(data, str):
            raise TypeError("data must be a list of column names or a function row -> data")
        for c in data:
            need(c, "data")
        data_columns = list(data)

    per_row: dict[str, str] = {}
    constant: dict[str, Any] = {}
    for option in ("priority", "delay", "attempts"):
        value = kw[option]
        if isinstance(value, str):
            need(value, option)
            per_row[option] = value
        elif value is not None:
            constant[option] = value
    if kw["backoff"] is not None:
        constant["backoff"] = kw["backoff"]
    if "job_id" in kw["job_options"]:
        raise TypeError("pass job_id as add_frame(job_id=column or template)")
    constant.update(kw["job_options"])
    if "repeat" in constant:
        raise ValueError("repeatable jobs cannot be added from a frame; use queue.add(..., repeat=...)")

    # Null checks, vectorised: data columns and option columns must be complete unless allowed.
    allow = kw["allow_null"]
    allowed = set(df.columns) if allow is True else set(allow or ())
    for c in allowed:
        need(c, "allow_null")
    checked = (data_columns or []) + list(per_row.values())
    for c in dict.fromkeys(checked):
        if c in allowed and c in (data_columns or []) and c not in per_row.values():
            continue
        missing = df.index[df[c].isna()]
        if len(missing):
            raise FrameError(f"column {c!r} has missing values (NaN/None/NA); pass allow_null=[{c!r}] to send "
                             f"them as null", list(missing))

    ids: list[str] | None = None
    template = kw["job_id"]
    if template is not None:
        if not isinstance(template, str) or not template:
            raise TypeError("job_id must be a column name or a template such as 'spring-{customer_id}'")
        if template in df.columns:
            series = df[template]
            bad = df.index[series.isna()]
            if len(bad):
                raise FrameError(f"job_id column {template!r} has missing values", list(bad))
            ids = [str(v) for v in _column_values(series)]
        else:
            fields = _template_fields(template)
            if not fields:
                raise FrameError(f"job_id {template!r} is neither a column nor a template with {{column}} fields")
            for f in fields:
                need(f, "job_id template")
            values = {f: _column_values(df[f]) for f in fields}
            ids = [template.format_map({f: values[f][i] for f in fields}) for i in range(len(df))]
        dup = pd.Series(ids, index=df.index).duplicated(keep=False)
        if dup.any():
            raise FrameError("job ids repeat within the frame (each row needs its own)", list(df.index[dup]))
        for label, value in zip(df.index, ids):
            try:
                check_job_id(value)
            except ValueError as exc:
                raise FrameError(f"job_id: {exc}", [label]) from None

    now = now_ms()
    fixed_dues: list[int] | None = None  # send_at, epoch ms
    offsets = [0] * len(df)  # rate pacing, ms after the load starts (or after send_at)
    if kw["send_at"] is not None:
        need(kw["send_at"], "send_at")
        times = pd.to_datetime(df[kw["send_at"]], utc=True, errors="coerce")
        bad = df.index[times.isna()]
        if len(bad):
            raise FrameError(f"send_at column {kw['send_at']!r} has missing or unreadable times", list(bad))
        # Epoch ms whatever the resolution pandas chose (ns before pandas 3, us after).
        due = times.dt.as_unit("ms").astype("int64").tolist()
        past = [label for label, d in zip(df.index, due) if d < now]
        if past and kw["strict"]:
            raise FrameError("send_at is in the past (strict=True)", past)
        fixed_dues = [int(d) for d in due]
    interval = parse_rate(kw["rate"])
    if interval is not None:
        offsets = [int(round(i * interval)) for i in range(len(df))]

    # Options through the library's own validation: the constants once, each distinct value of an
    # option column once, so a bad value is found before the first write and named by its rows.
    queue.add_bulk([{"data": {}, "name": kw["name"], "opts": constant}], dry_run=True)
    for option, column in per_row.items():
        column_values = _column_values(df[column])
        for value in dict.fromkeys(column_values):
            try:
                queue.add_bulk([{"data": {}, "opts": {**constant, option: value}}], dry_run=True)
            except (TypeError, ValueError) as exc:
                rows = [label for label, v in zip(df.index, column_values) if v == value]
                raise FrameError(f"column {column!r}: {str(exc).removeprefix('add_bulk item 0: ')}", rows) from None
    # Object columns are the only ones that can hold values JSON cannot write: check them up front.
    if data_columns is not None:
        for c in data_columns:
            if df[c].dtype.kind == "O" and not _plain_kind(df[c]):
                for label, v in zip(df.index, _column_values(df[c])):
                    try:
                        to_json(v, where=f"data[{str(c)!r}]")
                    except (TypeError, ValueError) as exc:
                        raise FrameError(str(exc), [label]) from None
    return _Plan(data=data, data_columns=data_columns, per_row=per_row, constant=constant, ids=ids,
                 fixed_dues=fixed_dues, offsets=offsets, name=kw["name"], chunk_size=kw["chunk_size"], queue=queue,
                 has_delay=kw["send_at"] is not None or interval is not None)


def _chunks(plan: Any, df: pd.DataFrame) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    load_start: int | None = None
    for start in range(0, len(df), plan.chunk_size):
        chunk = df.iloc[start : start + plan.chunk_size]
        n = len(chunk)
        if plan.data_columns is not None:
            cols = [str(c) for c in plan.data_columns]
            values = [_column_values(chunk[c]) for c in plan.data_columns]
            rows_data: list[Any] = [dict(zip(cols, row)) for row in zip(*values)] if values else [{}] * n
        else:
            records = chunk.to_dict("records")
            rows_data = []
            for label, record in zip(chunk.index, records):
                try:
                    rows_data.append(plan.data(record))
                except Exception as exc:
                    raise FrameError(f"data function failed: {exc}", [label]) from exc
        option_values = {opt: _column_values(chunk[col]) for opt, col in plan.per_row.items()}
        # Delays count from each chunk's own creation time, so a long load does not push sends later.
        chunk_now = now_ms()
        if load_start is None:
            load_start = chunk_now
        jobs = []
        for i in range(n):
            opts = dict(plan.constant)
            for opt, vals in option_values.items():
                opts[opt] = vals[i]
            if plan.has_delay:
                row = start + i
                base = load_start if plan.fixed_dues is None else max(plan.fixed_dues[row], load_start)
                opts["timestamp"] = chunk_now
                opts["delay"] = int(opts.get("delay") or 0) + max(base + plan.offsets[row] - chunk_now, 0)
            if plan.ids is not None:
                opts["job_id"] = plan.ids[start + i]
            job: dict[str, Any] = {"data": rows_data[i], "opts": opts}
            if plan.name is not None:
                job["name"] = plan.name
            jobs.append(job)
        yield start, jobs


def _progress(total: int, enabled: bool, label: str) -> Any:
    if not enabled or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=f"queueing to {label}", unit="job")


