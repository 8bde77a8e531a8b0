"""A worker's housekeeping beside its jobs (lib/queue.js's timers): lock renewal, the shared stalled-job
check, delayed-job promotion (on the ``delayed`` channel's announcements and every ``guard_interval``), and
bullpy's own clock check, the offset its scripts add to Redis's clock when they stamp a job.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

import redis as _redis

from ._core import scripts
from ._core.work import clock_offset
from ._refusals import as_bull_error, unavailable_as_error
from .utils import now_ms

if TYPE_CHECKING:
    from .worker import Worker

#: How often the clock offset is measured again (a TIME round trip), in seconds.
CLOCK_CHECK_INTERVAL = 10.0


class Housekeeping:
    """One thread of timers for one worker, and the subscriber to the ``delayed`` channel."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.queue = worker.queue
        self.wake = threading.Event()
        self.next_delay: float = math.inf
        #: Guards ``next_delay`` and ``_announced``, which the housekeeping and the listener threads both set.
        self._delay_lock = threading.Lock()
        #: The earliest due time announced on the ``delayed`` channel since the last promotion was sent.
        self._announced: float = math.inf
        #: The worker's clock minus Redis's, in ms (see ``bullpy._core.work.clock_offset``); None when Redis
        #: refuses TIME to this user.
        self.clock_offset: int | None = 0

    # --- the timers ---------------------------------------------------------------------------------------
    def run(self) -> None:
        w = self.worker
        now = time.monotonic()
        next_lock = now + w.lock_renew_time / 1000
        # The worker's start already did the first stalled check and promotion.
        next_stalled = now + (w.stalled_interval / 1000 if w.stalled_interval else math.inf)
        next_guard = now + w.guard_interval / 1000
        next_clock = now + CLOCK_CHECK_INTERVAL
        while not w._closed.is_set() and not w._given_back.is_set():
            now = time.monotonic()
            try:
                if now >= next_lock:
                    self.renew_locks()
                    next_lock = now + w.lock_renew_time / 1000
                if now >= next_clock:
                    self.check_clock()
                    next_clock = now + CLOCK_CHECK_INTERVAL
                if not w._closing.is_set():
                    if now >= next_stalled:
                        self.check_stalled()
                        # Once at start-up, then every stalled_interval (0: start-up only), as in Node.
                        next_stalled = now + (w.stalled_interval / 1000 if w.stalled_interval else math.inf)
                    if now >= next_guard or time.time() * 1000 >= self.next_delay:
                        self.promote_delayed()
                        next_guard = now + w.guard_interval / 1000
                        w.outage.ok()
            except Exception as exc:
                if not w._closed.is_set():
                    w._report(exc)
            if w._closing.is_set() and not w._held:
                return
            until_delay = (self.next_delay - time.time() * 1000) / 1000 if math.isfinite(self.next_delay) else math.inf
            wait = min(next_lock - now, next_stalled - now, next_guard - now, until_delay, 1.0)
            self.wake.wait(max(wait, 0.001))
            self.wake.clear()

    def renew_locks(self) -> None:
        w = self.worker
        with w._active_lock:
            ids = [i for i in w._active if i not in w._lost_locks]
        if not ids:
            return
        renewed = self.queue._run(scripts.extend_locks(w.keys, w._token, w.lock_duration, ids))
        for job_id, ok in zip(ids, renewed):
            if not ok:
                # As in Node: a lock that is no longer ours is not re-created; the job's finish will be
                # refused by the lock check, so it cannot be completed twice.
                with w._active_lock:
                    w._lost_locks.add(job_id)
                    job = w._active.get(job_id)
                self.queue._emit("lock-extension-failed", job, None)

    def check_stalled(self) -> None:
        w = self.worker
        failed, stalled = self.queue._run(
            scripts.move_stalled_jobs_to_wait(w.keys, w.max_stalled_count, now_ms(), w.stalled_interval or 1)
        )
        for job_id in stalled:
            self.queue._emit("stalled", self.queue.get_job(job_id))
        for job_id in failed:
            self.queue._emit("failed", self.queue.get_job(job_id), RuntimeError("job stalled more than allowable limit"))

    def promote_delayed(self) -> None:
        w = self.worker
        with self._delay_lock:
            self._announced = math.inf
        score = self.queue._run(scripts.update_delay_set(w.keys, now_ms(), w._token))
        # Node's timer: the next due time is score / 4096; a job due at T with low bits > 0 is promoted
        # at T + 1 ms. A job announced while the script's answer was on its way (e.g. the next iteration of
        # the repeatable job it just promoted, added by this worker's own take) may be missing from that
        # answer: its announcement is kept, or it would wait for the guard interval.
        with self._delay_lock:
            self.next_delay = min(math.inf if score is None else score / 4096, self._announced)

    def check_clock(self) -> None:
        """Measure the worker's clock against Redis's with one TIME round trip."""
        if self.clock_offset is None:
            return
        client = self.queue.client
        with unavailable_as_error(client):
            sent = time.time_ns() // 1000
            try:
                seconds, micros = client.time()
            except _redis.exceptions.NoPermissionError:
                # An ACL user without TIME, which the scripts then cannot call either: they stamp the time
                # read before they are sent, as Node's do.
                self.clock_offset = None
                return
            received = time.time_ns() // 1000
        self.clock_offset = clock_offset(self.clock_offset, sent, int(seconds) * 1_000_000 + int(micros), received)

    # --- the delayed channel ------------------------------------------------------------------------------
    def listen_delayed(self) -> None:
        """Subscribe to the ``delayed`` channel, whose messages announce earlier due times."""
        w = self.worker
        pubsub = self.queue.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            try:
                pubsub.subscribe(w.keys("delayed"))
            except _redis.ResponseError as exc:
                # E.g. an ACL user without this channel: delayed jobs are still promoted on the
                # housekeeping timer, only later than a message would have announced them.
                self.queue._emit("error", as_bull_error(exc, self.queue.client) or exc)
                return
            while not w._closing.is_set():
                try:
                    message = pubsub.get_message(timeout=0.5)
                except (_redis.ConnectionError, _redis.TimeoutError):
                    time.sleep(0.5)
                    continue
                except Exception:
                    if w._closing.is_set():
                        return  # its connection was closed under it (the process exits): nothing to report
                    raise
                if not message:
                    continue
                try:
                    due = math.ceil(float(message["data"]))
                except (TypeError, ValueError):
                    continue
                with self._delay_lock:
                    self._announced = min(self._announced, due)
                    earlier = due < self.next_delay
                    if earlier:
                        self.next_delay = due
                if earlier:
                    self.wake.set()
        finally:
            try:
                pubsub.close()
            except Exception:
                pass
