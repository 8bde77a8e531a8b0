"""A Python worker that shares a Bull queue with Node workers, following Bull's worker protocol
(lib/queue.js processJobs/getNextJob/processJob, lib/job.js moveToCompleted/moveToFailed).

Threads, not processes: ``concurrency`` jobs run at once, each in its own thread (``async def`` handlers
run on one event loop thread). Around them, exactly what a Node worker does:

* taking: ``BLMOVE wait active`` while drained (the same as Node's ``BRPOPLPUSH``), then the
  move_to_active script (lock with this worker's token, ``processedOn``, the shared rate limiter);
  after a job, the non-blocking move_to_active, or the next job handed back by move_to_finished;
* a lock renewal every ``lock_renew_time`` for every running job, never re-creating a lost lock;
* the shared stalled check every ``stalled_interval`` (Node and Python workers take turns through
  the ``stalled-check`` key);
* delayed jobs promoted on the ``delayed`` channel's announcements and at least every ``guard_interval``;
* the next iteration of a repeatable job scheduled when it is taken;
* ``CLIENT SETNAME prefix:base64(name)`` on the blocking connection, so Node's ``getWorkers()`` counts it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import math
import queue as _queue
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import redis as _redis

from ._core import options as _options
from ._core import scripts
from ._core.codec import parse_job_hash, to_json
from ._core.work import BackoffStrategy, completed_payload, failed_attempt, keep_jobs
from .connection import as_bull_error
from .errors import JobTimeout, MissingHandler, RedisAuthenticationFailed, RedisPermissionDenied, RedisReadOnly, RedisUnavailable
from .job import Job
from .utils import now_ms

if TYPE_CHECKING:
    from .queue import Queue

Handler = Callable[[Job], Any]


@dataclass(frozen=True)
class _Outcome:
    """A finished handler run: the finishing script to send, and the local event to emit after it."""

    job: Job
    call: scripts.Call[Any]
    event: str
    arg: Any


class Worker:
    """Process a queue's jobs with Bull's settings and defaults.

    Args:
        queue: the Queue to work on.
        handler: a function (plain or ``async def``) taking a Job and returning a JSON-able result, or a
            mapping of job name to handler where ``"*"`` catches every other name.
        concurrency: how many jobs run at once.
        lock_duration, lock_renew_time, stalled_interval, max_stalled_count, guard_interval,
        retry_process_delay, drain_delay: Bull's worker settings, in ms (``drain_delay`` in seconds).
        backoff_strategies: custom backoff functions by name: ``(attempts_made, error, options) -> ms``.
        limiter: ``{"max": n, "duration": ms}`` (optional ``"group_key": True``), shared with Node workers.
        metrics: ``{"max_data_points": n}`` to record Bull's per-minute metrics.
        local_timezone: the zone cron repeats without ``tz`` follow (Node uses its process's zone).
    """

    def __init__(
        self,
        queue: Queue,
        handler: Handler | Mapping[str, Handler] | None = None,
        *,
        concurrency: int = 1,
        lock_duration: int = 30_000,
        lock_renew_time: int | None = None,
        stalled_interval: int = 30_000,
        max_stalled_count: int = 1,
        guard_interval: int = 5_000,
        retry_process_delay: int = 5_000,
        drain_delay: int = 5,
        backoff_strategies: Mapping[str, BackoffStrategy] | None = None,
        limiter: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        local_timezone: str | None = None,
    ) -> None:
        self.queue = queue
        self.keys = queue.keys
        self.handlers: dict[str, Handler] = {}
        if handler is not None:
            if isinstance(handler, Mapping):
                for name, fn in handler.items():
                    self.process(name, fn)
            else:
                self.process("*", handler)
        self.concurrency = _options._int_option("concurrency", concurrency, 1)
        self.lock_duration = _options._int_option("lock_duration", lock_duration, 1)
        self.lock_renew_time = _options._int_option(
            "lock_renew_time", lock_renew_time if lock_renew_time is not None else self.lock_duration // 2, 1
        )
        self.stalled_interval = _options._int_option("stalled_interval", stalled_interval, 0)
        self.max_stalled_count = _options._int_option("max_stalled_count", max_stalled_count, 0)
        self.guard_interval = _options._int_option("guard_interval", guard_interval, 1)
        self.retry_process_delay = _options._int_option("retry_process_delay", retry_process_delay, 0)
        self.drain_delay = _options._int_option("drain_delay", drain_delay, 1)
        self.backoff_strategies: dict[str, BackoffStrategy] = dict(backoff_strategies or {})
        for strategy_name, strategy in self.backoff_strategies.items():
            if not callable(strategy):
                raise TypeError(f"backoff strategy {strategy_name!r} must be callable")
        self.limiter = _limiter(limiter)
        self.metrics_points = _metrics(metrics)
        self.local_timezone = local_timezone or queue.local_timezone

        self._token = queue.token
        self._closing = threading.Event()
        self._closed = threading.Event()
        self._paused = threading.Event()  # local pause
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._wake = threading.Event()  # wakes the housekeeping thread
        self._active: dict[str, Job] = {}
        self._lost_locks: set[str] = set()
        self._active_lock = threading.Lock()
        self._idle = threading.Condition(self._active_lock)
        self._drained = True
        self._next_delay: float = math.inf
        self._threads: list[threading.Thread] = []
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._handler_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bclient: _redis.Redis | None = None
        self._running = False
        self._force = False
        self._in_blmove = threading.Event()
        self._done: _queue.Queue[_Outcome] = _queue.Queue()
        self._fetch_stopped = threading.Event()
        self._async_handlers: dict[Handler, bool] = {}
        self._bclient_id: int | None = None

    # --- set-up -----------------------------------------------------------------------------------------
    def process(self, name: str | Handler, handler: Handler | None = None) -> Worker:
        """Register a handler for a job name (``"*"`` catches every name without its own handler)."""
        if handler is None:
            if not callable(name):
                raise TypeError("process() needs a handler")
            handler, name = name, "*"
        if not isinstance(name, str) or not name:
            raise ValueError(f"a handler's job name must be a non-empty string, got {name!r}")
        if not callable(handler):
            raise TypeError(f"the handler for {name!r} must be callable")
        self.handlers[name] = handler
        return self

    @property
    def running(self) -> bool:
        return self._running and not self._closed.is_set()

    def start(self) -> Worker:
        """Start working in background threads (does not block; for notebooks and services).

        Raises what ``run()`` raises at start-up (no handler, Redis unreachable).
        """
        failure: list[BaseException] = []

        def target() -> None:
            try:
                self.run()
            except BaseException as exc:
                failure.append(exc)
                if self._running:
                    self.queue._emit("error", exc)

        thread = threading.Thread(target=target, name=f"bullpy-worker-{self.queue.name}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not self._running and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if failure and not self._running:
            raise failure[0]
        return self

    def run(self) -> None:
        """Work until ``close()`` (blocking; for scripts and services)."""
        if not self.handlers:
            raise ValueError("the worker has no handler: pass one or call process(name, handler)")
        if self._running:
            raise RuntimeError("this worker is already running")
        self.queue._workers.append(self)
        self._pool = concurrent.futures.ThreadPoolExecutor(self.concurrency, thread_name_prefix="bullpy-job")
        self._handler_pool = concurrent.futures.ThreadPoolExecutor(
            self.concurrency, thread_name_prefix="bullpy-handler"
        )
        self._bclient = self._blocking_client()
        # As Node's run(): promote due delayed jobs and run the stalled check once before taking jobs,
        # so a recovered job is next in line.
        try:
            self._promote_delayed()
            self._check_stalled()
        except (RedisPermissionDenied, RedisAuthenticationFailed):
            # A user that may not write (or log in) can never work this queue: say so now, once,
            # instead of running threads that fail on every step.
            self._shutdown()
            raise
        except Exception as exc:
            self.queue._emit("error", exc)
        self._start_thread(self._housekeeping, "housekeeping")
        self._start_thread(self._finisher, "finisher")
        self._start_thread(self._listen_delayed, "delayed")
        self._running = True
        try:
            self._fetch_loop()
        finally:
            self._fetch_stopped.set()
            self._shutdown()

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"bullpy-{name}-{self.queue.name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _blocking_client(self) -> _redis.Redis:
        kwargs = dict(self.queue.client.connection_pool.connection_kwargs)
        # The name Node's getWorkers() looks for; set on every (re)connection of the blocking client.
        kwargs["client_name"] = self.keys.worker_name
        # BLMOVE blocks for drain_delay seconds: the read must be allowed to wait longer than that
        # (redis-py 8 reads with a 5 s socket timeout by default).
        kwargs["socket_timeout"] = self.drain_delay + 10
        pool = _redis.ConnectionPool(connection_class=self.queue.client.connection_pool.connection_class, **kwargs)
        return _redis.Redis(connection_pool=pool)

    # --- local control ----------------------------------------------------------------------------------
    def pause(self) -> None:
        """Stop taking new jobs in this worker (Redis is unchanged); running jobs finish."""
        self._paused.set()
        self._interrupt_blocking()
        self.queue._emit("paused")

    def resume(self) -> None:
        """Take jobs again after a local ``pause()``."""
        self._paused.clear()
        self.queue._emit("resumed")

    def when_current_jobs_finished(self, timeout: float | None = None) -> bool:
        """Wait until no job of this worker is running; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._active, timeout)

    def close(self, force: bool = False, timeout: float | None = None) -> None:
        """Stop taking jobs and wait for running ones to finish (``force``: do not wait; their locks
        then expire and the stalled check hands them to another worker)."""
        if self._closing.is_set():
            self._closed.wait(timeout)
            return
        self._force = force
        self._closing.set()
        self._wake.set()
        self._interrupt_blocking()
        if not force:
            self.when_current_jobs_finished(timeout)
        if self._running:
            self._closed.wait(timeout if timeout is not None else 30)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _interrupt_blocking(self, wait: float = 1.0) -> None:
        """Make a pending BLMOVE return now (Node drops its blocking connection for the same purpose).

        CLIENT UNBLOCK answers the BLMOVE with nil; it is repeated until the fetch loop is out of its
        blocking call, since the loop may be just about to send it.
        """
        deadline = time.monotonic() + wait
        while self._in_blmove.is_set() and time.monotonic() < deadline:
            client_id = self._bclient_id
            if client_id is not None:
                try:
                    if self.queue.client.client_unblock(client_id):
                        return
                except Exception:
                    return
            time.sleep(0.01)

    def _shutdown(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._pool is not None:
            self._pool.shutdown(wait=not self._force)
        if self._handler_pool is not None:
            self._handler_pool.shutdown(wait=False)
        for thread in self._threads:
            thread.join(timeout=5)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._bclient is not None:
            # The pool was made here, so closing the client alone would leave its connection open.
            self._bclient.connection_pool.disconnect()
        if self in self.queue._workers:
            self.queue._workers.remove(self)
        self._closed.set()

    # --- taking jobs ------------------------------------------------------------------------------------
    def _fetch_loop(self) -> None:
        failures = 0
        while not self._closing.is_set():
            if self._paused.is_set():
                time.sleep(0.05)
                continue
            if not self._slots.acquire(timeout=0.5):
                continue
            handed_over = False
            try:
                if self._closing.is_set():
                    break
                taken = self._fetch()
                failures = 0
                if taken is not None:
                    cast(concurrent.futures.ThreadPoolExecutor, self._pool).submit(self._run_one, taken)
                    handed_over = True
            except (_redis.ConnectionError, _redis.TimeoutError, RedisUnavailable, RedisReadOnly) as exc:
                if self._closing.is_set() or self._paused.is_set():
                    continue
                failures += 1
                self.queue._emit("error", exc)
                # Back off while Redis is away, restarts (LOADING) or fails over (READONLY from a demoted
                # master; bullpy's scripts raise these as RedisUnavailable/RedisReadOnly):
                # 0.1 s doubling up to retry_process_delay.
                time.sleep(min(0.1 * 2 ** min(failures, 10), max(self.retry_process_delay / 1000, 0.1)))
            except Exception as exc:
                if self._closing.is_set() or self._paused.is_set():
                    continue  # the blocking connection was dropped on purpose
                self.queue._emit("error", exc)
                time.sleep(self.retry_process_delay / 1000)
            finally:
                if not handed_over:
                    self._slots.release()

    def _fetch(self) -> scripts.Taken | None:
        job_id = ""
        if self._drained:
            bclient = cast(_redis.Redis, self._bclient)  # made in start(), before the fetch loop runs
            self._bclient_id = int(bclient.client_id())
            self._in_blmove.set()
            try:
                if self._paused.is_set() or self._closing.is_set():
                    return None
                moved = bclient.blmove(self.keys("wait"), self.keys("active"), self.drain_delay, "RIGHT", "LEFT")
            finally:
                self._in_blmove.clear()
            if moved is None:
                return None
            job_id = moved.decode() if isinstance(moved, bytes) else str(moved)
        taken = self.queue._run(
            scripts.move_to_active(self.keys, self._token, self.lock_duration, now_ms(), job_id, self.limiter)
        )
        if taken is None:
            if not self._drained:
                self.queue._emit("drained")
            self._drained = True
        else:
            self._drained = False
        return taken  # type: ignore[no-any-return]

    # --- running jobs -----------------------------------------------------------------------------------
    # A job holds a concurrency slot from being taken until its finishing script has run. Handlers run
    # in the pool and hand their outcome to the finisher thread, which sends the finishing scripts of
    # everything that finished meanwhile in one round trip; a completion that hands back the next job
    # (Node's fetch-next) passes its slot on to that job.
    def _run_one(self, taken: scripts.Taken) -> None:
        current: scripts.Taken | None = taken
        while current is not None:
            try:
                outcome = self._process(current)
            except Exception as exc:
                self.queue._emit("error", exc)
                outcome = None
            if outcome is None:
                self._release(None)
                return
            if self.concurrency > 1:
                self._done.put(outcome)
                return
            # One job at a time: a batch would never hold more than this one, so skip the hand-off and
            # finish here, going straight on with the job the completion handed back.
            current = self._finish([outcome])[0]

    def _finish(self, batch: list[_Outcome]) -> list[scripts.Taken | None]:
        """Send the finishing scripts of a batch in one round trip; emit their events; release the slots
        of jobs that handed back no next job (those keep theirs)."""
        try:
            replies = self.queue._runner.run_many_raw([o.call for o in batch])
        except Exception as exc:
            replies = [exc] * len(batch)
        next_jobs: list[scripts.Taken | None] = []
        for outcome, reply in zip(batch, replies):
            taken: scripts.Taken | None = None
            if isinstance(reply, Exception):
                self.queue._emit("error", reply)
            else:
                try:
                    parsed = outcome.call.parse(reply)
                except Exception as exc:
                    self.queue._emit("error", exc)
                else:
                    self.queue._emit(outcome.event, outcome.job, outcome.arg)
                    taken = parsed if isinstance(parsed, scripts.Taken) else None
            if taken is None:
                self._release(outcome.job)
            else:
                self._release_job_only(outcome.job)
                self._drained = False
            next_jobs.append(taken)
        return next_jobs

    def _release(self, job: Job | None) -> None:
        if job is not None:
            with self._idle:
                self._active.pop(job.id, None)
                self._lost_locks.discard(job.id)
                self._idle.notify_all()
        self._slots.release()

    def _process(self, taken: scripts.Taken) -> _Outcome | None:
        try:
            record = parse_job_hash(taken.id, taken.fields, now_ms())
        except ValueError as exc:
            # Divergence (safe): Node throws in Job.fromJSON and leaves the job locked in `active` until the
            # stalled check fails it; bullpy fails it now, with the reason, so nothing waits for a lock.
            self._fail_unreadable(taken.id, exc)
            return None
        job = Job(self.queue, record)
        with self._active_lock:
            self._active[job.id] = job
        try:
            if "repeat" in record.opts:
                self._schedule_next_repeat(job)
            return self._execute(job)
        except BaseException:
            self._release_job_only(job)
            raise

    def _release_job_only(self, job: Job) -> None:
        with self._idle:
            self._active.pop(job.id, None)
            self._idle.notify_all()

    def _finisher(self) -> None:
        while True:
            try:
                first = self._done.get(timeout=0.2)
            except _queue.Empty:
                if self._closed.is_set() or (self._fetch_stopped.is_set() and not self._active):
                    return
                continue
            batch = [first]
            while len(batch) < 500:
                try:
                    batch.append(self._done.get_nowait())
                except _queue.Empty:
                    break
            for taken in self._finish(batch):
                if taken is None:
                    continue
                try:
                    cast(concurrent.futures.ThreadPoolExecutor, self._pool).submit(self._run_one, taken)
                except RuntimeError:
                    self._run_one(taken)  # the pool is shutting down: finish this last job here

    def _schedule_next_repeat(self, job: Job) -> None:
        prepared = _options.prepare_next_iteration(job.name, job.data, job.opts, now_ms(), self.local_timezone)
        if prepared is not None:
            self.queue._run(scripts.add_jobs(self.keys, self._token, [prepared.write]))

    def _execute(self, job: Job) -> _Outcome:
        handler = self.handlers.get(job.name) or self.handlers.get("*")
        self.queue._emit("active", job, None)
        if handler is None:
            return self._failed(job, MissingHandler(f"Missing process handler for job type {job.name}"), None)
        timeout = job.opts.get("timeout")
        try:
            result = self._call(handler, job, int(timeout) if timeout else None)
        except JobTimeout as exc:
            return self._failed(job, exc, f"TimeoutError: {exc}")
        except BaseException as exc:  # a handler's failure of any kind fails the job, as a rejection does
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return self._failed(job, exc, _stack(exc))
        try:
            returnvalue_json = None if result is None else to_json(result, where="returnvalue")
        except (TypeError, ValueError) as exc:
            # Node: JSON.stringify throws inside moveToCompleted and the job fails with that error.
            return self._failed(job, exc, _stack(exc))
        return self._completed(job, result, returnvalue_json)

    def _call(self, handler: Handler, job: Job, timeout_ms: int | None) -> Any:
        if self._is_async(handler):
            future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(handler(job), self._event_loop())
        elif timeout_ms is None:
            result = handler(job)
            if inspect.isawaitable(result):
                return asyncio.run_coroutine_threadsafe(_await(result), self._event_loop()).result()
            return result
        else:
            future = cast(concurrent.futures.ThreadPoolExecutor, self._handler_pool).submit(handler, job)
        try:
            return future.result(timeout=None if timeout_ms is None else timeout_ms / 1000)
        except concurrent.futures.TimeoutError:
            # As in Node the handler is not cancelled (a thread cannot be); the job fails now.
            future.cancel()
            raise JobTimeout(timeout_ms or 0) from None

    def _is_async(self, handler: Handler) -> bool:
        known = self._async_handlers.get(handler)
        if known is None:
            known = self._async_handlers[handler] = inspect.iscoroutinefunction(handler)
        return known

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._active_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="bullpy-asyncio", daemon=True).start()
                self._loop = loop
            return self._loop

    def _fetch_next(self) -> bool:
        # Node fetches inline unless paused, closing or rate limited.
        return not (self._closing.is_set() or self._paused.is_set() or self.limiter is not None)

    def _completed(self, job: Job, result: Any, returnvalue_json: str | None) -> _Outcome:
        call = scripts.move_to_completed(
            self.keys, job.id, self._token, now_ms(), returnvalue_json or "null",
            keep_jobs(job.opts.get("removeOnComplete")), completed_payload(job.id, returnvalue_json),
            self._fetch_next(), self.lock_duration, self.metrics_points,
        )
        return _Outcome(job, call, "completed", result)

    def _failed(self, job: Job, error: BaseException, stack: str | None) -> _Outcome:
        decision = failed_attempt(
            job.record, error, stack, now_ms=now_ms(), strategies=self.backoff_strategies, discarded=job.discarded
        )
        call = scripts.move_to_failed(self.keys, job.id, self._token, decision.attempt, self.metrics_points)
        return _Outcome(job, call, "failed", error)

    def _fail_unreadable(self, job_id: str, error: ValueError) -> None:
        stub = parse_job_hash(job_id, {"opts": "{}", "data": "{}"}, now_ms())
        decision = failed_attempt(stub, error, None, now_ms=now_ms(), strategies={}, discarded=True)
        try:
            self.queue._run(scripts.move_to_failed(self.keys, job_id, self._token, decision.attempt, None))
        except Exception as exc:
            self.queue._emit("error", exc)
        self.queue._emit("error", error)

    # --- housekeeping: locks, stalled jobs, delayed jobs ------------------------------------------------
    def _housekeeping(self) -> None:
        now = time.monotonic()
        next_lock = now + self.lock_renew_time / 1000
        # run() already did the start-up check and promotion.
        next_stalled = now + (self.stalled_interval / 1000 if self.stalled_interval else math.inf)
        next_guard = now + self.guard_interval / 1000
        while not self._closed.is_set():
            now = time.monotonic()
            try:
                if now >= next_lock:
                    self._renew_locks()
                    next_lock = now + self.lock_renew_time / 1000
                if not self._closing.is_set():
                    if now >= next_stalled:
                        self._check_stalled()
                        # Once at start-up, then every stalled_interval (0: start-up only), as in Node.
                        next_stalled = now + (self.stalled_interval / 1000 if self.stalled_interval else math.inf)
                    due = self._next_delay
                    if now >= next_guard or time.time() * 1000 >= due:
                        self._promote_delayed()
                        next_guard = now + self.guard_interval / 1000
            except Exception as exc:
                if not self._closed.is_set():
                    self.queue._emit("error", exc)
            if self._closing.is_set() and not self._active:
                return
            until_delay = (self._next_delay - time.time() * 1000) / 1000 if math.isfinite(self._next_delay) else math.inf
            wait = min(next_lock - now, next_stalled - now, next_guard - now, until_delay, 1.0)
            self._wake.wait(max(wait, 0.001))
            self._wake.clear()

    def _renew_locks(self) -> None:
        with self._active_lock:
            ids = [i for i in self._active if i not in self._lost_locks]
        if not ids:
            return
        renewed = self.queue._run(scripts.extend_locks(self.keys, self._token, self.lock_duration, ids))
        for job_id, ok in zip(ids, renewed):
            if not ok:
                # As in Node: a lock that is no longer ours is not re-created; the job's finish will be
                # refused by the lock check, so it cannot be completed twice.
                with self._active_lock:
                    self._lost_locks.add(job_id)
                    job = self._active.get(job_id)
                self.queue._emit("lock-extension-failed", job, None)

    def _check_stalled(self) -> None:
        failed, stalled = self.queue._run(
            scripts.move_stalled_jobs_to_wait(self.keys, self.max_stalled_count, now_ms(), self.stalled_interval or 1)
        )
        for job_id in stalled:
            job = self.queue.get_job(job_id)
            self.queue._emit("stalled", job)
        for job_id in failed:
            job = self.queue.get_job(job_id)
            self.queue._emit("failed", job, RuntimeError("job stalled more than allowable limit"))

    def _promote_delayed(self) -> None:
        score = self.queue._run(scripts.update_delay_set(self.keys, now_ms(), self._token))
        # Node's timer: the next due time is score / 4096; a job due at T with low bits > 0 is promoted
        # at T + 1 ms.
        self._next_delay = math.inf if score is None else score / 4096

    def _listen_delayed(self) -> None:
        """Subscribe to the ``delayed`` channel, whose messages announce earlier due times."""
        pubsub = self.queue.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            try:
                pubsub.subscribe(self.keys("delayed"))
            except _redis.ResponseError as exc:
                # E.g. an ACL user without this channel: delayed jobs are still promoted on the
                # housekeeping timer, only later than a message would have announced them.
                self.queue._emit("error", as_bull_error(exc, self.queue.client) or exc)
                return
            while not self._closing.is_set():
                try:
                    message = pubsub.get_message(timeout=0.5)
                except (_redis.ConnectionError, _redis.TimeoutError):
                    time.sleep(0.5)
                    continue
                if not message:
                    continue
                try:
                    due = math.ceil(float(message["data"]))
                except (TypeError, ValueError):
                    continue
                if due < self._next_delay:
                    self._next_delay = due
                    self._wake.set()
        finally:
            try:
                pubsub.close()
            except Exception:
                pass


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _stack(exc: BaseException) -> str:
    """The traceback of a handler's error, without bullpy's own frames above the handler."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip("\n")


def _limiter(spec: Mapping[str, Any] | None) -> scripts.Limiter | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise TypeError(f"limiter must be a dict with 'max' and 'duration', got {spec!r}")
    unknown = set(spec) - {"max", "duration", "group_key", "bounce_back"}
    if unknown:
        raise ValueError(f"limiter accepts 'max', 'duration' and 'group_key', not {sorted(unknown)}")
    if spec.get("bounce_back"):
        raise ValueError(
            "limiter bounce_back is not supported: Node Bull 4.16.5 drops rate-limited jobs with it "
            "(docs/divergences.md); limited jobs are parked in `delayed` instead"
        )
    if "max" not in spec or "duration" not in spec:
        raise ValueError("limiter needs both 'max' and 'duration'")
    return scripts.Limiter(
        max=_options._int_option("limiter['max']", spec["max"], 1),
        duration=_options._int_option("limiter['duration']", spec["duration"], 1),
        group_key=bool(spec.get("group_key")),
    )


def _metrics(spec: Mapping[str, Any] | None) -> int | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping) or set(spec) - {"max_data_points"}:
        raise ValueError("metrics accepts {'max_data_points': n}")
    return _options._int_option("metrics['max_data_points']", spec.get("max_data_points"), 1)


__all__ = ["Handler", "JobTimeout", "MissingHandler", "Worker"]
