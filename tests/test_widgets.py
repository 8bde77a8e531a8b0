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

from .conftest import delete_prefix, keyspace, wait_until
from .servers import free_port

pytest.importorskip("ipywidgets")
from bullpy import widgets
from bullpy.widgets import CampaignMonitor, JobFilter, JobInspector, QueueDashboard
from bullpy.widgets._common import Refresher, metrics_per_minute, sampled_per_minute

CELL = re.compile(r"data-bullpy-state='([a-z]+)'>([\d,]+)<")


def shown_counts(html: str) -> dict[str, int]:
    """The numbers a counts table shows, per state, read back from its HTML."""
    return {state: int(n.replace(",", "")) for state, n in CELL.findall(html)}


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
        assert shown_counts(panel.counts_html.value) == queue.get_job_counts()
    assert dash.counts == {"first": a.get_job_counts(), "second": b.get_job_counts()}
    assert shown_counts(dash.panels[0].counts_html.value)["delayed"] == 1
    a.add({"i": 99})
    dash.refresh_now()
    assert shown_counts(dash.panels[0].counts_html.value)["waiting"] == 8
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
    assert shown_counts(panel.counts_html.value) == queue.get_job_counts() == {
        "waiting": 0, "active": 0, "completed": 0, "failed": 0, "delayed": 0, "paused": 1}
    panel.pause_button.click()
    assert not queue.is_paused()
    assert panel.pause_button.description == "Pause"
    assert shown_counts(panel.counts_html.value)["waiting"] == 1


def test_background_refresh_updates_and_stops_on_close(queue: bullpy.Queue) -> None:
    dash = QueueDashboard(queue, refresh=0.05)
    try:
        assert dash.refreshing
        queue.add({"i": 1})
        queue.add({"i": 2})
        wait_until(lambda: shown_counts(dash.panels[0].counts_html.value).get("waiting") == 2, 5, "refresh")
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
        assert dash.error is None and shown_counts(dash.panels[0].counts_html.value)["waiting"] == 0
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

def counting_client(url: str) -> tuple[redis.Redis, list[list[str]]]:
    """A client whose connections record every round trip (one socket write of one or many commands)."""
    trips: list[list[str]] = []
    base = redis.ConnectionPool.from_url(url).connection_class

    class Counting(base):  # type: ignore[misc, valid-type]
        def send_command(self, *args: Any, **kwargs: Any) -> None:
            trips.append([str(args[0]).upper() + " " + " ".join(str(a) for a in args[1:4])])
            self._counted = True
            super().send_command(*args, **kwargs)

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            if not getattr(self, "_counted", False):
                trips.append(list(getattr(self, "_pending_names", [])))
            self._counted = False
            super().send_packed_command(command, check_health)

        def pack_commands(self, commands: Any) -> Any:
            self._pending_names = [str(c[0]).upper() + " " + " ".join(str(a) for a in c[1:4]) for c in commands]
            return super().pack_commands(commands)

    pool = redis.ConnectionPool.from_url(url, connection_class=Counting, decode_responses=True)
    return redis.Redis(connection_pool=pool), trips


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
            assert shown_counts(dash.panels[0].counts_html.value) == {
                "waiting": n - 1, "active": 0, "completed": 0, "failed": 0, "delayed": 1, "paused": 0}
            trips.clear()
            dash.refresh_now()
            costs.append(list(trips))
        finally:
            client.close()
            delete_prefix(redis_client, prefix)
    # The same round trips with the same commands in each (keys differ: two prefixes): counts, paused
    # flag, CLIENT LIST, metrics.
    names = [[[command.split()[0] for command in trip] for trip in cost] for cost in costs]
    assert names[0] == names[1]
    assert len(names[0]) == 4


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
        inspector = closing(JobInspector(queue, "waiting", page_size=20))
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
    assert shown_counts(inspector.counts_html.value) == {k: v for k, v in queue.get_job_counts().items()}
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

    queue.get_job(later["job_id"].iloc[0]).remove()  # type: ignore[union-attr]
    wait_until(lambda: monitor.summary.done, 5, "the campaign to be done")
    wait_until(lambda: not monitor.refreshing, 5, "the refresh to stop by itself")
    assert monitor.summary.missing == 1 and "· done" in monitor.bar_label.value


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
    make_queue("with:colon").add({})
    make_queue("never-used")
    assert widgets.find_queues(redis_url, prefix) == ["alpha", "with:colon"]
    with pytest.raises(ValueError, match="prefix"):
        widgets.find_queues(redis_url, "")


def test_widgets_do_not_leave_threads_behind(queue: bullpy.Queue) -> None:
    before = {t.ident for t in threading.enumerate()}
    dash = QueueDashboard(queue, refresh=0.05)
    dash.close()
    assert {t.ident for t in threading.enumerate() if t.is_alive()} <= before
