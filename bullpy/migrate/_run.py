"""The migration run: collect the ids, write each batch to BullMQ, read it back, remove it from Bull while
unchanged, then the repeatables as job schedulers. See :mod:`bullpy.migrate`."""


from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import redis as _redis
import redis.asyncio as _aredis
from redis.exceptions import WatchError

from .. import connection
from ..errors import RedisUnavailable
from ..job import Job
from ..queue import Queue
from ..server import identity as server_identity
from ..utils import now_ms
from ._mapping import (
    MigrationSummary,
    SkippedJob,
    _chunks,
    _iteration_key,
    _job_options,
    _map_job,
    _Mapped,
    _reserved_in_bullmq,
    _scheduler_id,
)

T = TypeVar("T")
_PAGE = 10_000  # ids per range read of a state while collecting what to migrate


# --- the run ----------------------------------------------------------------------------------------------


class _Migration:
    def __init__(
        self, queue: Queue, bullmq: Any, target_url: str, target_name: str, target_prefix: str,
        states: tuple[str, ...], repeatables: bool, keep_source: bool, dry_run: bool, batch_size: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.queue = queue
        self.raw = queue.raw
        self.bullmq = bullmq
        self.target_url = target_url
        self.target_name = target_name
        self.target_prefix = target_prefix
        self.target_base = f"{target_prefix}:{target_name}:"
        self.states = states
        self.repeatables = repeatables
        self.keep_source = keep_source
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.progress = progress
        self.migrated: Counter[str] = Counter({s: 0 for s in states})
        self.already = 0
        self.skipped: list[SkippedJob] = []
        self.dropped: Counter[str] = Counter()
        self.changed: Counter[str] = Counter()
        self.schedulers: dict[str, str] = {}
        self.replaced = 0
        self.notes: list[str] = []
        self.target: Any = None  # redis.asyncio.Redis
        self.bq: Any = None  # bullmq.Queue

    async def run(self) -> MigrationSummary:
        self.target = _aredis.Redis.from_url(self.target_url, decode_responses=True)
        try:
            await self._preflight()
            self.bq = self.bullmq.Queue(self.target_name, {"prefix": self.target_prefix, "connection": self.target})
            ids = self._source_ids()
            templates, pending = self._iterations(ids)
            schedule_owned = {i for owned in pending.values() for i in owned}
            if not self.repeatables:
                # The pending iteration belongs to its schedule, which stays in Bull.
                self.skipped += [SkippedJob(i, "delayed", "next iteration of a repeatable (repeatables=False)")
                                 for i in sorted(schedule_owned) if "delayed" in self.states]
            if not self.dry_run:
                await self._raise_id_counter(ids)
            seen = set(schedule_owned)
            for state in self.states:
                # An id twice in Bull's lists (possible after an id collision, protocol §3.2) moves once.
                chosen = []
                for row in ids[state]:
                    if row[0] not in seen:
                        seen.add(row[0])
                        chosen.append(row)
                for chunk in _chunks(chosen, self.batch_size):
                    await self._migrate_batch(state, chunk)
            if self.repeatables:
                await self._migrate_repeatables(templates, pending)
        finally:
            if self.bq is not None:
                await self.bq.close()
            await self.target.aclose()
            self.raw.close()
        counts = self.queue.get_job_counts("wait", "paused", "delayed", "failed", "active", "completed")
        counts["repeat"] = self.queue.get_repeatable_count()
        return MigrationSummary(
            source=f"{self.queue.prefix}:{self.queue.name}",
            target=f"{self.target_prefix}:{self.target_name}",
            dry_run=self.dry_run,
            keep_source=self.keep_source,
            migrated=dict(self.migrated),
            already_in_target=self.already,
            schedulers=dict(self.schedulers),
            replaced_iterations=self.replaced,
            skipped=tuple(self.skipped),
            dropped_options=dict(self.dropped),
            changed=dict(self.changed),
            left_in_source=counts,
            notes=tuple(self.notes),
        )

    # --- checks before anything is written ------------------------------------------------------------------
    async def _preflight(self) -> None:
        source = f"{self.queue.prefix}:{self.queue.name}"
        target = f"{self.target_prefix}:{self.target_name}"
        # One server reached under two names (localhost / 127.0.0.1) has one run_id; where INFO is
        # refused (some managed Redis), the connection settings are compared instead.
        src_id = self.queue.server.identity()
        try:
            tgt_info = await self.target.info("server")
        except _redis.ResponseError:
            tgt_info = {}
        except (_redis.ConnectionError, _redis.TimeoutError) as exc:
            raise RedisUnavailable(
                f"cannot reach the target Redis at {connection.safe_url(self.target_url)}: {exc}"
            ) from exc
        tgt_id = server_identity(self.target.connection_pool.connection_kwargs, tgt_info.get("run_id"))
        same_server = src_id == tgt_id
        if same_server and (
            source == target or source.startswith(target + ":") or target.startswith(source + ":")
        ):
            raise ValueError(
                f"the BullMQ target {target!r} would share keys with the Bull queue {source!r} on the same "
                "Redis server and db: choose another target_prefix or target_name"
            )
        # Bull-only keys in the target, or BullMQ-only keys in the source: someone mixed the two up. (By
        # type: a job whose id is one of these names is a hash, and not the sign of a mix-up.)
        bull_only = [k for k, kind in (("priority", "zset"), ("meta-paused", "string"))
                     if await self.target.type(self.target_base + k) == kind]
        if bull_only:
            raise ValueError(f"the target {target!r} holds Bull keys ({', '.join(bull_only)}): it is a Bull "
                             "queue, not a BullMQ one")
        bullmq_only = [k for k, kind in (("marker", "zset"), ("prioritized", "zset"), ("events", "stream"))
                       if self.raw.key_type(k) == kind]
        if bullmq_only:
            raise ValueError(f"the source {source!r} holds BullMQ keys ({', '.join(bullmq_only)}): it is not "
                             "a Bull queue")
        if await self.target.hget(self.target_base + "meta", "paused"):
            self.notes.append(f"the BullMQ queue {target} is paused: migrated jobs wait in its paused list")

    # --- reading Bull ----------------------------------------------------------------------------------------
    def _source_ids(self) -> dict[str, list[tuple[str, int | None]]]:
        """(id, due) per state, in the order Bull would run them; due is set for delayed jobs only."""
        wanted = set(self.states) | ({"wait", "paused", "delayed", "failed"} if self.repeatables else set())
        out: dict[str, list[tuple[str, int | None]]] = {}
        for state in ("wait", "paused", "failed"):
            if state in wanted:
                # Lists run from the right end: ascending, the first id is the next to run.
                out[state] = [(i, None) for i in self._pages(lambda a, b: self.queue.get_ranges([state], a, b, asc=True))]
        if "delayed" in wanted:
            # Bull's delayed score is due_ms * 4096 + 12 low bits (protocol §4.1).
            scored = dict(self._pages(lambda a, b: self.raw.scores("delayed", a, b)))
            out["delayed"] = [(i, int(score) // 4096) for i, score in scored.items()]
        return out

    @staticmethod
    def _pages(read: Callable[[int, int], list[T]]) -> list[T]:
        """Everything ``read(start, end)`` gives, 10,000 entries per command so no single read holds a shared
        Redis for long on a big queue; an entry met twice (the state moved between pages) is kept once."""
        out: dict[Any, T] = {}
        start = 0
        while True:
            page = read(start, start + _PAGE - 1)
            for entry in page:
                out.setdefault(entry[0] if isinstance(entry, tuple) else entry, entry)
            if len(page) < _PAGE:
                return list(out.values())
            start += _PAGE

    def _read_jobs(self, ids: Sequence[str]) -> tuple[dict[str, Job], dict[str, Mapping[bytes, bytes]], dict[str, str]]:
        """Jobs by id (vanished ids absent), their raw hashes (what a removal checks is unchanged), and the ids
        of damaged jobs with why: they stay in Bull (a hash Node cannot read, bytes that are not UTF-8, JSON
        too deep, a key that is not a hash), for a person to look at (`bullpy doctor`)."""
        jobs: dict[str, Job] = {}
        hashes: dict[str, Mapping[bytes, bytes]] = {}
        bad: dict[str, str] = {}
        for job_id, fields in zip(ids, self.raw.hashes(ids)):
            if fields is None:
                bad[job_id] = "damaged: its key is not a hash (another program wrote another kind of value there)"
                continue
            if not fields:
                continue
            job = self.raw.job(job_id, fields)
            if job.damaged:
                bad[job_id] = f"damaged: {job.damaged}"
                continue
            jobs[job_id] = job
            hashes[job_id] = fields
        return jobs, hashes, bad

    def _iterations(
        self, ids: Mapping[str, Sequence[tuple[str, int | None]]]
    ) -> tuple[dict[str, tuple[Job, str]], dict[str, set[str]]]:
        """Per repeat key of a Bull definition: its latest iteration job (the template of data and
        options) with that job's state, and the ids of its delayed iterations (the schedule's own)."""
        definitions = {r.key for r in self.queue.get_repeatable_jobs()}
        templates: dict[str, tuple[Job, str]] = {}
        pending: dict[str, set[str]] = {}
        for state in ("delayed", "wait", "paused", "failed"):
            candidates = [i for i, _ in ids.get(state, ()) if i.startswith("repeat:")]
            for chunk in _chunks(candidates, self.batch_size):
                jobs, _hashes, _bad = self._read_jobs(chunk)
                for job in jobs.values():
                    key = _iteration_key(job)
                    if key is None or key not in definitions:
                        continue  # an orphan iteration runs once in Bull: it moves as a one-off job
                    if state == "delayed":
                        pending.setdefault(key, set()).add(job.id)
                    best = templates.get(key)
                    if best is None or _prev_millis(job) > _prev_millis(best[0]):
                        templates[key] = (job, state)
        return templates, pending

    # --- writing BullMQ --------------------------------------------------------------------------------------
    async def _raise_id_counter(self, ids: Mapping[str, Sequence[tuple[str, int | None]]]) -> None:
        """Make BullMQ's automatic ids start above every numeric id migrated (and Bull's counter).

        BullMQ, like Bull, does not check that an automatic id is free: a later BullMQ add without jobId
        would overwrite migrated job "5" when its counter reaches 5. (It is also why BullMQ refuses
        integer custom ids from Node producers; ids it already stores are processed fine.)
        """
        numeric = [int(i) for s in self.states for i, _ in ids.get(s, ()) if i.isdigit() and i.isascii()]
        if not numeric:
            return
        counter = self.raw.id_counter()
        floor = max(numeric + ([counter] if counter is not None and counter >= 0 else []))
        key = self.target_base + "id"
        async with self.target.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    current = await pipe.get(key)
                    if current is not None and (not current.isdigit() or int(current) >= floor):
                        return
                    pipe.multi()
                    pipe.set(key, str(floor))
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def _target_contents(self, mapped: Sequence[_Mapped]) -> list[str]:
        """Per job: "absent", "same" (this job, from an earlier run) or "different" (another job)."""
        async with self.target.pipeline(transaction=False) as pipe:
            for job in mapped:
                pipe.hmget(self.target_base + job.id, "name", "data")
            replies = await pipe.execute()
        out = []
        for job, (name, data) in zip(mapped, replies):
            if name is None and data is None:
                out.append("absent")
            elif name == job.name and data == job.data_json:
                out.append("same")
            else:
                out.append("different")
        return out

    async def _migrate_batch(self, state: str, chunk: Sequence[tuple[str, int | None]]) -> None:
        now = now_ms()
        jobs, hashes, bad = self._read_jobs([i for i, _ in chunk])
        mapped: list[_Mapped] = []
        for job_id, due in chunk:
            if job_id in bad:
                self.skipped.append(SkippedJob(job_id, state, bad[job_id]))
            elif job_id not in jobs:
                continue  # gone meanwhile (processed, removed): nothing left to move
            elif _reserved_in_bullmq(job_id):
                self.skipped.append(SkippedJob(job_id, state, "its id is one of BullMQ's own key names"))
            else:
                mapped.append(_map_job(jobs[job_id], state, due, now))
        contents = await self._target_contents(mapped)
        wanted: list[_Mapped] = []
        for job, content in zip(mapped, contents):
            if content == "different":
                self.skipped.append(SkippedJob(job.id, state, "the BullMQ queue holds another job with this id"))
            else:
                wanted.append(job)
        if not self.dry_run:
            fresh = [job for job, content in zip(mapped, contents) if content == "absent"]
            if fresh:
                await self.bq.addBulk([job.add_spec() for job in fresh])
            checked = await self._target_contents(wanted)
            for job, content in zip(list(wanted), checked):
                if content != "same":
                    wanted.remove(job)
                    self.skipped.append(SkippedJob(job.id, state, "BullMQ did not store it as written"))
            if not self.keep_source:
                refused = self._remove_from_bull(state, [(job.id, hashes[job.id]) for job in wanted])
                for job in [job for job in wanted if job.id in refused]:
                    wanted.remove(job)
                    # Bull ran (or is running) it: take the BullMQ copy back so it runs once.
                    taken_back = await self.bq.remove(job.id)
                    outcome = "its BullMQ copy was removed" if taken_back else "its BullMQ copy is already running!"
                    self.skipped.append(SkippedJob(job.id, state, f"{refused[job.id]}; {outcome}"))
        moved = {job.id for job in wanted}
        for job, content in zip(mapped, contents):
            if job.id in moved:
                self.migrated[state] += 1
                self.already += int(content == "same")
                self.dropped.update(set(job.dropped))
                self.changed.update(set(job.changed))
        if self.progress is not None:
            self.progress(len(chunk))

    # --- removing from Bull ----------------------------------------------------------------------------------
    def _remove_from_bull(self, state: str, jobs: Sequence[tuple[str, Mapping[bytes, bytes]]]) -> dict[str, str]:
        """Delete these jobs (id, hash as read) from Bull, each only while it is still in ``state`` and as read
        (``queue.raw.remove_if_unchanged``); {id: why not} for the others."""
        refused: dict[str, str] = {}
        for chunk in _chunks(list(jobs), self.batch_size):
            statuses = self.raw.remove_if_unchanged([(job_id, state, fields) for job_id, fields in chunk])
            for (job_id, _), status in zip(chunk, statuses):
                if status == "locked":
                    refused[job_id] = "a Bull worker took it during the migration"
                elif status != "removed":
                    refused[job_id] = "Bull ran, changed or removed it during the migration"
        return refused

    # --- repeatables -----------------------------------------------------------------------------------------
    async def _migrate_repeatables(
        self, templates: Mapping[str, tuple[Any, str]], pending: Mapping[str, set[str]]
    ) -> None:
        now = now_ms()
        for definition in self.queue.get_repeatable_jobs(asc=True):
            key = definition.key
            found = templates.get(key)
            if found is None:
                self.skipped.append(SkippedJob(
                    key, "repeat",
                    "no iteration job to take its data and options from (one is running): run again later",
                ))
                continue
            template, template_state = found
            scheduler_id = _scheduler_id(key, definition.name)
            repeat, opts = self._scheduler_options(definition, template, template_state, now)
            owned = sorted(pending.get(key, ()))
            if not self.dry_run:
                await self.bq.upsertJobScheduler(scheduler_id, repeat, definition.name, template.record.data, opts)
                if await self.bq.getJobScheduler(scheduler_id) is None:
                    self.skipped.append(SkippedJob(key, "repeat", "BullMQ did not store the job scheduler"))
                    continue
                if not self.keep_source:
                    # The definition and its scheduled iteration go; so does any other pending iteration.
                    self.queue.remove_repeatable_by_key(key)
                    still = [(job_id, fields) for job_id, fields in zip(owned, self.raw.hashes(owned)) if fields]
                    self._remove_from_bull("delayed", still)
            self.schedulers[key] = scheduler_id
            self.replaced += len(owned)

    def _scheduler_options(
        self, definition: Any, template: Any, template_state: str, now: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        record = template.record
        bull_repeat = record.opts.get("repeat") or {}
        repeat: dict[str, Any] = {}
        if definition.cron:
            repeat["pattern"] = definition.cron
            # Bull computed a cron without tz in its Node process's zone; make that zone explicit.
            repeat["tz"] = definition.tz or self.queue.local_timezone
            start = bull_repeat.get("startDate")
            if isinstance(start, int) and start > now:
                repeat["startDate"] = start
        else:
            every = int(definition.every or 0)
            repeat["every"] = every
            # Bull aligns "every" runs to multiples of it since the epoch; BullMQ would run the first one
            # at once and count from there. Starting at Bull's next slot (or the first one still ahead)
            # keeps the schedule, and never repeats a run that moved as a one-off job.
            nxt = definition.next or now
            if nxt <= now and every > 0:
                nxt += ((now - nxt) // every + 1) * every
            repeat["startDate"] = nxt
        if definition.end_date:
            repeat["endDate"] = definition.end_date
        if isinstance(bull_repeat.get("limit"), int):
            repeat["limit"] = bull_repeat["limit"]
            # The scheduler's first iteration takes the place of Bull's pending one (same count) or
            # follows a due one that moved as a one-off job (next count).
            count = bull_repeat.get("count")
            if isinstance(count, int) and count > 0:
                repeat["count"] = count - 1 if template_state == "delayed" else count
        opts, dropped, changed = _job_options(record.opts, record.priority)
        self.dropped.update(set(dropped))
        self.changed.update(set(changed))
        return repeat, opts


def _prev_millis(job: Any) -> int:
    value = job.record.opts.get("prevMillis")
    return value if isinstance(value, int) else 0
