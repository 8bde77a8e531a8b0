"""Commands that move jobs between Redis instances, prefixes, queues and BullMQ (filled in as they land)."""

from __future__ import annotations
