"""Export and import whole Bull queues, and copy or move jobs between queues or states.

The library layer under ``bullpy export``, ``bullpy import``, ``bullpy copy`` and ``bullpy move``, on the
public API (``queue.raw`` for the jobs as Redis holds them, ``queue.server`` for where they live):

* ``records``: the export records, the summaries, the states;
* ``format``: the file format (described there) and its streamed writer;  ``reader``: its checking reader;
* ``scan``: reading a live queue in atomic batches;  ``export``: queue -> file;
* ``target``: writing jobs into a queue;  ``import_``: file -> queue;  ``copy``: queue -> queue.
"""

from ..errors import ExportFormatError, ImportConflict
from .copy import copy_jobs, move_jobs
from .export import export_queue
from .import_ import import_queue
from .reader import ExportReader, read_export, validate_export
from .records import (
    ALL_STATES,
    FORMAT,
    JOB_STATES,
    VERSION,
    ExportHeader,
    ExportSummary,
    ImportSummary,
    JobEntry,
    QueueInfo,
    RepeatEntry,
    TransferSummary,
)

__all__ = [
    "ALL_STATES",
    "FORMAT",
    "JOB_STATES",
    "VERSION",
    "ExportFormatError",
    "ExportHeader",
    "ExportReader",
    "ExportSummary",
    "ImportConflict",
    "ImportSummary",
    "JobEntry",
    "QueueInfo",
    "RepeatEntry",
    "TransferSummary",
    "copy_jobs",
    "export_queue",
    "import_queue",
    "move_jobs",
    "read_export",
    "validate_export",
]
