"""Copying and moving jobs between queues, and moving them back to waiting within one queue."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from ..errors import ImportConflict
from ..queue import Queue
from ..raw import RawQueue
from ..retry import DEFAULT_POLICY
from ..utils import now_ms
from .records import (
    JOB_STATES,
    OnConflict,
    Progress,
    RepeatEntry,
    TransferSummary,
    check_options,
    parse_states,
)
from .scan import Live, Scan, read_repeatables
from .target import (
    ConflictCheck,
    Planned,
    Tally,
    Target,
    is_lifo,
    plan,
    ready_as,
    where,
)


def _parse_ids(ids: Iterable[str | int]) -> list[str]:
    if isinstance(ids, (str, bytes)):
        raise TypeError("ids must be a list of job ids, not a single string")
    out = []
    for job_id in ids:
        if isinstance(job_id, bool) or not isinstance(job_id, (str, int)):
            raise TypeError(f"job ids are strings or integers, got {job_id!r}")
        text = str(job_id)
        if not text:
            raise ValueError("job ids must not be empty")
        out.append(text)
    return list(dict.fromkeys(out))


def _parse_to_state(to_state: str | None) -> str | None:
    if to_state is None:
        return None
    if to_state in ("wait", "waiting"):
        return "wait"
    raise ValueError(f"to_state must be 'wait' (alias 'waiting') or None, got {to_state!r}: jobs can be "
                     "moved back to waiting the way Bull retries and promotes them; other moves have no "
                     "Bull equivalent")


def _same_queue(a: Queue, b: Queue) -> bool:
    # One server reached under two names (localhost / 127.0.0.1) has one identity.
    return a.keys.base == b.keys.base and a.server.identity() == b.server.identity()


def _batches(scan: Scan, states: Sequence[str], ids: Sequence[str] | None) -> Iterator[list[Live]]:
    if ids is not None:
        for rows in scan.ids(ids):
            yield [r for r in rows if r.entry.state in states]
        return
    for state in states:
        yield from scan.state(state)


def copy_jobs(
    source: Queue,
    target: Queue,
    *,
    states: Iterable[str] | str | None = None,
    ids: Iterable[str | int] | None = None,
    to_state: str | None = None,
    on_conflict: OnConflict = "error",
    dry_run: bool = False,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> TransferSummary:
    """Copy jobs (and, with ``repeat`` among the states, repeatable definitions) to another queue.

    The queues may differ in prefix, name, database or server. Ids, hashes, logs and order are
    kept as by ``import_queue``; active jobs are copied as waiting jobs at the head of the list.

    Args:
        states: the source states to copy (default all, see ``ALL_STATES``).
        ids: copy only these jobs (in whatever state, filtered by ``states``); repeatable definitions
            are copied only without ``ids``.
        to_state: ``"wait"`` puts every copied job in the waiting list the way Bull would move it
            there: failed/completed jobs as ``job.retry()`` does (finishedOn, processedOn and
            failedReason dropped, retriedOn set; attemptsMade, stacktrace and returnvalue kept),
            delayed ones as ``promote()`` does (delay 0, by priority). Default: keep their states.
        on_conflict, dry_run, batch_size, progress: as for ``import_queue``.
    """
    return _transfer(source, target, move=False, states=states, ids=ids, to_state=to_state,
                     on_conflict=on_conflict, dry_run=dry_run, batch_size=batch_size, progress=progress)


def move_jobs(
    source: Queue,
    target: Queue,
    *,
    states: Iterable[str] | str | None = None,
    ids: Iterable[str | int] | None = None,
    to_state: str | None = None,
    on_conflict: OnConflict = "error",
    dry_run: bool = False,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> TransferSummary:
    """Move jobs to another queue, or within one queue back to waiting (``to_state="wait"``).

    Between queues: each batch is copied as by ``copy_jobs``, then exactly the jobs written are
    removed from the source, each only if it is still as copied (same state and lifecycle fields) and
    unlocked (``queue.raw.remove_if_unchanged``); a job that changed meanwhile stays in the source and
    is reported. Active jobs whose lock a worker holds are never moved. Jobs skipped as conflicts stay
    in the source.

    Within one queue (source and target the same queue, ``to_state="wait"``): failed and completed
    jobs are retried, delayed ones promoted, active ones whose lock expired requeued at the head, each
    atomically and as Bull does it (see ``copy_jobs``).
    """
    return _transfer(source, target, move=True, states=states, ids=ids, to_state=to_state,
                     on_conflict=on_conflict, dry_run=dry_run, batch_size=batch_size, progress=progress)


def _transfer(
    source: Queue, target: Queue, *, move: bool, states: Iterable[str] | str | None,
    ids: Iterable[str | int] | None, to_state: str | None, on_conflict: str, dry_run: bool, batch_size: int,
    progress: Progress | None,
) -> TransferSummary:
    wanted = parse_states(states)
    check_options(on_conflict, batch_size)
    to = _parse_to_state(to_state)
    id_list = None if ids is None else _parse_ids(ids)
    job_states = [s for s in JOB_STATES if s in wanted]
    if _same_queue(source, target):
        what = "move_jobs" if move else "copy_jobs"
        if not move:
            raise ValueError(f"{what}: source and target are the same queue: a copy would duplicate its job ids "
                             "(use move_jobs(..., to_state='wait') to move jobs between states)")
        if to is None:
            raise ValueError(f"{what}: source and target are the same queue: give to_state='wait' to move jobs "
                             "back to waiting, or another target queue")
        return _requeue_in_place(source, job_states, id_list, dry_run, batch_size, progress)

    src_where, dst_where = where(source), where(target)
    now = now_ms()
    with source.raw as src_raw, target.raw as dst_raw:
        floor = src_raw.id_counter()
        # Pass one: ids the target already has; nothing is written.
        check = Tally()
        with ConflictCheck(dst_raw, on_conflict, batch_size, check) as checker:
            scan = Scan(src_raw, full=False, batch_size=batch_size)
            locked_in_source = 0
            for rows in _batches(scan, job_states, id_list):
                for live in rows:
                    if move and live.locked and live.entry.state == "active":
                        locked_in_source += 1
                        continue
                    # Ids only were read: the plan's placement is right, its hash empty (not needed here).
                    checker.add(plan(live.entry, to, now))
            repeats: list[RepeatEntry] = []
            if "repeat" in wanted and id_list is None:
                for chunk in read_repeatables(src_raw, batch_size, DEFAULT_POLICY):
                    repeats.extend(chunk)
                    for rep in chunk:
                        checker.add_repeat(rep.key)
            checker.flush()
        missing = tuple(scan.missing)
        if check.conflicts and on_conflict == "error":
            raise ImportConflict(dst_where, check.conflicts, check.conflict_ids)
        if dry_run:
            fields = check.import_fields(dst_where, True, False, floor)
            fields["written"] = ready_as(fields["written"], "paused" if target.is_paused() else "wait")
            return TransferSummary(**fields, source=src_where, moved=move, locked_in_source=locked_in_source,
                                   missing_ids=missing)

        # Pass two: copy batch by batch, and for a move remove from the source what was written.
        tally = Tally()
        writer = Target(target, dst_raw, on_conflict, floor, tally, batch_size)
        scan = Scan(src_raw, full=True, batch_size=batch_size)
        done = 0
        try:
            for rows in _batches(scan, job_states, id_list):
                planned = []
                for live in rows:
                    if move and live.locked and live.entry.state == "active":
                        tally.locked_in_source += 1
                        continue
                    planned.append(plan(live.entry, to, now))
                statuses = writer.write(planned)
                if move:
                    written = [p for p, s in zip(planned, statuses) if s in ("added", "replaced")]
                    scan.removed(_remove_moved(src_raw, written, tally))
                done += len(rows)
                if progress is not None and rows:
                    progress(done)
        finally:
            writer.close()
        writer.finish(repeats, {})
        if move and repeats:
            for i in range(0, len(repeats), batch_size):
                src_raw.remove_repeat_entries([r.key for r in repeats[i : i + batch_size]])
        return TransferSummary(
            **tally.import_fields(dst_where, False, False, floor), source=src_where, moved=move,
            removed=tally.removed, locked_in_source=tally.locked_in_source, changed=tally.changed,
            missing_ids=tuple(scan.missing),
        )


def _remove_moved(raw: RawQueue, written: Sequence[Planned], tally: Tally) -> list[str]:
    if not written:
        return []
    # The source's hash as read (not the plan's, which may differ when the job changes state on the way).
    statuses = raw.remove_if_unchanged([(p.entry.id, p.entry.state, p.entry.fields) for p in written])
    removed = [item.entry.id for item, status in zip(written, statuses) if status == "removed"]
    tally.removed += len(removed)
    tally.changed += len(written) - len(removed)
    return removed


def _requeue_in_place(queue: Queue, states: Sequence[str], ids: Sequence[str] | None, dry_run: bool,
                      batch_size: int, progress: Progress | None) -> TransferSummary:
    place = where(queue)
    tally = Tally()
    now = now_ms()
    with queue.raw as raw:
        ready = "paused" if queue.is_paused() else "wait"
        scan = Scan(raw, full=not dry_run, batch_size=batch_size)
        if ids is None:
            # Waiting jobs are where they should be already: count them, do not read them.
            waiting = [s for s in ("wait", "paused") if s in states]
            tally.already_waiting = sum(queue.get_job_counts(*waiting).values()) if waiting else 0
            scanned = [s for s in states if s not in ("wait", "paused")]
        else:
            scanned = list(states)
        done = 0
        for rows in _batches(scan, scanned, ids):
            todo = []
            for live in rows:
                if live.entry.state in ("wait", "paused"):
                    tally.already_waiting += 1
                elif live.locked:
                    tally.locked_in_source += 1
                else:
                    todo.append(live)
            if dry_run:
                tally.written[ready] += len(todo)
            elif todo:
                statuses = raw.requeue([(live.entry.id, live.entry.state, is_lifo(live.entry.fields))
                                        for live in todo], now=now)
                moved = [live.entry.id for live, status in zip(todo, statuses) if status == "moved"]
                tally.written[ready] += len(moved)
                tally.locked_in_source += statuses.count("locked")
                tally.changed += statuses.count("changed")
                tally.already_waiting += statuses.count("waiting")
                scan.removed(moved)
            done += len(rows)
            if progress is not None and rows:
                progress(done)
        return TransferSummary(
            target=place, dry_run=dry_run, written=tally.written_dict(), source=place, moved=True,
            locked_in_source=tally.locked_in_source, changed=tally.changed, already_waiting=tally.already_waiting,
            missing_ids=tuple(scan.missing),
        )
