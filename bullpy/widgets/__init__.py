"""Notebook widgets for Bull queues (``pip install 'bullpy[notebook]'``), built from stock ipywidgets.

* ``QueueDashboard()``: every queue under a prefix (or those given), live: counts that open the inspector,
  wait/processing times, the oldest waiting job, running jobs' progress, a throughput chart, workers,
  pause/resume, and the Redis server (version, memory, eviction policy, clients, ops/s);
* ``JobInspector(queue)``: jobs by state in tabs, paged, filtered (with the total), one in detail beside the
  list, retry/promote/remove/clean after a confirmation, add, duplicate, edit and retry; ``read_only=True``
  for people who only watch;
* ``CampaignMonitor(queue, result_frame)``: how far an ``add_frame`` campaign has got, its send rate, the
  time left and its failures by reason;
* ``find_queues(redis, prefix)``: the queue names under a prefix.

An optional layer on bullpy's public API only (``Queue``, ``queue.server``, ``find_queues``).
"""

from ._common import eviction_policy, find_queues
from .campaign import CampaignMonitor, CampaignSummary
from .chart import Throughput
from .dashboard import QueueDashboard
from .inspector import ActionReport, JobFilter, JobInspector

__all__ = [
    "ActionReport",
    "CampaignMonitor",
    "CampaignSummary",
    "JobFilter",
    "JobInspector",
    "QueueDashboard",
    "Throughput",
    "eviction_policy",
    "find_queues",
]
