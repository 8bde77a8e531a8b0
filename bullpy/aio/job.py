"""A Bull job in asyncio code: the same fields as ``bullpy.Job`` and the same operations, awaited."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._core import ops, scripts
from .._core.codec import to_json
from .._core.jobhash import JobRecord
from .._core.keys import JobState
from ..job import JobFields
from ..utils import now_ms

if TYPE_CHECKING:
    from .queue import Queue


class Job(JobFields):
    """One job of a queue; read with ``await queue.get_job(id)`` or returned by ``await queue.add(...)``."""

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
        """From a parsed record, or lazily from raw hash ``fields`` (parsed on first use)."""
        super().__init__(record, duplicate=duplicate, job_id=job_id, fields=fields, now=now)
        self.queue = queue

    # --- reading ----------------------------------------------------------------------------------------
    async def reload(self) -> Job:
        """Read the job's hash again (raises JobNotFound when it is gone)."""
        self.record = await self.queue._runner.drive(ops.reload(self.queue.keys, self.id, now_ms()))
        return self

    async def get_state(self) -> JobState:
        """completed, failed, delayed, active, waiting, paused or stuck (Node's order of checks)."""
        return await self.queue._runner.drive(ops.get_state(self.queue.keys, self.id))

    # --- changing ---------------------------------------------------------------------------------------
    async def update(self, data: Any) -> None:
        """Replace the job's data (Node's ``job.update``)."""
        await self.queue._runner.run(scripts.update_data(self.queue.keys, self.id, to_json(data)))
        self.record = dataclasses.replace(self.record, data=data)

    async def update_progress(self, progress: Any) -> None:
        """Set progress (a number or any JSON value) and publish Bull's ``progress`` event."""
        await self.queue._runner.run(ops.progress_call(self.queue.keys, self.id, progress))
        self.record = dataclasses.replace(self.record, progress=progress)
        self.queue._emitter.emit("progress", self, progress)

    async def log(self, row: str, *, keep_logs: int | None = None) -> int:
        """Append a row to the job's log; returns the number of rows kept."""
        ops.check_log(row, keep_logs)
        kept = await self.queue._runner.run(scripts.add_log(self.queue.keys, self.id, row, keep_logs))
        return int(kept)

    async def retry(self, state: str = "failed") -> None:
        """Move a failed job (or, with ``state="completed"``, a completed one) back to waiting."""
        await self.queue._runner.drive(ops.retry_job(self.queue.keys, self.id, state, bool(self.opts.get("lifo")),
                                                     self.queue.token, now_ms()))

    async def promote(self) -> None:
        """Move a delayed job to waiting now."""
        await self.queue._runner.run(scripts.promote(self.queue.keys, self.id, self.queue.token))

    async def remove(self) -> None:
        """Remove the job from every state with its logs; refuses while a worker holds its lock."""
        await self.queue._runner.drive(ops.remove_job(self.queue.keys, self.id))

    async def move_to_failed(self, reason: str, *, force: bool = False, discard: bool = False) -> JobState:
        """Fail an active job from outside its worker (Node's ``job.moveToFailed({message}, true)``); returns
        where it went (waiting, delayed or failed). See ``bullpy.Job.move_to_failed``."""
        self.record, state = await self.queue._runner.drive(
            ops.move_to_failed(self.queue.keys, self.id, reason, force, discard, now_ms()))
        return state

    async def move_to_completed(self, returnvalue: Any = None, *, force: bool = False) -> None:
        """Complete an active job from outside its worker with ``returnvalue`` (Node's
        ``job.moveToCompleted(value, true)``); ``force`` as for ``move_to_failed``."""
        self.record = await self.queue._runner.drive(
            ops.move_to_completed(self.queue.keys, self.id, returnvalue, force, now_ms()))

    def __repr__(self) -> str:
        return f"<Job {self.id!r} of {self.queue.prefix}:{self.queue.name}>"
