"""Any queue back as a DataFrame: ``jobs_frame``, ``counts_frame`` and ``campaign_status``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._core.codec import FRAME_FIELDS, frame_row
from ..errors import MissingDependency
from .load import ALL_STATES

if TYPE_CHECKING:
    import pandas as pd

    from ..queue import Queue

try:
    import pandas as pd
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise MissingDependency("pandas", "pandas") from exc

# --- reading back ----------------------------------------------------------------------------------------

_FIELDS = ("id", "state", "name", "data", "priority", "delay", "attempts_made", "progress", "timestamp",
           "processed_on", "finished_on", "failed_reason", "returnvalue")



def jobs_frame(
    queue: Queue,
    states: Sequence[str] = ALL_STATES,
    *,
    start: int = 0,
    end: int = -1,
    fields: Sequence[str] | None = None,
    expand_data: bool = True,
    chunk_size: int = 5000,
) -> pd.DataFrame:
    """One row per job of the given states: id, state, name, data columns, options and times.

    Read in pipelined chunks of ``chunk_size`` jobs; times are tz-aware UTC datetimes.
    """
    wanted = list(fields) if fields is not None else list(_FIELDS)
    unknown = set(wanted) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; known: {', '.join(_FIELDS)}")
    names = ("id", "name", "data", "priority", "delay", "attempts_made", "progress", "timestamp",
             "processed_on", "finished_on", "failed_reason", "returnvalue")
    rows: list[tuple[Any, ...]] = []
    labels: list[str] = []
    for state in states:
        ids = queue.get_ranges([state], start, end, asc=state not in ("completed", "failed"))
        label = "waiting" if state == "wait" else state
        for i in range(0, len(ids), chunk_size):
            chunk = ids[i : i + chunk_size]
            # Only the fields a row shows: no stack traces or logs cross the wire.
            for job_id, values in zip(chunk, queue.get_job_fields(chunk, FRAME_FIELDS, batch_size=chunk_size)):
                if values.count(None) == len(values):
                    continue  # removed since the range was read, as get_jobs skips it
                row = frame_row(job_id, values)
                if row is None:  # an unusual hash: Node's full fromJSON rules
                    job = queue.get_job(job_id)
                    if job is None:
                        continue  # removed since its fields were read
                    record = job.record
                    row = (record.id, record.name, record.data, record.opts.get("priority", 0),
                           record.opts.get("delay", 0), record.attempts_made, record.progress, record.timestamp,
                           record.processed_on, record.finished_on, record.failed_reason, record.returnvalue)
                rows.append(row)
                labels.append(label)
    read: dict[str, list[Any]] = {n: list(column) for n, column in zip(names, zip(*rows))} if rows else {
        n: [] for n in names}
    read["state"] = labels
    columns = {f: read[f] for f in wanted}
    frame = pd.DataFrame(columns)
    for f in ("timestamp", "processed_on", "finished_on"):
        if f in frame:
            frame[f] = pd.to_datetime(frame[f], unit="ms", utc=True)
    for f in ("priority", "delay", "attempts_made"):
        if f in frame:
            # Whole numbers as nullable ints; a hash Node let through with a fractional delay or priority
            # keeps its value (as a float) rather than failing the whole frame.
            try:
                frame[f] = pd.array(frame[f], dtype="Int64")
            except (TypeError, ValueError):
                frame[f] = pd.array(frame[f], dtype="Float64")
    if "state" in frame:
        frame["state"] = frame["state"].astype("category")
    for f in ("name", "failed_reason"):
        if f in frame:
            frame[f] = frame[f].astype("string")
    if expand_data and "data" in frame and len(frame):
        data = columns["data"]
        if all(isinstance(d, dict) for d in data):
            # Top-level data members become columns (nested values stay objects).
            expanded = pd.DataFrame.from_records(data, index=frame.index)
            expanded.columns = [f"data.{c}" for c in expanded.columns]
            frame = pd.concat([frame.drop(columns=["data"]), expanded], axis=1)
    return frame


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
    """Where each job of an ``add_frame`` result is now: state, attempts, times, failure, returnvalue."""
    if "job_id" not in result:
        raise ValueError("campaign_status needs the frame add_frame returned (with a job_id column)")
    ids = [str(i) for i in result["job_id"]]
    jobs = {job.id: job for job in queue.get_jobs_by_ids(ids)}
    states = queue.get_states(ids)
    rows = []
    for _label, job_id in zip(result.index, ids):
        job = jobs.get(job_id)
        rows.append({
            "job_id": job_id,
            "state": states.get(job_id, "missing"),
            "attempts_made": None if job is None else job.attempts_made,
            "due": None if job is None or not job.delay or not job.timestamp else job.timestamp + job.delay,
            "processed_on": None if job is None else job.processed_on,
            "finished_on": None if job is None else job.finished_on,
            "failed_reason": None if job is None else job.failed_reason,
            "returnvalue": None if job is None else job.returnvalue,
        })
    frame = pd.DataFrame(rows, index=result.index)
    for f in ("due", "processed_on", "finished_on"):
        frame[f] = pd.to_datetime(frame[f], unit="ms", utc=True)
    frame["attempts_made"] = pd.array(frame["attempts_made"], dtype="Int64")
    return frame


