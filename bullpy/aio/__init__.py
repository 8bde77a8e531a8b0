"""bullpy for asyncio: the same Queue and Job classes, method names and errors as ``bullpy``, awaited.

    >>> from bullpy.aio import Queue
    >>> queue = Queue("message-queue")          # REDIS_URL / REDIS_HOST..., else the embedded Redis
    >>> job = await queue.add({"number": "5511999999999", "message": "hi", "delay": 0}, attempts=3)
    >>> await queue.get_job_counts()
    >>> async for event in queue.events(timeout=30):
    ...     print(event.name, event.job_id, event.value)

Runs over ``redis.asyncio`` and builds every script call and read from the same ``bullpy._core`` as the sync
API, so both write exactly what Node Bull writes. Exceptions are ``bullpy``'s own (``bullpy.JobNotFound``...).
There is no asyncio Worker: ``bullpy.Worker`` runs ``async def`` handlers on its own event loop thread.
"""

from .._core.keys import JobState
from .._core.stats import FinishedJob, QueueStats
from .._core.options import JobOptions
from .._core.reads import JobLogs, Metrics
from .._core.repeat import RepeatableJob
from ..errors import (
    BullError,
    JobLocked,
    JobNotFound,
    JobNotInState,
    LockMismatch,
    LockNotFound,
    QueueHasActiveJobs,
    QueueNotPaused,
    RedisAuthenticationFailed,
    RedisOutOfMemory,
    RedisPermissionDenied,
    RedisReadOnly,
    RedisRefused,
    RedisUnavailable,
    ScriptError,
    UnknownBackoff,
    WrongKeyType,
)
from ..events import Event
from ..retry import RetryPolicy
from .events import EventStream
from .job import Job
from .queue import Queue, find_queues

__all__ = [
    "BullError",
    "Event",
    "EventStream",
    "FinishedJob",
    "Job",
    "JobLocked",
    "JobLogs",
    "JobNotFound",
    "JobNotInState",
    "JobOptions",
    "JobState",
    "LockMismatch",
    "LockNotFound",
    "Metrics",
    "Queue",
    "QueueHasActiveJobs",
    "QueueNotPaused",
    "QueueStats",
    "RedisAuthenticationFailed",
    "RedisOutOfMemory",
    "RedisPermissionDenied",
    "RedisReadOnly",
    "RedisRefused",
    "RedisUnavailable",
    "RepeatableJob",
    "RetryPolicy",
    "ScriptError",
    "UnknownBackoff",
    "WrongKeyType",
    "find_queues",
]
