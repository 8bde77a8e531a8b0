"""The widgets in a real browser. Voila serves three notebooks (a dashboard of every queue under a prefix, an
inspector, a campaign monitor) over queues Node Bull filled and worked, and Debian's headless Chromium, driven
by Playwright, checks them at 1366, 900 and 800 px wide: the counts equal Redis, a page of jobs and a clicked
job's detail are on screen together at 1366x768 without scrolling, nothing spills sideways, a per-state
clean asks (with the dry-run count) and then cleans, and the pause button pauses.

Needs /usr/bin/chromium (Debian's package; never a browser Playwright downloads): skipped without it.
Screenshots go to test-artifacts/ (git-ignored); ``--screenshots docs/`` (or ``BULLPY_SCREENSHOTS=docs``)
also writes the README's pictures, after about three minutes of Node traffic so the chart has a history.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

import bullpy
from bullpy.bridge import NodeWorker

from ..conftest import wait_until
from ..interop.peer import Peer, PeerQueue, node_available

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Generous: Voila starts a kernel and runs the notebook before the widgets exist.
WAIT_MS = 45_000
#: Screenshots only: how long Node works the campaign before the pictures, so the chart has a few minutes.
TRAFFIC_S = 170
WIDE, NARROW, NARROWEST = {"width": 1366, "height": 768}, {"width": 900, "height": 900}, {"width": 800, "height": 800}
STATES = ("waiting", "active", "delayed", "paused", "completed", "failed")

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)"),
    pytest.mark.node,
    pytest.mark.timeout(900),
]

SETUP = """import os
import bullpy
from bullpy.widgets import CampaignMonitor, JobInspector, QueueDashboard
REDIS_URL, PREFIX = os.environ["REDIS_URL"], os.environ["BULLPY_BROWSER_PREFIX"]"""
NOTEBOOKS = {
    "dashboard": [SETUP, "QueueDashboard(redis=REDIS_URL, prefix=PREFIX, refresh=1.0)"],
    "inspector": [SETUP, ("queue = bullpy.Queue('message-queue', REDIS_URL, prefix=PREFIX)\n"
                          "JobInspector(queue, 'failed', refresh=1.0)")],
    "campaign": [SETUP, ("import pandas as pd\n"
                         "result = pd.read_csv(os.environ['BULLPY_BROWSER_CAMPAIGN'], dtype=str)\n"
                         "queue = bullpy.Queue('spring-campaign', REDIS_URL, prefix=PREFIX)\n"
                         "CampaignMonitor(queue, result, refresh=1.0)")],
}

NAMES = ["Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabi", "Hugo", "Iara", "João", "Kátia", "Lucas"]
#: Numbers the WhatsApp worker (bridge/worker.js) refuses: "invalid number: <value as JSON>".
INVALID = ["n/a", "ligar depois", "(sem telefone)",
           ("cliente pediu para não receber mensagens por este canal; entrar em contato somente por e-mail "
            "comercial, conforme combinado na reunião de março. Observação do atendente: o cadastro antigo tinha "
            "um telefone fixo que não aceita WhatsApp e o celular informado na última compra estava incompleto. "
            "Verificar com o setor de cadastro antes de reenviar qualquer campanha para este cliente.")]


@dataclass
class Filled:
    """The two queues Node filled, what Redis holds, and the campaign's result frame on disk."""

    messages: bullpy.Queue
    campaign: bullpy.Queue
    campaign_csv: Path
    campaign_peer: PeerQueue
    bull: Peer


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


