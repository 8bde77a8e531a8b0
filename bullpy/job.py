"""A Bull job as Python sees it: the fields Node's ``Job.fromJSON`` reads, and the per-job operations."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._core import ops, scripts
from ._core.codec import to_json
from ._core.jobhash import JobRecord, parse_job_hash
from ._core.keys import JobState
from .utils import now_ms

if TYPE_CHECKING:
    from .queue import Queue


class JobFields:
    """A job's fields as Node's ``Job.fromJSON`` reads them; what the sync ``Job`` and ``bullpy.aio.Job`` share."""

    __slots__ = ("_record", "_id", "_fields", "_now", "duplicate", "_discarded")

    def __init__(
        self,
        record: JobRecord | None = None,
        *,
        duplicate: bool = False,
        job_id: str | None = None,
        fields: Mapping[str, str] | None = None,
        now: int = 0,
    ) -> None:
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
    def damaged(self) -> str | None:
        """Why this job's hash is not what Bull writes, or None for a healthy job.

        Set for a hash Node cannot read (``data``/``opts`` not JSON, ``opts`` JSON null; ``data`` is then the
        stored text), JSON nested deeper than bullpy reads, bytes that are not UTF-8 (read as Node reads them,
        with U+FFFD), a key that is not a hash, and a job listed in two states. ``bullpy doctor`` finds them all.
        """
        return self.record.damaged

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

    def to_dict(self) -> dict[str, Any]:
        """The same keys and values as Node's ``job.toJSON()``."""
        return self.record.to_node_json()

    def discard(self) -> None:
        """Make the next failure final whatever ``attempts`` says (used by workers in this process)."""
        self._discarded = True


class Job(JobFields):
    """One job of a queue; read with ``queue.get_job(id)`` or returned by ``queue.add``."""

    __slots__ = ("queue",)

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
        super().__init__(record, duplicate=duplicate, job_id=job_id, fields=fields, now=now)
        self.queue = queue

    # --- reading ----------------------------------------------------------------------------------------
    def reload(self) -> Job:
        """Read the job's hash again (raises JobNotFound when it is gone)."""
        self.record = self.queue._runner.drive(ops.reload(self.queue.keys, self.id, now_ms()))
        return self

    def get_state(self) -> JobState:
        """completed, failed, delayed, active, waiting, paused or stuck (Node's order of checks)."""
        return self.queue._runner.drive(ops.get_state(self.queue.keys, self.id))

    # --- changing ---------------------------------------------------------------------------------------
    def update(self, data: Any) -> None:
        """Replace the job's data (Node's ``job.update``)."""
        self.queue._run(scripts.update_data(self.queue.keys, self.id, to_json(data)))
        self.record = dataclasses.replace(self.record, data=data)

    def update_progress(self, progress: Any) -> None:
        """Set progress (a number or any JSON value) and publish Bull's ``progress`` event."""
        self.queue._run(ops.progress_call(self.queue.keys, self.id, progress))
        self.record = dataclasses.replace(self.record, progress=progress)
        self.queue._emit("progress", self, progress)

    def log(self, row: str, *, keep_logs: int | None = None) -> int:
        """Append a row to the job's log; returns the number of rows kept."""
        ops.check_log(row, keep_logs)
        return int(self.queue._run(scripts.add_log(self.queue.keys, self.id, row, keep_logs)))

    def retry(self, state: str = "failed") -> None:
        """Move a failed job (or, with ``state="completed"``, a completed one) back to waiting."""
        self.queue._runner.drive(ops.retry_job(self.queue.keys, self.id, state, bool(self.opts.get("lifo")),
                                               self.queue.token, now_ms()))

    def promote(self) -> None:
        """Move a delayed job to waiting now."""
        self.queue._run(scripts.promote(self.queue.keys, self.id, self.queue.token))

    def remove(self) -> None:
        """Remove the job from every state with its logs; refuses while a worker holds its lock."""
        self.queue._runner.drive(ops.remove_job(self.queue.keys, self.id))

    def move_to_failed(self, reason: str, *, force: bool = False, discard: bool = False) -> JobState:
        """Fail an active job from outside its worker, as Node's ``job.moveToFailed({message}, true)``: the
        attempt counts, then the job is retried (now, or later by its backoff) while attempts remain, else it
        fails for good; returns where it went (waiting, delayed or failed).

        Args:
            reason: the failed reason Node and Python workers and ``failed`` listeners see.
            force: also when a worker holds the job's live lock (that worker then cannot finish it).
            discard: fail for good whatever ``attempts`` says (Node's ``job.discard()``).
        """
        self.record, state = self.queue._runner.drive(
            ops.move_to_failed(self.queue.keys, self.id, reason, force, discard, now_ms()))
        return state

    def move_to_completed(self, returnvalue: Any = None, *, force: bool = False) -> None:
        """Complete an active job from outside its worker with ``returnvalue`` (Node's
        ``job.moveToCompleted(value, true)``); ``force`` as for ``move_to_failed``."""
        self.record = self.queue._runner.drive(
            ops.move_to_completed(self.queue.keys, self.id, returnvalue, force, now_ms()))

    # --- display ----------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        from . import _display

        return _display.job_text(self)

    def _repr_html_(self) -> str:
        from . import _display

        return _display.job_html(self)
