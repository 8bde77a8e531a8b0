"""Every notebook in notebooks/ runs top to bottom against the test Redis (so none can rot), on a Redis
that already holds a production-looking ``message-queue`` under the notebooks' prefix: that queue's keys
must come out exactly as they went in, and nothing the notebooks created may be left behind."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from .conftest import delete_prefix, keyspace

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# Notebooks that start the Node worker (bridge/worker.js) through bullpy.bridge.NodeWorker.
NEEDS_NODE = {"campaign.ipynb", "inspect-existing-queue.ipynb", "cleanup-and-migration.ipynb"}
PRODUCTION_QUEUE = "message-queue"


def fill_production_queue(redis_url: str, prefix: str) -> None:
    """A queue like a live one: 230 waiting messages, a delayed one, finished ones and one active job with
    no lock (its worker died), all where a careless notebook (default queue name, same prefix) would look."""
    from bullpy import Queue

    queue = Queue(PRODUCTION_QUEUE, redis_url, prefix=prefix)
    try:
        queue.add_bulk([{"data": {"number": f"+55 11 9{i:04d}-0000", "message": f"Pedido #{i}", "delay": 0},
                         "opts": {"attempts": 3, "backoff": {"type": "exponential", "delay": 2000}}}
                        for i in range(231)])
        queue.add({"number": "+55 11 90000-9999", "message": "Lembrete", "delay": 0}, delay=24 * 3600_000)
        client = queue.client
        keys = f"{prefix}:{PRODUCTION_QUEUE}"
        # One job taken by a worker that died: in `active`, with processedOn, and no lock.
        job_id = client.rpoplpush(f"{keys}:wait", f"{keys}:active")
        client.hset(f"{keys}:{job_id}", "processedOn", "1700000000000")
        # Two finished jobs, as Bull leaves them.
        for state, field, value in (("completed", "returnvalue", '{"messageId":"real-1"}'),
                                    ("failed", "failedReason", "invalid number")):
            done = client.rpop(f"{keys}:wait")
            client.hset(f"{keys}:{done}", mapping={field: value, "finishedOn": "1700000001000",
                                                   "processedOn": "1700000000500", "attemptsMade": "1"})
            client.zadd(f"{keys}:{state}", {done: 1700000001000})
        assert queue.get_job_counts() == {"waiting": 228, "active": 1, "completed": 1, "failed": 1,
                                          "delayed": 1, "paused": 0}
    finally:
        queue.close()


@pytest.fixture
def notebook_env(redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    prefix = f"bullpy-nb-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BULLPY_NOTEBOOK_PREFIX", prefix)
    for name in ("BULLPY_NOTEBOOK_QUEUE", "BULLPY_NOTEBOOK_TARGET", "TARGET_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    yield prefix
    delete_prefix(redis_client, prefix)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, notebook_env: str, redis_url: str, redis_client: redis.Redis) -> None:
    if path.name in NEEDS_NODE and (shutil.which("node") is None or not (path.parents[1] / "bridge" / "node_modules").is_dir()):
        pytest.skip("needs Node.js and bridge/node_modules")
    fill_production_queue(redis_url, notebook_env)
    before = keyspace(redis_client, notebook_env)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert os.environ["BULLPY_NOTEBOOK_PREFIX"] == notebook_env
    after = keyspace(redis_client, notebook_env)
    left_behind = sorted(set(after) - set(before))
    assert not left_behind, f"the notebook left keys behind: {left_behind[:20]}"
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not changed, f"the notebook changed jobs it did not create: {changed[:20]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_says_it_is_safe(path: Path) -> None:
    """Each notebook says at the top, in one markdown line, what it touches on a production Redis."""
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown"
    assert "**Safe on a production Redis:**" in nb.cells[0].source