def _fill_messages(bull: Peer, prefix: str) -> None:
    """message-queue as the WhatsApp sender sees it: Node adds orders and reminders; some numbers are invalid,
    two sends take minutes (they stay active), six jobs queued hours ago wait behind them, three are delayed."""
    q = PeerQueue("message-queue", prefix=prefix)
    now = bull.now()
    for i in range(36):
        name = NAMES[i % len(NAMES)]
        number = INVALID[(i // 6) % len(INVALID)] if i % 6 == 5 else f"+55 11 9{8000 + i:04d}-{1000 + 7 * i:04d}"
        kind, text = (("order-update", f"Olá {name}! Seu pedido #{1040 + i} saiu para entrega.") if i % 3 else
                      ("reminder", f"{name}, lembrete: sua consulta é amanhã às {9 + i % 8}h."))
        bull.call(q, "add", kind, {"number": number, "message": text, "delay": 0}, {"attempts": 1 if i % 6 == 5 else 3})
    for i in range(2):  # the sender waits data.delay ms: these two are active for minutes
        bull.call(q, "add", "order-update", {"number": f"+55 21 97777-00{i}1", "message": "Pedido confirmado.",
                                             "delay": 600_000}, {"attempts": 3})
    for i in range(6):  # waiting behind them, queued 30 min to 3 h ago
        bull.call(q, "add", "reminder", {"number": f"+55 31 96666-00{i}2", "message": f"Lembrete {i + 1}",
                                         "delay": 0}, {"attempts": 3, "timestamp": now - (6 - i) * 1_800_000})
    for i, hours in enumerate((0.5, 1, 2)):
        bull.call(q, "add", "reminder", {"number": f"+55 41 95555-00{i}3", "message": "Amanhã: retirada",
                                         "delay": 0}, {"delay": int(hours * 3_600_000)})


def _campaign_frame(rows: int) -> Any:
    import pandas as pd

    behaviour: list[dict[str, Any]] = []
    for i in range(rows):
        if i < 2:
            behaviour.append({"progress": [35 + 40 * i], "hang": True})  # running, with progress, for good
        elif i % 9 == 4:
            behaviour.append({"fail": f"invalid number: \"{NAMES[i % len(NAMES)].lower()}@empresa\""})
        elif i % 13 == 7:
            behaviour.append({"fail": "WhatsApp session closed: scan the QR code on the sender phone again"})
        else:
            behaviour.append({})
    return pd.DataFrame({
        "number": [f"+55 51 9{4000 + i:04d}-{2000 + 3 * i:04d}" for i in range(rows)],
        "message": [f"Promoção de primavera para {NAMES[i % len(NAMES)]}: 20% em todo o site." for i in range(rows)],
        "__peer": behaviour,
    })


@pytest.fixture
def filled(redis_url: str, prefix: str, tmp_path: Path, screenshots_dir: Path | None) -> Iterator[Filled]:
    """message-queue worked by the real WhatsApp worker (bridge/worker.js, dry run), and spring-campaign, a
    frame bullpy queued, worked by Node Bull with metrics on; both keep running during the test."""
    pd = pytest.importorskip("pandas")
    if not node_available():  # as every Node-backed test of the suite
        pytest.skip("Node.js or bridge/node_modules is missing: run `npm ci` in bridge/")
    messages = bullpy.Queue("message-queue", redis_url, prefix=prefix)
    campaign = bullpy.Queue("spring-campaign", redis_url, prefix=prefix)
    slow = screenshots_dir is not None
    with Peer(redis_url) as bull:
        _fill_messages(bull, prefix)
        sender = NodeWorker(messages, dry_run_log=tmp_path / "sent.jsonl", concurrency=2)
        try:
            wait_until(lambda: messages.get_job_counts("completed", "failed", "active") ==
                       {"completed": 30, "failed": 6, "active": 2}, 30, "the WhatsApp worker to send")
            rows = 150 if slow else 40
            result = pd.concat([campaign.add_frame(_campaign_frame(rows), attempts=1, progress=False),
                                campaign.add_frame(_campaign_frame(5).iloc[2:], delay=3_600_000, progress=False)],
                               ignore_index=True)
            csv = tmp_path / "campaign.csv"
            result[["job_id"]].to_csv(csv, index=False)
            cq = PeerQueue("spring-campaign", prefix=prefix, metrics={"maxDataPoints": 120})
            # Three at a time, two of them hanging for good: one sends at a time, every 3 s for the pictures.
            bull.process(cq, concurrency=3, behaviour={"sleep": 3000 if slow else 20})
            if slow:
                time.sleep(TRAFFIC_S)
            else:
                wait_until(lambda: sum(campaign.get_job_counts("completed", "failed").values()) == rows - 2, 30,
                           "Node to work the campaign")
            bull.call(cq, "pause", {"isLocal": True, "doNotWaitActive": True})  # counts hold still from here
            yield Filled(messages, campaign, csv, cq, bull)
        finally:
            # worker.js lets running jobs finish on SIGTERM (these take ten minutes); a second one exits at once.
            sender.process.terminate()
            time.sleep(0.3)
            if sender.process.poll() is None:
                sender.process.terminate()
            sender.process.wait(15)
            bull.close(do_not_wait_jobs=True)
            messages.close()
            campaign.close()


@pytest.fixture
def voila(tmp_path: Path, redis_url: str, filled: Filled) -> Iterator[str]:
    """Voila serving the three notebooks on a free loopback port; stopped (with its kernels) afterwards."""
    import nbformat

    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name, cells in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / f"{name}.ipynb")
    port = _free_port()
    log = tmp_path / "voila.log"
    env = {**os.environ, "REDIS_URL": redis_url, "BULLPY_BROWSER_PREFIX": filled.messages.prefix,
           "BULLPY_BROWSER_CAMPAIGN": str(filled.campaign_csv), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
             "--Voila.port_retries=0", "--show_tracebacks=True", str(folder)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}/voila/render/"
    finally:
        proc.terminate()  # Voila shuts its kernels down on SIGTERM
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- what the page shows -----------------------------------------------------------------------------------

def _number(text: str) -> int:
    return int(text.strip().rsplit(" ", 1)[-1].replace(",", ""))


def _buttons(scope: Any, kind: str) -> dict[str, int]:
    """The counts shown on per-state buttons (``bullpy-count-<state>`` or ``bullpy-tab-<state>``) in a locator."""
    return {s: _number(scope.locator(f".bullpy-{kind}-{s}").inner_text()) for s in STATES}


def _inside_viewport(page: Any, locator: Any) -> bool:
    box = locator.bounding_box()
    view = page.viewport_size
    return (box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= view["width"] + 0.5
            and box["y"] + box["height"] <= view["height"] + 0.5)


def _scrolled(page: Any) -> int:
    """How far anything on the page is scrolled (the detail pane's own scrolling aside)."""
    return int(page.evaluate("""() => Math.max(window.scrollY, ...Array.from(document.querySelectorAll('*'))
        .filter(e => !e.closest('.bullpy-side-pane')).map(e => e.scrollTop))"""))


def _no_sideways_spill(page: Any) -> None:
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the window"
    spills = page.evaluate("""() => Array.from(document.querySelectorAll('.bullpy-row')).filter(r =>
        r.offsetParent !== null && Array.from(r.querySelectorAll('.bc')).some(c =>
            c.offsetParent !== null && c.getBoundingClientRect().right > r.getBoundingClientRect().right + 1)).length""")
    assert spills == 0, f"{spills} job rows spill over their right edge"


def _shoot(target: Any, name: str, tmp_path: Path, screenshots_dir: Path | None) -> None:
    shot = tmp_path / name
    target.screenshot(path=str(shot))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / name)
    if screenshots_dir is not None:
        shutil.copy(shot, screenshots_dir / name)


