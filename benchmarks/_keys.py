"""Deleting a benchmark's keys: SCAN (never KEYS) and UNLINK in batches, so cleanup never blocks Redis."""

from __future__ import annotations

from typing import Any


def unlink_matching(client: Any, pattern: str, batch: int = 1000) -> None:
    """UNLINK every key matching ``pattern``, ``batch`` keys per command."""
    keys: list[Any] = []
    for key in client.scan_iter(pattern, count=5000):
        keys.append(key)
        if len(keys) >= batch:
            client.unlink(*keys)
            keys.clear()
    if keys:
        client.unlink(*keys)
