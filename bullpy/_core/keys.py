"""Bull's key naming: ``{prefix}:{name}:{suffix}`` (lib/queue.js ``toKey`` and the ``keys`` table).

No escaping is applied to the prefix, the queue name or job ids, exactly as in Node: spaces, unicode,
``:`` and ``{}`` go verbatim into keys, and hash tags (``{bull}`` prefix or ``{name}``) keep a queue in one
Redis Cluster slot.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import Enum

# Every suffix Bull uses for a queue-level key. A custom job id equal to one of them would share the key
# with it (Node then corrupts the queue: ``jobId: 'wait'`` turns the wait list into a hash), so bullpy
# refuses such ids (protocol §1.2 "Reserved job ids").
QUEUE_KEY_SUFFIXES: frozenset[str] = frozenset(
    {
        "id", "wait", "paused", "meta-paused", "meta", "active", "delayed", "priority", "completed",
        "failed", "stalled", "stalled-check", "limiter", "repeat", "metrics", "de",
        # channel-only names: never keys, but reserving them keeps ids unambiguous when parsing keys
        "waiting", "resumed", "progress", "drained", "duplicated", "debounced",
    }
)

# Generated key families that live beside the job hashes.
RESERVED_ID_PREFIXES: tuple[str, ...] = ("limiter:", "metrics:", "de:")


class JobState(str, Enum):
    """A job's state, named as Node's ``job.getState()`` names it."""

    COMPLETED = "completed"
    FAILED = "failed"
    DELAYED = "delayed"
    ACTIVE = "active"
    WAITING = "waiting"
    PAUSED = "paused"
    STUCK = "stuck"

    def __str__(self) -> str:
        return self.value


# The Redis key suffix and type behind each state users may ask for. ``waiting`` is Bull's alias of
# the ``wait`` list.
STATE_KEYS: dict[str, tuple[str, str]] = {
    "waiting": ("wait", "list"),
    "wait": ("wait", "list"),
    "active": ("active", "list"),
    "paused": ("paused", "list"),
    "completed": ("completed", "zset"),
    "failed": ("failed", "zset"),
    "delayed": ("delayed", "zset"),
    "repeat": ("repeat", "zset"),
}


@dataclass(frozen=True)
class QueueKeys:
    """The keys of one queue; ``keys("wait")`` is ``bull:name:wait``."""

    name: str
    prefix: str = "bull"

    @property
    def base(self) -> str:
        """The base key ``prefix:name:`` that scripts concatenate job ids onto."""
        return f"{self.prefix}:{self.name}:"

    def __call__(self, suffix: str) -> str:
        return f"{self.prefix}:{self.name}:{suffix}"

    def job(self, job_id: str) -> str:
        return self.base + job_id

    def lock(self, job_id: str) -> str:
        return self.base + job_id + ":lock"

    def logs(self, job_id: str) -> str:
        return self.base + job_id + ":logs"

    def state(self, state: str) -> str:
        """The key holding jobs of ``state`` (``waiting`` maps to the ``wait`` list)."""
        return self(STATE_KEYS[state][0])

    def channel(self, event: str, token: str | None = None) -> str:
        """A pub/sub channel; ``token`` gives the ``event@token`` form Node uses for waiting/active."""
        return self(event) if token is None else f"{self(event)}@{token}"

    @property
    def worker_name(self) -> str:
        """The CLIENT SETNAME value Node's ``getWorkers()`` looks for: ``prefix:base64(name)``."""
        return f"{self.prefix}:{base64.b64encode(self.name.encode()).decode()}"


def check_job_id(job_id: str) -> str:
    """Refuse custom ids that would collide with the queue's own keys (a Node bug we do not copy)."""
    if not job_id:
        raise ValueError("job_id must not be empty")
    if job_id in QUEUE_KEY_SUFFIXES or job_id.startswith(RESERVED_ID_PREFIXES):
        raise ValueError(
            f"job_id {job_id!r} is reserved: it collides with one of the queue's own keys "
            f"(Node Bull would corrupt the queue with it)"
        )
    if job_id.endswith((":lock", ":logs")):
        raise ValueError(f"job_id {job_id!r} is reserved: it collides with another job's lock or logs key")
    return job_id


def check_queue_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"queue name must be a non-empty string, got {name!r}")
    return name
