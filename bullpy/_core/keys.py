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

# The Redis type Bull keeps under each queue-level key: a WRONGTYPE names no key, so a TYPE of each of these
# finds the damaged one (``bullpy._refusals.as_bull_error``).
KEY_TYPES: dict[str, str] = {
    "wait": "list", "active": "list", "paused": "list",
    "completed": "zset", "failed": "zset", "delayed": "zset", "priority": "zset", "repeat": "zset",
    "stalled": "set", "meta": "hash", "id": "string", "meta-paused": "string", "stalled-check": "string",
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


def check_text(what: str, text: str) -> str:
    """Refuse lone surrogates: Redis keys and Node's strings are UTF-8, and such a string has no UTF-8 form."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} {text!r} contains a lone surrogate ({text[exc.start]!r} at position {exc.start}), "
            "which has no UTF-8 form"
        ) from None
    return text


def check_job_id(job_id: str) -> str:
    """Refuse custom ids that would collide with the queue's own keys (a Node bug we do not copy)."""
    if not job_id:
        raise ValueError("job_id must not be empty")
    check_text("job_id", job_id)
    if job_id in QUEUE_KEY_SUFFIXES or job_id.startswith(RESERVED_ID_PREFIXES):
        raise ValueError(
            f"job_id {job_id!r} is reserved: it collides with one of the queue's own keys "
            f"(Node Bull would corrupt the queue with it)"
        )
    if job_id.endswith((":lock", ":logs")):
        raise ValueError(f"job_id {job_id!r} is reserved: it collides with another job's lock or logs key")
    # ``b:paused`` in queue ``a`` is the key ``bull:a:b:paused``: queue ``a:b``'s paused list. Refused so
    # that a job can never share a key with a sibling queue's lists (Node accepts it; pausing ``a:b`` then
    # renames its wait list over the job).
    parts = job_id.split(":")
    if len(parts) > 1 and (parts[-1] in QUEUE_KEY_SUFFIXES or any(p + ":" in RESERVED_ID_PREFIXES for p in parts[1:-1])):
        raise ValueError(
            f"job_id {job_id!r} is reserved: it is also a key of a sibling queue "
            f"(queue '<this queue>:{parts[0]}' keeps its own keys there)"
        )
    return job_id


def check_queue_name(name: str, what: str = "queue name") -> str:
    """A queue name or prefix: a non-empty string with a UTF-8 form."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty string, got {name!r}")
    return check_text(what, name)


# The scripts that only read: a queue whose keys could overlap another's may still run them.
READ_ONLY_SCRIPTS: frozenset[str] = frozenset(
    {"counts_per_priority", "get_job_fields", "get_state", "job_presence", "read_jobs"}
)


def colon_refusal(name: str, prefix: str) -> str | None:
    """Why writing to this queue is refused without ``allow_colon``, or None when nothing can overlap.

    Bull joins ``prefix:name:suffix`` without escaping, so the keys of queue ``a:b`` are the keys of queue
    ``a``'s jobs ``b:wait``, ``b:paused``... (``Queue("a:b").pause()`` renames its wait list over queue ``a``'s
    job ``b:paused``); a ``:`` in the prefix makes the same overlap one level up. Reading stays allowed.
    """
    for what, text in (("queue name", name), ("prefix", prefix)):
        if ":" in text:
            return (
                f"{what} {text!r} contains ':', so this queue's keys can be another queue's (the keys of queue "
                "'a:b' are those of queue 'a''s jobs 'b:wait', 'b:paused'...): bullpy only reads it. Pass "
                "allow_colon=True to write to an existing queue named so"
            )
    return None
