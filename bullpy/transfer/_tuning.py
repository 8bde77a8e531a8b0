"""Interpreter settings that a transfer of a million jobs changes while it runs, and puts back.

* The GIL switch interval: a prefetch thread whose reply has arrived waits for the GIL until the caller's
  thread gives it up, at most the switch interval (5 ms), once per batch, and Redis idles meanwhile. While a
  prefetching scan runs the interval is 0.5 ms (export of a million jobs: about a quarter faster on two
  cores).
* The cyclic garbage collector: reading an export file builds three containers per job (its record, its
  hash list, its log list) that die a batch later; the collector's passes over them cost about as much as
  the reading itself. They hold no reference cycles (refcounting frees them), so import pauses the
  collector while it runs.

Both are process-wide; concurrent transfers count their users, and the caller's settings come back when the
last one ends (also after an error).
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
from collections.abc import Iterator
from typing import Final

_SWITCH: Final = 0.0005
_lock = threading.Lock()
_fast = 0
_saved_interval = 0.005
_paused = 0
_gc_was_enabled = True


def switch_fast() -> None:
    """Lower the switch interval (until the matching ``switch_back``)."""
    global _fast, _saved_interval
    with _lock:
        if _fast == 0:
            _saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_SWITCH, _saved_interval))
        _fast += 1


def switch_back() -> None:
    global _fast
    with _lock:
        _fast -= 1
        if _fast == 0:
            sys.setswitchinterval(_saved_interval)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside (refcounting still frees everything without cycles)."""
    global _paused, _gc_was_enabled
    with _lock:
        if _paused == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _gc_was_enabled:
                gc.enable()
