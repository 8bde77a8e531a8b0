"""``bullpy doctor``: what is wrong with a Bull queue and the Redis under it, found by reading only.

    >>> report = bullpy.doctor.diagnose(bullpy.Queue("message-queue"))
    >>> print(report.render())          # or report.to_dict() for JSON; report.exit_code for a shell

Each finding has a severity (``error``: jobs are being lost or failed now; ``warning``: a risk or a mess that
grows; ``info``: a fact worth knowing), a stable ``code``, a one-line message, JSON-safe details and a fix:

=======================  ============================================================================
code                     finding
=======================  ============================================================================
eviction-policy          ``maxmemory-policy`` is not ``noeviction``: Redis may evict Bull's keys
no-persistence           neither AOF nor RDB snapshots: a restart loses every job
completed-unbounded      more finished jobs kept than ``max_finished`` (or older than
failed-unbounded         ``max_finished_age_ms``): removeOnComplete/removeOnFail are missing
active-without-lock      jobs in ``active`` whose ``<id>:lock`` is gone, on two looks a moment apart
missing-handler          jobs failed with Node's "Missing process handler for job type <name>"
orphan-jobs              job hashes whose id is in no state list or set: nothing will ever run them
damaged-jobs             jobs another program damaged (bullpy/doctor_jobs.py): error for those no worker
                         can run (opts/data not JSON, opts null, JSON too deep, a job key that is not a
                         hash, an id listed with no hash), warning for readable ones (bytes not UTF-8,
                         JSON deeper than Python prints, listed in two states); ids and counts per kind
large-jobs               the sampled jobs average more than ``max_job_bytes`` of Redis memory
memory-per-job           (info) MEMORY USAGE of a sample of jobs, and what all the jobs take
wrong-key-type           a queue key has the wrong type (WRONGTYPE): Node's jobId 'wait' corruption
check-skipped            (info) a check could not run: the ACL user may not run INFO/CONFIG/...
=======================  ============================================================================

It only reads, with plain commands and non-transactional pipelines (no MULTI, no scripts): it works for a
``+@read`` ACL user and on a Redis that is out of memory, where MULTI is refused. Server-level facts that need
``INFO``/``CONFIG GET`` are reported as unknown (info) when those commands are refused.
"""

from __future__ import annotations

import functools
import json
import shlex
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis as _redis

from . import doctor_jobs
from .doctor_report import DoctorReport, Finding, Severity
from .errors import RedisRefused, RedisUnavailable, WrongKeyType
from .queue import Queue
from .utils import now_ms, text

if TYPE_CHECKING:
    from .raw import RawQueue

__all__ = ["MISSING_HANDLER", "DoctorReport", "Finding", "Severity", "diagnose"]

#: The failedReason a Bull worker gives a job whose name it has no handler for (lib/queue.js processJob:
#: ``new Error('Missing process handler for job type ' + job.name)``); bullpy's worker uses the same words.
MISSING_HANDLER = "Missing process handler for job type "

_BATCH = 1000
_SHOWN_IDS = 20


