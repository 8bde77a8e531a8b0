"""A Python worker that shares a Bull queue with Node workers, following Bull's worker protocol
(lib/queue.js processJobs/getNextJob/processJob, lib/job.js moveToCompleted/moveToFailed).

Threads, not processes: ``concurrency`` jobs run at once, each in its own thread (``async def`` handlers
run on one event loop thread; ``bullpy worker --processes N`` runs several workers). Around them, exactly
what a Node worker does:

* taking: ``BLMOVE wait active`` while drained (the same as Node's ``BRPOPLPUSH``), then the
  move_to_active script (lock with this worker's token, ``processedOn``, the shared rate limiter);
  after a job, the non-blocking move_to_active, or the next job handed back by move_to_finished;
* a lock renewal every ``lock_renew_time`` for every running job, never re-creating a lost lock;
* the shared stalled check every ``stalled_interval`` (Node and Python workers take turns through
  the ``stalled-check`` key);
* delayed jobs promoted on the ``delayed`` channel's announcements and at least every ``guard_interval``;
* the next iteration of a repeatable job scheduled when it is taken;
* ``CLIENT SETNAME prefix:base64(name)`` on the blocking connection, so Node's ``getWorkers()`` counts it.

The handlers live in ``_handlers.py``, the job threads and finishing scripts in ``_running.py``, the timers
in ``_housekeeping.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import redis as _redis

from . import connection
from ._core import options as _options
from ._core import scripts
from ._core.work import BackoffStrategy
from ._facade import ScriptRunner
from ._handlers import Handler, Handlers
from ._housekeeping import Housekeeping
from ._running import Runs
from .errors import (
    JobTimeout,
    MissingHandler,
    RedisAuthenticationFailed,
    RedisPermissionDenied,
    RedisReadOnly,
    RedisUnavailable,
)
from .job import Job
from .utils import now_ms

if TYPE_CHECKING:
    from .queue import Queue

log = logging.getLogger("bullpy.worker")

#: What a lost (or restarting, or failing-over) Redis raises: reported once per outage, not once per attempt.
OUTAGE_ERRORS = (_redis.ConnectionError, _redis.TimeoutError, RedisUnavailable, RedisReadOnly)


class Outage:
    """One worker's account of a lost connection to Redis: the first failure is reported (an ``error`` event and
    a log line), later ones only counted, until a round trip succeeds again: then one ``recovered`` event
    (``failed_attempts``, ``seconds``) and a log line. Every thread of the worker (taking, job, finishing,
    housekeeping) reports here, so an outage costs one error event whatever the concurrency."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._lock = threading.Lock()
        self.since: float | None = None
        self.failed_attempts = 0

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            first = self.since is None
            if first:
                self.since = time.monotonic()
            self.failed_attempts += 1
        if first:
            log.warning("worker on %s lost its connection to Redis (%s); retrying until it is back",
                        self.queue.name, exc)
            self.queue._emit("error", exc)

    def ok(self) -> None:
        if self.since is None:  # the common case, without the lock
            return
        with self._lock:
            if self.since is None:
                return
            seconds, attempts = time.monotonic() - self.since, self.failed_attempts
            self.since, self.failed_attempts = None, 0
        log.warning("worker on %s: Redis is back after %.1f s (%d failed attempts)", self.queue.name, seconds, attempts)
        self.queue._emit("recovered", attempts, seconds)


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
        self._handlers = Handlers()
        if handler is not None:
            self._handlers.add_all(handler)
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
        self._given_back = threading.Event()  # close(force=True): running jobs are left to the stalled check
        self._paused = threading.Event()  # local pause
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._active: dict[str, Job] = {}
        self._held = 0  # concurrency slots in use: jobs taken and not yet finished in Redis
        self._lost_locks: set[str] = set()
        self._active_lock = threading.Lock()
        self._idle = threading.Condition(self._active_lock)
        self._drained = True
        self._threads: list[threading.Thread] = []
        self._bclient: _redis.Redis | None = None
        # The client the taking and finishing scripts run on (they hand back job hashes): the queue's own, or
        # one like it that decodes bytes that are not UTF-8 with U+FFFD as ioredis does (see _work_client).
        self._wclient: _redis.Redis = queue.client
        self._wrunner: ScriptRunner = queue._runner
        self._wpool: _redis.ConnectionPool | None = None
        self._running = False
        self._in_blmove = threading.Event()
        self._fetch_stopped = threading.Event()
        self._bclient_id: int | None = None
        self.outage = Outage(queue)
        self._housekeeping = Housekeeping(self)
        self._runs = Runs(self)

    def _report(self, exc: BaseException) -> None:
        """An error of one of the worker's threads: a lost connection once per outage, anything else as is."""
        if isinstance(exc, OUTAGE_ERRORS) and not isinstance(exc, RedisAuthenticationFailed):
            self.outage.failed(exc)
        else:
            self.queue._emit("error", exc)

    # --- set-up -----------------------------------------------------------------------------------------
    @property
    def handlers(self) -> dict[str, Handler]:
        """The handlers by job name (``"*"``: every name without its own)."""
        return self._handlers.by_name

    def process(self, name: str | Handler, handler: Handler | None = None) -> Worker:
        """Register a handler for a job name (``"*"`` catches every name without its own handler)."""
        if handler is None:
            if not callable(name):
                raise TypeError("process() needs a handler")
            handler, name = name, "*"
        self._handlers.add(cast(str, name), handler)
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
        if not self._handlers:
            raise ValueError("the worker has no handler: pass one or call process(name, handler)")
        if self._running:
            raise RuntimeError("this worker is already running")
        self.queue._workers.append(self)
        self._handlers.open(self.concurrency)
        connection.stop_at_exit(self.queue.client, self)
        self._bclient = self._blocking_client()
        self._work_client()
        # As Node's run(): promote due delayed jobs and run the stalled check once before taking jobs,
        # so a recovered job is next in line.
        try:
            self._housekeeping.check_clock()
            self._housekeeping.promote_delayed()
            self._housekeeping.check_stalled()
        except (RedisPermissionDenied, RedisAuthenticationFailed):
            # A user that may not write (or log in) can never work this queue: say so now, once,
            # instead of running threads that fail on every step.
            self._shutdown()
            raise
        except Exception as exc:
            self.queue._emit("error", exc)
        self._start_thread(self._housekeeping.run, "housekeeping")
        for _ in range(self._runs.finishers()):
            self._start_thread(self._runs.finisher, "finisher")
        self._start_thread(self._housekeeping.listen_delayed, "delayed")
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
        # client_name: the name Node's getWorkers() looks for, set on every (re)connection of the blocking
        # client. BLMOVE blocks for drain_delay seconds: the read must be allowed to wait longer than that
        # (redis-py 8 reads with a 5 s socket timeout by default).
        return connection.client_like(self.queue.client, client_name=self.keys.worker_name,
                                      socket_timeout=self.drain_delay + 10)

    def _work_client(self) -> None:
        # A client that decodes replies strictly raises UnicodeDecodeError on a job hash holding bytes that
        # are not UTF-8, after the script has locked the job: the worker's scripts read them as Node does
        # (ioredis decodes with U+FFFD), so such a job runs like any other (docs/divergences.md W2).
        client = self.queue.client
        kwargs = client.connection_pool.connection_kwargs
        if not kwargs.get("decode_responses") or kwargs.get("encoding_errors", "strict") != "strict":
            return
        self._wclient = connection.client_like(client, encoding_errors="replace")
        self._wpool = self._wclient.connection_pool
        runner = self.queue._runner
        self._wrunner = ScriptRunner(self._wclient, runner.keys)
        self._wrunner.write_refusal = runner.write_refusal

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
            return self._idle.wait_for(lambda: not self._held, timeout)

    def running_jobs(self) -> list[Job]:
        """The jobs this worker is running now."""
        with self._active_lock:
            return list(self._active.values())

    def close(self, force: bool = False, timeout: float | None = None) -> None:
        """Stop taking jobs and wait for running ones to finish, at most ``timeout`` seconds.

        ``force`` (also after a ``close`` that timed out) waits for nothing and gives the running jobs back
        as Node's ``close(true)`` does: their locks are no longer renewed and their handlers' results no
        longer sent, so once a lock expires the stalled check (of any worker) moves its job back to wait.
        """
        self._closing.set()
        self._housekeeping.wake.set()
        self._interrupt_blocking()
        if force:
            self._given_back.set()
            with self._idle:
                self._idle.notify_all()
        elif not self.when_current_jobs_finished(timeout):
            return  # still closing: close(force=True) gives the running jobs back
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
        self._housekeeping.wake.set()
        self._runs.threads.shutdown()
        with self._idle:  # the running jobs finish, unless close(force=True) gives them back
            self._idle.wait_for(lambda: not self._held or self._given_back.is_set())
        self._handlers.close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._bclient is not None:
            # The pool was made here, so closing the client alone would leave its connection open.
            self._bclient.connection_pool.disconnect()
        if self._wpool is not None:
            self._wpool.disconnect()
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
                self.outage.ok()
                if taken is not None:
                    with self._idle:
                        self._held += 1
                    handed_over = True
                    self._runs.submit(taken)
            except (_redis.ConnectionError, _redis.TimeoutError, RedisUnavailable, RedisReadOnly) as exc:
                if self._closing.is_set() or self._paused.is_set():
                    continue
                failures += 1
                self._report(exc)
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
        taken = self._wrunner.run(scripts.move_to_active(
            self.keys, self._token, self.lock_duration, now_ms(), job_id, self.limiter, self._clock(),
        ))
        if taken is None:
            if not self._drained:
                self.queue._emit("drained")
            self._drained = True
        else:
            self._drained = False
        return taken

    def _clock(self) -> int | None:
        # The offset the scripts add to Redis's clock when they stamp processedOn/finishedOn (the stamp is so
        # read when the script runs, not before it is sent); None where TIME is refused: the given now_ms.
        return self._housekeeping.clock_offset


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
