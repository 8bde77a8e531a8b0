"""A Worker run as a service (``bullpy worker``): the handler named by ``module:function``, a log line per job,
graceful shutdown on SIGTERM/SIGINT, and ``processes`` workers under a supervisor that restarts a crashed one.

Shutdown, as Node's ``queue.close()``: the worker stops taking jobs, the running ones get ``grace`` seconds to
finish; what still runs then is given back as Node's ``close(true)`` leaves it: no longer renewed, its lock
expires and the stalled check (of any worker, Node or Python) moves the job back to wait. A second
SIGTERM/SIGINT (or a SIGQUIT) gives the running jobs back at once. Exit status: 0 when every running job
finished, 1 when jobs were given back or a worker could not start.

Under a supervisor each worker process is a separate Bull worker (its own token, connections and
``concurrency``). The supervisor passes a SIGTERM/SIGINT on to them once (they ignore a repeat, so a
terminal's Ctrl-C or systemd's signal to the whole group counts once) and a second one as SIGQUIT; a worker
that dies otherwise is started again (at once, then after 1, 2, 4 ... 30 s while it keeps dying within 30 s),
and the jobs it held come back through the stalled check.
"""

from __future__ import annotations

import datetime
import importlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any

from . import connection
from .errors import HandlerNotFound
from .job import Job
from .queue import Queue
from .utils import now_ms
from .worker import Handler, Worker

log = logging.getLogger("bullpy.worker")

#: Exit status when running jobs had to be given back, or the worker could not start.
EXIT_GAVE_BACK = 1
#: A worker process that ran at least this long before dying is restarted at once.
_STEADY_SECONDS = 30.0
_MAX_RESTART_DELAY = 30.0


@dataclass(frozen=True)
class ServiceOptions:
    """What ``bullpy worker`` runs; ``settings`` are Worker keywords (``lock_duration=...``, ``limiter=...``)."""

    queue: str
    handler: str
    redis: str | None = None
    prefix: str = "bull"
    cluster: bool | None = None
    concurrency: int = 1
    settings: Mapping[str, Any] = field(default_factory=dict)
    backoff_strategies: str | None = None
    processes: int | None = None
    grace: float = 30.0
    log_format: str = "text"
    log_level: str = "INFO"
    #: Serve each worker's Prometheus metrics (``/metrics``, ``/health``) here; worker process i (from 1)
    #: on port + i - 1.
    metrics_port: int | None = None


def load_handler(target: str) -> Handler | Mapping[str, Handler]:
    """``"package.module:function"`` (or ``:mapping`` of job name to handler, dotted attributes allowed).

    Raises:
        HandlerNotFound: one line saying what is missing or broken (the cause stays as ``__cause__``).
    """
    value = _load(target, "handler")
    if isinstance(value, Mapping):
        bad = [name for name, fn in value.items() if not isinstance(name, str) or not callable(fn)]
        if not value or bad:
            raise HandlerNotFound(f"handler {target!r}: a mapping of job name to callable is needed"
                                  + (f" (not callable: {bad[:5]})" if bad else " (it is empty)"))
        return value
    if not callable(value):
        raise HandlerNotFound(f"handler {target!r} is neither a function nor a mapping of them ({type(value).__name__})")
    return value  # type: ignore[no-any-return]


def load_strategies(target: str) -> Mapping[str, Callable[..., Any]]:
    """``"module:mapping"`` of backoff strategy name to function."""
    value = _load(target, "backoff strategies")
    if not isinstance(value, Mapping) or not all(callable(fn) for fn in value.values()):
        raise HandlerNotFound(f"backoff strategies {target!r}: a mapping of name to function is needed")
    return value


def _load(target: str, what: str) -> Any:
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise HandlerNotFound(f"{what} {target!r}: expected module:function, e.g. tasks:send")
    # As `python -m` does: modules in the working directory are found first.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise HandlerNotFound(f"{what} {target!r}: no module named {exc.name!r} "
                                  f"(working directory {os.getcwd()})") from exc
        raise HandlerNotFound(f"{what} {target!r}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise HandlerNotFound(f"{what} {target!r}: importing {module_name!r} failed: "
                              f"{type(exc).__name__}: {exc}") from exc
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise HandlerNotFound(f"{what} {target!r}: {module_name!r} has no attribute {attribute!r}") from None
    return value


