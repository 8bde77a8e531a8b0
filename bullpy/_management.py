"""Managing a queue: pause and resume, and the operations that remove or move many jobs (clean, empty,
obliterate, retry_jobs, promote_jobs, remove_jobs). Each runs in bounded steps of a few milliseconds of Redis,
so a queue of any size never blocks the server for others (docs/divergences.md says where that differs from
Node's one call). ``Queue`` has them as methods."""

from __future__ import annotations

from collections.abc import Sequence

import redis as _redis

from ._core import ops, reads, scripts
from ._core.keys import QueueKeys
from ._facade import ScriptRunner
from .retry import RetryPolicy
from .retry import call as _retrying
from .utils import now_ms


class QueueManagement:
    """Pause, resume and bulk operations of one queue (mixed into ``bullpy.Queue``)."""

    client: _redis.Redis
    keys: QueueKeys
    token: str
    _runner: ScriptRunner

    def pause(self) -> None:
        """Pause the queue globally: every worker, Node or Python, stops taking jobs."""
        self._runner.run(scripts.pause(self.keys, True))

    def resume(self) -> None:
        """Resume a globally paused queue."""
        self._runner.run(scripts.pause(self.keys, False))

    def is_paused(self) -> bool:
        """True when the queue is globally paused (``meta-paused`` or BullMQ's ``meta.paused``)."""
        return self._runner.read(reads.is_paused(self.keys))

    def clean(self, grace_ms: int, status: str = "completed", limit: int = 0, *, dry_run: bool = False,
              retry: RetryPolicy | None = None, batch_size: int = 1000) -> list[str]:
        """Remove jobs of ``status`` older than ``grace_ms`` (never locked ones); returns their ids, in Node's order.

        Works in steps of at most ``batch_size`` jobs and a few milliseconds each, so Redis serves everyone
        else meanwhile whatever the queue's size; the outcome is that of Node's one call, except that jobs
        added, taken or removed during the clean may or may not be included (docs/divergences.md).
        ``dry_run`` walks the same jobs and returns the ids it would remove, removing nothing. ``retry``: a
        policy under which a clean cut by a Redis restart or failover starts again (Bull's clean removes what
        still matches) and the ids of every run are returned; default: one try.
        """
        plan = ops.plan_clean(grace_ms, status, limit, batch_size, now_ms())
        taken: dict[str, None] = {}

        def run() -> list[str]:
            return self._runner.drive(ops.clean(self.keys, plan, dry_run, taken))

        return run() if retry is None else _retrying(run, client=self.client, what="clean", policy=retry)

    def empty(self, *, batch_size: int = 1000) -> int:
        """Remove every waiting, paused and delayed job; returns how many.

        In steps of at most ``batch_size`` jobs and a few milliseconds each (Node's empty is not atomic
        either): a job added during the empty may or may not be removed.
        """
        return self._runner.drive(ops.empty(self.keys, batch_size))

    def obliterate(self, *, force: bool = False, count: int = 1000) -> None:
        """Delete the whole queue: pauses it, then removes jobs and keys in steps of at most ``count`` jobs
        and a few milliseconds each.

        Refuses while jobs are active unless ``force``.
        """
        self._runner.drive(ops.obliterate(self.keys, force, count))

    def retry_jobs(self, count: int = 1000, *, state: str = "failed") -> None:
        """Move every failed (or completed) job back to waiting, oldest first, at most ``count`` per script call
        and a few milliseconds each; a job that fails meanwhile may or may not be moved."""
        self._runner.drive(ops.retry_jobs(self.keys, count, state))

    def promote_jobs(self, ids: Sequence[str] | None = None, *, batch_size: int = 1000) -> list[str]:
        """Move delayed jobs (the given ids, else every delayed job) to waiting now; returns the ids moved.

        A bullpy addition (Node Bull promotes one job at a time): each job is Bull's own promote step,
        ``batch_size`` of them per round trip; ids that are not delayed are skipped.
        """
        return self._runner.drive(ops.promote_jobs(self.keys, self.token, ids, batch_size))

    def remove_jobs(self, pattern: str, *, dry_run: bool = False, batch_size: int = 1000) -> list[str]:
        """Remove every unlocked job whose id matches a glob pattern (``*`` for all); returns the ids.

        ``dry_run`` returns the ids that would be removed and removes nothing. Works in steps of at most
        ``batch_size`` jobs (or keys scanned) and a few milliseconds each: the wait, paused and active lists
        are walked once for the matching jobs they hold, then the job hashes are scanned for the rest. A job
        added during the removal may or may not be removed.
        """
        return self._runner.drive(ops.remove_jobs(self.keys, pattern, dry_run, batch_size))