# --- the test -------------------------------------------------------------------------------------------------

def test_widgets_in_chromium(voila: str, filled: Filled, tmp_path: Path, redis_client: redis.Redis,
                             screenshots_dir: Path | None) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=WIDE)
        try:
            _dashboard(page, voila + "dashboard.ipynb", filled, redis_client, tmp_path, screenshots_dir)
            _campaign(page, voila + "campaign.ipynb", filled, tmp_path, screenshots_dir)
            _inspector(page, voila + "inspector.ipynb", filled, tmp_path, screenshots_dir)
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "voila-failure.png"), full_page=True)
            raise
        finally:
            browser.close()


def _dashboard(page: Any, url: str, filled: Filled, redis_client: redis.Redis, tmp_path: Path,
               screenshots_dir: Path | None) -> None:
    page.set_viewport_size(WIDE)
    page.goto(url, wait_until="domcontentloaded", timeout=WAIT_MS)
    panels = page.locator(".bullpy-dashboard .bullpy-queue-panel")
    page.wait_for_selector(".bullpy-dashboard .bullpy-count-failed", timeout=WAIT_MS)
    assert panels.count() == 2  # found by find_queues: nobody passed them in
    messages = panels.nth(0)
    assert "message-queue" in messages.locator(".bullpy-toolbar").first.inner_text()
    wait_until(lambda: _buttons(messages, "count") == filled.messages.get_job_counts(), 10,
               "the dashboard's counts to equal Redis")
    assert _buttons(panels.nth(1), "count") == filled.campaign.get_job_counts()
    assert page.inner_text(".bullpy-redis [data-bullpy-redis='version']") == redis_client.info("server")["redis_version"]
    assert page.locator(".bullpy-dashboard svg.bullpy-throughput-chart").count() == 2
    oldest = messages.locator("[data-bullpy-stat='oldest-waiting']").inner_text()
    assert oldest.endswith(" h"), oldest  # queued three hours ago
    assert messages.locator("[data-bullpy-stat='run-p95']").count() == 1
    bars = page.locator(".bullpy-dashboard .bullpy-running .bullpy-progress").evaluate_all("b => b.map(x => x.title)")
    assert sorted(bars) == ["0%", "0%", "35%", "75%"]  # the sender's two long sends, the campaign's two
    _no_sideways_spill(page)
    _shoot(page.locator(".bullpy-dashboard"), "dashboard.png", tmp_path, screenshots_dir)

    page.set_viewport_size(NARROW)
    page.wait_for_timeout(300)
    _no_sideways_spill(page)
    _shoot(page.locator(".bullpy-dashboard"), "dashboard-900.png", tmp_path, None)
    page.set_viewport_size(NARROWEST)
    page.wait_for_timeout(300)
    _no_sideways_spill(page)
    page.set_viewport_size(NARROW)

    # A count opens the inspector on that state, below the cards.
    messages.locator(".bullpy-count-failed").click()
    inspector = ".bullpy-dashboard-inspector .bullpy-inspector"
    page.wait_for_selector(f"{inspector} .bullpy-tab-failed.bullpy-tab-current", timeout=WAIT_MS)
    wait_until(lambda: page.locator(f"{inspector} .bullpy-row:visible").count() == 6, 10, "six failed rows")

    # Pause and resume from the page: Redis follows.
    pause = messages.locator(".bullpy-pause")
    pause.click()
    pause.filter(has_text="Resume").wait_for(timeout=WAIT_MS)
    assert filled.messages.is_paused()
    pause.click()
    pause.filter(has_text="Pause").wait_for(timeout=WAIT_MS)
    assert not filled.messages.is_paused()


