"""The Python twin of bridge/peer.js's handler: the same ``data.__peer`` behaviour, so a mixed fleet
runs identical work on both sides. Importable (``peer_handler``) and runnable as a worker process:

    REDIS_URL=... QUEUE_NAME=... BULL_PREFIX=... CONCURRENCY=2 python tests/interop/pyworker.py

It prints one JSON line per finished attempt ({"event", "id", "attemptsMade"}) and exits 0 on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bullpy  # noqa: E402
from bullpy.worker import Worker  # noqa: E402


def make_handler(defaults: Mapping[str, Any] | None = None,
                 record: Callable[[bullpy.Job], None] | None = None) -> Callable[[bullpy.Job], Any]:
    def peer_handler(job: bullpy.Job) -> Any:
        own = job.data.get("__peer") if isinstance(job.data, dict) else None
        behaviour = {**(defaults or {}), **(own if isinstance(own, dict) else {})}
        if record is not None:
            record(job)
        for value in behaviour.get("progress") or []:
            job.update_progress(value)
        for row in behaviour.get("log") or []:
            job.log(row if isinstance(row, str) else json.dumps(row))
        if behaviour.get("sleep", 0) > 0:
            time.sleep(behaviour["sleep"] / 1000)
        if behaviour.get("crash"):
            os._exit(137)
        if behaviour.get("hang"):
            threading.Event().wait()
        has_fail = behaviour.get("fail") is not None
        fail_times = behaviour.get("failTimes")
        if has_fail or isinstance(fail_times, int):
            if not isinstance(fail_times, int) or (job.attempts_made or 0) < fail_times:
                if behaviour.get("discard"):
                    job.discard()
                raise RuntimeError(str(behaviour["fail"]) if has_fail else f"peer failure {job.attempts_made}")
        if behaviour.get("returnUndefined"):
            return None
        if "return" in behaviour:
            return behaviour["return"]
        return {"processed": job.id}

    return peer_handler


peer_handler = make_handler()


def main() -> int:
    queue = bullpy.Queue(os.environ["QUEUE_NAME"], os.environ["REDIS_URL"], prefix=os.environ.get("BULL_PREFIX", "bull"))
    settings: dict[str, Any] = {}
    for env, key in (("LOCK_DURATION", "lock_duration"), ("STALLED_INTERVAL", "stalled_interval"),
                     ("MAX_STALLED_COUNT", "max_stalled_count"), ("LOCK_RENEW_TIME", "lock_renew_time")):
        if os.environ.get(env):
            settings[key] = int(os.environ[env])
    if os.environ.get("LIMITER_MAX"):
        settings["limiter"] = {"max": int(os.environ["LIMITER_MAX"]), "duration": int(os.environ["LIMITER_DURATION"])}
    out_lock = threading.Lock()

    def emit(event: str, job: Any, *rest: Any) -> None:
        with out_lock:
            print(json.dumps({"event": event, "id": getattr(job, "id", None), "attemptsMade": getattr(job, "attempts_made", None),
                              "at": int(time.time() * 1000)}), flush=True)

    queue.on("completed", lambda job, result: emit("completed", job))
    queue.on("failed", lambda job, err: emit("failed", job))
    queue.on("active", lambda job, _p: emit("active", job))
    worker = Worker(queue, make_handler(json.loads(os.environ.get("BEHAVIOUR", "{}"))),
                    concurrency=int(os.environ.get("CONCURRENCY", "1")), **settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.start()
    print(json.dumps({"event": "ready", "pid": os.getpid()}), flush=True)
    stop.wait()
    worker.close()
    queue.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
