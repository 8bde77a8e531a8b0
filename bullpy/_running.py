"""A worker's job runs (lib/queue.js processJob, lib/job.js moveToCompleted/moveToFailed): the threads that
run taken jobs through their handlers, and the finisher threads that send the finishing scripts.

A job holds a concurrency slot from being taken until its finishing script has run. Handlers run in the job
threads and hand their outcome to the finishers, which send the finishing scripts of everything that
finished meanwhile in one round trip (three finishers: while one waits for Redis, the next batches gather); a
completion that hands back the next job (Node's fetch-next) passes its slot on to that job.
"""

from __future__ import annotations

import queue as _queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis as _redis

from ._core import options as _options
from ._core import scripts
from ._core.codec import to_json
from ._core.jobhash import parse_job_hash, parse_job_hash_deep
from ._core.work import completed_payload, failed_attempt, keep_jobs
from ._handlers import handler_stack
from ._refusals import unavailable_as_error
from .errors import JobTimeout, MissingHandler
from .job import Job
from .utils import now_ms

if TYPE_CHECKING:
    from .worker import Worker

#: Threads that send finishing scripts. Three, not two: with two, one finisher held up (waiting for the GIL or
#: a core) stalled every job behind it often enough to cost a quarter of the throughput in one run of five
#: (20,000 no-op jobs at concurrency 50: 12.8k to 19.2k jobs/s with two, 17.2k to 19.0k with three; Node Bull
#: 16.6k to 19.8k in the same rounds).
FINISHERS = 3
#: At most this many finishing scripts per round trip.
BATCH = 500


@dataclass(frozen=True)
class Outcome:
    """A finished handler run: the finishing script to send, and the local event to emit after it."""

    job: Job
    call: scripts.Call[Any]
    event: str
    arg: Any


class JobThreads:
    """Up to ``size`` daemon threads running ``target(item)`` for submitted items, started as needed (a
    handler that never returns holds its thread, never the interpreter's exit)."""

    def __init__(self, size: int, target: Callable[[scripts.Taken], None], name: str) -> None:
        self._size, self._target, self._name = size, target, name
        self._items: _queue.SimpleQueue[scripts.Taken | None] = _queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._started = 0
        self._closed = False
        self._lock = threading.Lock()

    def submit(self, item: scripts.Taken) -> None:
        if self._closed:
            raise RuntimeError("the job threads are shut down")
        self._items.put(item)
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._started < self._size:
                    self._started += 1
                    threading.Thread(target=self._loop, name=f"{self._name}-{self._started}", daemon=True).start()

    def shutdown(self) -> None:
        """Let each thread end once idle (running items go on to their end)."""
        self._closed = True
        with self._lock:
            for _ in range(self._started):
                self._items.put(None)

    def _loop(self) -> None:
        while True:
            item = self._items.get()
            if item is None:
                return
            try:
                self._target(item)
            except BaseException:  # noqa: S110 (see Runs.run: the job is abandoned, the thread goes on)
                pass
            self._idle.release()


