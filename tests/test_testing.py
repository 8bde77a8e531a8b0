"""bullpy.testing: users' unit tests get a fakeredis-backed queue that runs bullpy's own Lua scripts.

These tests check the in-process mode works; they are not compatibility evidence (tests/interop is)."""

from __future__ import annotations

import bullpy
from bullpy.testing import fake_queue


def test_fake_queue_runs_every_operation() -> None:
    queue = fake_queue("message-queue", default_job_options={"attempts": 3})
    jobs = queue.add_bulk([{"data": {"n": i}} for i in range(3)])
    assert [j.id for j in jobs] == ["1", "2", "3"]
    delayed = queue.add({"n": "later"}, delay=60_000, priority=2)
    prio = queue.add({"n": "prio"}, priority=1)
    dup = queue.add({"n": "x"}, job_id="same")
    dup2 = queue.add({"n": "y"}, job_id="same")
    assert delayed and prio and dup and dup2
    assert dup2.duplicate and not dup.duplicate
    rep = queue.add({"r": 1}, name="tick", repeat={"every": 60_000})
    assert rep is not None and rep.id.startswith("repeat:")
    assert queue.get_job_counts() == {"waiting": 5, "active": 0, "completed": 0, "failed": 0, "delayed": 2, "paused": 0}
    assert queue.get_waiting()[0].id == prio.id
    assert queue.get_job(delayed.id).get_state() is bullpy.JobState.DELAYED  # type: ignore[union-attr]
    assert queue.get_count_per_priority([0, 1]) == {0: 4, 1: 1}
    job = queue.get_job("1")
    assert job is not None and job.opts["attempts"] == 3
    job.update({"n": 1, "changed": True})
    job.update_progress(40)
    assert job.log("hello") == 1
    assert queue.get_job_logs("1").logs == ["hello"]
    fresh = queue.get_job("1")
    assert fresh is not None and fresh.data["changed"] and fresh.progress == 40
    delayed.promote()
    assert queue.get_job(delayed.id).get_state() is bullpy.JobState.WAITING  # type: ignore[union-attr]
    queue.pause()
    assert queue.is_paused()
    queue.add({"while": "paused"})
    assert queue.get_job_counts("paused")["paused"] == 7
    queue.resume()
    assert not queue.is_paused()
    assert queue.clean(0, "wait", 1)
    assert [r.key for r in queue.get_repeatable_jobs()] == ["tick:::60000"]
    assert queue.remove_repeatable("tick", every=60_000)
    assert queue.get_repeatable_jobs() == []
    assert "2" in queue.remove_jobs("2")
    assert queue.empty() >= 1
    assert queue.count() == 0
    queue.obliterate()
    assert queue.client.keys("*") == []


def test_fake_queues_can_share_a_server() -> None:
    import fakeredis

    server = fakeredis.FakeServer()
    producer = fake_queue("q", server=server)
    reader = fake_queue("q", server=server)
    producer.add({"a": 1})
    assert reader.get_job_counts()["waiting"] == 1
