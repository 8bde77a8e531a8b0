"""The widgets over queues real Node Bull fills and works: what they show is what Node says, and what
their buttons do, Node's workers then act on (a retried job is processed again, a promoted one runs now,
a paused queue is paused for Node)."""

from __future__ import annotations

import time
from typing import Any

import pytest

import bullpy

from ..test_widgets import shown_counts, wait_until
from .peer import Peer, PeerQueue

pytest.importorskip("ipywidgets")
from bullpy.widgets import CampaignMonitor, JobInspector, QueueDashboard


def peer_queue(queue: bullpy.Queue, **options: Any) -> PeerQueue:
    return PeerQueue(queue.name, prefix=queue.prefix, **options)


def row_of(inspector: JobInspector, job_id: str) -> int:
    ids = [job.id for job in inspector.jobs]
    assert job_id in ids, f"job {job_id} is not on the page ({ids})"
    return ids.index(job_id)


def test_retry_from_the_inspector_then_node_processes_the_job(queue: bullpy.Queue, bull: Peer) -> None:
    q = peer_queue(queue)
    flaky = bull.call(q, "add", {"number": "5511", "__peer": {"failTimes": 1}}, {"attempts": 1})["id"]
    broken = bull.call(q, "add", {"number": "x", "__peer": {"fail": "invalid number: x"}}, {"attempts": 1})["id"]
    bull.process(q, count=2)
    bull.wait_for_counts(q, failed=2)

    inspector = JobInspector(queue, "failed")
    try:
        # The page shows Node's failure reasons.
        for job_id in (flaky, broken):
            node_reason = bull.get_job(q, job_id)["failedReason"]  # type: ignore[index]
            assert node_reason in inspector.rows[row_of(inspector, job_id)][2][-1].value
        inspector.rows[row_of(inspector, flaky)][0].value = True  # tick the flaky job
        inspector.action_buttons["retry"].click()
        assert "Retry 1 selected failed job" in inspector.confirm_html.value
        inspector.confirm_button.click()
        assert inspector.last_report is not None and inspector.last_report.done == [str(flaky)]

        # Node's running worker takes it again and, on its second attempt, completes it.
        bull.wait_for_state(q, flaky, "completed")
        runs = [r for r in bull.processed(q) if str(r["id"]) == str(flaky)]
        assert [r["outcome"] for r in runs] == ["failed", "completed"]
        assert bull.call(q, "getJobCounts")["failed"] == 1
        inspector.reload()
        assert [j.id for j in inspector.jobs] == [str(broken)]
    finally:
        inspector.close()


def test_promote_and_remove_from_the_inspector_as_node_sees_it(queue: bullpy.Queue, bull: Peer) -> None:
    q = peer_queue(queue)
    later = bull.call(q, "add", {"number": "5511"}, {"delay": 3_600_000})["id"]
    doomed = bull.call(q, "add", {"number": "x", "__peer": {"fail": "invalid number: x"}}, {"attempts": 1})["id"]
    bull.process(q, count=1)
    bull.wait_for_counts(q, failed=1, delayed=1)

    inspector = JobInspector(queue, "delayed")
    try:
        inspector.select([str(later)])
        assert inspector.request("promote") == f"Promote 1 selected delayed job: {later}?"
        inspector.confirm()
        bull.wait_for_state(q, later, "completed")  # due in an hour, processed by Node now

        inspector.state = "failed"
        inspector.set_filter(field="number", value="x")
        inspector.scope_dropdown.value = "all"
        inspector.action_buttons["remove"].click()
        inspector.confirm_button.click()
        assert inspector.last_report is not None and inspector.last_report.done == [str(doomed)]
        assert bull.get_job(q, doomed) is None
        assert bull.call(q, "getJobCounts") == {"waiting": 0, "active": 0, "completed": 1, "failed": 0,
                                                "delayed": 0, "paused": 0}
    finally:
        inspector.close()


def test_dashboard_shows_nodes_counts_workers_and_pauses_node(queue: bullpy.Queue, bull: Peer) -> None:
    q = peer_queue(queue, metrics={"maxDataPoints": 60})
    for i in range(5):
        bull.call(q, "add", {"i": i, **({"__peer": {"fail": "boom"}} if i == 4 else {})}, {"attempts": 1})
    bull.call(q, "add", {"i": "later"}, {"delay": 3_600_000})
    bull.process(q, count=5)
    bull.wait_for_counts(q, completed=4, failed=1)

    dash = QueueDashboard(queue, refresh=None)
    try:
        panel = dash.panels[0]
        assert shown_counts(panel) == bull.call(q, "getJobCounts")
        # Node names its blocking connection prefix:base64(name): Bull's getWorkers sees the same worker.
        node_workers = bull.call(q, "getWorkers")
        assert len(panel.workers) == len(node_workers) >= 1
        assert f"data-bullpy-workers='{len(node_workers)}'" in panel.workers_html.value
        # Node's worker records Bull's metrics; the throughput comes from them.
        node_metrics = bull.call(q, "getMetrics", "completed")
        assert panel.throughput.source == "metrics"
        assert sum(panel.throughput.completed) == node_metrics["meta"]["count"] == 4
        assert sum(panel.throughput.failed) == 1

        panel.pause_button.click()
        assert bull.call(q, "isPaused") is True
        added = bull.call(q, "add", {"i": "while paused"})["id"]
        time.sleep(0.5)
        assert bull.call(q, "getJobCounts")["paused"] == 1  # Node's worker leaves it alone
        dash.refresh_now()
        assert shown_counts(panel)["paused"] == 1
        panel.pause_button.click()
        assert bull.call(q, "isPaused") is False
        bull.wait_for_state(q, added, "completed")
    finally:
        dash.close()


