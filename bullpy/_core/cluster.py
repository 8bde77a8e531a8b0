"""Redis Cluster hash tags: whether every key of a Bull queue lands in one hash slot.

Bull's Lua scripts touch many keys of a queue at once (``wait``, ``active``, the job hash, its lock...) and
build job keys inside Lua from the base key ``prefix:name:``. On a Redis Cluster that only works when all of
them hash to one slot, which a hash tag guarantees: Redis hashes only the part between the first ``{`` of a
key and the first ``}`` after it, when that part is not empty (CLUSTER KEYSLOT's rule). Bull builds its keys
as ``[prefix, name, type].join(':')`` (lib/queue.js ``toKey``), so the tag must sit in the prefix
(``{bull}``: every queue in one slot, as Bull's documentation suggests) or in the queue name (``{message-queue}``:
one slot per queue); Node and Python must use the same prefix and name.
"""

from __future__ import annotations


def hash_tag(key: str) -> str | None:
    """The hash tag Redis Cluster hashes ``key`` by, or None when it hashes the whole key.

    >>> hash_tag("{bull}:q:wait"), hash_tag("bull:{q}:wait"), hash_tag("bull:q:wait"), hash_tag("{}:{q}")
    ('bull', 'q', None, None)
    """
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end < 0 or end == start + 1:  # no closing brace, or the empty tag "{}": the whole key is hashed
        return None
    return key[start + 1 : end]


def queue_hash_tag(prefix: str, name: str) -> str | None:
    """The tag every key of the queue shares, or None when its keys would spread over slots.

    The tag must be complete within the base key ``prefix:name:``: a ``{`` closed only later, by a job id,
    would hash each job's keys by a different tag.
    """
    return hash_tag(f"{prefix}:{name}:")


def check_one_slot(prefix: str, name: str) -> str:
    """The queue's hash tag; a ValueError saying how to fix the prefix or name when it has none."""
    tag = queue_hash_tag(prefix, name)
    if tag is not None:
        return tag
    raise ValueError(
        f"queue {name!r} with prefix {prefix!r} would spread over Redis Cluster slots: its keys "
        f"({prefix}:{name}:wait, {prefix}:{name}:<job id>, ...) carry no hash tag, so each hashes to its own "
        f"slot and Bull's scripts, which touch several at once, fail with CROSSSLOT. Put a hash tag in the "
        f"prefix, prefix='{{{prefix}}}' (every queue in one slot), or in the queue name, '{{{name}}}' (one slot "
        "per queue), and give the Node side the same prefix and name"
    )
