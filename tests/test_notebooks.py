"""Every notebook in notebooks/ runs top to bottom against the test Redis (so none can rot)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .conftest import delete_prefix

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# Notebooks that start the Node worker (bridge/worker.js) through bullpy.bridge.NodeWorker.
NEEDS_NODE = {"campaign.ipynb", "inspect-existing-queue.ipynb", "cleanup-and-migration.ipynb"}


@pytest.fixture
def notebook_env(redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    prefix = f"bullpy-nb-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BULLPY_NOTEBOOK_PREFIX", prefix)
    yield prefix
    delete_prefix(redis_client, prefix)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, notebook_env: str) -> None:
    if path.name in NEEDS_NODE and (shutil.which("node") is None or not (path.parents[1] / "bridge" / "node_modules").is_dir()):
        pytest.skip("needs Node.js and bridge/node_modules")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert os.environ["BULLPY_NOTEBOOK_PREFIX"] == notebook_env
