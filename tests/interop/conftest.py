"""Fixtures for tests where real Node Bull (bridge/) reads or processes what bullpy wrote, or the reverse."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from ..conftest import delete_prefix

from .peer import Peer, node_available


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "interop" in str(item.fspath):
            item.add_marker(pytest.mark.node)


@pytest.fixture(scope="session")
def peer(redis_url: str) -> Iterator[Peer]:
    """One Node peer process for the whole run; tests isolate themselves by prefix."""
    if not node_available():
        pytest.skip("Node.js or bridge/node_modules is missing: run `npm ci` in bridge/")
    with Peer(redis_url) as node:
        yield node


@pytest.fixture
def bull(peer: Peer) -> Iterator[Peer]:
    """The Node peer for one test: every Bull queue it opened is closed afterwards."""
    yield peer
    peer.close(do_not_wait_jobs=True)


@pytest.fixture
def two_prefixes(redis_client: redis.Redis) -> Iterator[tuple[str, str]]:
    """Two fresh prefixes for differential tests: one for Node's run, one for bullpy's."""
    pair = (f"bullpy-diff-node-{uuid.uuid4().hex[:8]}", f"bullpy-diff-py-{uuid.uuid4().hex[:8]}")
    yield pair
    for prefix in pair:
        delete_prefix(redis_client, prefix)