def _campaign(page: Any, url: str, filled: Filled, tmp_path: Path, screenshots_dir: Path | None) -> None:
    import pandas as pd

    page.set_viewport_size(WIDE)
    page.goto(url, wait_until="domcontentloaded", timeout=WAIT_MS)
    page.wait_for_selector(".bullpy-campaign [data-bullpy-campaign='rate']", timeout=WAIT_MS)
    status = filled.campaign.campaign_status(pd.read_csv(filled.campaign_csv, dtype=str))
    states = status["state"].value_counts().to_dict()
    shown = {k: _number(page.inner_text(f".bullpy-campaign [data-bullpy-campaign='{k}']"))
             for k in ("sent", "failed", "pending", "delayed")}
    assert shown == {"sent": states.get("completed", 0), "failed": states.get("failed", 0),
                     "pending": states.get("waiting", 0) + states.get("active", 0), "delayed": states.get("delayed", 0)}
    reasons = page.locator(".bullpy-campaign .bullpy-campaign-failures .bullpy-failed-reason").all_inner_texts()
    assert sorted(r.rstrip("…") for r in reasons) == sorted(set(status["failed_reason"].dropna()))
    assert page.inner_text(".bullpy-campaign [data-bullpy-campaign='time-left']")
    _no_sideways_spill(page)
    _shoot(page.locator(".bullpy-campaign"), "campaign-monitor.png", tmp_path, screenshots_dir)
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(300)
    _no_sideways_spill(page)
    _shoot(page.locator(".bullpy-campaign"), "campaign-monitor-900.png", tmp_path, None)


