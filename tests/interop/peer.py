"""Drive ``bridge/peer.js`` (real Node Bull 4.16.5) from Python tests.

This module deliberately imports nothing from bullpy: it is the independent Node side
against which bullpy is checked. It speaks the peer's JSON-lines protocol (see
``bridge/README.md``): one ``{"id", "cmd", ...}`` request per line on stdin, one
``{"id", "ok", "result" | "error"}`` response per line on stdout.

    with Peer("redis://127.0.0.1:6379/0") as bull:
        q = PeerQueue("message-queue", prefix="bullpy-test-1234abcd")
        job = bull.call(q, "add", {"number": "5511999", "message": "hi"})
        bull.process(q, concurrency=2)
        bull.wait_for_counts(q, completed=1)

Durations on this side are seconds (floats); the wire uses milliseconds.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import queue as queue_mod
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Union, runtime_checkable

__all__ = [
    "BRIDGE_DIR",
    "DEFAULT_REDIS_URL",
    "Peer",
    "PeerError",
    "PeerQueue",
    "QueueLike",
    "node_available",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
BRIDGE_DIR = REPO_ROOT / "bridge"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

_STDERR_LINES_KEPT = 500
_STDERR_LINES_SHOWN = 50
_EXIT = object()  # sentinel handed to waiters when the Node process is gone


def node_available() -> bool:
    """True if ``node`` is on PATH and ``bridge/node_modules/bull`` is installed."""
    return (
        shutil.which("node") is not None
        and (BRIDGE_DIR / "node_modules" / "bull" / "package.json").is_file()
    )


class PeerError(RuntimeError):
    """A request failed in Node (``ok: false``), timed out, or the peer process died."""

    def __init__(
        self,
        message: str,
        *,
        command: str,
        node_stack: str | None = None,
        stderr_tail: str = "",
    ) -> None:
        text = f"{command}: {message}"
        if stderr_tail:
            text += f"\n--- peer.js stderr (last lines) ---\n{stderr_tail}"
        super().__init__(text)
        self.message = message
        self.command = command
        self.node_stack = node_stack
        self.stderr_tail = stderr_tail


@dataclass(frozen=True)
class PeerQueue:
    """A queue as peer.js addresses it; one Node Bull Queue exists per distinct value."""

    name: str
    prefix: str = "bull"
    settings: Mapping[str, Any] | None = None
    limiter: Mapping[str, Any] | None = None
    default_job_options: Mapping[str, Any] | None = None
    metrics: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The camelCase ``queue`` object of the protocol (unset options left out)."""
        out: dict[str, Any] = {"name": self.name, "prefix": self.prefix}
        if self.settings is not None:
            out["settings"] = dict(self.settings)
        if self.limiter is not None:
            out["limiter"] = dict(self.limiter)
        if self.default_job_options is not None:
            out["defaultJobOptions"] = dict(self.default_job_options)
        if self.metrics is not None:
            out["metrics"] = dict(self.metrics)
        return out


@runtime_checkable
class _NamedQueue(Protocol):
    """Anything with ``name`` and ``prefix`` (a bullpy Queue, for instance)."""

    @property
    def name(self) -> str: ...

    @property
    def prefix(self) -> str: ...


QueueLike = Union[PeerQueue, Mapping[str, Any], _NamedQueue]