# --- logs -------------------------------------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, pid, message, and a job's fields when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        out.update(getattr(record, "bullpy", None) or {})
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(log_format: str = "text", level: str | int = "INFO") -> None:
    """Send every log record (bullpy's and the handlers' own) to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    elif log_format == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(message)s"))
    else:
        raise ValueError(f"log format must be 'text' or 'json', not {log_format!r}")
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)


def _fields(queue: Queue, job: Job | None, event: str, **more: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"event": event, "queue": queue.name}
    if job is not None:
        fields.update(job_id=job.id, job_name=job.name, attempts_made=job.attempts_made or 0)
    fields.update(more)
    return {"bullpy": fields}


def _label(job: Job) -> str:
    return f"job {job.id}" + ("" if job.name == "__default__" else f" ({job.name})")


def log_job_events(queue: Queue) -> None:
    """One log line per job outcome of this process's workers (completed at INFO, failed and stalled at
    WARNING), and their errors."""

    def completed(job: Job, _result: Any) -> None:
        took = now_ms() - job.processed_on if job.processed_on else None
        log.info("completed %s%s", _label(job), "" if took is None else f" in {took} ms",
                 extra=_fields(queue, job, "completed", duration_ms=took))

    def failed(job: Job | None, error: BaseException) -> None:
        if job is None:
            log.warning("failed a job: %s", error, extra=_fields(queue, None, "failed", reason=str(error)))
            return
        attempt = (job.attempts_made or 0) + 1
        attempts = job.opts.get("attempts") or 1
        final = job.discarded or not isinstance(attempts, int) or attempt >= attempts
        what = "for good" if final else "will retry"
        log.warning("failed %s, attempt %s of %s, %s: %s", _label(job), attempt, attempts, what, error,
                    extra=_fields(queue, job, "failed", attempt=attempt, attempts=attempts, final=final,
                                  reason=str(error)))

    def stalled(job: Job | None) -> None:
        if job is not None:
            log.warning("stalled %s: its worker stopped renewing the lock; back to waiting", _label(job),
                        extra=_fields(queue, job, "stalled"))

    def lock_lost(job: Job | None, _error: Any) -> None:
        if job is not None:
            log.warning("lost the lock of %s (another worker may run it; this run's result will be refused)",
                        _label(job), extra=_fields(queue, job, "lock-extension-failed"))

    def error(exc: BaseException) -> None:
        log.error("%s: %s", type(exc).__name__, exc, extra=_fields(queue, None, "error", reason=str(exc)))

    queue.on("completed", completed)
    queue.on("failed", failed)
    queue.on("stalled", stalled)
    queue.on("lock-extension-failed", lock_lost)
    queue.on("error", error)


# --- one worker -------------------------------------------------------------------------------------------

def serve(options: ServiceOptions) -> int:
    """Run ``options``: one worker in this process, or ``processes`` worker processes under a supervisor
    (until SIGTERM/SIGINT); the exit status."""
    configure_logging(options.log_format, options.log_level)
    handler = load_handler(options.handler)
    strategies = load_strategies(options.backoff_strategies) if options.backoff_strategies else None
    check_metrics_ports(options)
    if options.processes is None:
        stop = _Stop(supervised=False)
        stop.install()
        return _work(options, handler, strategies, stop)
    if options.redis is None and connection.env_url() is None:
        # The embedded server: started (and kept) here, its socket handed to every worker process.
        options = replace(options, redis=connection.embedded_url())
    # Settings are checked here, once, before any process starts.
    queue = _queue(options)
    try:
        Worker(queue, handler, concurrency=options.concurrency, backoff_strategies=strategies, **options.settings)
    finally:
        queue.close()
    return Supervisor(options).run()


def check_metrics_ports(options: ServiceOptions) -> None:
    """Refuse, before any worker starts, a metrics port that is out of range or taken.

    Checked here because a worker process that cannot listen would otherwise be restarted by the supervisor
    again and again, each time failing the same way, while the others run without it.

    Raises:
        ValueError: naming the port and the worker process it is for.
    """
    if options.metrics_port is None:
        return
    count = options.processes or 1
    for offset in range(count):
        port = options.metrics_port + offset
        whose = f"worker process {offset + 1} of {count}" if options.processes else "the worker"
        if port > 65535:
            raise ValueError(f"metrics port {port} (for {whose}) is above 65535: give a lower --metrics-port")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As the metrics server binds: every interface, address reuse on (a closed socket's TIME_WAIT
            # is no obstacle, a listener or a connection's local port is).
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
            except OSError as exc:
                raise ValueError(f"metrics port {port} (for {whose}) cannot be used: {exc.strerror or exc}; "
                                 "give another --metrics-port") from None


def _queue(options: ServiceOptions) -> Queue:
    return Queue(options.queue, options.redis, prefix=options.prefix, cluster=options.cluster)


class _Stop:
    """The shutdown signals: the first asks for a graceful stop, a SIGQUIT (or, unsupervised, a second
    SIGTERM/SIGINT) for giving the running jobs back now."""

    def __init__(self, supervised: bool) -> None:
        self.graceful = threading.Event()
        self.now = threading.Event()
        self.supervised = supervised

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGQUIT, self._on_quit)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.graceful.is_set() and not self.supervised:
            self.now.set()
        self.graceful.set()

    def _on_quit(self, _signum: int, _frame: FrameType | None) -> None:
        self.graceful.set()
        self.now.set()


def _work(options: ServiceOptions, handler: Handler | Mapping[str, Handler],
          strategies: Mapping[str, Callable[..., Any]] | None, stop: _Stop, offset: int = 0) -> int:
    queue = _queue(options)
    log_job_events(queue)
    worker = Worker(queue, handler, concurrency=options.concurrency, backoff_strategies=strategies,
                    **options.settings)
    if options.metrics_port is not None:
        from .exporter import WorkerMetrics  # prometheus_client: only when asked for

        port = options.metrics_port + offset
        WorkerMetrics(worker).serve(port)
        log.info("metrics on port %s", port, extra=_fields(queue, None, "metrics", port=port))
    worker.start()
    log.info("worker on queue %r (prefix %r, %s) started: concurrency %s, handler %s", queue.name, queue.prefix,
             queue.server.describe(), options.concurrency, options.handler,
             extra=_fields(queue, None, "started", concurrency=options.concurrency, handler=options.handler))
    parent = os.getppid()
    while not stop.graceful.wait(0.5):
        if not worker.running:
            log.error("the worker stopped by itself", extra=_fields(queue, None, "crashed"))
            return EXIT_GAVE_BACK
        if stop.supervised and os.getppid() != parent:
            log.warning("the supervisor is gone: stopping", extra=_fields(queue, None, "orphaned"))
            stop.graceful.set()
    running = worker.running_jobs()
    log.info("stopping: no new jobs; %s running job(s) get up to %g s to finish", len(running), options.grace,
             extra=_fields(queue, None, "stopping", running=len(running), grace_s=options.grace))
    worker.close(timeout=0)  # stop taking jobs; returns at once
    deadline = time.monotonic() + options.grace
    while not worker.when_current_jobs_finished(0.1):
        if stop.now.is_set() or time.monotonic() >= deadline:
            return _give_back(queue, worker)
    worker.close(timeout=10)
    queue.close()
    log.info("stopped: every running job finished", extra=_fields(queue, None, "stopped"))
    return 0


def _give_back(queue: Queue, worker: Worker) -> int:
    ids = [job.id for job in worker.running_jobs()]
    worker.close(force=True, timeout=10)
    log.warning("stopped: gave %s running job(s) back (%s); the stalled check returns them to waiting once "
                "their locks expire", len(ids), ", ".join(ids[:20]) + (", ..." if len(ids) > 20 else ""),
                extra=_fields(queue, None, "stopped", given_back=ids))
    logging.shutdown()
    # The handlers still running cannot be stopped, and would hold the interpreter's exit: leave now.
    os._exit(EXIT_GAVE_BACK)


# --- several workers --------------------------------------------------------------------------------------

def _child_main(options: ServiceOptions, index: int) -> None:
    """A supervised worker process (started by multiprocessing's spawn)."""
    stop = _Stop(supervised=True)
    stop.install()  # before the handler's module loads: a signal meanwhile still stops the worker cleanly
    configure_logging(options.log_format, options.log_level)
    try:
        handler = load_handler(options.handler)
        strategies = load_strategies(options.backoff_strategies) if options.backoff_strategies else None
        code = _work(options, handler, strategies, stop, offset=index - 1)  # process 1 serves on the port itself
    except Exception as exc:
        log.error("worker process %s could not start: %s", index, exc,
                  extra={"bullpy": {"event": "crashed", "queue": options.queue, "reason": str(exc)}})
        code = EXIT_GAVE_BACK
    logging.shutdown()
    sys.exit(code)


@dataclass
class _Slot:
    index: int
    process: multiprocessing.process.BaseProcess | None = None
    started: float = 0.0
    delay: float = 0.0
    due: float = 0.0


class Supervisor:
    """Runs ``options.processes`` worker processes until SIGTERM/SIGINT, restarting any that dies."""

    def __init__(self, options: ServiceOptions) -> None:
        self.options = options
        self.slots = [_Slot(i + 1) for i in range(options.processes or 1)]
        self.context = multiprocessing.get_context("spawn")
        self.signals = 0

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, self._on_signal)
        log.info("supervisor of %s worker processes on queue %r", len(self.slots), self.options.queue,
                 extra={"bullpy": {"event": "supervisor-started", "queue": self.options.queue,
                                   "processes": len(self.slots)}})
        for slot in self.slots:
            self._start(slot)
        codes: dict[int, int] = {}
        while True:
            alive = [s.process for s in self.slots if s.process is not None and s.process.is_alive()]
            if self.signals and not alive:
                # The last processes may have ended since the previous pass: their codes count, not the
                # codes of the processes they replaced.
                for slot in self.slots:
                    if slot.process is not None:
                        codes[slot.index] = slot.process.exitcode if slot.process.exitcode is not None else -1
                break
            multiprocessing.connection.wait([p.sentinel for p in alive], timeout=0.2)
            for slot in self.slots:
                process = slot.process
                if process is None or process.is_alive():
                    if process is None and not self.signals and time.monotonic() >= slot.due:
                        self._start(slot)
                    continue
                code = process.exitcode if process.exitcode is not None else -1
                codes[slot.index] = code
                slot.process = None
                if self.signals:
                    continue
                ran = time.monotonic() - slot.started
                slot.delay = 0.0 if ran >= _STEADY_SECONDS else min(max(slot.delay * 2, 1.0), _MAX_RESTART_DELAY)
                slot.due = time.monotonic() + slot.delay
                log.warning("worker process %s (pid %s) %s after %.1f s; starting it again%s", slot.index,
                            process.pid, _how(code), ran, f" in {slot.delay:g} s" if slot.delay else "",
                            extra={"bullpy": {"event": "process-died", "queue": self.options.queue,
                                              "process": slot.index, "exit_code": code}})
        status = 0 if all(code == 0 for code in codes.values()) else EXIT_GAVE_BACK
        log.info("supervisor stopped (exit status %s)", status,
                 extra={"bullpy": {"event": "supervisor-stopped", "queue": self.options.queue, "exit_codes": codes}})
        return status

    def _start(self, slot: _Slot) -> None:
        process = self.context.Process(target=_child_main, args=(self.options, slot.index),
                                       name=f"bullpy-worker-{slot.index}", daemon=False)
        process.start()
        slot.process, slot.started = process, time.monotonic()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals += 1
        quit_now = signum == signal.SIGQUIT or self.signals > 1
        for slot in self.slots:
            if slot.process is not None and slot.process.pid is not None and slot.process.is_alive():
                try:
                    os.kill(slot.process.pid, signal.SIGQUIT if quit_now else signal.SIGTERM)
                except ProcessLookupError:
                    pass


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


__all__ = ["EXIT_GAVE_BACK", "JsonFormatter", "ServiceOptions", "Supervisor", "check_metrics_ports",
           "configure_logging", "load_handler", "load_strategies", "log_job_events", "serve"]
