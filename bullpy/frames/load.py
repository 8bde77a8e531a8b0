"""Campaigns from DataFrames: ``add_frame`` checks a whole frame, then queues one job per row in pipelined
chunks; ``load_file`` does the same for a CSV/Parquet/JSON-lines file of any size, a record batch at a time.

One straight path: ``check`` turns the frame into what a chunk needs (each data column's encoding, ids,
per-row options, due times from ``schedule``), ``Queue.chunk_writer`` encodes each chunk whole in the core
(``bullpy._core.rows``) and sends it while Redis runs the previous one, and the ids and statuses come back as
columns.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FrameError, MissingDependency, NumericIdentifierWarning
from ..retry import RetryPolicy
from ..utils import now_ms
from .check import Checked, Spec, check_batch, column_values, make_spec
from .schedule import Scheduler

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
    window: tuple[str, str] | str | None = None,
    tz: str | None = None,
    schema: Mapping[str, Any] | str | None = None,
    allow_null: bool | Sequence[str] = False,
    strict: bool = False,
    chunk_size: int = 1000,
    progress: bool = True,
    dry_run: bool = False,
    retry: RetryPolicy | None = None,
    **job_options: Any,
) -> pd.DataFrame:
    """Queue one job per row; returns a frame aligned to ``df.index`` with ``job_id`` and ``status`` (and
    ``send_at``, each row's planned send time in UTC, when rows are scheduled).

    Every row is checked before the first write (values JSON cannot write, ±inf, naive datetimes, what a
    ``data`` function returns, the ``schema``, ids, option values): a bad frame raises ``FrameError`` naming
    the rows and leaves Redis unchanged.

    Args:
        data: the columns that make each job's data (default: all), or a function row -> data.
        name: the job name for every row (default Bull's ``__default__``).
        job_id: a column, or a template such as ``"spring-{customer_id}"``; with ids a re-run adds only
            the rows not queued yet (``status`` ``duplicate`` for the others).
        priority, delay, attempts: a column name or one value for all rows.
        send_at: a column of times; each job is delayed until then (``strict``: a time in the past is an
            error, else it is sent now). Times without a zone are read in ``tz``.
        rate: pace the campaign, e.g. ``"20/min"``: at most one row per interval, in frame order.
        window: sending hours, e.g. ``("09:00", "20:00")``, in each row's zone (``tz``): a row is delayed to
            the next moment its recipient's clock is inside the window; with ``rate``, rows that would fall
            outside move to the next window, in order.
        tz: the zone of ``window`` and of zoneless ``send_at`` times: an IANA name, or a column of names.
        schema: the JSON types the worker expects, e.g. ``{"number": str, "message": str}``; checked per row.
            Integer columns of 8 digits or more not declared ``int`` warn (``NumericIdentifierWarning``).
        allow_null: columns (or True for all) whose missing values become JSON null; elsewhere a missing
            value is an error naming the rows.
        chunk_size: rows per atomic script call.
        progress: show a progress bar (tqdm: a widget in notebooks, text in terminals).
        dry_run: check and encode every row, write nothing; ``status`` is ``would_add`` (or ``duplicate``
            where a given job id already exists), auto ids are left empty, ``send_at`` shows the plan.
        retry: how long to retry a chunk cut by a Redis restart or failover (``bullpy.retry.RetryPolicy``;
            default about a minute). Only chunks with job ids are sent again; without ids a chunk cut in
            flight stops the load with ``FrameLoadInterrupted`` naming the rows queued for sure
            (``bullpy._loading`` has the details; with Sentinel a chunk counts once a replica has it).
        job_options: any other ``Queue.add`` option, for every row (``remove_on_complete=...``).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"add_frame needs a pandas DataFrame, got {type(df).__name__}")
    _check_chunk_size(chunk_size)
    spec = make_spec(queue, list(df.columns), data=data, name=name, job_id=job_id, priority=priority, delay=delay,
                     send_at=send_at, attempts=attempts, backoff=backoff, interval=parse_rate(rate), window=window,
                     tz=tz, schema=schema, allow_null=allow_null, strict=strict, job_options=job_options)
    now = now_ms()
    checked = check_batch(spec, df, now)
    scheduler = Scheduler(start_ms=now, interval=spec.interval, window=spec.window) if spec.scheduled else None
    dues = scheduler.dues(checked.bases, checked.zones, len(df)) if scheduler is not None else None
    load = _Load(queue, spec, total=len(df), idempotent=checked.ids is not None, dry_run=dry_run, retry=retry,
                 progress=progress, chunk_size=chunk_size, keep=True, planned_at=now)
    with load:
        load.write(df, checked, dues, 0)
        load.finish()
    columns: dict[str, Any] = {"job_id": load.ids, "status": load.statuses}
    if dues is not None:
        columns["send_at"] = pd.to_datetime(dues, unit="ms", utc=True)
    return pd.DataFrame(columns, index=df.index)


def load_file(
    queue: Queue,
    path: str | Path,
    *,
    format: str | None = None,
    batch_rows: int = 100_000,
    chunk_size: int = 1000,
    progress: bool = True,
    dry_run: bool = False,
    retry: RetryPolicy | None = None,
    data: Sequence[str] | Callable[[Mapping[str, Any]], Any] | None = None,
    rate: str | float | None = None,
    **options: Any,
) -> dict[str, int]:
    """``add_frame`` for a CSV, Parquet or JSON-lines file of any size, in bounded memory.

    The file is read twice, ``batch_rows`` rows at a time: the first pass checks every row (and that job ids
    do not repeat anywhere in the file), the second writes; nothing is written if any row is bad. Row labels
    in errors are the file's data row numbers (from 0). A ``data`` function runs in both passes (it must
    give the same result twice). Takes ``add_frame``'s options; returns counts per status and ``rows``.
    """
    from .files import read_campaign

    _check_chunk_size(chunk_size)
    if not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValueError(f"batch_rows must be a positive integer, got {batch_rows!r}")
    interval = parse_rate(rate)

    def batches() -> Iterator[pd.DataFrame]:
        return iter(read_campaign(path, format=format, chunksize=batch_rows))

    now = now_ms()
    spec: Spec | None = None
    hashes: list[np.ndarray[Any, Any]] = []
    total = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NumericIdentifierWarning)
        for batch in batches():
            spec = spec or _file_spec(queue, batch, data, interval, options)
            _same_columns(spec, batch)
            checked = check_batch(spec, batch, now)
            if checked.ids is not None:
                hashes.append(pd.util.hash_array(np.asarray(checked.ids, dtype=object)))
            total += len(batch)
    said: set[str] = set()
    for warning in caught:  # once per column, not once per batch
        column = str(warning.message).split(" holds ", 1)[0]
        if column not in said:
            said.add(column)
            warnings.warn(warning.message, warning.category, stacklevel=2)
    if spec is None:
        return {"rows": 0}
    if hashes:
        _no_repeated_ids(spec, batches(), np.concatenate(hashes), now)
    idempotent = spec.id_column is not None or spec.id_template is not None
    scheduler = Scheduler(start_ms=now, interval=spec.interval, window=spec.window) if spec.scheduled else None
    load = _Load(queue, spec, total=total, idempotent=idempotent, dry_run=dry_run, retry=retry, progress=progress,
                 chunk_size=chunk_size, keep=False, planned_at=now)
    with load, warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericIdentifierWarning)  # said in the first pass
        start = 0
        for batch in batches():
            checked = check_batch(spec, batch, now)
            dues = scheduler.dues(checked.bases, checked.zones, len(batch)) if scheduler is not None else None
            load.write(batch, checked, dues, start)
            start += len(batch)
        load.finish()
    return {"rows": total, **load.counts}


