"""Small helpers the facade and the layers share: the clock Bull's timestamps use, and reply text."""

from __future__ import annotations

import time

from ._core.codec import text

__all__ = ["now_ms", "text"]


def now_ms() -> int:
    """Milliseconds since the epoch, as Node's ``Date.now()`` (the unit of every Bull timestamp)."""
    return int(time.time() * 1000)
