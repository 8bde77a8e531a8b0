"""The widgets in a real browser: Voila executes a notebook holding a QueueDashboard and a JobInspector over
a queue that Node Bull filled and worked, and Debian's headless Chromium, driven by Playwright, reads the
rendered counts and a failed reason, clicks through to a job's detail and pauses the queue from the page.

Needs /usr/bin/chromium (Debian's package; never a browser Playwright downloads): skipped without it. A
screenshot is kept in the test's tmp folder and copied to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import bullpy

from ..interop.peer import Peer, PeerQueue, node_available

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Generous: Voila starts a kernel and runs the notebook before the widgets exist.
WAIT_MS = 45_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")

NOTEBOOK_CELLS = [
    """import os
import bullpy
from bullpy.widgets import JobInspector, QueueDashboard
queue = bullpy.Queue(os.environ["BULLPY_BROWSER_QUEUE"], os.environ["REDIS_URL"],
                     prefix=os.environ["BULLPY_BROWSER_PREFIX"])""",
    "dashboard = QueueDashboard(queue, refresh=1.0)\ndashboard",
    "inspector = JobInspector(queue, 'failed', page_size=10)\ninspector",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"voila exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"voila did not listen on port {port} within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def node_filled_queue(redis_url: str, prefix: str) -> Iterator[tuple[bullpy.Queue, dict[str, Any]]]:
    """A queue Node Bull filled and worked: completed, failed (with reasons) and delayed jobs."""
    if not node_available():  # as every Node-backed test of the suite
        pytest.skip("Node.js or bridge/node_modules is missing: run `npm ci` in bridge/")
    name = "browser-queue"
    q = PeerQueue(name, prefix=prefix)
    with Peer(redis_url) as bull:
        for i in range(6):
            behaviour = {"__peer": {"fail": f"invalid number: 5511{i}"}} if i in (1, 4) else {}
            bull.call(q, "add", {"number": f"5511{i}", "message": "Olá", **behaviour}, {"attempts": 1})
        bull.call(q, "add", {"number": "5599", "message": "later"}, {"delay": 3_600_000})
        bull.process(q, count=6)
        bull.wait_for_counts(q, completed=4, failed=2, delayed=1)
        failed = {job["id"]: job["failedReason"] for job in bull.call(q, "getFailed")}
        counts = bull.call(q, "getJobCounts")
        bull.close(do_not_wait_jobs=True)
    queue = bullpy.Queue(name, redis_url, prefix=prefix)
    yield queue, {"counts": counts, "failed": failed}
    queue.close()


@pytest.fixture
def voila(tmp_path: Path, redis_url: str, node_filled_queue: tuple[bullpy.Queue, dict[str, Any]]) -> Iterator[str]:
    """Voila serving the widgets notebook on a free loopback port; stopped (with its kernel) afterwards."""
    import nbformat

    queue, _ = node_filled_queue
    notebook = tmp_path / "widgets.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebook)
    port = _free_port()
    log = tmp_path / "voila.log"
    env = {**os.environ, "REDIS_URL": redis_url, "BULLPY_BROWSER_QUEUE": queue.name,
           "BULLPY_BROWSER_PREFIX": queue.prefix, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
             "--Voila.port_retries=0", "--show_tracebacks=True", str(notebook)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()  # Voila shuts its kernels down on SIGTERM
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_widgets_render_node_filled_queue_in_chromium(
    voila: str, node_filled_queue: tuple[bullpy.Queue, dict[str, Any]], tmp_path: Path, redis_client: redis.Redis,
) -> None:
    from playwright.sync_api import sync_playwright

    queue, node = node_filled_queue
    shot = tmp_path / "voila-widgets.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        try:
            page.goto(voila, wait_until="domcontentloaded", timeout=WAIT_MS)
            cell = ".bullpy-dashboard .bullpy-dashboard-counts [data-bullpy-state='{}']"
            page.wait_for_selector(cell.format("failed"), timeout=WAIT_MS)
            shown = {state: int(page.inner_text(cell.format(state)).replace(",", "")) for state in node["counts"]}
            assert shown == node["counts"] == queue.get_job_counts()

            # The inspector lists Node's failed jobs with Node's failed reasons.
            page.wait_for_selector(".bullpy-inspector .bullpy-failed-reason", timeout=WAIT_MS)
            reasons = page.locator(".bullpy-inspector .bullpy-jobs .bullpy-failed-reason").all_inner_texts()
            assert sorted(reasons) == sorted(node["failed"].values())

            # Clicking a job id goes to the kernel and back: the detail pane shows that job's failure.
            job_id, reason = min(node["failed"].items())
            page.locator(".bullpy-inspector .bullpy-job-id", has_text=str(job_id)).first.click()
            page.wait_for_selector(f".bullpy-detail .bullpy-failed-reason:has-text('{reason}')", timeout=WAIT_MS)

            # The pause button pauses the queue in Redis, and the page says so.
            page.locator(".bullpy-dashboard .bullpy-pause").click()
            page.wait_for_selector(".bullpy-dashboard .bullpy-pause:has-text('Resume')", timeout=WAIT_MS)
            assert queue.is_paused()
            page.screenshot(path=str(shot), full_page=True)
        except Exception:
            page.screenshot(path=str(shot), full_page=True)
            raise
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            if shot.exists():
                shutil.copy(shot, ARTIFACTS / shot.name)
            browser.close()
