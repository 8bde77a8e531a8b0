"""Small helpers the facade and the layers share: the clock Bull's timestamps use, reply text, option names."""

from __future__ import annotations

import time

from ._core.codec import text
from ._core.options import _SNAKE

__all__ = ["now_ms", "option_keyword", "text"]


def now_ms() -> int:
    """Milliseconds since the epoch, as Node's ``Date.now()`` (the unit of every Bull timestamp)."""
    return int(time.time() * 1000)


def option_keyword(name: str) -> str:
    """The ``Queue.add`` keyword for a Bull job option in Node's camelCase (``jobId`` -> ``job_id``); else ``name``."""
    return _SNAKE.get(name, name)
