"""pandas for Bull queues: campaigns from DataFrames, and any queue back as a DataFrame.

An optional layer on bullpy's public API (``pip install 'bullpy[pandas]'``):

* ``add_frame``: one job per row, validated whole before the first write, idempotent with job ids, paced
  with ``rate`` or ``send_at``, streamed in chunks with a progress bar;
* ``jobs_frame`` / ``counts_frame`` / ``campaign_status``: read jobs back in pipelined chunks;
* ``read_campaign``: CSV, Parquet and JSON lines through the same path (the CLI reuses it).
"""

from __future__ import annotations

from ..errors import FrameError, FrameLoadInterrupted
from .files import read_campaign
from .load import ALL_STATES, add_frame, parse_rate
from .read import campaign_status, counts_frame, jobs_frame

__all__ = ["ALL_STATES", "FrameError", "FrameLoadInterrupted", "add_frame", "campaign_status", "counts_frame",
           "jobs_frame", "parse_rate", "read_campaign"]
