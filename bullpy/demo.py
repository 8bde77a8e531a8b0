"""The end-to-end demo behind ``bullpy demo``: a small WhatsApp campaign queued from Python and sent by
the unchanged Node worker (bridge/worker.js, dry-run sender) on the same Redis.

With no Redis configured this runs on the embedded server, so a new user needs nothing but Node.js.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import connection
from .queue import Queue

CAMPAIGN = [
    {"number": "+55 11 99999-0001", "name": "Ana", "message": "Hi Ana, your order #1001 has shipped."},
    {"number": "+55 11 99999-0002", "name": "Bruno", "message": "Hi Bruno, your order #1002 has shipped."},
    {"number": "+55 21 98888-0003", "name": "Carla", "message": "Hi Carla, your order #1003 has shipped."},
    {"number": "+55 31 97777-0004", "name": "Diego", "message": "Hi Diego, your order #1004 has shipped."},
    {"number": "+55 41 96666-0005", "name": "Elisa", "message": "Hi Elisa, your order #1005 has shipped."},
]


def find_bridge(explicit: str | None = None) -> Path:
    """bridge/ beside the package (a source checkout), or in the current folder, or given."""
    candidates = [Path(explicit)] if explicit else [Path.cwd() / "bridge", Path(__file__).resolve().parent.parent / "bridge"]
    for path in candidates:
        if (path / "worker.js").is_file():
            return path
    raise FileNotFoundError("bridge/worker.js not found: run from the bullpy checkout or pass --bridge PATH")


def run_demo(
    *,
    queue_name: str = "message-queue",
    prefix: str = "bull",
    redis: str | None = None,
    bridge: str | None = None,
    timeout: float = 60.0,
    echo: Callable[[str], None] = print,
) -> int:
    """Queue the campaign, run the Node worker until it is drained, print what was sent; exit code."""
    node = shutil.which("node")
    if node is None:
        echo("bullpy demo needs Node.js (the Bull worker is the real Node one): install node, then retry")
        return 2
    bridge_dir = find_bridge(bridge)
    if not (bridge_dir / "node_modules" / "bull").is_dir():
        echo(f"installing the Node side once: npm ci in {bridge_dir}")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=bridge_dir, check=True, stdout=sys.stderr)

    queue = Queue(queue_name, redis, prefix=prefix)
    echo(f"queue {prefix}:{queue_name} on {connection.describe(queue.client)}")
    jobs = queue.add_bulk(
        {
            "data": {"number": row["number"], "message": row["message"], "delay": 0},
            "opts": {"attempts": 3, "backoff": {"type": "exponential", "delay": 2000}},
        }
        for row in CAMPAIGN
    )
    echo(f"queued {len(jobs)} messages: jobs {', '.join(job.id for job in jobs)}")

    with tempfile.TemporaryDirectory(prefix="bullpy-demo-") as tmp:
        sent_log = Path(tmp) / "sent.jsonl"
        env = {
            **os.environ,
            "REDIS_URL": connection.url_for(queue.client),
            "QUEUE_NAME": queue_name,
            "BULL_PREFIX": prefix,
            "DRY_RUN_LOG": str(sent_log),
            "EXIT_WHEN_DRAINED": "1",
        }
        echo("starting the Node Bull worker (bridge/worker.js, dry-run sender)")
        worker = subprocess.Popen([node, "worker.js"], cwd=bridge_dir, env=env, stdout=subprocess.DEVNULL)
        ids = [job.id for job in jobs]
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                states = [queue.get_job(i) for i in ids]
                done = [j for j in states if j is not None and j.finished_on]
                if len(done) == len(ids):
                    break
                time.sleep(0.2)
            else:
                echo("timed out waiting for the Node worker")
                return 1
        finally:
            worker.terminate()
            worker.wait(timeout=15)
        sent = [json.loads(line) for line in sent_log.read_text().splitlines()] if sent_log.exists() else []

    echo("")
    echo(f"{'job':>5}  {'state':<10} {'to':<22} {'messageId':<28} message")
    for job_id in ids:
        job = queue.get_job(job_id)
        assert job is not None
        result = job.returnvalue or {}
        to = next((s["to"] for s in sent if str(s.get("jobId")) == job_id), "")
        echo(f"{job_id:>5}  {job.get_state().value:<10} {to:<22} {str(result.get('messageId', '')):<28} {job.data['message']}")
    counts = queue.get_job_counts()
    echo("")
    echo("counts: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    ok = all((queue.get_job(i) or jobs[0]).returnvalue for i in ids)
    queue.close()
    return 0 if ok and len(sent) >= len(ids) else 1
