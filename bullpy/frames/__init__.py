"""pandas for Bull queues: campaigns from DataFrames, and any queue back as a DataFrame.

An optional layer on bullpy's public API (``pip install 'bullpy[pandas]'``):

* ``add_frame``: one job per row, every row checked before the first write (``schema`` too), idempotent with
  job ids, paced with ``rate``, ``send_at`` and sending ``window`` per time zone, written in pipelined chunks
  with a progress bar;
* ``load_file``: the same for a CSV/Parquet/JSON-lines file of any size, a record batch at a time;
* ``jobs_frame`` / ``iter_jobs_frames`` / ``counts_frame`` / ``campaign_status``: read jobs back in
  bounded batches, as one frame or a stream of frames;
* ``read_campaign``: CSV, Parquet and JSON lines through the same path (the CLI reuses it).
"""

from __future__ import annotations

from ..errors import FrameError, FrameLoadInterrupted
from .files import read_campaign
from .load import ALL_STATES, add_frame, load_file, parse_rate
from .read import campaign_status, counts_frame, iter_jobs_frames, jobs_frame

__all__ = ["ALL_STATES", "FrameError", "FrameLoadInterrupted", "add_frame", "campaign_status", "counts_frame",
           "iter_jobs_frames", "jobs_frame", "load_file", "parse_rate", "read_campaign"]
