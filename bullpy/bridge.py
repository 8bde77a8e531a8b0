"""Start the Node side from Python: bridge/worker.js, the WhatsApp sender worker (dry-run by default),
on the same Redis, queue and prefix as a bullpy Queue. Used by ``bullpy demo`` and the notebooks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import connection
from .queue import Queue


def find_bridge(explicit: str | os.PathLike[str] | None = None) -> Path:
    """bridge/ given, in the current folder or a parent, or beside the package (a source checkout)."""
    if explicit:
        candidates = [Path(explicit)]
    else:
        here = Path.cwd()
        candidates = [p / "bridge" for p in (here, *here.parents)] + [Path(__file__).resolve().parent.parent / "bridge"]
    for path in candidates:
        if (path / "worker.js").is_file():
            return path
    raise FileNotFoundError("bridge/worker.js not found: run from the bullpy checkout or pass bridge=PATH")


class NodeWorker:
    """bridge/worker.js running on a Queue's Redis; a context manager that stops it on exit.

    ``sent()`` returns the dry-run sender's records (one per message "sent").
    """

    def __init__(self, queue: Queue, *, bridge: str | os.PathLike[str] | None = None, dry_run_log: str | os.PathLike[str],
                 concurrency: int = 1, exit_when_drained: bool = False, env: dict[str, str] | None = None) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("Node.js is needed to run the Bull worker: install node, then retry")
        self.bridge = find_bridge(bridge)
        if not (self.bridge / "node_modules" / "bull").is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=self.bridge, check=True, stdout=sys.stderr)
        self.log = Path(dry_run_log)
        environ = {
            **os.environ,
            # Carries the password, if any, through the environment only; never printed.
            "REDIS_URL": connection.url_for(queue.client),
            # On a cluster that URL names the queue's master; worker.js starts an ioredis Cluster from it.
            **({"REDIS_CLUSTER": "1"} if queue.cluster is not None else {}),
            "QUEUE_NAME": queue.name,
            "BULL_PREFIX": queue.prefix,
            "DRY_RUN_LOG": str(self.log),
            "CONCURRENCY": str(concurrency),
            **({"EXIT_WHEN_DRAINED": "1"} if exit_when_drained else {}),
            **(env or {}),
        }
        self.process = subprocess.Popen([node, "worker.js"], cwd=self.bridge, env=environ, stdout=subprocess.DEVNULL)

    def sent(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines() if line.strip()]

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout)

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout)

    def __enter__(self) -> NodeWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
