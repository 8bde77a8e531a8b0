"""Widgets through their widget state (no browser): what they show equals what Redis holds, their buttons
change Redis, their refresh stops, and their cost does not grow with the queue.

Node Bull's side of the same widgets: tests/interop/test_widgets_node.py; a real browser: tests/browser/.
"""

from __future__ import annotations

import gc
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import bullpy

from .conftest import counting_client, delete_prefix, keyspace, wait_until
from .servers import free_port

pytest.importorskip("ipywidgets")
from bullpy import widgets
from bullpy.widgets import CampaignMonitor, JobFilter, JobInspector, QueueDashboard
from bullpy.widgets._common import Refresher, metrics_per_minute, sampled_per_minute

CELL = re.compile(r"data-bullpy-state='([a-z]+)'>([\d,]+)<")


def shown_counts(shown: Any) -> dict[str, int]:
    """The numbers shown per state: by a counts table (HTML), a dashboard card's count buttons or an
    inspector's tabs (``"failed 2"``)."""
    if isinstance(shown, str):
        return {state: int(n.replace(",", "")) for state, n in CELL.findall(shown)}
    buttons = shown.count_buttons if hasattr(shown, "count_buttons") else shown.tabs
    return {state: int(b.description.rsplit(" ", 1)[-1].replace(",", "")) for state, b in buttons.items()}


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Register widgets to close after the test (their refresh threads end with them)."""
    made: list[Any] = []

    def register(widget: Any) -> Any:
        made.append(widget)
        return widget

    yield register
    for widget in made:
        widget.close()


def fail_jobs(queue: bullpy.Queue, count: int, reason: str = "boom") -> None:
    """Let a bullpy worker take ``count`` jobs and fail them (attempts 1: final failures)."""

    def handler(job: bullpy.Job) -> None:
        raise RuntimeError(f"{reason} {job.data.get('i')}")

    worker = queue.process(handler)
    try:
        wait_until(lambda: queue.get_job_counts("failed")["failed"] >= count, 10, "failed jobs")
    finally:
        worker.close()


# --- dashboard -----------------------------------------------------------------------------------------

def test_dashboard_shows_the_counts_redis_holds(make_queue: Callable[..., bullpy.Queue], closing: Any) -> None:
    a, b = make_queue("first"), make_queue("second")
    for i in range(7):
        a.add({"i": i})
    a.add({"late": True}, delay=60_000)
    b.add({"only": 1})
    dash = closing(QueueDashboard([a, b], refresh=None))
    for panel, queue in zip(dash.panels, (a, b)):
        assert shown_counts(panel) == queue.get_job_counts()
    assert dash.counts == {"first": a.get_job_counts(), "second": b.get_job_counts()}
    assert shown_counts(dash.panels[0])["delayed"] == 1
    a.add({"i": 99})
    dash.refresh_now()
    assert shown_counts(dash.panels[0])["waiting"] == 8
    assert "0 workers connected" in dash.panels[0].workers_html.value
    assert not dash.refreshing  # refresh=None: on demand only


def test_dashboard_pause_button_pauses_and_resumes(queue: bullpy.Queue, closing: Any) -> None:
    queue.add({"i": 1})
    dash = closing(QueueDashboard(queue, refresh=None))
    panel = dash.panels[0]
    assert panel.pause_button.description == "Pause"
    panel.pause_button.click()
    assert queue.is_paused()
    assert panel.pause_button.description == "Resume"
    assert "data-bullpy-badge='paused'" in panel.title.value
    # Bull moves waiting jobs to the paused list when a queue is paused globally.
    assert shown_counts(panel) == queue.get_job_counts() == {
        "waiting": 0, "active": 0, "completed": 0, "failed": 0, "delayed": 0, "paused": 1}
    panel.pause_button.click()
    assert not queue.is_paused()
    assert panel.pause_button.description == "Pause"
    assert shown_counts(panel)["waiting"] == 1


def test_background_refresh_updates_and_stops_on_close(queue: bullpy.Queue) -> None:
    dash = QueueDashboard(queue, refresh=0.05)
    try:
        assert dash.refreshing
        queue.add({"i": 1})
        queue.add({"i": 2})
        wait_until(lambda: shown_counts(dash.panels[0]).get("waiting") == 2, 5, "refresh")
    finally:
        dash.close()
    thread = dash._refresher.thread
    assert not thread.is_alive() and not dash.refreshing
    after = dash.refreshes
    time.sleep(0.2)
    assert dash.refreshes == after


def test_refresh_pauses_while_no_view_shows_the_dashboard(queue: bullpy.Queue, closing: Any) -> None:
    dash = closing(QueueDashboard(queue, refresh=0.05))
    # What the front end reports when the cell's output is cleared (or the notebook closed), then shown again.
    dash._view_count = 1
    dash._view_count = 0
    time.sleep(0.1)
    frozen = dash.refreshes
    time.sleep(0.3)
    assert dash.refreshes == frozen
    dash._view_count = 1
    wait_until(lambda: dash.refreshes > frozen, 5, "refresh to resume")


def test_refresh_thread_ends_when_its_owner_is_collected() -> None:
    ticks: list[int] = []

    class Owner:
        def _tick(self) -> None:
            ticks.append(1)

    owner = Owner()
    refresher = Refresher(owner, 0.02, "test-refresh").start()
    wait_until(lambda: len(ticks) >= 2, 5, "ticks")
    del owner
    gc.collect()
    refresher.thread.join(2)
    assert not refresher.thread.is_alive()


def test_a_closed_dashboard_is_not_kept_alive_by_its_thread(queue: bullpy.Queue) -> None:
    dash = QueueDashboard(queue, refresh=0.05)
    thread = dash._refresher.thread
    ref = weakref.ref(dash)
    dash.close()
    del dash
    gc.collect()
    assert ref() is None
    assert not thread.is_alive()


def test_refresh_shows_redis_errors_and_recovers(make_redis_server: Callable[..., Any], closing: Any) -> None:
    server = make_redis_server()
    queue = bullpy.Queue("q", server.url())
    try:
        queue.add({"i": 1})
        dash = closing(QueueDashboard(queue, refresh=0.05))
        server.stop()
        # The background refresh must survive: the widget shows the problem instead of raising.
        wait_until(lambda: "cannot reach Redis" in dash.status.value, 5, "the error line")
        assert dash.refreshing
        server.start()  # the same port and files
        wait_until(lambda: "updated" in dash.status.value, 10, "recovery")
        assert dash.error is None and shown_counts(dash.panels[0])["waiting"] == 0
    finally:
        queue.close()


def test_throughput_from_sampled_counts(queue: bullpy.Queue, closing: Any) -> None:
    for i in range(3):
        queue.add({"i": i})
    dash = closing(QueueDashboard(queue, refresh=None))
    assert dash.panels[0].throughput.source == "samples"
    fail_jobs(queue, 3)
    dash.refresh_now()
    t = dash.panels[0].throughput
    assert t.source == "samples" and sum(t.failed) == 3 and sum(t.completed) == 0
    assert "data-bullpy-rate='failed'" in dash.panels[0].throughput_html.value


def test_throughput_without_metrics_reads_recent_finish_times(queue: bullpy.Queue, closing: Any) -> None:
    for i in range(5):
        queue.add({"i": i}, attempts=1)
    fail_jobs(queue, 5)  # before the dashboard exists: no sample saw them finish
    dash = closing(QueueDashboard(queue, refresh=None))
    t = dash.panels[0].throughput
    assert t.source == "samples" and sum(t.failed) == 5 and t.covered_since is None
    assert "finish times of the newest 100 completed and failed jobs" in dash.panels[0].throughput_html.value
    # Read only the newest 2: the minutes before the oldest of them fall back to the samples (and are shaded).
    few = closing(QueueDashboard(queue, refresh=None, recent=2))
    assert few.panels[0].throughput.covered_since is not None and sum(few.panels[0].throughput.failed) <= 5


def test_finished_per_minute_leaves_uncovered_minutes_out() -> None:
    from bullpy.widgets._common import finished_per_minute

    base = 1_795_800_000_000 // 60_000 * 60_000
    times = [base + 1_000, base + 2_000, base - 30_000, base - 150_000]
    assert finished_per_minute(times, base + 5_000, 4) == [2, 1, 0, 1]
    assert finished_per_minute(times, base + 5_000, 4, complete_after=base - 30_000) == [2, None, None, None]


def test_throughput_from_bulls_metrics_keys(queue: bullpy.Queue, closing: Any) -> None:
    for i in range(4):
        queue.add({"i": i})
    worker = queue.process(lambda job: job.data["i"], metrics={"max_data_points": 60})
    try:
        wait_until(lambda: queue.get_job_counts("completed")["completed"] == 4, 10, "completed jobs")
    finally:
        worker.close()
    dash = closing(QueueDashboard(queue, refresh=None))
    t = dash.panels[0].throughput
    assert t.source == "metrics"
    assert sum(t.completed) == 4 and sum(t.failed) == 0
    assert "Bull&#x27;s metrics" in dash.panels[0].throughput_html.value


@pytest.mark.parametrize(("meta", "data", "age_min", "expected"), [
    # prevTS in the current minute: its bucket is open (count - prevCount); data[i] is i+1 minutes before.
    ({"count": 9, "prevTS": 0, "prevCount": 4}, [3, 0, 2], 0, [5, 3, 0, 2, 0]),
    # Nothing finished for two minutes: Bull wrote nothing meanwhile, so those minutes are zero.
    ({"count": 9, "prevTS": 0, "prevCount": 4}, [3], 2, [0, 0, 5, 3, 0]),
    # The very first finish only sets prevTS (prevCount 0, count 1).
    ({"count": 1, "prevTS": 0, "prevCount": 0}, [], 0, [1, 0, 0, 0, 0]),
])
def test_metrics_per_minute_reads_bulls_layout(meta: dict[str, int], data: list[int], age_min: int,
                                               expected: list[int]) -> None:
    prev = 1_795_800_000_000 // 60_000 * 60_000 + 5_000
    now = prev + age_min * 60_000 + 1_000
    assert metrics_per_minute({**meta, "prevTS": prev}, data, now, 5) == expected


def test_sampled_per_minute_ignores_counts_that_went_down() -> None:
    base = 1_795_800_000_000 // 60_000 * 60_000
    samples = [(base - 60_000, 10), (base - 30_000, 14), (base + 1_000, 3), (base + 2_000, 5)]
    assert sampled_per_minute(samples, base + 5_000, 3) == [2, 4, 0]


def test_eviction_policy_warning(make_redis_server: Callable[..., Any], closing: Any) -> None:
    def private(*options: str) -> str:
        url: str = make_redis_server(*options).url()
        return url

    lru = bullpy.Queue("q", private("--maxmemory-policy", "allkeys-lru"))
    safe = bullpy.Queue("q", private("--maxmemory-policy", "noeviction"))
    no_config = bullpy.Queue("q", private("--maxmemory-policy", "volatile-ttl", "--rename-command", "CONFIG", ""))
    hidden = bullpy.Queue("q", private("--rename-command", "CONFIG", "", "--rename-command", "INFO", ""))
    try:
        warned = closing(QueueDashboard(lru, refresh=None))
        assert "data-bullpy-policy='allkeys-lru'" in warned.warning.value
        assert "noeviction" in warned.warning.value
        assert closing(QueueDashboard(safe, refresh=None)).warning.value == ""
        unknown = closing(QueueDashboard(hidden, refresh=None))
        assert "eviction policy unknown" in unknown.warning.value and unknown.error is None
        assert widgets.eviction_policy(hidden.client) is None
        assert widgets.eviction_policy(lru.client) == "allkeys-lru"
        # Without CONFIG (as on managed services), INFO still tells.
        assert "data-bullpy-policy='volatile-ttl'" in closing(QueueDashboard(no_config, refresh=None)).warning.value
    finally:
        for q in (lru, safe, no_config, hidden):
            q.close()


# --- round trips ---------------------------------------------------------------------------------------


def test_dashboard_refresh_costs_the_same_round_trips_for_10_and_100000_jobs(
    redis_url: str, redis_client: redis.Redis, closing: Any,
) -> None:
    costs = []
    for n in (10, 100_000):
        prefix = f"bullpy-test-{uuid.uuid4().hex[:8]}"
        client, trips = counting_client(redis_url)
        try:
            queue = bullpy.Queue("big", client, prefix=prefix)
            queue.add_bulk([{"data": {"i": i}} for i in range(n - 1)], batch_size=5000)
            queue.add({"late": True}, delay=60_000)
            dash = closing(QueueDashboard(queue, refresh=None))
            assert shown_counts(dash.panels[0]) == {
                "waiting": n - 1, "active": 0, "completed": 0, "failed": 0, "delayed": 1, "paused": 0}
            trips.clear()
            dash.refresh_now()
            costs.append(list(trips))
        finally:
            client.close()
            delete_prefix(redis_client, prefix)
    # The same round trips with the same commands in each (keys differ: two prefixes): INFO (the Redis
    # panel and the eviction policy), then per queue counts, paused flag, CLIENT LIST, metrics, the
    # longest-waiting id, the running ids, the newest completed ids, the newest failed ids, and their few
    # fields (one script).
    names = [[[command.split()[0] for command in trip] for trip in cost] for cost in costs]
    assert names[0] == names[1]
    assert len(names[0]) == 10


MILLION_IDS = """
-- LPUSH ids ARGV[1]..ARGV[2] in batches, as Bull's addJob LPUSHes: the lowest id ends up next to run.
local from, to, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), {}
for i = from, to do
  batch[#batch + 1] = tostring(i)
  if #batch == 5000 then redis.call("LPUSH", KEYS[1], unpack(batch)); batch = {} end
end
if #batch > 0 then redis.call("LPUSH", KEYS[1], unpack(batch)) end
return redis.call("LLEN", KEYS[1])
"""


def test_inspector_pages_through_a_million_jobs_one_page_at_a_time(
    redis_url: str, redis_client: redis.Redis, prefix: str, closing: Any,
) -> None:
    client, trips = counting_client(redis_url)
    queue = bullpy.Queue("million", client, prefix=prefix)
    wait = queue.keys("wait")
    fill = redis_client.register_script(MILLION_IDS)
    for start in range(1, 1_000_001, 100_000):  # ten short scripts: the shared Redis is never blocked long
        fill(keys=[wait], args=[start, start + 99_999])
    # Job hashes only for the pages read: paging must never need the others.
    now = int(time.time() * 1000)
    with redis_client.pipeline(transaction=False) as pipe:
        for i in [*range(1, 41), *range(999_981, 1_000_001)]:
            pipe.hset(queue.keys.job(str(i)), mapping={
                "name": "send", "data": f'{{"number":"55{i}","i":{i}}}', "timestamp": now, "delay": 0,
                "priority": 0, "opts": f'{{"attempts":3,"delay":0,"timestamp":{now}}}'})
        pipe.execute()
    try:
        trips.clear()
        inspector = closing(JobInspector(queue, "waiting", page_size=20, refresh=None))
        assert [j.id for j in inspector.jobs] == [str(i) for i in range(1, 21)]
        assert inspector.page_html.value == "jobs 1–20 of 1,000,000"
        assert _reads(trips) == {"HGETALL": 20, "LRANGE": 1}

        trips.clear()
        inspector.next_page()
        assert [j.id for j in inspector.jobs] == [str(i) for i in range(21, 41)]
        assert _reads(trips) == {"HGETALL": 20, "LRANGE": 1}

        trips.clear()
        inspector.last_page()
        assert [j.id for j in inspector.jobs] == [str(i) for i in range(999_981, 1_000_001)]
        assert inspector.page_html.value == "jobs 999,981–1,000,000 of 1,000,000"
        assert _reads(trips) == {"HGETALL": 20, "LRANGE": 1}
        assert len(trips) == 3  # counts, the id window, the page's hashes

        # A filter reads forward in chunks and stops at max_scan: never the whole list.
        inspector.max_scan = 1000
        trips.clear()
        inspector.set_filter(field="number", value="5539")
        assert [j.id for j in inspector.jobs] == ["39"]
        assert _reads(trips)["HGETALL"] <= 1000
        assert "read 1,000 jobs" in inspector.page_html.value
    finally:
        client.close()


def _reads(trips: list[list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trip in trips:
        for command in trip:
            name = command.split()[0]
            if name in ("HGETALL", "LRANGE"):
                counts[name] = counts.get(name, 0) + 1
    return counts


# --- inspector -----------------------------------------------------------------------------------------

def test_inspector_states_filters_and_detail(queue: bullpy.Queue, closing: Any) -> None:
    old = int(time.time() * 1000) - 2 * 86_400_000
    for i in range(5):
        queue.add({"number": f"5511{i}", "city": "Recife" if i % 2 else "Natal", "i": i}, attempts=1)
    queue.add({"number": "5599", "city": "Natal", "i": 9}, timestamp=old)
    queue.add({"number": "later"}, delay=3_600_000)
    fail_jobs(queue, 6, reason="invalid number")
    # Every job failed: attempts 1 (the delayed one is not due).
    inspector = closing(JobInspector(queue))
    assert inspector.state == "failed"  # the first state with jobs
    assert shown_counts(inspector) == {k: v for k, v in queue.get_job_counts().items()}
    assert len(inspector.jobs) == 6 and inspector.total == 6
    reasons = [cells[-1].value for _c, _b, cells in inspector.rows[:6]]
    assert all("invalid number" in r for r in reasons)

    inspector.set_filter(text="recife")
    assert sorted(j.data["i"] for j in inspector.jobs) == [1, 3]
    inspector.set_filter(field="city", value="Natal")
    assert sorted(j.data["i"] for j in inspector.jobs) == [0, 2, 4, 9]
    inspector.set_filter(field="number", value="5511*")
    assert sorted(j.data["i"] for j in inspector.jobs) == [0, 1, 2, 3, 4]
    inspector.set_filter(text="invalid number 9")
    assert [j.data["i"] for j in inspector.jobs] == [9]
    inspector.clear_filter()
    inspector.state = "delayed"
    assert [j.data for j in inspector.jobs] == [{"number": "later"}]
    inspector.state = "failed"
    # A time window on created time for waiting jobs; on finished time for failed ones (all just now).
    inspector.set_filter(window="older than 24 h")
    assert inspector.jobs == []
    inspector.set_filter(window="last hour")
    assert len(inspector.jobs) == 6

    job_id = inspector.jobs[0].id
    queue.get_job(job_id).log("tried the number")  # type: ignore[union-attr]
    inspector.rows[0][1].click()  # the id button opens the detail pane
    detail = inspector.detail.value
    assert inspector.shown is not None and inspector.shown.id == job_id
    for text in ("invalid number", "stacktrace", "tried the number", "logs (1)", "data-bullpy-badge='failed'"):
        assert text in detail
    assert inspector.show("nope") is None and "no longer exists" in inspector.detail.value


def test_inspector_window_on_created_time(queue: bullpy.Queue, closing: Any) -> None:
    now = int(time.time() * 1000)
    queue.add({"i": "old"}, timestamp=now - 2 * 86_400_000)
    queue.add({"i": "new"})
    inspector = closing(JobInspector(queue, "waiting"))
    inspector.set_filter(window="older than 24 h")
    assert [j.data["i"] for j in inspector.jobs] == ["old"]
    inspector.set_filter(window="last 15 min")
    assert [j.data["i"] for j in inspector.jobs] == ["new"]


def test_inspector_actions_ask_first_then_change_redis_and_report(
    queue: bullpy.Queue, redis_client: redis.Redis, prefix: str, closing: Any,
) -> None:
    for i in range(4):
        queue.add({"i": i}, attempts=1)
    fail_jobs(queue, 4)
    inspector = closing(JobInspector(queue, "failed"))
    ids = [j.id for j in inspector.jobs]

    # Tick two rows, ask to retry: nothing changes until confirmed; cancel leaves Redis as it was.
    inspector.rows[0][0].value = True
    inspector.rows[1][0].value = True
    assert inspector.selected == ids[:2]
    before = keyspace(redis_client, prefix)
    inspector.action_buttons["retry"].click()
    assert inspector.confirm_bar.layout.display is None
    assert "Retry 2 selected failed jobs" in inspector.confirm_html.value
    inspector.cancel_button.click()
    assert keyspace(redis_client, prefix) == before
    assert inspector.confirm_bar.layout.display == "none"

    inspector.action_buttons["retry"].click()
    inspector.confirm_button.click()
    report = inspector.last_report
    assert report is not None and report.done == ids[:2] and not report.skipped
    assert f"Retried 2 failed jobs: {ids[0]}, {ids[1]}" in inspector.report.value
    assert sorted(queue.get_ranges("wait")) == sorted(ids[:2])
    assert inspector.total == 2 and inspector.selected == []

    # Promote does not apply to failed jobs: the button is disabled, and asking says why.
    assert inspector.action_buttons["promote"].disabled
    assert inspector.request("promote") is None and "promote applies to delayed" in inspector.report.value

    # Remove every matching job (a filter on one failed reason) after confirmation.
    reason = queue.get_job(ids[3]).failed_reason  # type: ignore[union-attr]
    inspector.set_filter(text=reason)
    inspector.scope_dropdown.value = "all"
    inspector.action_buttons["remove"].click()
    assert "Remove ALL 1 failed job matching text" in inspector.confirm_html.value
    inspector.confirm_button.click()
    assert queue.get_job(ids[3]) is None
    assert inspector.last_report is not None and inspector.last_report.done == [ids[3]]

    # Remove all failed jobs with no filter: one bulk call (clean), reported with the ids.
    inspector.clear_filter()
    assert inspector.request("remove", "all") == "Remove ALL 1 failed job?"
    report = inspector.confirm()
    assert report is not None and report.done == [ids[2]] and queue.get_job_counts("failed")["failed"] == 0

    # Selection that went stale: the job was removed meanwhile, so it is skipped, with the reason.
    inspector.state = "waiting"
    inspector.select([ids[0], "gone"])
    inspector.request("remove")
    report = inspector.confirm()
    assert report is not None and report.done == [ids[0]] and report.skipped == {"gone": "the job no longer exists"}
    assert "Skipped 1: gone (the job no longer exists)" in inspector.report.value


def test_inspector_promote_and_retry_all(queue: bullpy.Queue, closing: Any) -> None:
    for i in range(3):
        queue.add({"i": i}, delay=3_600_000)
    inspector = closing(JobInspector(queue, "delayed"))
    assert inspector.request("promote", "all") == "Promote ALL 3 delayed jobs?"
    report = inspector.confirm()
    assert report is not None and report.count == 3
    assert queue.get_job_counts("waiting", "delayed") == {"waiting": 3, "delayed": 0}
    fail_jobs(queue, 3)
    inspector.state = "failed"
    inspector.request("retry", "all")
    report = inspector.confirm()
    assert report is not None and report.count == 3 and "Retried 3 failed jobs" in inspector.report.value
    assert queue.get_job_counts("waiting", "failed") == {"waiting": 3, "failed": 0}


def test_bad_input_is_refused_with_a_clear_message(queue: bullpy.Queue, closing: Any) -> None:
    with pytest.raises(TypeError, match="bullpy.Queue"):
        QueueDashboard("message-queue")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refresh"):
        QueueDashboard(queue, refresh=-1)
    with pytest.raises(ValueError, match="no queues"):
        QueueDashboard([])
    with pytest.raises(ValueError, match="unknown state 'done'"):
        JobInspector(queue, "done")
    with pytest.raises(ValueError, match="page_size"):
        JobInspector(queue, page_size=0)
    with pytest.raises(ValueError, match="unknown time window"):
        JobFilter(window="yesterday")
    with pytest.raises(ValueError, match="needs the data field"):
        JobFilter(value="x")
    inspector = closing(JobInspector(queue))
    with pytest.raises(ValueError, match="unknown action"):
        inspector.request("explode")
    assert inspector.request("retry") is None  # waiting jobs: nothing to retry, and it says so
    assert inspector.confirm() is None
    inspector.field_box.value, inspector.value_box.value = "", "x"
    inspector.apply_button.click()
    assert "needs the data field" in inspector.report.value


# --- campaign monitor ------------------------------------------------------------------------------------

def test_campaign_monitor_follows_an_add_frame_campaign(queue: bullpy.Queue, closing: Any) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"number": ["5511", "bad", "5512", "bad", "5513"], "message": ["hi"] * 5})
    result = queue.add_frame(frame, attempts=1, progress=False)
    later = queue.add_frame(pd.DataFrame({"number": ["5514"]}), delay=3_600_000, progress=False)
    both = pd.concat([result, later], ignore_index=True)
    monitor = closing(CampaignMonitor(queue, both, refresh=0.05))
    assert monitor.summary.total == 6 and monitor.summary.pending == 5 and monitor.summary.delayed == 1
    assert "data-bullpy-campaign='delayed'>1</b> (due " in monitor.counts_html.value

    def handler(job: bullpy.Job) -> str:
        if job.data["number"] == "bad":
            raise ValueError("invalid number: bad")
        return "sent"

    worker = queue.process(handler)
    try:
        wait_until(lambda: monitor.summary.finished == 5, 10, "the monitor to see 5 finished jobs")
    finally:
        worker.close()
    s = monitor.summary
    assert (s.sent, s.failed, s.pending, s.delayed, s.done) == (3, 2, 0, 1, False)
    assert monitor.bar.value == 5 and monitor.bar.max == 6
    assert s.failures[0][:2] == ("invalid number: bad", 2)
    assert "invalid number: bad" in monitor.failures_html.value
    assert monitor.refreshing  # one job is still delayed
    # Five finished within the last seconds: a rate; the time left runs to the delayed job's due time.
    assert s.rate_per_min is not None and s.rate_per_min > 0
    assert s.time_left_ms is not None and 3_500_000 < s.time_left_ms <= 3_600_000
    assert "data-bullpy-campaign='rate'" in monitor.rate_html.value and "ends about" in monitor.rate_html.value

    queue.get_job(later["job_id"].iloc[0]).remove()  # type: ignore[union-attr]
    wait_until(lambda: monitor.summary.done, 5, "the campaign to be done")
    wait_until(lambda: not monitor.refreshing, 5, "the refresh to stop by itself")
    assert monitor.summary.missing == 1 and "· done" in monitor.bar_label.value
    assert "data-bullpy-campaign='time-left'>done<" in monitor.rate_html.value


# --- rich display ------------------------------------------------------------------------------------------

def test_queue_and_job_display(queue: bullpy.Queue) -> None:
    job = queue.add({"number": "5511", "message": "<b>hi</b>"}, attempts=2)
    assert job is not None
    queue.add({}, delay=60_000)
    html = queue._repr_html_()
    assert shown_counts(html) == queue.get_job_counts()
    assert f"{queue.prefix}:{queue.name}" in html and "0 workers connected" in html
    queue.pause()
    assert "data-bullpy-badge='paused'" in queue._repr_html_()
    assert repr(queue).startswith(f"<Queue {queue.prefix}:{queue.name} on ")

    job_html = job._repr_html_()
    assert "&lt;b&gt;hi&lt;/b&gt;" in job_html and "<b>hi</b>" not in job_html  # data is escaped
    assert "data-bullpy-badge='paused'" in job_html and "0 of 2" in job_html
    assert repr(job) == f"<Job {queue.name}:{job.id} name='__default__'>"


def test_failed_job_repr_and_unreachable_queue() -> None:
    queue = bullpy.Queue("q", f"redis://:secret-pw@127.0.0.1:{free_port()}/0")
    html = queue._repr_html_()  # shows the problem, never raises and never prints the password
    assert "cannot reach Redis" in html and "secret-pw" not in html
    queue.close()


def test_failed_job_text_repr(queue: bullpy.Queue) -> None:
    job = queue.add({"i": 1}, attempts=1)
    assert job is not None
    fail_jobs(queue, 1, reason="invalid number")
    failed = queue.get_job(job.id)
    assert failed is not None
    assert repr(failed) == f"<Job {queue.name}:{job.id} name='__default__' attempts_made=1 failed_reason='invalid number 1'>"
    assert "bullpy-failed-reason" in failed._repr_html_()


def test_find_queues(make_queue: Callable[..., bullpy.Queue], redis_url: str, prefix: str) -> None:
    make_queue("alpha").add({})
    make_queue("with:colon", allow_colon=True).add({})
    make_queue("never-used")
    assert widgets.find_queues(redis_url, prefix) == ["alpha", "with:colon"]
    with pytest.raises(ValueError, match="prefix"):
        widgets.find_queues(redis_url, "")


def test_widgets_do_not_leave_threads_behind(queue: bullpy.Queue) -> None:
    before = {t.ident for t in threading.enumerate()}
    dash = QueueDashboard(queue, refresh=0.05)
    dash.close()
    assert {t.ident for t in threading.enumerate() if t.is_alive()} <= before


# --- issue 13: the dashboard finds queues, shows latency, Redis, running jobs, and opens the inspector ---------

def test_dashboard_finds_every_queue_under_the_prefix_and_a_list_narrows_it(
    make_queue: Callable[..., bullpy.Queue], redis_url: str, prefix: str, closing: Any,
) -> None:
    for name in ("alpha", "beta"):
        make_queue(name).add({"i": 1})
    dash = closing(QueueDashboard(redis=redis_url, prefix=prefix, refresh=None))
    assert [q.name for q in dash.queues] == ["alpha", "beta"] and dash.discovering
    assert dash.counts["alpha"]["waiting"] == 1
    make_queue("gamma").add({"i": 2})
    assert dash.rescan() == ["gamma"] and dash.counts["gamma"]["waiting"] == 1
    narrowed = closing(QueueDashboard(["beta"], redis=redis_url, prefix=prefix, refresh=None))
    assert list(narrowed.counts) == ["beta"] and not narrowed.discovering
    nothing = closing(QueueDashboard(redis=redis_url, prefix=prefix + "-none", refresh=None))
    assert nothing.panels == [] and "No Bull queue under prefix" in nothing.header.value
    with pytest.raises(TypeError, match="queue names"):
        QueueDashboard([1], redis=redis_url, prefix=prefix)  # type: ignore[list-item]


def test_dashboard_shows_wait_and_processing_times_oldest_waiting_and_running_progress(
    make_queue: Callable[..., bullpy.Queue], closing: Any,
) -> None:
    queue = make_queue()
    for i in range(4):
        queue.add({"i": i})
    release = threading.Event()

    def handler(job: bullpy.Job) -> str:
        if job.data["i"] == "slow":
            job.update_progress(40)
            release.wait(10)
        else:
            time.sleep(0.05)
        return "sent"

    worker = queue.process(handler)
    try:
        wait_until(lambda: queue.get_job_counts("completed")["completed"] == 4, 10, "four completed jobs")
        queue.add({"i": "slow"})
        wait_until(lambda: queue.get_job_counts("active")["active"] == 1, 10, "the slow job to start")
        old = queue.add({"i": "queued"}, timestamp=int(time.time() * 1000) - 2 * 3_600_000)
        assert old is not None
        dash = closing(QueueDashboard(queue, refresh=None))
        panel = dash.panels[0]
        wait_until(lambda: (dash.refresh_now(), panel.running and panel.running[0].progress == 40)[1], 5, "progress")
        lat = panel.latency
        assert lat.jobs == 4 and lat.run_p50 is not None and lat.run_p50 >= 50 and lat.wait_p95 is not None
        assert panel.oldest_waiting is not None and panel.oldest_waiting[0] == old.id
        assert "data-bullpy-stat='oldest-waiting'>2.0 h<" in panel.stats_html.value
        assert "data-bullpy-stat='run-p95'" in panel.stats_html.value
        assert "title='40%'" in panel.running_html.value
    finally:
        release.set()
        worker.close()


def test_dashboard_counts_open_the_inspector_and_the_redis_panel_reads_info(
    queue: bullpy.Queue, redis_client: redis.Redis, closing: Any,
) -> None:
    for i in range(3):
        queue.add({"i": i}, attempts=1)
    fail_jobs(queue, 3)
    dash = closing(QueueDashboard(queue, refresh=None))
    panel = dash.panels[0]
    assert shown_counts(panel)["failed"] == 3
    panel.count_buttons["failed"].click()
    inspector = dash.inspector
    assert inspector is not None and inspector.state == "failed" and len(inspector.jobs) == 3
    assert dash.inspector_box.layout.display is None and inspector in dash.inspector_box.children
    dash.close_inspector()
    assert dash.inspector is None and dash.inspector_box.layout.display == "none"
    (server,) = dash.servers.values()
    assert server.info.version == redis_client.info("server")["redis_version"]
    assert server.info.policy == redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    assert f"data-bullpy-redis='version'>{server.info.version}<" in server.value
    chart = panel.throughput_html.value
    assert "<svg" in chart and ">now<" in chart and ">-45 min<" in chart and "jobs/min" in chart


def test_read_only_dashboard_and_inspector_offer_no_actions(queue: bullpy.Queue, closing: Any) -> None:
    queue.add({"i": 1}, attempts=1)
    fail_jobs(queue, 1)
    dash = closing(QueueDashboard(queue, refresh=None, read_only=True))
    assert dash.panels[0].pause_button.layout.display == "none"
    dash.panels[0].pause_button.click()
    assert not queue.is_paused()
    inspector = dash.open_inspector(queue.name, "failed")
    assert inspector.read_only and inspector.action_bar.layout.display == "none"
    assert inspector.add_button.layout.display == "none"
    assert inspector.rows[0][0].layout.display == "none"  # no tick boxes
    inspector.show(inspector.jobs[0].id)
    assert inspector.detail_pane.actions.layout.display == "none"
    assert inspector.request("retry", "job") is None and "read-only" in inspector.report.value
    assert inspector.request_clean() is None
    inspector.new_job()
    assert not inspector.editor.is_open
    assert queue.get_job_counts("failed")["failed"] == 1


# --- issue 13: the inspector's tabs, totals, clean, editor -------------------------------------------------

def test_inspector_tabs_count_live_and_switch_state(queue: bullpy.Queue, closing: Any) -> None:
    queue.add({"i": 1})
    inspector = closing(JobInspector(queue, refresh=0.05))
    assert inspector.state == "waiting" and shown_counts(inspector)["waiting"] == 1
    assert "bullpy-tab-current" in inspector.tabs["waiting"]._dom_classes
    queue.add({"i": 2}, delay=60_000)
    wait_until(lambda: shown_counts(inspector) == queue.get_job_counts(), 5, "the tabs to follow Redis")
    inspector.tabs["delayed"].click()
    assert inspector.state == "delayed" and [j.data["i"] for j in inspector.jobs] == [2]
    assert "bullpy-tab-current" not in inspector.tabs["waiting"]._dom_classes


def test_a_filter_says_how_many_jobs_match_counting_in_bounded_batches(queue: bullpy.Queue, closing: Any) -> None:
    queue.add_bulk([{"data": {"city": "Recife" if i % 3 == 0 else "Natal", "i": i}} for i in range(30)])
    inspector = closing(JobInspector(queue, "waiting", page_size=4, chunk_size=5, count_limit=10, refresh=None))
    inspector.set_filter(field="city", value="Recife")
    assert [j.data["i"] for j in inspector.jobs] == [0, 3, 6, 9]
    counted = inspector.match_count
    assert counted is not None and (counted.matched, counted.read, counted.exact) == (4, 10, False)
    assert "at least 4 matching in the first 10 of 30" in inspector.page_html.value
    assert inspector.count_more_button.layout.display is None
    inspector.count_on()
    inspector.count_on()
    counted = inspector.count_on()
    assert counted is not None and counted.exact and counted.matched == 10
    assert "10 matching jobs" in inspector.page_html.value
    assert inspector.count_more_button.layout.display == "none"
    inspector.clear_filter()
    assert inspector.match_count is None and inspector.page_html.value == "jobs 1–4 of 30"


def test_clean_counts_with_a_dry_run_then_cleans_after_confirmation(
    queue: bullpy.Queue, redis_client: redis.Redis, prefix: str, closing: Any,
) -> None:
    for i in range(3):
        queue.add({"i": i}, attempts=1)
    fail_jobs(queue, 3)
    inspector = closing(JobInspector(queue, "failed", refresh=None))
    assert inspector.request_clean(3_600_000) is None and "no failed jobs to clean" in inspector.report.value
    before = keyspace(redis_client, prefix)
    inspector.clean_button.click()
    assert "Clean 3 failed jobs (any age)?" in inspector.confirm_html.value
    assert inspector.confirm_button.description == "Clean 3"
    assert keyspace(redis_client, prefix) == before  # the dry run changed nothing
    report = inspector.confirm()
    assert report is not None and report.count == 3 and queue.get_job_counts("failed")["failed"] == 0
    assert "Cleaned 3 failed jobs" in inspector.report.value and shown_counts(inspector)["failed"] == 0


def test_add_duplicate_and_edit_a_failed_job_then_retry_it(queue: bullpy.Queue, closing: Any) -> None:
    inspector = closing(JobInspector(queue, refresh=None))
    inspector.add_button.click()
    assert inspector.editor.is_open and inspector.editor.mode == "add"
    inspector.editor.name_box.value = "send"
    inspector.editor.data_box.value = '{"number": "5511", "message": "oi"}'
    inspector.editor.options_box.value = '{"attempts": 1, "backoff": 2000}'
    added = inspector.submit()
    assert added is not None and not inspector.editor.is_open
    job = queue.get_job(added.id)
    assert job is not None and (job.name, job.data, job.opts["attempts"]) == ("send", {"number": "5511", "message": "oi"}, 1)
    assert inspector.shown is not None and inspector.shown.id == added.id and f"Added job {added.id}" in inspector.report.value

    # Bad JSON is refused on the editor, nothing is added.
    inspector.new_job()
    inspector.editor.data_box.value = "{not json"
    assert inspector.submit() is None and "data is not valid JSON" in inspector.editor.error.value
    assert queue.get_job_counts("waiting")["waiting"] == 1
    inspector.editor.cancel_button.click()

    # Duplicate with edited data: same name and options, new data.
    inspector.show(added.id)
    inspector.detail_pane.buttons["duplicate"].click()
    assert inspector.editor.mode == "duplicate" and '"number": "5511"' in inspector.editor.data_box.value
    assert '"attempts": 1' in inspector.editor.options_box.value and '"backoff"' in inspector.editor.options_box.value
    inspector.editor.data_box.value = '{"number": "5512", "message": "oi"}'
    copy = inspector.submit()
    assert copy is not None and copy.id != added.id
    copied = queue.get_job(copy.id)
    assert copied is not None and copied.name == "send" and copied.data["number"] == "5512"
    assert copied.opts["attempts"] == 1 and copied.opts["backoff"] == added.opts["backoff"]

    # Edit a failed job's data, then retry it: Redis holds the new data, the job waits again.
    fail_jobs(queue, 2)
    inspector.state = "failed"
    inspector.show(added.id)
    assert inspector.detail_pane.buttons["edit"].layout.display is None
    inspector.detail_pane.buttons["edit"].click()
    assert inspector.editor.mode == "edit" and inspector.editor.name_box.disabled
    inspector.editor.data_box.value = '{"number": "5511999", "message": "oi"}'
    retried = inspector.submit()
    assert retried is not None and f"Saved the data of job {added.id} and retried it" in inspector.report.value
    again = queue.get_job(added.id)
    assert again is not None and again.data == {"number": "5511999", "message": "oi"}
    assert str(again.get_state()) == "waiting"
    # Editing a job that is no longer failed changes nothing and says why.
    inspector.edit_and_retry(added.id)
    inspector.editor.data_box.value = '{"changed": true}'
    assert inspector.submit() is None and "no longer failed" in inspector.editor.error.value
    assert queue.get_job(added.id).data == {"number": "5511999", "message": "oi"}  # type: ignore[union-attr]


def test_detail_pane_acts_on_the_job_it_shows(queue: bullpy.Queue, closing: Any) -> None:
    queue.add({"i": 1}, attempts=1)
    later = queue.add({"i": 2}, delay=3_600_000)
    assert later is not None
    fail_jobs(queue, 1)
    inspector = closing(JobInspector(queue, "failed", refresh=None))
    failed_id = inspector.jobs[0].id
    inspector.show(failed_id)
    visible = {a for a, b in inspector.detail_pane.buttons.items() if b.layout.display is None}
    assert visible == {"retry", "remove", "duplicate", "edit"}
    inspector.detail_pane.buttons["retry"].click()
    assert f"Retry 1 failed job: {failed_id}?" in inspector.confirm_html.value
    report = inspector.confirm()
    assert report is not None and report.done == [failed_id]
    assert "data-bullpy-badge='waiting'" in inspector.detail.value  # the pane shows it again, moved on
    inspector.show(later.id)
    assert inspector.detail_pane.buttons["promote"].layout.display is None
    inspector.request("promote", "job")
    inspector.confirm()
    assert str(queue.get_job(later.id).get_state()) == "waiting"  # type: ignore[union-attr]
    inspector.detail_pane.close_button.click()
    assert inspector.shown is None and inspector.detail_pane.layout.display == "none"


def test_rows_are_one_line_and_long_values_fold_instead_of_being_cut(queue: bullpy.Queue, closing: Any) -> None:
    from bullpy import _display as D

    reason = "invalid number: " + "x" * 2000
    job = queue.add({"number": "n/a", "note": "y" * 5000}, attempts=1)
    assert job is not None

    def handler(_job: bullpy.Job) -> None:
        raise ValueError(reason)

    worker = queue.process(handler)
    try:
        wait_until(lambda: queue.get_job_counts("failed")["failed"] == 1, 10, "the failure")
    finally:
        worker.close()
    inspector = closing(JobInspector(queue, "failed", refresh=None))
    line = inspector.rows[0][2][0].value
    assert "<br" not in line and "more characters" not in line
    assert f"title='{reason[:1000]}'" in line  # the row's tooltip holds the reason (up to 1000 characters)
    inspector.show(job.id)
    detail = inspector.detail.value
    assert "more characters" not in detail and reason in detail and "y" * 5000 in detail
    assert "show all 2,016 characters" in detail and "class='bullpy-long'" in detail
    assert D.one_line({"a": "b\nc"}) == '{"a": "b\\nc"}' and D.one_line("a\nb  c") == "a b c"
    assert D.one_line("z" * 50, 10) == "z" * 9 + "…"
    assert D.format_duration(850) == "850 ms" and D.format_duration(4200) == "4.2 s"
    assert D.format_duration(3 * 3_600_000) == "3.0 h"
    assert "title='40%'" in D.progress_bar(40) and D.progress_bar(0.5) != "" and D.progress_bar(None) == ""
    assert "<code>" in D.progress_bar({"sent": 3})


def test_percentiles_and_chart_scale() -> None:
    from bullpy.widgets.chart import Throughput, nice_step, svg
    from bullpy.widgets.queue_panel import percentile

    assert percentile([], 50) is None
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile(list(range(1, 101)), 95) == 95
    assert [nice_step(p) for p in (0, 3, 7, 40, 130)] == [1, 1, 2, 10, 50]
    picture = svg(Throughput("metrics", [12, 0, 3] + [0] * 57, [1] + [0] * 59))
    assert picture.count("<rect") == 4 and "this minute: 12 completed, 1 failed" in picture


# --- issue 13: the campaign's send rate and time left ------------------------------------------------------

def test_campaign_rate_and_time_left() -> None:
    from bullpy.widgets.campaign import _rate

    now = 1_800_000_000_000
    finished = [now - 60_000 + i * 1000 for i in range(30)]  # 30 in the last minute, started a minute ago
    rate, left = _rate(finished, [now - 60_000], now, pending=60, last_due=None)
    assert rate == pytest.approx(30.0) and left == 120_000  # 60 more at 30 a minute
    assert _rate(finished, [now - 60_000], now, pending=0, last_due=now + 600_000) == (pytest.approx(30.0), 600_000)
    # Pending jobs at the rate, whatever is delayed for later (the counts line says until when).
    assert _rate(finished, [now - 60_000], now, pending=15, last_due=now + 3_600_000)[1] == 30_000
    assert _rate([], [], now, pending=5, last_due=None) == (None, None)
    assert _rate([now - 3_600_000], [now - 3_600_000], now, pending=5, last_due=None) == (0.0, None)