def test_campaign_monitor_over_a_node_worked_campaign(queue: bullpy.Queue, bull: Peer) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({
        "number": ["5511", "5512", "bad", "5514"],
        "__peer": [{}, {}, {"fail": "invalid number: bad"}, {"sleep": 10}],
    })
    result = queue.add_frame(frame, attempts=1, progress=False)
    monitor = CampaignMonitor(queue, result, refresh=0.05)
    try:
        assert monitor.summary.pending == 4 and monitor.bar.value == 0
        bull.process(peer_queue(queue), count=4)
        wait_until(lambda: monitor.summary.done, 10, "the monitor to see the campaign done")
        s = monitor.summary
        assert (s.sent, s.failed, s.pending) == (3, 1, 0)
        failed_id = result["job_id"].iloc[2]
        assert s.failures == [(bull.get_job(peer_queue(queue), failed_id)["failedReason"], 1, [failed_id])]  # type: ignore[index]
        assert monitor.bar.value == 4 and monitor.bar.bar_style == "danger"
        wait_until(lambda: not monitor.refreshing, 5, "the refresh to stop once done")
    finally:
        monitor.close()


def test_edit_a_failed_jobs_data_and_retry_then_node_sends_the_new_data(queue: bullpy.Queue, bull: Peer) -> None:
    q = peer_queue(queue)
    bad = bull.call(q, "add", "send", {"number": "x", "__peer": {"fail": "invalid number: x"}}, {"attempts": 1})["id"]
    bull.process(q, count=1)
    bull.wait_for_counts(q, failed=1)

    inspector = JobInspector(queue, "failed", refresh=None)
    try:
        inspector.show(str(bad))
        inspector.detail_pane.buttons["edit"].click()
        assert '"number": "x"' in inspector.editor.data_box.value
        inspector.editor.data_box.value = '{"number": "5511999"}'
        assert inspector.submit() is not None
        bull.wait_for_state(q, bad, "completed")  # Node's worker takes it again, with the data as edited
        runs = [r for r in bull.processed(q) if str(r["id"]) == str(bad)]
        assert [r["data"] for r in runs] == [{"number": "x", "__peer": {"fail": "invalid number: x"}},
                                             {"number": "5511999"}]
        assert bull.get_job(q, bad)["name"] == "send"  # type: ignore[index]
    finally:
        inspector.close()


def test_duplicate_add_and_clean_from_the_inspector_as_node_sees_them(queue: bullpy.Queue, bull: Peer) -> None:
    q = peer_queue(queue)
    original = bull.call(q, "add", "send", {"number": "5511", "__peer": {"fail": "invalid number"}},
                         {"attempts": 1, "backoff": 5000})["id"]
    bull.process(q, count=1)
    bull.wait_for_counts(q, failed=1)

    inspector = JobInspector(queue, "failed", refresh=None)
    try:
        inspector.duplicate(str(original))
        assert '"backoff": {"type": "fixed", "delay": 5000}' in inspector.editor.options_box.value
        inspector.editor.data_box.value = '{"number": "5512"}'
        copy = inspector.submit()
        assert copy is not None
        bull.wait_for_state(q, copy.id, "completed")
        node_copy = bull.get_job(q, copy.id)
        assert node_copy is not None and node_copy["name"] == "send" and node_copy["data"] == {"number": "5512"}
        assert node_copy["opts"]["attempts"] == 1 and node_copy["opts"]["backoff"] == {"type": "fixed", "delay": 5000}

        inspector.new_job(name="send")
        inspector.editor.data_box.value = '{"number": "5513"}'
        added = inspector.submit()
        assert added is not None
        bull.wait_for_state(q, added.id, "completed")

        inspector.state = "failed"
        assert inspector.request_clean() is not None and "Clean 1 failed job" in inspector.confirm_html.value
        report = inspector.confirm()
        assert report is not None and report.done == [str(original)]
        assert bull.get_job(q, original) is None
        assert bull.call(q, "getJobCounts")["failed"] == 0
    finally:
        inspector.close()


def test_dashboard_reads_nodes_timings_and_progress(queue: bullpy.Queue, bull: Peer) -> None:
    q = peer_queue(queue)
    for i in range(3):
        bull.call(q, "add", {"i": i, "__peer": {"sleep": 60}})
    running = bull.call(q, "add", {"i": "long", "__peer": {"progress": [60], "hang": True}})["id"]
    bull.process(q, concurrency=2, count=3)
    bull.wait_for_counts(q, completed=3, active=1)

    dash = QueueDashboard(queue, refresh=None)
    try:
        panel = dash.panels[0]
        wait_until(lambda: (dash.refresh_now(), bool(panel.running) and panel.running[0].progress == 60)[1], 5,
                   "Node's progress")
        assert panel.running[0].id == str(running)
        lat = panel.latency
        node_jobs = [bull.get_job(q, j["id"]) for j in bull.call(q, "getCompleted")]
        runs = sorted(j["finishedOn"] - j["processedOn"] for j in node_jobs if j)  # type: ignore[index]
        assert lat.jobs == 3 and lat.run_p50 == runs[1] and lat.run_p95 == runs[2] and runs[1] >= 60
        assert "title='60%'" in panel.running_html.value
    finally:
        dash.close()
