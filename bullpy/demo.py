"""The end-to-end demo behind ``bullpy demo``: a small WhatsApp campaign queued from Python and sent by
the unchanged Node worker (bridge/worker.js, dry-run sender) on the same Redis.

With no Redis configured this runs on the embedded server, so a new user needs nothing but Node.js (>= 18);
an installed bullpy runs ``npm ci`` for the worker on first use (``bullpy.bridge``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .bridge import NodeWorker, find_bridge, node_executable
from .errors import NodeUnavailable
from .queue import Queue

CAMPAIGN = [
    {"number": "+55 11 99999-0001", "name": "Ana", "message": "Hi Ana, your order #1001 has shipped."},
    {"number": "+55 11 99999-0002", "name": "Bruno", "message": "Hi Bruno, your order #1002 has shipped."},
    {"number": "+55 21 98888-0003", "name": "Carla", "message": "Hi Carla, your order #1003 has shipped."},
    {"number": "+55 31 97777-0004", "name": "Diego", "message": "Hi Diego, your order #1004 has shipped."},
    {"number": "+55 41 96666-0005", "name": "Elisa", "message": "Hi Elisa, your order #1005 has shipped."},
]


def run_demo(
    *,
    queue_name: str = "message-queue",
    prefix: str = "bull",
    redis: str | None = None,
    bridge: str | None = None,
    timeout: float = 60.0,
    echo: Callable[[str], None] = print,
) -> int:
    """Queue the campaign, run the Node worker until the campaign is sent, print what was sent; exit code."""
    try:  # before queuing anything: Node.js, and the worker's packages (npm ci on an installed bullpy's first use)
        node_executable()
        bridge_dir = find_bridge(bridge)
    except (NodeUnavailable, FileNotFoundError) as exc:
        echo(f"bullpy demo: {exc}")
        return 2
    queue = Queue(queue_name, redis, prefix=prefix)
    echo(f"queue {prefix}:{queue_name} on {queue.server.describe()}")
    jobs = queue.add_bulk(
        {
            "data": {"number": row["number"], "message": row["message"], "delay": 0},
            "opts": {"attempts": 3, "backoff": {"type": "exponential", "delay": 2000}},
        }
        for row in CAMPAIGN
    )
    ids = [job.id for job in jobs]
    echo(f"queued {len(jobs)} messages: jobs {', '.join(ids)}")
    echo("starting the Node Bull worker (bridge/worker.js, dry-run sender)")
    with (tempfile.TemporaryDirectory(prefix="bullpy-demo-") as tmp,
          NodeWorker(queue, bridge=bridge_dir, dry_run_log=Path(tmp) / "sent.jsonl") as worker):
        deadline = time.monotonic() + timeout
        while sum(1 for s in queue.get_states(ids).values() if s in ("completed", "failed")) < len(ids):
            if time.monotonic() > deadline:
                echo("timed out waiting for the Node worker")
                return 1
            time.sleep(0.2)
        sent = {str(s.get("jobId")): s for s in worker.sent()}

    echo("")
    echo(f"{'job':>5}  {'state':<10} {'to':<22} {'messageId':<28} message")
    ok = True
    for job in queue.get_jobs_by_ids(ids):
        result = job.returnvalue if isinstance(job.returnvalue, dict) else {}
        ok = ok and bool(result.get("success")) and job.id in sent
        echo(f"{job.id:>5}  {job.get_state().value:<10} {sent.get(job.id, {}).get('to', ''):<22} "
             f"{result.get('messageId', '')!s:<28} {job.data['message']}")
    echo("")
    echo("counts: " + ", ".join(f"{k} {v}" for k, v in queue.get_job_counts().items()))
    queue.close()
    return 0 if ok else 1