class Runs:
    """Running one worker's jobs and finishing them in Redis."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.queue = worker.queue
        self.keys = worker.keys
        self.done: _queue.SimpleQueue[Outcome] = _queue.SimpleQueue()
        self.threads = JobThreads(worker.concurrency, self.run, f"bullpy-job-{worker.queue.name}")

    def finishers(self) -> int:
        # One job at a time needs none: it is finished in its own thread.
        return FINISHERS if self.worker.concurrency > 1 else 0

    def submit(self, taken: scripts.Taken) -> None:
        self.threads.submit(taken)

    # --- a job's run ----------------------------------------------------------------------------------------
    def run(self, taken: scripts.Taken) -> None:
        current: scripts.Taken | None = taken
        while current is not None:
            try:
                outcome = self._process(current)
            except Exception as exc:
                self.worker._report(exc)
                outcome = None
            except BaseException:
                # A handler's SystemExit: its job is abandoned (its lock expires, the stalled check returns
                # it); the slot is free again.
                self.release(None)
                raise
            if outcome is None:
                self.release(None)
                return
            if self.worker.concurrency > 1:
                self.done.put(outcome)
                return
            # One job at a time: a batch would never hold more than this one, so skip the hand-off and
            # finish here, going straight on with the job the completion handed back.
            current = self.finish([outcome])[0]

    def _process(self, taken: scripts.Taken) -> Outcome | None:
        w = self.worker
        if taken.no_hash is not None:
            # The script already moved the id to `failed` (docs/divergences.md W2): only report it.
            what = "no job hash exists" if taken.no_hash == "none" else f"its key is a {taken.no_hash}, not a hash"
            self.queue._emit("error", ValueError(f"job {taken.id!r} was not run and was moved to failed: {what} "
                                                 "(another program removed or overwrote it)"))
            return None
        try:
            job = Job(self.queue, parse_job_hash_deep(taken.id, taken.fields, now_ms()))
        except Exception as exc:
            # Divergence (safe): Node throws in Job.fromJSON and leaves the job locked in `active` until the
            # stalled check fails it; bullpy fails it now, finally, with the reason, whatever failed to read
            # (docs/divergences.md W2), so nothing waits for a lock.
            self._fail_unreadable(taken.id, exc)
            return None
        with w._active_lock:
            w._active[job.id] = job
        try:
            if "repeat" in job.opts:
                self._schedule_next_repeat(job)
            return self._execute(job)
        except BaseException:
            self.release_job_only(job)
            raise

    def _schedule_next_repeat(self, job: Job) -> None:
        w = self.worker
        prepared = _options.prepare_next_iteration(job.name, job.data, job.opts, now_ms(), w.local_timezone)
        if prepared is not None:
            self.queue._run(scripts.add_jobs(self.keys, w._token, [prepared.write]))

    def _execute(self, job: Job) -> Outcome:
        handlers = self.worker._handlers
        handler = handlers.for_name(job.name)
        self.queue._emit("active", job, None)
        if handler is None:
            return self._failed(job, MissingHandler(f"Missing process handler for job type {job.name}"), None)
        timeout = job.opts.get("timeout")
        try:
            result = handlers.call(handler, job, int(timeout) if timeout else None)
        except JobTimeout as exc:
            return self._failed(job, exc, f"TimeoutError: {exc}")
        except BaseException as exc:  # a handler's failure of any kind fails the job, as a rejection does
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return self._failed(job, exc, handler_stack(exc))
        try:
            returnvalue_json = None if result is None else to_json(result, where="returnvalue")
        except (TypeError, ValueError) as exc:
            # Node: JSON.stringify throws inside moveToCompleted and the job fails with that error.
            return self._failed(job, exc, handler_stack(exc))
        return self._completed(job, result, returnvalue_json)

    def _fetch_next(self) -> bool:
        # Node fetches inline unless paused, closing or rate limited.
        w = self.worker
        return not (w._closing.is_set() or w._paused.is_set() or w.limiter is not None)

    def _completed(self, job: Job, result: Any, returnvalue_json: str | None) -> Outcome:
        w = self.worker
        call = scripts.move_to_completed(
            self.keys, job.id, w._token, now_ms(), returnvalue_json or "null",
            keep_jobs(job.opts.get("removeOnComplete")), completed_payload(job.id, returnvalue_json),
            self._fetch_next(), w.lock_duration, w.metrics_points, w._clock(),
        )
        return Outcome(job, call, "completed", result)

    def _failed(self, job: Job, error: BaseException, stack: str | None) -> Outcome:
        w = self.worker
        decision = failed_attempt(
            job.record, error, stack, now_ms=now_ms(), strategies=w.backoff_strategies, discarded=job.discarded
        )
        call = scripts.move_to_failed(self.keys, job.id, w._token, decision.attempt, w.metrics_points, w._clock())
        return Outcome(job, call, "failed", error)

    def _fail_unreadable(self, job_id: str, error: Exception) -> None:
        w = self.worker
        stub = parse_job_hash(job_id, {"opts": "{}", "data": "{}"}, now_ms())
        decision = failed_attempt(stub, error, None, now_ms=now_ms(), strategies={}, discarded=True)
        try:
            self.queue._run(scripts.move_to_failed(self.keys, job_id, w._token, decision.attempt, None, w._clock()))
        except Exception as exc:
            self.worker._report(exc)
        self.queue._emit("error", error)

    # --- finishing --------------------------------------------------------------------------------------
    def finisher(self) -> None:
        w = self.worker
        while True:
            try:
                first = self.done.get(timeout=0.2)
            except _queue.Empty:
                if w._closed.is_set() or w._given_back.is_set() or (w._fetch_stopped.is_set() and not w._held):
                    return
                continue
            batch = [first]
            while len(batch) < BATCH:
                try:
                    batch.append(self.done.get_nowait())
                except _queue.Empty:
                    break
            for taken in self.finish(batch):
                if taken is None:
                    continue
                try:
                    self.threads.submit(taken)
                except RuntimeError:
                    self.run(taken)  # the job threads are shutting down: finish this last job here

    def finish(self, batch: list[Outcome]) -> list[scripts.Taken | None]:
        """Send the finishing scripts of a batch in one round trip; emit their events; release the slots
        of jobs that handed back no next job (those keep theirs)."""
        w = self.worker
        if w._given_back.is_set():
            # Given back by close(force=True): the job stays active under its lock until the stalled check.
            for outcome in batch:
                self.release(outcome.job)
            return [None] * len(batch)
        try:
            replies = self._send([o.call for o in batch])
        except Exception as exc:
            replies = [exc] * len(batch)
        else:
            w.outage.ok()
        next_jobs: list[scripts.Taken | None] = []
        for outcome, reply in zip(batch, replies):
            taken: scripts.Taken | None = None
            if isinstance(reply, Exception):
                w._report(reply)
            else:
                try:
                    parsed = outcome.call.parse(reply)
                except Exception as exc:
                    self.queue._emit("error", exc)
                else:
                    self.queue._emit(outcome.event, outcome.job, outcome.arg)
                    taken = parsed if isinstance(parsed, scripts.Taken) else None
            if taken is None:
                self.release(outcome.job)
            else:
                self.release_job_only(outcome.job)
                w._drained = False
            next_jobs.append(taken)
        return next_jobs

    def _send(self, calls: Sequence[scripts.Call[Any]]) -> list[Any]:
        """Run Calls in one round trip, each reply unparsed and errors in place: EVALSHA pipelined as is
        (redis-py's scripts in a pipeline would first ask SCRIPT EXISTS, a round trip of its own), and the
        calls Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH) loaded and sent again."""
        runner = self.worker._wrunner
        if len(calls) == 1:
            return runner.run_many_raw(calls)
        client = self.worker._wclient
        shas = [runner.script(call.script).sha for call in calls]
        with unavailable_as_error(client):
            replies = _evalsha_pipeline(client, shas, calls)
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, _redis.exceptions.NoScriptError)]
            if missing:
                for name in {calls[i].script for i in missing}:
                    client.script_load(runner.script(name).script)
                again = _evalsha_pipeline(client, [shas[i] for i in missing], [calls[i] for i in missing])
                for i, reply in zip(missing, again):
                    replies[i] = reply
        return replies

    # --- slots --------------------------------------------------------------------------------------------
    def release(self, job: Job | None) -> None:
        """The job is done (or was never run): its slot is free."""
        w = self.worker
        with w._idle:
            if job is not None:
                w._active.pop(job.id, None)
                w._lost_locks.discard(job.id)
            w._held -= 1
            w._idle.notify_all()
        w._slots.release()

    def release_job_only(self, job: Job) -> None:
        """The job is done and its slot passes on to the next job it handed back."""
        w = self.worker
        with w._idle:
            w._active.pop(job.id, None)
            w._idle.notify_all()


def _evalsha_pipeline(client: _redis.Redis, shas: Sequence[str], calls: Sequence[scripts.Call[Any]]) -> list[Any]:
    with client.pipeline(transaction=False) as pipe:
        for sha, call in zip(shas, calls):
            pipe.evalsha(sha, len(call.keys), *call.keys, *call.args)
        return list(pipe.execute(raise_on_error=False))
