"""Any queue back as a DataFrame: ``jobs_frame``, ``iter_jobs_frames``, ``counts_frame`` and ``campaign_status``.

``jobs_frame`` reads a few hash fields per job (``queue.raw.iter_state_fields``: one SORT ... GET per batch,
the next batch in flight while this one is decoded), decodes each batch column by column (``_core.frame_codec``: Node's
``Job.fromJSON`` rules, without a dict per job) and keeps only compact column chunks (Arrow strings, numpy
numbers), so a million jobs cost little more than the frame they make. ``iter_jobs_frames`` hands the same
frames out ``chunk_rows`` at a time, for queues bigger than memory.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Generator, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .._core.frame_codec import FRAME_FIELDS, FrameBatch, decode_batch
from ..errors import MissingDependency
from .load import ALL_STATES

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..queue import Queue
    from ..raw import RawQueue

try:
    import numpy as np
    import pandas as pd
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise MissingDependency("pandas", "pandas") from exc

try:
    import pyarrow as pa  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - pyarrow comes with the extra; without it strings stay objects
    pa = None

_FIELDS = ("id", "state", "name", "data", "priority", "delay", "attempts_made", "progress", "timestamp",
           "processed_on", "finished_on", "failed_reason", "returnvalue", "parse_error")
_TIMES = ("timestamp", "processed_on", "finished_on")
_INTS = ("priority", "delay", "attempts_made")
_TEXTS = ("name", "failed_reason", "parse_error")  # pandas' "string" dtype (NA for missing)
_NAT = np.iinfo(np.int64).min


def _arrow_dtype(dtype: Any) -> Any:
    """``dtype`` when it is an Arrow-backed string dtype that can wrap Arrow chunks as they are, else None."""
    return dtype if pa is not None and isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow" else None


# What pandas itself gives a column of str (pandas 3: Arrow-backed "str"), and its "string" dtype.
_STR = pd.Series(["x"]).dtype
_STRING = pd.StringDtype()
_ARROW_STR = _arrow_dtype(_STR)
# Arrow's default allocator (mimalloc) keeps the memory of the builders' growing buffers long after they
# are freed: about 40% of a big frame on top of it. The system allocator gives it back.
_POOL = pa.system_memory_pool() if pa is not None else None
# The Arrow type pandas keeps its strings in (large_string): chunks built so are wrapped, not converted.
_ARROW_TYPE = pa.array(pd.array(["x"], dtype=_ARROW_STR)).type if _ARROW_STR is not None else None


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic GC off while columns are built: a million new dicts and lists would run it hundreds of
    times over everything alive (the reason reading slowed down as frames grew); nothing built here cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- columns, batch by batch -----------------------------------------------------------------------------

def _time_array(ms: Any) -> Any:
    """int64 epoch milliseconds (NaT where ``_NAT``) as a ``datetime64[ms, UTC]`` array."""
    return pd.Series(ms.view("datetime64[ms]"), copy=False).dt.tz_localize("UTC").array


def _objects(values: list[Any]) -> Any:
    return pd.Series(values, dtype=object).array  # lists stay one value each (np.array would nest them)


class _Column:
    """One column's chunks, one per batch: Arrow arrays for text (wrapped, not copied, at the end), numpy or
    pandas arrays otherwise."""

    def __init__(self, dtype: Any = None) -> None:
        self.dtype = dtype
        self.chunks: list[Any] = []

    def add_text(self, values: list[Any]) -> None:
        if _arrow_dtype(self.dtype) is not None:
            none = values.count(None)
            self.chunks.append(pa.nulls(len(values), _ARROW_TYPE, memory_pool=_POOL) if none and none == len(values)
                               else pa.array(values, type=_ARROW_TYPE, memory_pool=_POOL))
        else:
            self.chunks.append(pd.array(values, dtype=self.dtype))

    def build(self) -> Any:
        chunks, self.chunks = self.chunks, []
        arrow = pa is not None and [isinstance(c, pa.Array) for c in chunks]
        if chunks and arrow and all(arrow):
            return pd.array(pa.chunked_array(chunks, type=_ARROW_TYPE), dtype=self.dtype)
        parts = [pd.Series(pd.array(c, dtype=self.dtype) if pa is not None and isinstance(c, pa.Array) else c,
                           copy=False) for c in chunks]
        if not parts:
            return pd.array([], dtype=self.dtype or object)
        return (pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]).array


def _ints(values: list[Any]) -> Any:
    """Nullable integers; a value Node let through as a fraction (or a string) keeps it, as Float64/object."""
    if set(map(type, values)) == {int}:
        try:
            return pd.arrays.IntegerArray(np.fromiter(values, np.int64, len(values)), np.zeros(len(values), bool))
        except OverflowError:
            pass
    for dtype in ("Int64", "Float64"):
        try:
            return pd.array(values, dtype=dtype)
        except (TypeError, ValueError, OverflowError):
            pass
    return _objects(values)


def _times(values: Sequence[int | None]) -> Any:
    """Epoch milliseconds as int64; ``_NAT`` where None or beyond what a datetime64 holds."""
    if None not in values:
        try:
            return np.fromiter(values, np.int64, len(values))
        except OverflowError:
            pass
    out = np.full(len(values), _NAT, np.int64)
    for i, v in enumerate(values):
        if v is not None and _NAT < v < 2**63:
            out[i] = v
    return out


def _inferred(values: list[Any]) -> Any:
    """A column chunk of plain values as pandas infers it (strings as Arrow chunks where pandas keeps them so)."""
    kinds = set(map(type, values))
    if _ARROW_STR is not None and str in kinds and kinds <= {str, type(None)}:
        return pa.array(values, type=_ARROW_TYPE, memory_pool=_POOL)
    if kinds == {int} or kinds == {float} or kinds == {int, float}:
        try:
            return np.fromiter(values, np.int64 if kinds == {int} else np.float64, len(values))
        except OverflowError:
            pass
    if kinds <= {int, float, bool, str, type(None)}:
        return pd.Series(values, copy=False).array
    return _objects(values)


class _FrameBuilder:
    """Accumulates batches as compact column chunks and makes the frame they form."""

    def __init__(self, wanted: Sequence[str], labels: Sequence[str], expand_data: bool) -> None:
        self.wanted, self.labels, self.expand = list(wanted), list(labels), expand_data
        self.rows = 0
        self.sizes: list[int] = []
        self.columns = {f: _Column(_STR if f == "id" else _STRING if f in _TEXTS else None)
                        for f in wanted if f != "data"}
        self.data = _Column()  # the data column itself (expand_data=False, or data that is not an object)
        self.has_data = False
        self.members: dict[str, dict[int, Any]] = {}  # data.<member> -> {batch number: chunk}

    def add(self, label: str, batch: FrameBatch) -> None:
        n = len(batch.ids)
        if not n:
            return
        cols = self.columns
        self.sizes.append(n)
        self.rows += n
        for f, column in cols.items():
            if f == "id":
                column.add_text(batch.ids)
            elif f == "state":
                column.chunks.append(np.full(n, self.labels.index(label), np.int8))
            elif f == "parse_error":
                column.add_text(batch.errors or [None] * n)
            elif f in _TEXTS:
                column.add_text(getattr(batch, f))
            elif f in _INTS:
                column.chunks.append(_ints(getattr(batch, f)))
            elif f in _TIMES:
                column.chunks.append(_times(getattr(batch, f)))
            else:  # progress, returnvalue: parsed JSON
                column.chunks.append(_inferred(getattr(batch, f)))
        if "data" in self.wanted:
            self._add_data(batch.data, n)

    def _add_data(self, data: list[Any], n: int) -> None:
        number = len(self.sizes) - 1
        plain: list[Any] | None = data
        if self.expand:
            first = data[0].keys() if type(data[0]) is dict else None
            if first is not None and set(map(type, data)) == {dict} and all(map(first.__eq__, map(dict.keys, data))):
                members = {k: list(map(itemgetter(k), data)) for k in first}  # the usual: one shape throughout
                plain = None
            else:
                keys = dict.fromkeys(k for d in data if type(d) is dict for k in d)
                members = {k: [d.get(k) if type(d) is dict else None for d in data] for k in keys}
                plain = [None if type(d) is dict else d for d in data]
                if all(v is None for v in plain):
                    plain = None
            for key, values in members.items():
                self.members.setdefault(key, {})[number] = _inferred(values)
        if plain is not None and not self.has_data:
            self.has_data = True
            self.data.chunks.extend(_objects([None] * size) for size in self.sizes[:-1])  # batches before
        if self.has_data:
            self.data.chunks.append(_objects(plain or [None] * n))

    def frame(self, start: int = 0) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for f in self.wanted:
            if f == "data":
                if self.has_data:
                    columns["data"] = self.data.build()
                continue
            column = self.columns[f]
            if f == "state":
                codes = np.concatenate(column.chunks) if column.chunks else np.zeros(0, np.int8)
                columns[f] = pd.Categorical.from_codes(codes, categories=self.labels)
            elif f in _TIMES:
                columns[f] = _time_array(np.concatenate(column.chunks) if column.chunks else np.zeros(0, np.int64))
            else:
                columns[f] = column.build()
            column.chunks = []
        for key, chunks in self.members.items():
            columns[f"data.{key}"] = self._member(chunks)
        self.members = {}
        return pd.DataFrame(columns, index=pd.RangeIndex(start, start + self.rows), copy=False)

    def _member(self, chunks: dict[int, Any]) -> Any:
        column = _Column(_STR)
        if len(chunks) < len(self.sizes):
            # Batches without this member: missing there, in a dtype that holds it (ints become floats).
            sample = next(iter(chunks.values()))
            dtype = sample.dtype if pa is None or not isinstance(sample, pa.Array) else _STR
            if not (isinstance(dtype, pd.StringDtype) or getattr(dtype, "kind", "O") in "fO"):
                dtype = "float64"
            chunks = {i: chunks[i] if i in chunks else pd.array([None] * size, dtype=dtype)
                      for i, size in enumerate(self.sizes)}
        column.chunks = [chunks[i] for i in range(len(self.sizes))]
        return column.build()


# --- reading ---------------------------------------------------------------------------------------------

def _label(state: str) -> str:
    return "waiting" if state == "wait" else state


def _check(states: Sequence[str], fields: Sequence[str] | None, chunk_size: int) -> tuple[list[str], list[str]]:
    if isinstance(states, str):
        states = [states]
    wanted = list(fields) if fields is not None else list(_FIELDS)
    unknown = set(wanted) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; known: {', '.join(_FIELDS)}")
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return list(states), wanted


def _batches(raw: RawQueue, states: Sequence[str], start: int, end: int, size: int
             ) -> Generator[tuple[str, FrameBatch], None, None]:
    for state in states:
        # get_ranges' order: lists next to run first, sorted sets lowest score first but finished jobs newest first.
        for batch in raw.iter_state_fields(state, FRAME_FIELDS, asc=state not in ("completed", "failed"),
                                           start=start, stop=end, batch_size=size):
            yield _label(state), decode_batch(batch.ids, batch.columns, batch.refused, listed=_label(state) if batch.atomic else None)


def _frames(queue: Queue, states: Sequence[str], start: int, end: int, wanted: Sequence[str], expand_data: bool,
            chunk_size: int, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """Frames of about ``chunk_rows`` rows (None: one frame of everything, even when empty)."""
    labels = list(dict.fromkeys(_label(s) for s in states))
    offset = 0
    with queue.raw as raw:
        batches = _batches(raw, states, start, end, chunk_size)
        try:
            while True:
                builder = _FrameBuilder(wanted, labels, expand_data)
                exhausted = True
                with _no_gc():
                    for label, batch in batches:
                        builder.add(label, batch)
                        if chunk_rows is not None and builder.rows >= chunk_rows:
                            exhausted = False
                            break
                    frame = builder.frame(offset) if builder.rows or offset == 0 else None
                if frame is not None:
                    offset += len(frame)
                    yield frame
                if exhausted:
                    return
        finally:
            batches.close()


def jobs_frame(
    queue: Queue,
    states: Sequence[str] = ALL_STATES,
    *,
    start: int = 0,
    end: int = -1,
    fields: Sequence[str] | None = None,
    expand_data: bool = True,
    chunk_size: int = 1000,
) -> pd.DataFrame:
    """One row per job of the given states: id, state, name, data columns, options, times, parse_error.

    Jobs are read ``chunk_size`` at a time (one ``SORT ... GET`` each, a few milliseconds of Redis);
    ``start``/``end`` is the range of each state, as ``get_jobs`` takes it. Times are tz-aware UTC datetimes (``datetime64[ms, UTC]``). With
    ``expand_data`` each member of object data becomes a ``data.<member>`` column (data that is not an object
    stays in a ``data`` column). A job Node could not read (``opts`` or ``data`` not JSON) is shown with
    ``parse_error`` saying why (and no data), not dropped and not failing the frame; ``parse_error`` also
    flags data that is not UTF-8 (shown as Node reads it), JSON nested too deep for Python to print (its
    text is shown) and an id listed with no job hash behind it. Rows equal what ``get_jobs`` gives.
    """
    states, wanted = _check(states, fields, chunk_size)
    return next(_frames(queue, states, start, end, wanted, expand_data, chunk_size, None))


def iter_jobs_frames(
    queue: Queue,
    states: Sequence[str] = ALL_STATES,
    *,
    chunk_rows: int = 100_000,
    start: int = 0,
    end: int = -1,
    fields: Sequence[str] | None = None,
    expand_data: bool = True,
    chunk_size: int = 1000,
) -> Iterator[pd.DataFrame]:
    """``jobs_frame`` about ``chunk_rows`` rows at a time, read as the frames are consumed: stream a queue
    bigger than memory (to Parquet, say). Concatenated, the frames are ``jobs_frame`` (their indexes run on);
    each frame's ``data.*`` columns are those of its own jobs.

    Each batch of ``chunk_size`` jobs is read as it is reached, not as one snapshot: on a busy queue a job
    that changes state meanwhile may be missed or met twice, as with Node's paged ``getJobs``.
    """
    states, wanted = _check(states, fields, chunk_size)
    if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    yield from _frames(queue, states, start, end, wanted, expand_data, chunk_size, chunk_rows)


def counts_frame(queue: Queue | Iterable[Queue]) -> pd.DataFrame:
    """Job counts per state, one row per queue."""
    from ..queue import Queue as _Queue

    queues: list[Queue] = [queue] if isinstance(queue, _Queue) else list(queue)
    rows = []
    for q in queues:
        counts = q.get_job_counts()
        rows.append({"queue": q.name, "prefix": q.prefix, **counts, "paused_flag": q.is_paused()})
    return pd.DataFrame(rows).set_index("queue")


def campaign_status(queue: Queue, result: pd.DataFrame) -> pd.DataFrame:
    """Where each job of an ``add_frame`` result is now: state, attempts, times, failure, returnvalue, and
    ``damaged``: why a job another program damaged cannot be read as Bull wrote it (None for sound jobs)."""
    if "job_id" not in result:
        raise ValueError("campaign_status needs the frame add_frame returned (with a job_id column)")
    ids = [str(i) for i in result["job_id"]]
    jobs = {job.id: job for job in queue.get_jobs_by_ids(ids)}
    states = queue.get_states(ids)
    rows: list[dict[str, Any]] = []
    for job_id in ids:
        job = jobs.get(job_id)
        state = states.get(job_id, "missing")
        damaged = job.damaged if job is not None else (
            None if state == "missing" else f"listed in {state}, but no job hash exists")
        rows.append({
            "job_id": job_id,
            "state": state,
            "attempts_made": None if job is None else job.attempts_made,
            "due": None if job is None or not job.delay or not job.timestamp else job.timestamp + job.delay,
            "processed_on": None if job is None else job.processed_on,
            "finished_on": None if job is None else job.finished_on,
            "failed_reason": None if job is None else job.failed_reason,
            "returnvalue": None if job is None else job.returnvalue,
            "damaged": damaged,
        })
    frame = pd.DataFrame(rows, index=result.index)
    for f in ("due", "processed_on", "finished_on"):
        frame[f] = _time_array(_times([row[f] for row in rows]))
    frame["attempts_made"] = pd.array(frame["attempts_made"], dtype="Int64")
    return frame
