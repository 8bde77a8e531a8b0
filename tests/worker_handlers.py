"""Handlers that ``bullpy worker`` runs in tests, named ``tests.worker_handlers:work`` from the repository root.

Every run of ``work`` appends one JSON line (job id, pid) to ``$BULLPY_TEST_RECORD`` before it returns, so a
test can count how often each job really ran, whichever process ran it.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import bullpy


def work(job: bullpy.Job) -> Any:
    data = job.data if isinstance(job.data, dict) else {}
    time.sleep(float(data.get("sleep", 0)) / 1000)
    # One short O_APPEND write per line: lines of concurrent writers never interleave.
    with open(os.environ["BULLPY_TEST_RECORD"], "a", encoding="utf-8") as record:
        record.write(json.dumps({"id": job.id, "pid": os.getpid()}) + "\n")
    if data.get("fail"):
        raise RuntimeError(str(data["fail"]))
    return {"done": job.id}


by_name = {"send": work, "*": lambda job: "caught by *"}


HANDLER_NOT_CALLABLE = 5