def _file_spec(queue: Queue, batch: pd.DataFrame, data: Any, interval: float | None, options: dict[str, Any]) -> Spec:
    known = {"name", "job_id", "priority", "delay", "send_at", "attempts", "backoff", "window", "tz", "schema",
             "allow_null", "strict"}
    kw: dict[str, Any] = {k: options.get(k) for k in known}
    kw["allow_null"] = options.get("allow_null", False)
    kw["strict"] = bool(options.get("strict", False))
    return make_spec(queue, list(batch.columns), data=data, interval=interval,
                     job_options={k: v for k, v in options.items() if k not in known}, **kw)


def _same_columns(spec: Spec, batch: pd.DataFrame) -> None:
    if tuple(batch.columns) != spec.columns:
        raise FrameError(f"a record batch has columns {list(batch.columns)}, the first had {list(spec.columns)}")


def _no_repeated_ids(spec: Spec, batches: Iterator[pd.DataFrame], hashes: np.ndarray[Any, Any], now: int) -> None:
    """Job ids must not repeat across the whole file: 8-byte hashes find candidates, a re-read confirms."""
    values, counts = np.unique(hashes, return_counts=True)
    suspects = set(values[counts > 1].tolist())
    if not suspects:
        return
    rows: dict[str, list[Any]] = {}
    for batch in batches:
        checked = check_batch(spec, batch, now)
        ids = checked.ids or []
        batch_hashes = pd.util.hash_array(np.asarray(ids, dtype=object))
        for label, job_id, h in zip(batch.index, ids, batch_hashes.tolist()):
            if h in suspects:
                rows.setdefault(job_id, []).append(label)
    repeated = sorted(label for labels in rows.values() if len(labels) > 1 for label in labels)
    if repeated:
        raise FrameError("job ids repeat within the file (each row needs its own)", repeated)


