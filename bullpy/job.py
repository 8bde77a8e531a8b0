"""A Bull job as Python sees it: the fields Node's ``Job.fromJSON`` reads, and the per-job operations."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._core import scripts
from ._core.codec import JobRecord, parse_job_hash, to_json
from ._core.keys import JobState
from .errors import JobLocked, JobNotFound, JobNotInState
from .utils import now_ms

if TYPE_CHECKING:
    from .queue import Queue


class Job:
    """One job of a queue; read with ``queue.get_job(id)`` or returned by ``queue.add``."""

    __slots__ = ("queue", "_record", "_id", "_fields", "_now", "duplicate", "_discarded")

    def __init__(
        self,
        queue: Queue,
        record: JobRecord | None = None,
        *,
        duplicate: bool = False,
        job_id: str | None = None,
        fields: Mapping[str, str] | None = None,
        now: int = 0,
    ) -> None:
        """From a parsed record, or lazily from raw hash ``fields`` (parsed on first use: ``add_bulk``
        returns many jobs whose fields are rarely read)."""
        self.queue = queue
        self._record = record
        self._id = record.id if record is not None else str(job_id)
        self._fields = fields
        self._now = now
        #: True when ``add`` found a job with this custom id already (nothing was written).
        self.duplicate = duplicate
        self._discarded = False

    @property
    def record(self) -> JobRecord:
        """The job's fields as Node's ``Job.fromJSON`` reads them."""
        if self._record is None:
            self._record = parse_job_hash(self._id, self._fields or {}, self._now)
        return self._record

    @record.setter
    def record(self, value: JobRecord) -> None:
        self._record = value

    # --- fields, named as Bull names them ---------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def data(self) -> Any:
        return self.record.data

    @property
    def opts(self) -> dict[str, Any]:
        return self.record.opts

    @property
    def progress(self) -> Any:
        return self.record.progress

    @property
    def delay(self) -> int | None:
        return self.record.delay

    @property
    def timestamp(self) -> int | None:
        return self.record.timestamp

    @property
    def attempts_made(self) -> int | None:
        return self.record.attempts_made

    @property
    def failed_reason(self) -> str | None:
        return self.record.failed_reason

    @property
    def stacktrace(self) -> list[str]:
        return self.record.stacktrace

    @property
    def returnvalue(self) -> Any:
        return self.record.returnvalue

    @property
    def processed_on(self) -> int | None:
        return self.record.processed_on

    @property
    def finished_on(self) -> int | None:
        return self.record.finished_on

    @property
    def retried_on(self) -> int | None:
        return self.record.retried_on

    @property
    def debounce_id(self) -> Any:
        return self.record.debounce_id

    @property
    def discarded(self) -> bool:
        return self._discarded

    # --- reading ----------------------------------------------------------------------------------------
    def reload(self) -> Job:
        """Read the job's hash again (raises JobNotFound when it is gone)."""
        fresh = self.queue.get_job(self.id)
        if fresh is None:
            raise JobNotFound(self.id, "reload")
        self.record = fresh.record
        return self

    def get_state(self) -> JobState:
        """completed, failed, delayed, active, waiting, paused or stuck (Node's order of checks)."""
        state = self.queue._run(scripts.get_state(self.queue.keys, self.id))
        if state == "missing":
            raise JobNotFound(self.id, "getState")
        return JobState(state)

    def to_dict(self) -> dict[str, Any]:
        """The same keys and values as Node's ``job.toJSON()``."""
        return self.record.to_node_json()

    # --- changing ---------------------------------------------------------------------------------------
    def update(self, data: Any) -> None:
        """Replace the job's data (Node's ``job.update``)."""
        data_json = to_json(data)
        self.queue._run(scripts.update_data(self.queue.keys, self.id, data_json))
        self.record = dataclasses.replace(self.record, data=data)

    def update_progress(self, progress: Any) -> None:
        """Set progress (a number or any JSON value) and publish Bull's ``progress`` event."""
        progress_json = to_json(progress)
        payload = '{"jobId":' + to_json(self.id) + ',"progress":' + progress_json + "}"
        self.queue._run(scripts.update_progress(self.queue.keys, self.id, progress_json, payload))
        self.record = dataclasses.replace(self.record, progress=progress)
        self.queue._emit("progress", self, progress)

    def log(self, row: str, *, keep_logs: int | None = None) -> int:
        """Append a row to the job's log; returns the number of rows kept."""
        if not isinstance(row, str):
            raise TypeError(f"log rows are strings, got {type(row).__name__}")
        if keep_logs is not None and (not isinstance(keep_logs, int) or keep_logs < 1):
            raise ValueError(f"keep_logs must be a positive integer, got {keep_logs!r}")
        return int(self.queue._run(scripts.add_log(self.queue.keys, self.id, row, keep_logs)))

    def retry(self, state: str = "failed") -> None:
        """Move a failed job (or, with ``state="completed"``, a completed one) back to waiting."""
        if state not in ("failed", "completed"):
            raise ValueError(f"state must be 'failed' or 'completed', got {state!r}")
        code = self.queue._run(
            scripts.reprocess_job(
                self.queue.keys, self.id, state, bool(self.opts.get("lifo")), self.queue.token, now_ms()
            )
        )
        if code == 0:
            raise JobNotFound(self.id, "retry")
        if code == -1:
            raise JobLocked(self.id, "retry")
        if code == -2:
            raise JobNotInState(self.id, "retry", f"it is not {state}")

    def promote(self) -> None:
        """Move a delayed job to waiting now."""
        self.queue._run(scripts.promote(self.queue.keys, self.id, self.queue.token))

    def remove(self) -> None:
        """Remove the job from every state with its logs; refuses while a worker holds its lock."""
        code = self.queue._run(scripts.remove_job(self.queue.keys, self.id))
        if code == 0:
            raise JobLocked(self.id, "remove")
        if code < 0:
            raise JobNotFound(self.id, "remove")

    def discard(self) -> None:
        """Make the next failure final whatever ``attempts`` says (used by workers in this process)."""
        self._discarded = True

    # --- display ----------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        from . import _display

        return _display.job_text(self)

    def _repr_html_(self) -> str:
        from . import _display

        return _display.job_html(self)