def _queue_json(queue: QueueLike) -> dict[str, Any]:
    if isinstance(queue, PeerQueue):
        return queue.to_json()
    if isinstance(queue, Mapping):
        return dict(queue)
    name, prefix = getattr(queue, "name", None), getattr(queue, "prefix", None)
    if isinstance(name, str) and isinstance(prefix, str):
        return {"name": name, "prefix": prefix}
    raise TypeError(f"not a queue for peer.js: {queue!r} (use PeerQueue or a dict)")


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class Peer:
    """A running ``node bridge/peer.js``; thread-safe, one request at a time per caller.

    Args:
        redis_url: passed to Node as ``REDIS_URL`` (redis://, rediss:// or unix://).
        env: extra environment variables for the Node process.
        request_timeout: default seconds to wait for a response.
        log_path: if given, every stderr line of the peer is also appended there.
    """

    def __init__(
        self,
        redis_url: str = DEFAULT_REDIS_URL,
        *,
        env: Mapping[str, str] | None = None,
        request_timeout: float = 30.0,
        log_path: str | os.PathLike[str] | None = None,
        node: str = "node",
    ) -> None:
        self.redis_url = redis_url
        self.request_timeout = request_timeout
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[int, queue_mod.Queue[Any]] = {}
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES_KEPT)
        self._log_file = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
        self._log_lock = threading.Lock()

        child_env = {**os.environ, **(env or {}), "REDIS_URL": redis_url}
        self._proc = subprocess.Popen(
            [node, "peer.js"],
            cwd=BRIDGE_DIR,
            env=child_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._stdout_thread = threading.Thread(target=self._read_stdout, name="peer-stdout", daemon=True)
        self._stderr_thread = threading.Thread(target=self._read_stderr, name="peer-stderr", daemon=True)
        self._stdout_thread.start()
        self._stderr_thread.start()
        try:
            self.request("ping", request_timeout=min(request_timeout, 15.0))
        except BaseException:
            self.stop()
            raise

    # -- process plumbing ---------------------------------------------------------------

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                self._remember_stderr(f"[non-JSON stdout] {line.rstrip()}")
                continue
            request_id = message.get("id") if isinstance(message, dict) else None
            with self._lock:
                waiter = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
            if waiter is not None:
                waiter.put(message)
            else:
                self._remember_stderr(f"[unmatched response] {line.rstrip()}")
        # EOF: the process is gone (or going); wake everyone still waiting.
        self._proc.wait()
        with self._lock:
            waiters, self._pending = list(self._pending.values()), {}
        for waiter in waiters:
            waiter.put(_EXIT)

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._remember_stderr(line.rstrip("\n"))

    def _remember_stderr(self, line: str) -> None:
        self._stderr.append(line)
        with self._log_lock:
            if self._log_file is not None and not self._log_file.closed:
                self._log_file.write(line + "\n")
                self._log_file.flush()

    def stderr_tail(self, lines: int = _STDERR_LINES_SHOWN) -> str:
        """The last ``lines`` lines the peer wrote to stderr."""
        return "\n".join(list(self._stderr)[-lines:])

    @property
    def pid(self) -> int:
        """The Node process id."""
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the Node process has ended, else None."""
        return self._proc.poll()

    def alive(self) -> bool:
        """True while the Node process runs."""
        return self._proc.poll() is None

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the Node process to end (e.g. after a ``crash`` behaviour); its exit code."""
        return self._proc.wait(timeout=timeout)

    # -- the protocol -----------------------------------------------------------------------

    def request(self, cmd: str, /, *, request_timeout: float | None = None, **fields: Any) -> Any:
        """Send one command and return its ``result``; raise PeerError on failure.

        ``fields`` go on the wire as given (camelCase, milliseconds).
        """
        if not self.alive():
            raise PeerError(
                f"peer.js is not running (exit code {self.returncode})",
                command=cmd,
                stderr_tail=self.stderr_tail(),
            )
        request_id = next(self._ids)
        waiter: queue_mod.Queue[Any] = queue_mod.Queue(maxsize=1)
        line = json.dumps({"id": request_id, "cmd": cmd, **fields}, separators=(",", ":")) + "\n"
        with self._lock:
            self._pending[request_id] = waiter
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(line)
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError) as exc:
                self._pending.pop(request_id, None)
                raise PeerError(
                    f"cannot write to peer.js: {exc}", command=cmd, stderr_tail=self.stderr_tail()
                ) from exc
        timeout = self.request_timeout if request_timeout is None else request_timeout
        try:
            message = waiter.get(timeout=timeout)
        except queue_mod.Empty:
            with self._lock:
                self._pending.pop(request_id, None)
            raise PeerError(
                f"no response within {timeout:g} s", command=cmd, stderr_tail=self.stderr_tail()
            ) from None
        if message is _EXIT:
            self._stderr_thread.join(timeout=1.0)  # let the dying words reach the tail
            raise PeerError(
                f"peer.js exited with code {self.returncode} before answering",
                command=cmd,
                stderr_tail=self.stderr_tail(),
            )
        if not message.get("ok"):
            raise PeerError(
                str(message.get("error")),
                command=cmd,
                node_stack=message.get("stack"),
                stderr_tail=self.stderr_tail(),
            )
        return message.get("result")

    # -- helpers, one per command -----------------------------------------------------------

    def call(self, queue: QueueLike, method: str, *args: Any) -> Any:
        """``queue.<method>(*args)`` on a Node Bull Queue; Jobs come back as ``toJSON()`` dicts."""
        return self.request("call", queue=_queue_json(queue), method=method, args=list(args))

    def job(self, queue: QueueLike, job_id: str | int, method: str, *args: Any) -> Any:
        """``(await queue.getJob(job_id)).<method>(*args)``; PeerError "job not found" if missing."""
        return self.request(
            "job", queue=_queue_json(queue), jobId=str(job_id), method=method, args=list(args)
        )

    def get_job(self, queue: QueueLike, job_id: str | int) -> dict[str, Any] | None:
        """The job's ``toJSON()`` as Node reads it, or None when it does not exist."""
        result: dict[str, Any] | None = self.call(queue, "getJob", str(job_id))
        return result

    def process(
        self,
        queue: QueueLike,
        *,
        concurrency: int = 1,
        name: str | None = None,
        behaviour: Mapping[str, Any] | None = None,
        count: int | None = None,
        timeout: float = 30.0,
    ) -> Any:
        """Start a Node handler on ``queue`` (name ``"*"`` by default).

        Args:
            behaviour: defaults for every job, overridden per job by ``data["__peer"]``:
                sleep (ms), fail (message), failTimes, discard, progress (list), log (list),
                return (value), returnUndefined, hang, crash.
            count: if given, also wait until that many handler runs have been settled.
        """
        fields: dict[str, Any] = {"queue": _queue_json(queue), "concurrency": concurrency}
        if name is not None:
            fields["name"] = name
        if behaviour is not None:
            fields["behaviour"] = dict(behaviour)
        result = self.request("process", **fields)
        if count is not None:
            self.wait_for_processed(queue, count, timeout=timeout)
        return result

    def processed(self, queue: QueueLike, clear: bool = False) -> list[dict[str, Any]]:
        """Handler runs recorded so far: id, name, data, attemptsMade, start, end, settled,
        outcome ("active" | "completed" | "failed"), returnvalue, error."""
        result: list[dict[str, Any]] = self.request("processed", queue=_queue_json(queue), clear=clear)
        return result

    def wait_for_counts(self, queue: QueueLike, timeout: float = 10.0, **counts: int) -> dict[str, int]:
        """Poll ``getJobCounts`` until every given count is exactly met; the final counts."""
        result: dict[str, int] = self._wait(queue, timeout, predicate="counts", counts=counts)
        return result

    def wait_for_processed(self, queue: QueueLike, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` handler runs have been settled by Bull; those records."""
        result: list[dict[str, Any]] = self._wait(queue, timeout, predicate="processed", count=count)
        return result

    def wait_for_state(self, queue: QueueLike, job_id: str | int, state: str, timeout: float = 10.0) -> str:
        """Wait until ``job.getState()`` is ``state`` ("missing" for a job that does not exist)."""
        result: str = self._wait(queue, timeout, predicate="state", jobId=str(job_id), state=state)
        return result

    def wait_for_events(
        self, queue: QueueLike, event: str, count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` recorded events named ``event`` (see ``listen``); those events."""
        result: list[dict[str, Any]] = self._wait(queue, timeout, predicate="events", event=event, count=count)
        return result

    def _wait(self, queue: QueueLike, timeout: float, **fields: Any) -> Any:
        return self.request(
            "waitFor",
            queue=_queue_json(queue),
            timeout=_ms(timeout),
            request_timeout=timeout + 10.0,
            **fields,
        )

    def listen(self, queue: QueueLike, events: Sequence[str]) -> list[str]:
        """Record these events (e.g. ``"global:completed"``); returns once subscribed."""
        result: list[str] = self.request("listen", queue=_queue_json(queue), events=list(events))
        return result

    def events(self, queue: QueueLike, clear: bool = False) -> list[dict[str, Any]]:
        """Recorded events: ``[{"event": name, "args": [...], "at": ms}]``."""
        result: list[dict[str, Any]] = self.request("events", queue=_queue_json(queue), clear=clear)
        return result

    def workers_on_every_node(self, queue: QueueLike) -> list[dict[str, Any]]:
        """Bull's ``getWorkers`` asked of every master of a Redis Cluster (``getWorkers`` on one server)."""
        result: list[dict[str, Any]] = self.request("workersOnEveryNode", queue=_queue_json(queue))
        return result

    def now(self) -> int:
        """Node's ``Date.now()``."""
        result: int = self.request("now")
        return result

    def cron_next(self, cron: str, count: int = 1, options: Mapping[str, Any] | None = None) -> list[int]:
        """The next ``count`` epoch-ms times as Bull's cron-parser computes them.

        ``options`` are cron-parser's (camelCase): currentDate (ms), startDate, endDate, tz, utc.
        """
        result: list[int] = self.request("cronNext", cron=cron, count=count, options=dict(options or {}))
        return result

    def close(self, queue: QueueLike | None = None, *, do_not_wait_jobs: bool = False) -> int:
        """Close one queue (or all); the number closed. Closing waits for running jobs."""
        fields: dict[str, Any] = {"doNotWaitJobs": do_not_wait_jobs}
        if queue is not None:
            fields["queue"] = _queue_json(queue)
        result: int = self.request("close", request_timeout=self.request_timeout + 15.0, **fields)
        return result

    def stop(self, timeout: float = 15.0) -> int | None:
        """Close every queue, end the Node process (killing it if it lingers); its exit code."""
        if self.alive():
            try:
                self.request("exit", request_timeout=timeout, doNotWaitJobs=True)
            except PeerError:
                pass
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=timeout)
        self._stdout_thread.join(timeout=5)
        self._stderr_thread.join(timeout=5)
        with self._log_lock:
            if self._log_file is not None and not self._log_file.closed:
                self._log_file.close()
        return self._proc.returncode

    def __enter__(self) -> Peer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