def _check_chunk_size(chunk_size: object) -> None:
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")


class _Load:
    """One campaign's writes: chunks through the queue's pipelined chunk writer (or encoded only, dry run),
    results kept as columns (``keep``) or counted."""

    def __init__(self, queue: Queue, spec: Spec, *, total: int, idempotent: bool, dry_run: bool,
                 retry: RetryPolicy | None, progress: bool, chunk_size: int, keep: bool, planned_at: int) -> None:
        self.queue, self.spec, self.total = queue, spec, total
        self.dry_run, self.chunk_size, self.keep = dry_run, chunk_size, keep
        self.delays_per_row = spec.scheduled
        row_options = [o for o in spec.row_columns if not (o == "delay" and self.delays_per_row)]
        if self.delays_per_row:
            row_options.append("delay")
        if idempotent:
            row_options.append("job_id")
        constant = dict(spec.constant)
        if self.delays_per_row:
            constant.pop("delay", None)  # part of each row's due time
        self.writer = queue.chunk_writer(idempotent=idempotent, total=total, retry=retry, name=spec.name,
                                         row_options=row_options, **constant)
        self.ids: list[str] = []
        self.statuses: list[str] = [""] * total if keep else []
        self.counts: dict[str, int] = {}
        self._given_ids = idempotent
        self.bar = _progress(total, progress, queue.name)
        self.planned_at = planned_at
        self.shift: int | None = None

    def __enter__(self) -> _Load:  # noqa: PYI034 (typing.Self needs Python 3.11)
        if self.keep and not self._given_ids:
            self.ids = [""] * self.total
        return self

    def __exit__(self, *exc: object) -> None:
        self.writer.close()
        if self.bar is not None:
            self.bar.close()

    def write(self, df: pd.DataFrame, checked: Checked, dues: np.ndarray[Any, Any] | None, offset: int) -> None:
        """Queue the rows of ``df`` (rows ``offset``... of the campaign)."""
        if self.keep and self._given_ids and checked.ids is not None:
            self.ids = checked.ids if not self.ids else self.ids + checked.ids
        series = {c: df[c] for c, _ in checked.kinds}
        for a in range(0, len(df), self.chunk_size):
            b = min(len(df), a + self.chunk_size)
            data: Any
            if checked.data_json is not None:
                data = checked.data_json[a:b]
            elif checked.kinds:
                data = [(str(c), "str" if kind == "date" else kind, column_values(series[c].iloc[a:b], kind))
                        for c, kind in checked.kinds]
            else:
                data = ["{}"] * (b - a)
            values: dict[str, Sequence[Any]] = {}
            if checked.ids is not None:
                values["job_id"] = checked.ids[a:b]
            for option, column_ints in checked.options.items():
                if not (option == "delay" and self.delays_per_row):
                    values[option] = column_ints[a:b]
            chunk_now = now_ms()
            if dues is not None:
                if self.shift is None:
                    # A campaign paced from its start counts from its first write, not from when it was
                    # checked; absolute times (send_at, windows) stay where they are.
                    relative = self.spec.send_at is None and self.spec.window is None and "delay" not in checked.options
                    self.shift = max(chunk_now - self.planned_at, 0) if relative and not self.dry_run else 0
                if self.shift:
                    dues[a:b] += self.shift
                values["delay"] = np.maximum(dues[a:b] - chunk_now, 0).tolist()
            if self.dry_run:
                self.writer.encode(data, timestamp=chunk_now, values=values)
                self._record(offset + a, None, self._dry_statuses(checked.ids[a:b] if checked.ids else None, b - a))
            else:
                for start, ids, statuses in self.writer.add(offset + a, data, timestamp=chunk_now, values=values):
                    self._record(start, ids, statuses)

    def finish(self) -> None:
        if not self.dry_run:
            for start, ids, statuses in self.writer.flush():
                self._record(start, ids, statuses)

    def _record(self, start: int, ids: list[str] | None, statuses: list[str]) -> None:
        n = len(statuses)
        if self.keep:
            self.statuses[start : start + n] = statuses
            if ids is not None and (not self._given_ids or "debounced" in statuses):
                self.ids[start : start + n] = ids
        else:
            for status in set(statuses):
                self.counts[status] = self.counts.get(status, 0) + statuses.count(status)
        if self.bar is not None:
            self.bar.update(n)

    def _dry_statuses(self, ids: Sequence[str] | None, n: int) -> list[str]:
        """What a real run would report for one chunk, read-only: look up given ids."""
        if ids is None:
            return ["would_add"] * n
        with self.queue.raw as raw:
            found = raw.job_presence(list(ids))
        return ["duplicate" if exists else "would_add" for exists, _ in found]


def _progress(total: int, enabled: bool, label: str) -> Any:
    if not enabled or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=f"queueing to {label}", unit="job")
