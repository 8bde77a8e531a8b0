"""Redis Cluster's hash-tag rule as bullpy applies it to a queue's keys (no server needed)."""

from __future__ import annotations

import pytest

from bullpy._core.cluster import check_one_slot, hash_tag, queue_hash_tag


@pytest.mark.parametrize(("key", "tag"), [
    ("{bull}:q:wait", "bull"),
    ("bull:{message-queue}:wait", "message-queue"),
    ("bull:q:wait", None),
    ("{}:{q}:wait", None),  # an empty first tag: Redis hashes the whole key, never looks further
    ("{a}{b}", "a"),
    ("bull:{q:wait", None),
    ("x}{y}", "y"),
])
def test_hash_tag_follows_cluster_keyslot(key: str, tag: str | None) -> None:
    assert hash_tag(key) == tag


def test_a_queue_needs_its_tag_complete_within_prefix_and_name() -> None:
    assert queue_hash_tag("{bull}", "q") == "bull"
    assert queue_hash_tag("bull", "{q}") == "q"
    assert queue_hash_tag("{b", "q}") == "b:q"  # odd but one slot: the tag closes inside the base key
    # The tag would be closed by each job id ("bull:{q:5}..."): every job in its own slot.
    assert queue_hash_tag("bull", "{q") is None
    with pytest.raises(ValueError, match=r"prefix='\{bull\}'.*'\{message-queue\}'"):
        check_one_slot("bull", "message-queue")