def diagnose(
    queue: Queue,
    *,
    max_finished: int = 10_000,
    max_finished_age_ms: int | None = None,
    recheck_delay: float = 0.5,
    sample_size: int = 1000,
    memory_sample: int = 20,
    max_job_bytes: int = 100_000,
    check_orphans: bool = True,
) -> DoctorReport:
    """Check a queue and its Redis; read-only.

    Args:
        max_finished: more completed (or failed) jobs kept than this is a warning.
        max_finished_age_ms: also warn when the oldest kept finished job is older than this (off by default).
        recheck_delay: seconds between the two looks that confirm a missing lock or an orphan job (a job
            just taken is in ``active`` a moment before its lock is set).
        sample_size: how many of the newest failed, delayed and waiting jobs are read for missing handlers.
        memory_sample: how many jobs MEMORY USAGE is asked about.
        max_job_bytes: a sampled average above this is a ``large-jobs`` warning.
        check_orphans: SCAN the queue's keys for job hashes in no state (walks the whole keyspace).
    """
    for name, value in (("max_finished", max_finished), ("sample_size", sample_size),
                        ("memory_sample", memory_sample), ("max_job_bytes", max_job_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if max_finished_age_ms is not None and (isinstance(max_finished_age_ms, bool)
                                            or not isinstance(max_finished_age_ms, int) or max_finished_age_ms < 0):
        raise ValueError(f"max_finished_age_ms must be a non-negative integer or None, got {max_finished_age_ms!r}")
    if not isinstance(recheck_delay, (int, float)) or recheck_delay < 0:
        raise ValueError(f"recheck_delay must be a non-negative number of seconds, got {recheck_delay!r}")
    with queue.raw as raw:
        doctor = _Doctor(queue, raw, max_finished=max_finished, max_finished_age_ms=max_finished_age_ms,
                         recheck_delay=float(recheck_delay), sample_size=sample_size, memory_sample=memory_sample,
                         max_job_bytes=max_job_bytes)
        try:
            doctor.run(check_orphans)
        except RedisUnavailable as exc:
            exc.args = (f"doctor: {exc}", *exc.args[1:])  # say which command could not reach Redis
            raise
    findings = sorted(doctor.findings, key=lambda f: -f.severity.rank)
    return DoctorReport(queue.name, queue.prefix, queue.server.describe(), tuple(findings))


def _size(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KB", "MB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GB"


def _age(ms: float) -> str:
    seconds = ms / 1000
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _chunks(items: Sequence[str], size: int = _BATCH) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Doctor:
    def __init__(self, queue: Queue, raw: RawQueue, *, max_finished: int, max_finished_age_ms: int | None,
                 recheck_delay: float, sample_size: int, memory_sample: int, max_job_bytes: int) -> None:
        self.queue = queue
        self.raw = raw
        self.server = queue.server
        self.max_finished = max_finished
        self.max_finished_age_ms = max_finished_age_ms
        self.recheck_delay = recheck_delay
        self.sample_size = sample_size
        self.memory_sample = memory_sample
        self.max_job_bytes = max_job_bytes
        self.findings: list[Finding] = []
        self.counts: dict[str, int] = {}

    def cli(self, command: str, *args: str) -> str:
        """A ``bullpy`` command line for this queue, to paste."""
        prefix = [] if self.queue.prefix == "bull" else ["--prefix", self.queue.prefix]
        return "`" + shlex.join(["bullpy", *prefix, command, self.queue.name, *args]) + "`"

    def add(self, severity: Severity, code: str, message: str, fix: str = "", **details: Any) -> None:
        self.findings.append(Finding(severity, code, message, details, fix))

    def guarded(self, what: str, check: Callable[[], None]) -> None:
        """Run a check; a refused command (NOPERM, a disabled CONFIG...) skips it with an info finding."""
        try:
            check()
        except WrongKeyType as exc:
            if exc.key is not None:
                self.add(Severity.ERROR, "wrong-key-type",
                         f"a key of the queue has the wrong type, so {what} cannot be read: WRONGTYPE: {exc.key} "
                         f"is a {exc.actual}, not the {exc.expected} Bull keeps there",
                         fix="a job id equal to a queue key name (wait, active, id...) causes this; move the "
                             f"key's data away and delete {exc.key}",
                         check=what, key=exc.key, type=exc.actual, expected=exc.expected)
                return
            self.add(Severity.ERROR, "wrong-key-type",
                     f"a key of the queue has the wrong type, so {what} cannot be read: WRONGTYPE: {exc}",
                     fix="find the key (TYPE on the job keys read); move its data away and delete the key",
                     check=what)
        except (_redis.ResponseError, RedisRefused) as exc:
            # A pipeline's error quotes the command and its arguments first; Redis' own words suffice.
            reason = str(exc).split(" of pipeline caused error: ", 1)[-1]
            if reason.startswith("WRONGTYPE"):
                # Node Bull turns a queue key into a job hash when a custom job id equals its suffix
                # (jobId 'wait'), after which every add fails: protocol §1.2 "Reserved job ids".
                self.add(Severity.ERROR, "wrong-key-type",
                         f"a key of the queue has the wrong type, so {what} cannot be read: {reason}",
                         fix="find the key (TYPE on each prefix:name:<state> key); a job id equal to a queue key "
                             "name (wait, active, id...) causes this; move its data away and delete the key",
                         check=what)
                return
            self.add(Severity.INFO, "check-skipped", f"could not check {what}: {reason}", check=what)

    def run(self, check_orphans: bool) -> None:
        self.guarded("the eviction policy", self.check_eviction)
        self.guarded("persistence", self.check_persistence)
        self.guarded("the job counts", self.read_counts)
        if not self.counts:
            return
        for state in ("completed", "failed"):
            self.guarded(f"the {state} set", functools.partial(self.check_finished, state))
        self.guarded("job names without a handler", self.check_missing_handlers)
        self.guarded("damaged jobs", self.check_damaged_jobs)
        # Locks and orphans both need a second look a moment later: take the first looks, sleep once.
        confirm: list[_SecondLook] = []
        self.guarded("active jobs' locks", lambda: confirm.append(self.check_locks()))
        if check_orphans:
            self.guarded("orphan job hashes", lambda: confirm.append(self.check_orphans()))
        if any(c.pending for c in confirm):
            time.sleep(self.recheck_delay)
        for second_look in confirm:
            self.guarded("the second look", second_look)
        self.guarded("memory per job", self.check_memory)

    # --- server ---------------------------------------------------------------------------------------
    def check_eviction(self) -> None:
        memory = self.server.info("memory")  # {} where INFO is refused
        policy = text(memory["maxmemory_policy"]) if "maxmemory_policy" in memory else None
        maxmemory = int(memory.get("maxmemory", 0)) if memory else None
        if policy is None:
            policy = self.server.config_get("maxmemory-policy")
            raw = self.server.config_get("maxmemory")
            maxmemory = int(raw) if raw is not None and raw.isdigit() else None
        if policy is None:
            self.add(Severity.INFO, "eviction-policy", "eviction policy unknown: INFO and CONFIG GET are refused "
                     "(ACL, or a managed Redis); Bull needs maxmemory-policy noeviction, so check it on the server",
                     policy="unknown")
            return
        if policy == "noeviction":
            return
        if maxmemory:
            severity = Severity.ERROR
            when = f"maxmemory is {_size(maxmemory)}: once it is reached"
        else:
            severity = Severity.WARNING
            when = "no maxmemory is set yet, but as soon as one is and it is reached"
        self.add(severity, "eviction-policy",
                 f"maxmemory-policy is {policy!r}: {when}, Redis evicts keys, and Bull's job hashes, locks "
                 "and lists vanish (jobs lost, or run twice)",
                 fix="CONFIG SET maxmemory-policy noeviction (and set it in redis.conf): Bull requires noeviction",
                 policy=policy, maxmemory=maxmemory)

    def check_persistence(self) -> None:
        info = self.server.info("persistence")
        aof: bool | None = bool(int(info["aof_enabled"])) if "aof_enabled" in info else None
        if aof is None:
            appendonly = self.server.config_get("appendonly")
            aof = None if appendonly is None else appendonly == "yes"
        if aof:
            return
        save = self.server.config_get("save")
        if save is not None and save.strip():
            return  # RDB snapshots: a restart loses at most the writes since the last one
        if aof is None or save is None:
            known = "AOF is off" if aof is False else "AOF state unknown"
            self.add(Severity.INFO, "no-persistence",
                     f"persistence unknown: {known} and the RDB save schedule cannot be read (CONFIG GET refused)",
                     appendonly=aof, save=save)
            return
        self.add(Severity.WARNING, "no-persistence",
                 "Redis persists nothing (appendonly no, save \"\"): a restart or crash loses every queued, "
                 "delayed and repeatable job",
                 fix="CONFIG SET appendonly yes (or a save schedule), and the same in redis.conf",
                 appendonly=False, save="")

    # --- queue ----------------------------------------------------------------------------------------
    def read_counts(self) -> None:
        self.counts = self.queue.get_job_counts("wait", "paused", "active", "delayed", "completed", "failed",
                                                plain=True)

    def _hmget(self, ids: Sequence[str], *fields: str) -> list[list[str | None]]:
        rows = self.queue.get_job_fields(ids, fields, batch_size=_BATCH, plain=True)
        return [[None if v is None else text(v) for v in row] for row in rows]

    def _heads(self, state: str, n: int) -> list[str]:
        """The ``n`` jobs at the head (next to run) of a list state, in list order."""
        return self.queue.get_ranges(state, 0, n - 1, asc=True, plain=True)[::-1]

    def check_finished(self, state: str) -> None:
        count = self.counts[state]
        if not count:
            return
        oldest = self.raw.scores(state, 0, 0)
        oldest_ms = int(oldest[0][1]) if oldest else None
        age = now_ms() - oldest_ms if oldest_ms is not None else None
        too_many = count > self.max_finished
        too_old = self.max_finished_age_ms is not None and age is not None and age > self.max_finished_age_ms
        if not (too_many or too_old):
            return
        option, snake = ("removeOnComplete", "remove_on_complete") if state == "completed" else (
            "removeOnFail", "remove_on_fail")
        newest = self.queue.get_ranges(state, 0, 19, plain=True)
        without = 0
        for (opts,) in self._hmget(newest, "opts"):
            try:
                parsed = json.loads(opts) if opts else {}
            except ValueError:
                parsed = {}
            if not isinstance(parsed, dict) or parsed.get(option) in (None, False):
                without += 1
        why = []
        if too_many:
            why.append(f"{count} {state} jobs are kept (more than {self.max_finished})")
        else:
            why.append(f"{count} {state} jobs are kept")
        if age is not None:
            why.append(f"the oldest finished {_age(age)} ago")
        evidence = f"; {without} of the {len(newest)} newest were added without {option}" if newest else ""
        self.add(Severity.WARNING, f"{state}-unbounded",
                 f"{', '.join(why)}: the set only grows and takes Redis memory{evidence}",
                 fix=(f"add jobs with {option} (Node: {{{option}: 1000}}; bullpy: add(..., {snake}=1000) or True) "
                      f"and remove the backlog with {self.cli('clean', '--state', state, '--grace', '1d')} "
                      f"(Queue.clean(86_400_000, {state!r}))"),
                 count=count, threshold=self.max_finished, oldest_finished_on=oldest_ms,
                 newest_sampled=len(newest), newest_without_option=without)

    def check_missing_handlers(self) -> None:
        n = self.sample_size
        if not n:
            return
        failed = self.queue.get_ranges("failed", 0, n - 1, plain=True)
        delayed = self.queue.get_ranges("delayed", 0, n - 1, asc=True, plain=True)  # retries in their backoff
        waiting, paused = self._heads("wait", n), self._heads("paused", n)
        sampled = [("failed", i) for i in failed] + [("retrying", i) for i in delayed + waiting + paused]
        rows = self._hmget([i for _, i in sampled], "name", "failedReason", "finishedOn")
        by_name: dict[str, dict[str, Any]] = {}
        for (where, job_id), (name, reason, finished_on) in zip(sampled, rows):
            if not reason or not reason.startswith(MISSING_HANDLER):
                continue
            # The reason carries the name as the worker saw it; the hash's name field is the same string.
            job_name = name if name is not None else reason[len(MISSING_HANDLER):]
            entry = by_name.setdefault(job_name, {"failed": 0, "retrying": 0, "job_ids": [], "last_failed_on": None})
            entry[where] += 1
            if len(entry["job_ids"]) < _SHOWN_IDS:
                entry["job_ids"].append(job_id)
            if finished_on and finished_on.isdigit():
                entry["last_failed_on"] = max(entry["last_failed_on"] or 0, int(finished_on))
        for job_name, entry in sorted(by_name.items()):
            when = ""
            if entry["last_failed_on"]:
                when = f", last {_age(now_ms() - entry['last_failed_on'])} ago"
            self.add(Severity.ERROR, "missing-handler",
                     f"jobs named {job_name!r} fail with \"{MISSING_HANDLER}{job_name}\": a worker on this queue "
                     f"has no handler for that name ({entry['failed']} failed, {entry['retrying']} waiting to "
                     f"retry, among the {n} newest of each state{when})",
                     fix=(f"Bull workers take jobs of every name: give every worker on the queue a handler for "
                          f"{job_name!r} (Node: queue.process({job_name!r}, fn) or '*'; bullpy: "
                          f"queue.process({{{job_name!r}: fn}}) or '*'), then {self.cli('retry')}"),
                     name=job_name, **entry)

    def check_damaged_jobs(self) -> None:
        found = doctor_jobs.find_damaged_jobs(self.queue, self.raw, batch_size=_BATCH, shown=_SHOWN_IDS)
        for runs in (False, True):
            kinds = found.kinds(runs)
            if not kinds:
                continue
            total = found.jobs(kinds)
            what = ", ".join(f"{found.counts[k]} {doctor_jobs.KINDS[k][1]}" for k in kinds)
            first = next(i for k in kinds for i in found.ids[k])
            ids = {k: found.ids[k] for k in kinds}
            if runs:
                self.add(Severity.WARNING, "damaged-jobs",
                         f"{total} job(s) that Bull did not write this way, though workers run them: {what} "
                         f"(first: {', '.join(dict.fromkeys(i for k in kinds for i in ids[k][:3]))}); readers "
                         "show them marked as damaged",
                         fix=(f"look at them ({self.cli('job', first)}) and find the program that writes them; "
                              "a job listed in two states runs again from the other one: remove it from one"),
                         counts={k: found.counts[k] for k in kinds}, job_ids=ids, jobs_scanned=found.scanned)
            else:
                self.add(Severity.ERROR, "damaged-jobs",
                         f"{total} job(s) no worker can run: {what} (first: "
                         f"{', '.join(dict.fromkeys(i for k in kinds for i in ids[k][:3]))}); Node's getJob throws "
                         "or returns null for them, and a worker fails them or leaves them stuck",
                         fix=(f"look at them ({self.cli('job', first)}), re-add what must still run with sound "
                              f"data, then remove them ({self.cli('remove', *ids[kinds[0]][:3])}; a key that is "
                              "not a hash: DEL it after saving what it holds)"),
                         counts={k: found.counts[k] for k in kinds}, job_ids=ids, jobs_scanned=found.scanned)

    def _active_ids(self) -> list[str]:
        return self._list("active", _BATCH)

    def _list(self, state: str, page: int) -> list[str]:
        """Every id of a list state, ``page`` per read."""
        ids: list[str] = []
        start = 0
        while True:
            chunk = self.queue.get_ranges(state, start, start + page - 1, plain=True)
            ids.extend(chunk)
            if len(chunk) < page:
                return ids
            start += page

    def _unlocked(self, ids: Sequence[str]) -> list[str]:
        out: list[str] = []
        for chunk in _chunks(ids):
            out.extend(i for i, (_, locked) in zip(chunk, self.raw.job_presence(chunk, plain=True)) if not locked)
        return out

    def check_locks(self) -> _SecondLook:
        # A worker moves a job into ``active`` (BRPOPLPUSH) one round trip before moveToActive sets its lock;
        # only a job still active and still unlocked a moment later has really lost its worker.
        first = self._unlocked(self._active_ids()) if self.counts.get("active") else []

        def second_look() -> None:
            active = set(self._active_ids())
            missing = self._unlocked([i for i in first if i in active])
            if not missing:
                return
            workers = self.queue.count_workers()
            who = ("no worker is connected, so they stay active until one starts" if workers == 0 else
                   "a running worker's stalled check moves them back to wait (or fails them after "
                   "maxStalledCount stalls) within its stalledInterval (default 30 s)")
            self.add(Severity.WARNING, "active-without-lock",
                     f"{len(missing)} active job(s) have no lock: their worker died or lost the lock "
                     f"mid-job; {who}",
                     fix=("keep a worker running on the queue (its stalled check recovers them); if jobs stall "
                          "while workers run, the handler blocks lock renewal: raise lockDuration or let the "
                          "handler yield"),
                     count=len(missing), job_ids=missing[:_SHOWN_IDS], workers=workers)

        return _SecondLook(second_look, bool(first))

    # --- orphans --------------------------------------------------------------------------------------
    def _stateless(self, ids: Sequence[str], lists: Mapping[str, set[str]]) -> list[str]:
        """The ids that are in no state: not in the given list snapshots nor (now) in a state zset."""
        out: list[str] = []
        for chunk in _chunks([i for i in ids if not any(i in members for members in lists.values())]):
            left = list(chunk)
            for state in ("delayed", "completed", "failed"):
                if left:
                    left = [i for i, score in zip(left, self.queue.get_scores(state, left)) if score is None]
            if left:
                # Plain EXISTS, not a script: the doctor must work for a +@read ACL user.
                out.extend(i for i, (exists, _) in zip(left, self.raw.job_presence(left, plain=True)) if exists)
        return out

    def _lists(self) -> dict[str, set[str]]:
        return {state: set(self._list(state, 10 * _BATCH)) for state in ("wait", "paused", "active")}

    def check_orphans(self) -> _SecondLook:
        # Lists are read before the SCAN and zsets per candidate after it: a job that moves meanwhile can
        # look stateless once, never twice, so only ids stateless on both looks are reported.
        lists = self._lists()
        seen = 0
        first: list[str] = []
        batch: list[str] = []
        for job_id in self.queue.scan_job_ids(count=_BATCH):
            seen += 1
            batch.append(job_id)
            if len(batch) >= _BATCH:
                first.extend(self._stateless(batch, lists))
                batch = []
        first.extend(self._stateless(batch, lists))

        def second_look() -> None:
            orphans = self._stateless(first, self._lists())
            nested = self.queue.other_queue_ids(orphans)
            # dict.fromkeys: SCAN may return a key twice when Redis resizes its keyspace during the walk.
            orphans = list(dict.fromkeys(i for i in orphans if i not in nested))
            if not orphans:
                return
            shown = orphans[:_SHOWN_IDS]
            samples = [
                {"id": i, "name": name, "timestamp": int(ts) if ts and ts.isdigit() else None}
                for i, (name, ts) in zip(shown, self._hmget(shown, "name", "timestamp"))
            ]
            self.add(Severity.WARNING, "orphan-jobs",
                     f"{len(orphans)} job hash(es) are in no state (wait, paused, active, delayed, completed, "
                     "failed): no worker will run them and clean() never sees them; typical causes are a rate "
                     "limiter with bounceBack, an interrupted Node empty(), or keys written by hand",
                     fix=(f"look at them ({self.cli('job', shown[0])}), re-add what must still run, and delete "
                          f"them ({self.cli('remove', *shown[:3])}, or Queue.get_job(id).remove())"),
                     count=len(orphans), job_ids=shown, samples=samples, job_hashes_scanned=seen)

        return _SecondLook(second_look, bool(first))

    # --- memory ---------------------------------------------------------------------------------------
    def check_memory(self) -> None:
        total = sum(self.counts.values())
        if not total or not self.memory_sample:
            return
        n = max(1, self.memory_sample // 4)
        ranges = self.queue.get_ranges
        sampled = (ranges(["completed", "failed"], 0, n - 1, plain=True) + self._heads("wait", n)
                   + self._heads("paused", n) + ranges("delayed", 0, n - 1, asc=True, plain=True)
                   + ranges("active", 0, n - 1, plain=True))
        ids = list(dict.fromkeys(sampled))[: self.memory_sample]
        sizes = [size for size in self.queue.get_memory_usage(ids) if size is not None]
        if not sizes:
            return
        average, largest = sum(sizes) / len(sizes), max(sizes)
        memory = self.server.info("memory")
        used = int(memory["used_memory"]) if "used_memory" in memory else None
        estimate = average * total
        share = f" ({estimate / used:.0%} of the {_size(used)} Redis uses)" if used else ""
        self.add(Severity.INFO, "memory-per-job",
                 f"a job takes {_size(average)} on average (largest sampled {_size(largest)}, {len(sizes)} "
                 f"sampled); the queue's {total} jobs take about {_size(estimate)}{share}",
                 average_bytes=round(average), largest_bytes=largest, sampled=len(sizes), jobs=total,
                 estimated_bytes=round(estimate), used_memory=used)
        if average > self.max_job_bytes:
            self.add(Severity.WARNING, "large-jobs",
                     f"sampled jobs take {_size(average)} each on average (more than {_size(self.max_job_bytes)}): "
                     "big payloads, return values or stack traces fill Redis",
                     fix="keep job data small (ids and references, not documents), trim return values, and "
                         "remove finished jobs (removeOnComplete/removeOnFail)",
                     average_bytes=round(average), threshold=self.max_job_bytes)


@dataclass
class _SecondLook:
    """The confirming half of a check; ``pending`` when the first look found something to confirm."""

    run: Callable[[], None]
    pending: bool

    def __call__(self) -> None:
        self.run()
