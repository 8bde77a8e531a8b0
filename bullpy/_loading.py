"""add_frame's writes: chunk by chunk, so that a Redis restart or a Sentinel failover neither loses nor doubles rows.

Each chunk is one ``add_bulk`` script call, sent on a connection of its own whose redis-py retries are off:
redis-py would otherwise send a chunk again after a dropped connection without telling anyone, and a chunk
without job ids sent twice is queued twice. bullpy decides instead:

* **with job ids** a chunk whose outcome is unknown is sent again under the ``RetryPolicy``: rows it had
  written come back as duplicates and are reported ``added`` (their job was created by this load);
* **without job ids** it is not: the load stops with ``FrameLoadInterrupted`` saying which rows are queued
  for sure and which may be. Before each such chunk a PING (retried) makes sure Redis is back, so an outage
  between two chunks is waited out; only one that cuts a chunk in flight stops the load.

With Sentinel, a chunk counts as written only once a replica has it too (``WAIT 1``): replication is
asynchronous, and a master that is failed over loses what its replica had not received. When no replica
confirms, the Sentinels are asked: if they now name another master the chunk went to the old one (the
window between the promotion and the switch) and is sent again to the new one (with job ids; without, the
load stops). A master without any connected replica (just after a failover, before the old master rejoins)
has nothing to confirm with and is taken at its word.

Without Sentinel, a chunk Redis acknowledged is as durable as the server's persistence: with
``appendonly yes`` and ``appendfsync always`` a restart loses nothing acknowledged.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis as _redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import _sentinel
from .errors import FrameLoadInterrupted, RedisAuthenticationFailed, RedisRefused
from .retry import DEFAULT_POLICY, RetryPolicy, as_error, gave_up, is_transient
from .utils import now_ms

if TYPE_CHECKING:
    from .queue import Queue

_WAIT_MS = 500  # how long one WAIT gives the replica to acknowledge a chunk


class _Unconfirmed(_redis.ConnectionError):
    """No replica confirmed a chunk (a transient failure: the chunk's fate is unknown)."""


def _twin(client: _redis.Redis) -> _redis.Redis:
    """A one-connection client on the same server (or Sentinel service) with redis-py's retries off."""
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs["retry"] = Retry(NoBackoff(), 0)
    kwargs.pop("retry_on_error", None)
    # One connection: WAIT must run on the connection that wrote (it waits for that client's writes).
    twin_pool: _redis.ConnectionPool = _redis.ConnectionPool(
        connection_class=pool.connection_class, max_connections=1, **kwargs)
    return _redis.Redis(connection_pool=twin_pool)


class ChunkWriter:
    """Writes add_frame's chunks in order; see the module docstring."""

    def __init__(self, queue: Queue, *, idempotent: bool, total: int, policy: RetryPolicy | None = None) -> None:
        self.queue = queue
        self.idempotent = idempotent
        self.total = total
        self.policy = policy or DEFAULT_POLICY
        self.client = _twin(queue.client)
        # The same queue on the twin client (its class, not an import: this module sits below the Queue).
        self._writer = type(queue)(queue.name, self.client, prefix=queue.prefix,
                              default_job_options=queue.default_job_options,  # type: ignore[arg-type]
                              backoff_strategies=queue.backoff_strategies, local_timezone=queue.local_timezone)
        self.sentinel = _sentinel.is_sentinel(queue.client)
        self.started_ms = now_ms()
        self.written = 0  # rows (frame order) queued for sure
        self.retries = 0  # chunks sent again after an unknown outcome

    def close(self) -> None:
        self.client.connection_pool.disconnect()

    def __enter__(self) -> ChunkWriter:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, start: int, jobs: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
        """Queue one chunk (rows ``start``...); returns its job ids and statuses (``added``/``duplicate``)."""
        rows = range(start, start + len(jobs))
        first_failure: float | None = None
        tries = 0
        while True:
            tries += 1
            in_flight = False
            try:
                if not self.idempotent:
                    self._ping(rows)
                generation = self._generation() if self.sentinel else 0
                in_flight = True
                added = self._writer.add_bulk(jobs, batch_size=max(len(jobs), 1))
                if self.sentinel:
                    self._confirm(generation)
            except FrameLoadInterrupted:
                raise
            except Exception as exc:
                uncertain = rows if in_flight else range(start, start)
                if not is_transient(exc):
                    error = as_error(exc, self.queue.client, "")
                    if isinstance(error, (RedisRefused, RedisAuthenticationFailed)):
                        uncertain = range(start, start)  # refused before anything ran: nothing written
                    raise self._interrupted(error, uncertain) from exc
                if not self.idempotent:
                    raise self._interrupted(as_error(exc, self.queue.client, ""), uncertain) from exc
                now = time.monotonic()
                first_failure = first_failure if first_failure is not None else now
                delay = self.policy.delay(tries)
                if tries >= self.policy.attempts or now - first_failure + delay > self.policy.deadline:
                    cause = gave_up(exc, self.queue.client, "add_frame", tries, now - first_failure)
                    raise self._interrupted(cause, uncertain) from exc
                self.retries += 1
                self.queue._emit("error", exc)
                time.sleep(delay)
                continue
            ids = [job.id for job in added]
            statuses = ["duplicate" if job.duplicate else "added" for job in added]
            if tries > 1:
                statuses = self._created_by_this_load(ids, statuses)
            self.written = rows.stop
            return ids, statuses

    def _interrupted(self, cause: BaseException, uncertain: range) -> FrameLoadInterrupted:
        done, total = self.written, self.total
        where = f"rows 0-{done - 1} (frame order) are queued" if done else "no row is queued"
        maybe = (f"; rows {uncertain.start}-{uncertain.stop - 1} may or may not be (they were in flight)"
                 if len(uncertain) else "")
        after = uncertain.stop if len(uncertain) else done
        rest = f"; rows {after}-{total - 1} are not" if after < total else ""
        if self.idempotent:
            hint = ("Once Redis is back (or the refusal is dealt with), run add_frame again with the same frame and "
                    "job_id: it adds only the rows that are missing.")
        elif len(uncertain):
            hint = (f"Without job_id a re-run would queue rows {uncertain.start}-{uncertain.stop - 1} twice if they "
                    f"were written: check the queue, then add df.iloc[{uncertain.stop}:] (or the in-flight rows "
                    "that are missing); pass job_id= to make loads resumable.")
        else:
            hint = f"Add the remaining rows with add_frame(df.iloc[{done}:]) once Redis is back."
        text = str(cause).strip().removeprefix(": ").rstrip(".") or type(cause).__name__
        return FrameLoadInterrupted(
            f"add_frame stopped after {done} of {total} rows: {text}. {where[0].upper()}{where[1:]}{maybe}{rest}. "
            f"{hint}",
            written=done, uncertain=uncertain, total=total,
        )

    def _ping(self, rows: range) -> None:
        """Wait (retried) until Redis answers, so a chunk without ids is sent on a live connection."""
        from .retry import call

        try:
            call(self.client.ping, client=self.queue.client, what="add_frame", policy=self.policy)
        except Exception as exc:
            raise self._interrupted(exc, range(rows.start, rows.start)) from exc

    def _generation(self) -> int:
        """The (re)connection count of the writer's one connection, connecting it if needed."""
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            return int(getattr(conn, "generation", 0))
        finally:
            pool.release(conn)

    def _confirm(self, generation: int) -> None:
        """Sentinel: return once a replica has the chunk, or the master has no replica to confirm with;
        raise _Unconfirmed when the chunk went to a master that is being (or was) replaced."""
        deadline = time.monotonic() + max(self.policy.deadline, 1.0)
        pause = 0.05
        while True:
            acked, address, replicas = self._wait_on_writer(generation)
            if acked >= 1:
                return
            master = _sentinel.current_master(self.queue.client)
            if master is not None and address is not None and master != address:
                # Written to a master the Sentinels no longer name: it loses these writes when demoted.
                self.client.connection_pool.disconnect()
                raise _Unconfirmed(f"the chunk went to {address[0]}:{address[1]}, which is no longer the master")
            if not replicas and not _sentinel.failover_in_progress(self.queue.client):
                # No replica connected (e.g. just after a failover, before the old master rejoins): nothing
                # can confirm the chunk, and nothing else can hold it.
                return
            if time.monotonic() > deadline:
                raise _Unconfirmed("no replica confirmed the chunk")
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _wait_on_writer(self, generation: int) -> tuple[int, tuple[str, int] | None, int]:
        """ROLE, then WAIT 1 when a replica is connected, on the connection that wrote: replicas that
        acknowledged the chunk, the server's address, replicas connected to it."""
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            if getattr(conn, "generation", 0) != generation:
                # Reconnected since the write (the watcher cut it, or the server went away): the chunk may be
                # on the old master only, and WAIT on this new session would confirm nothing of it.
                raise _Unconfirmed("the connection that wrote the chunk was replaced before a replica confirmed it")
            conn.send_command("ROLE")  # type: ignore[no-untyped-call]
            role = conn.read_response()
            replicas = len(role[2]) if isinstance(role, list) and len(role) > 2 and isinstance(role[2], list) else 0
            acked = 0
            if replicas:
                conn.send_command("WAIT", 1, _WAIT_MS)  # type: ignore[no-untyped-call]
                acked = int(conn.read_response())
            host, port = getattr(conn, "host", None), getattr(conn, "port", None)
        except _redis.exceptions.NoPermissionError:
            # An ACL user without WAIT or ROLE: the chunk cannot be confirmed; take Redis at its word.
            self.sentinel = False
            return 1, None, 0
        except BaseException:
            conn.disconnect()  # type: ignore[no-untyped-call]
            raise
        finally:
            pool.release(conn)
        address = (str(host), int(port)) if host is not None and port is not None else None
        return acked, address, replicas

    def _created_by_this_load(self, ids: list[str], statuses: list[str]) -> list[str]:
        """A chunk sent again reports the rows its lost first try wrote as duplicates: a duplicate whose job
        was created since this load started is one of those, so it is reported ``added``."""
        from .retry import call

        dup = [i for i, s in zip(ids, statuses) if s == "duplicate"]
        if not dup:
            return statuses

        def read() -> list[Any]:
            with self.queue.client.pipeline(transaction=False) as pipe:
                for job_id in dup:
                    pipe.hget(self.queue.keys.job(job_id), "timestamp")
                return list(pipe.execute())

        stamps = dict(zip(dup, call(read, client=self.queue.client, what="add_frame", policy=self.policy)))
        out = []
        for job_id, status in zip(ids, statuses):
            stamp = stamps.get(job_id)
            mine = status == "duplicate" and stamp is not None and _int(stamp) >= self.started_ms
            out.append("added" if mine else status)
        return out


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return -1
