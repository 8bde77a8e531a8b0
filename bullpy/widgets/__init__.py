"""Notebook widgets for Bull queues (``pip install 'bullpy[notebook]'``), built from stock ipywidgets.

* ``QueueDashboard(queue_or_queues)``: live counts, throughput, paused state, workers, eviction warning;
* ``JobInspector(queue)``: jobs by state, paged, filtered, one in detail, retry/promote/remove;
* ``CampaignMonitor(queue, result_frame)``: how far an ``add_frame`` campaign has got;
* ``find_queues(redis, prefix)``: the queue names under a prefix.

An optional layer on bullpy's public API only (``Queue``, ``queue.server``, ``find_queues``).
"""

from ._common import eviction_policy, find_queues
from .campaign import CampaignMonitor, CampaignSummary
from .dashboard import QueueDashboard, Throughput
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
