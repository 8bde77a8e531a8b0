"""bullpy: read and write Bull (Node.js, v4) queues from Python with Bull's exact Redis layout.

    >>> from bullpy import Queue
    >>> queue = Queue("message-queue")            # REDIS_URL / REDIS_HOST..., else an embedded Redis
    >>> job = queue.add({"number": "5511999999999", "message": "hi", "delay": 0},
    ...                 attempts=3, backoff={"type": "exponential", "delay": 2000})

Node Bull workers process what bullpy writes, and bullpy reads what Node wrote, field for field.
"""

from ._core.keys import JobState
from ._core.options import JobOptions
from ._core.repeat import RepeatableJob
from .errors import (
    BullError,
    ExportFormatError,
    FrameError,
    FrameLoadInterrupted,
    ImportConflict,
    JobLocked,
    JobNotFound,
    JobNotInState,
    JobTimeout,
    LockMismatch,
    LockNotFound,
    MissingDependency,
    MissingHandler,
    NodeUnavailable,
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
from .job import Job
from .queue import JobLogs, Queue, find_queues
from .retry import RetryPolicy
from .server import Server
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "BullError",
    "ExportFormatError",
    "FrameError",
    "FrameLoadInterrupted",
    "ImportConflict",
    "Job",
    "JobLocked",
    "JobLogs",
    "JobNotFound",
    "JobNotInState",
    "JobOptions",
    "JobState",
    "JobTimeout",
    "LockMismatch",
    "LockNotFound",
    "MissingDependency",
    "MissingHandler",
    "NodeUnavailable",
    "Queue",
    "QueueHasActiveJobs",
    "QueueNotPaused",
    "RedisAuthenticationFailed",
    "RedisOutOfMemory",
    "RedisPermissionDenied",
    "RedisReadOnly",
    "RedisRefused",
    "RedisUnavailable",
    "RepeatableJob",
    "RetryPolicy",
    "ScriptError",
    "Server",
    "UnknownBackoff",
    "Worker",
    "WrongKeyType",
    "find_queues",
]