def _inspector(page: Any, url: str, filled: Filled, tmp_path: Path, screenshots_dir: Path | None) -> None:
    queue = filled.messages
    page.set_viewport_size(WIDE)
    page.goto(url, wait_until="domcontentloaded", timeout=WAIT_MS)
    root = ".bullpy-inspector"
    page.wait_for_selector(f"{root} .bullpy-tab-failed.bullpy-tab-current", timeout=WAIT_MS)
    wait_until(lambda: _buttons(page.locator(root), "tab") == queue.get_job_counts(), 10,
               "the tab counts to equal Redis")

    # The failed tab lists Node's failed jobs with Node's failed reasons (each row's tooltip holds it whole).
    failed = {job.id: job.failed_reason for job in queue.get_failed()}
    shown = page.locator(f"{root} .bullpy-row:visible .bc-reason").evaluate_all("cells => cells.map(c => c.title)")
    assert sorted(shown) == sorted(failed.values())

    # A full page (20 completed jobs) and the detail of a clicked one: all on screen, nothing scrolled.
    page.locator(f"{root} .bullpy-tab-completed").click()
    wait_until(lambda: page.locator(f"{root} .bullpy-row:visible").count() == 20, 10, "a page of 20 jobs")
    rows = page.locator(f"{root} .bullpy-row:visible")
    rows.nth(4).locator(".bullpy-job-id").click()
    page.wait_for_selector(f"{root} .bullpy-detail-title:has-text('completed')", timeout=WAIT_MS)
    page.wait_for_selector(f"{root} .bullpy-row-shown", timeout=WAIT_MS)
    assert _scrolled(page) == 0
    assert all(_inside_viewport(page, rows.nth(i)) for i in range(20)), "a row of the page is off screen"
    assert _inside_viewport(page, page.locator(f"{root} .bullpy-detail-head"))
    assert _inside_viewport(page, page.locator(f"{root} .bullpy-detail-table tr >> nth=2"))
    _no_sideways_spill(page)

    # The failed job with the longest reason: its detail folds the reason, and a click unfolds it.
    page.locator(f"{root} .bullpy-tab-failed").click()
    wait_until(lambda: page.locator(f"{root} .bullpy-row:visible").count() == 6, 10, "the six failed rows")
    longest = max(failed, key=lambda i: len(failed[i] or ""))
    page.locator(f"{root} .bullpy-job-id", has_text=longest).first.click()
    reason = page.locator(f"{root} .bullpy-detail .bullpy-long:has(.bullpy-failed-reason)")
    more = reason.locator(".bullpy-more")
    more.wait_for(timeout=WAIT_MS)
    more.click()
    assert reason.locator("> .bullpy-failed-reason").inner_text() == failed[longest]
    reason.locator(".bullpy-less").click()  # folded again for the picture
    _shoot(page, "inspector.png", tmp_path, screenshots_dir)

    # 900 px: the detail moves above the list, and nothing spills.
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(300)
    _no_sideways_spill(page)
    detail = page.locator(f"{root} .bullpy-side-pane:visible").bounding_box()
    first_row = page.locator(f"{root} .bullpy-row:visible").first.bounding_box()
    assert detail is not None and first_row is not None and detail["y"] + detail["height"] <= first_row["y"]
    _shoot(page, "inspector-900.png", tmp_path, None)
    page.set_viewport_size(NARROWEST)
    page.wait_for_timeout(300)
    _no_sideways_spill(page)
    _shoot(page, "inspector-800.png", tmp_path, None)

    # Clean the failed state: the dry run's count first, nothing removed until confirmed, then all gone.
    page.set_viewport_size(WIDE)
    before = queue.get_job_counts("failed")["failed"]
    page.locator(f"{root} .bullpy-clean").click()
    page.wait_for_selector(f"{root} .bullpy-confirm:has-text('Clean {before} failed jobs')", timeout=WAIT_MS)
    assert queue.get_job_counts("failed")["failed"] == before
    page.locator(f"{root} .bullpy-confirm-button").click()
    page.wait_for_selector(f"{root} .bullpy-report:has-text('Cleaned {before} failed jobs')", timeout=WAIT_MS)
    assert queue.get_job_counts("failed")["failed"] == 0
    wait_until(lambda: _number(page.inner_text(f"{root} .bullpy-tab-failed")) == 0, 10, "the failed tab to say 0")
