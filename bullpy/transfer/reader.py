"""Reading an export file (format described in ``bullpy.transfer.format``): record by record, every record
checked, the checksum verified at the end; or, on a second pass over a file checked whole, piece by piece
against the first pass's checkpoints."""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from types import TracebackType
from typing import IO, Any

import msgpack  # type: ignore[import-untyped]

from ..errors import ExportFormatError
from ..raw import METRICS_KEYS, check_job_id
from .format import (
    CHUNK,
    END_FIELDS,
    END_FIELDS_V1,
    JOB_FIELDS,
    JOB_FIELDS_V1,
    JOB_REQUIRED,
    MAX_ITEMS,
    MAX_KEYS,
    MAX_RECORD,
    SCORED,
    field_value,
    job_damage,
)
from .records import (
    ALL_STATES,
    FORMAT,
    JOB_STATES,
    VERSIONS,
    ExportHeader,
    ExportSummary,
    JobEntry,
    QueueInfo,
    RepeatEntry,
)

Entry = JobEntry | RepeatEntry | QueueInfo

# --- reading ---------------------------------------------------------------------------------------------

_END = object()
_join = b"".join


def _all_bytes(items: list[Any]) -> bool:
    """Every item is a byte string (msgpack bin): joining them refuses anything else, in C."""
    try:
        _join(items)
    except TypeError:
        return False
    return True


def _entry(record: dict[str, Any]) -> JobEntry:
    """A checked job record as a ``JobEntry``."""
    flat, score, priority = record["hash"], record.get("score"), record.get("priority")
    return JobEntry(record["id"], record["state"], dict(zip(flat[0::2], flat[1::2])), tuple(record["logs"]),
                    None if score is None else float(score), None if priority is None else float(priority),
                    record.get("debounce_ttl"), record.get("damaged"))


class ExportReader:
    """Reads an export file record by record and checks each one as it goes.

    Iterating yields ``JobEntry``, ``RepeatEntry`` and one ``QueueInfo``; a malformed, truncated or
    altered file raises ``ExportFormatError`` naming the record and byte offset. The checksum and the
    counts are verified when the end record is reached, so only a complete iteration proves a file
    sound (``validate_export`` does one). ``summary`` is set once the end record was read.
    """

    def __init__(self, stream: IO[bytes], *, name: str = "", close: bool = False,
                 checked: Sequence[tuple[int, bytes]] | None = None) -> None:
        self.name = name or str(getattr(stream, "name", "") or "<stream>")
        #: (byte offset, SHA-256 of every byte before it) each time the reader hashed a piece of the file.
        self.checkpoints: list[tuple[int, bytes]] = []
        # A file read again after a complete check (import's second pass): its records are not checked again,
        # each piece is compared with the first reading's checkpoint instead, before its records are handed out.
        self._checked = dict(checked) if checked is not None else None
        self._stream, self._close = stream, close
        self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, use_list=True,
                                          max_buffer_size=MAX_RECORD, max_array_len=MAX_ITEMS,
                                          max_map_len=MAX_KEYS)
        self._hasher = hashlib.sha256()
        self._pending = bytearray()  # bytes fed to the unpacker, not yet hashed
        self._hashed = 0             # offset up to which the bytes were hashed
        self._fed = 0
        self._eof = False
        self._record = 0             # number of the last record read (the header is record 1)
        self._start = 0              # byte offset of the last record read
        self._end = 0
        self._ids: set[str] = set()
        self._counts = Counter[str]()
        self._repeat = 0
        self._damaged = 0
        self._job_fields: frozenset[str] = JOB_FIELDS
        self._queue_info: QueueInfo | None = None
        self._iterated = False
        self.summary: ExportSummary | None = None
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    # plumbing
    def close(self) -> None:
        if self._close:
            self._stream.close()

    def __enter__(self) -> ExportReader:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def queue_info(self) -> QueueInfo | None:
        """The queue record, once it was read."""
        return self._queue_info

    def _error(self, message: str, *, at_record: bool = True) -> ExportFormatError:
        if at_record:
            return ExportFormatError(message, source=self.name, record=self._record, offset=self._start)
        return ExportFormatError(message, source=self.name)

    def _next(self) -> Any:
        while True:
            try:
                obj = self._unpacker.unpack()
            except msgpack.OutOfData:
                if self._eof:
                    return _END
                self._feed()
                continue
            except (ValueError, TypeError, msgpack.UnpackException) as exc:
                raise ExportFormatError(f"not valid msgpack: {exc}", source=self.name, record=self._record + 1,
                                        offset=self._end) from None
            self._record += 1
            self._start, self._end = self._end, self._unpacker.tell()
            return obj

    def _feed(self) -> None:
        """The next piece of the file into the unpacker (``_eof`` once there is none)."""
        chunk = self._stream.read(CHUNK)
        if not chunk:
            self._eof = True
            return
        try:
            self._unpacker.feed(chunk)
        except msgpack.BufferFull:
            raise ExportFormatError(f"a record is larger than {MAX_RECORD:,} bytes (not an export?)",
                                    source=self.name, record=self._record + 1, offset=self._end) from None
        self._pending += chunk
        self._fed += len(chunk)

    def _hash_through(self, end: int) -> None:
        n = end - self._hashed
        self._hasher.update(memoryview(self._pending)[:n])
        del self._pending[:n]
        self._hashed = end
        digest = self._hasher.copy().digest()
        if self._checked is None:
            self.checkpoints.append((end, digest))
        elif self._checked.get(end) != digest:
            raise ExportFormatError("the file changed since it was checked", source=self.name, offset=end)

    def _truncated(self) -> ExportFormatError:
        if self._fed > self._end:
            return ExportFormatError(f"truncated: the file ends inside record {self._record + 1} "
                                     f"({self._fed - self._end} bytes of it)", source=self.name,
                                     record=self._record + 1, offset=self._end)
        return ExportFormatError(f"truncated: the file ends after record {self._record} without the end record",
                                 source=self.name, offset=self._end)

    # records
    def _read_header(self) -> ExportHeader:
        obj = self._next()
        if obj is _END:
            if self._fed:
                raise self._truncated()
            raise ExportFormatError("empty file: not a bullpy export", source=self.name)
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise self._error(f"not a bullpy export: the file does not start with a {FORMAT!r} header")
        version = obj.get("version")
        if version not in VERSIONS or isinstance(version, bool):
            raise self._error(f"unsupported {FORMAT} version {version!r}: this bullpy reads versions "
                              f"{', '.join(map(str, VERSIONS))}")
        expected = {"format", "version", "queue", "prefix", "exported_at", "bullpy", "states", "source"}
        if set(obj) != expected:
            raise self._error(f"header: expected the fields {sorted(expected)}, got {sorted(obj)}")
        for name in ("queue", "prefix", "bullpy", "source"):
            if not isinstance(obj[name], str):
                raise self._error(f"header: {name!r} must be a string")
        if not obj["queue"] or not obj["prefix"]:
            raise self._error("header: empty queue name or prefix")
        if not _is_int(obj["exported_at"]):
            raise self._error("header: 'exported_at' must be an integer (ms)")
        states = obj["states"]
        if not isinstance(states, list) or not all(isinstance(s, str) and s in ALL_STATES for s in states):
            raise self._error(f"header: 'states' must be a list of {', '.join(ALL_STATES)}")
        self._hash_through(self._end)
        if version == 1:
            self._job_fields = JOB_FIELDS_V1
        return ExportHeader(obj["queue"], obj["prefix"], obj["exported_at"], obj["bullpy"], tuple(states),
                            obj["source"], version)

    def __iter__(self) -> Iterator[Entry]:
        for item in self.records():
            yield _entry(item) if isinstance(item, dict) else item

    def checked_pieces(self) -> Iterator[tuple[list[dict[str, Any]], list[RepeatEntry | QueueInfo]]]:
        """A second pass over a file checked whole (opened with ``checked=`` the first pass's ``checkpoints``):
        its records piece by piece, the job records as the file holds them (as ``records`` gives them) and the
        others parsed. Each piece is compared with the first reading's checkpoint before its records are
        unpacked, so a file changed in between raises ``ExportFormatError`` before anything of the changed
        piece is handed out; the records themselves are not checked again (the bytes are those checked)."""
        if self._checked is None:
            raise RuntimeError("checked_pieces() reads a file checked whole: open it with checked=checkpoints")
        if self._iterated:
            raise RuntimeError("an ExportReader can be iterated once; open the file again")
        self._iterated = True
        pending, hashed = self._pending, self._hashed  # the bytes read past the header, not yet hashed
        for offset in sorted(self._checked):
            if offset <= hashed:  # the header's own checkpoint
                continue
            while self._fed < offset:
                chunk = self._stream.read(max(CHUNK, offset - self._fed))
                if not chunk:
                    raise ExportFormatError("the file changed since it was checked: it is shorter now",
                                            source=self.name, offset=self._fed)
                pending += chunk
                self._fed += len(chunk)
            piece = bytes(pending[: offset - hashed])
            del pending[: offset - hashed]
            self._hasher.update(piece)
            hashed = self._hashed = offset
            if self._hasher.copy().digest() != self._checked[offset]:
                raise ExportFormatError("the file changed since it was checked", source=self.name, offset=offset)
            unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, use_list=True, max_buffer_size=MAX_RECORD,
                                        max_array_len=MAX_ITEMS, max_map_len=MAX_KEYS)
            unpacker.feed(piece)
            records: list[dict[str, Any]] = list(unpacker)
            if all(record["t"] == "job" for record in records):
                yield records, []
                continue
            others: list[RepeatEntry | QueueInfo] = [self._parse_repeat(r) if r["t"] == "repeat" else self._parse_queue(r)
                                                     for r in records if r["t"] in ("repeat", "queue")]
            yield [r for r in records if r["t"] == "job"], others

    def records(self) -> Iterator[dict[str, Any] | RepeatEntry | QueueInfo]:
        """As iterating, but each job comes as its record, checked, as the file holds it (a dict with ``id``,
        ``state``, ``hash`` as a flat field, value list, ``logs``...): no object is built per job."""
        if self._checked is not None:
            for jobs, others in self.checked_pieces():
                yield from jobs
                yield from others
            return
        if self._iterated:
            raise RuntimeError("an ExportReader can be iterated once; open the file again")
        self._iterated = True
        parse_job = self._parse_job
        unpack, tell = self._unpacker.unpack, self._unpacker.tell
        end = self._end
        while True:
            # The loop of _next, inlined: it runs once per record.
            try:
                obj = unpack()
            except msgpack.OutOfData:
                self._end = end
                if self._eof:
                    raise self._truncated() from None
                self._feed()
                continue
            except (ValueError, TypeError, msgpack.UnpackException) as exc:
                raise ExportFormatError(f"not valid msgpack: {exc}", source=self.name, record=self._record + 1,
                                        offset=end) from None
            self._record += 1
            self._start, self._end = end, tell()
            end = self._end
            kind = obj.get("t") if type(obj) is dict else None
            if kind == "end":
                self._hash_through(self._start)  # every byte before the end record
                self._finish(obj)
                return
            if end - self._hashed >= CHUNK:  # hashed in large pieces: every record is not the end record
                self._hash_through(end)
            if self._queue_info is not None:
                raise self._error(f"a {kind!r} record after the queue record (only the end record may follow it)")
            item: dict[str, Any] | RepeatEntry | QueueInfo
            if kind == "job":
                item = parse_job(obj)
            elif kind == "repeat":
                item = self._parse_repeat(obj)
            elif kind == "queue":
                item = self._queue_info = self._parse_queue(obj)
            else:
                raise self._error(f"unknown record type {kind!r}" if isinstance(obj, dict)
                                  else f"expected a record (a map), got {type(obj).__name__}")
            yield item

    def _fields(self, obj: dict[str, Any], required: Collection[str], optional: Collection[str] = ()) -> None:
        missing = set(required) - set(obj)
        unknown = set(obj) - set(required) - set(optional)
        if missing or unknown:
            what = f"job {obj['id']!r}" if obj.get("t") == "job" and isinstance(obj.get("id"), str) else obj.get("t")
            detail = "; ".join(x for x in (f"missing {sorted(missing)}" if missing else "",
                                          f"unknown {sorted(unknown)}" if unknown else "") if x)
            raise self._error(f"{what} record: {detail}")

    def _parse_job(self, obj: dict[str, Any]) -> dict[str, Any]:
        keys = obj.keys()
        if not (keys >= JOB_REQUIRED and keys <= self._job_fields):
            self._fields(obj, JOB_REQUIRED, self._job_fields - JOB_REQUIRED)
        job_id = obj["id"]
        if type(job_id) is not str:
            raise self._error(f"job record: the id must be a string, got {job_id!r}")
        if job_id in self._ids:
            raise self._error(f"job {job_id!r} appears twice")
        if not job_id.isdigit():  # Bull's own ids are digits: nothing to refuse there
            try:
                check_job_id(job_id)
            except ValueError as exc:
                raise self._error(f"job {job_id!r}: {exc}") from None
        state = obj["state"]
        if state not in JOB_STATES:
            raise self._error(f"job {job_id!r}: unknown state {state!r}")
        flat = obj["hash"]
        if type(flat) is not list or not flat or len(flat) % 2 or not _all_bytes(flat):
            raise self._error(f"job {job_id!r}: 'hash' must be a non-empty list of field, value byte strings")
        if len(set(flat[0::2])) * 2 != len(flat):
            raise self._error(f"job {job_id!r}: a hash field appears twice")
        damaged = obj.get("damaged")
        if damaged is None:
            reason = job_damage(flat)
            if reason is not None:
                raise self._error(f"job {job_id!r}: {reason}")
        elif type(damaged) is not str or not damaged:
            raise self._error(f"job {job_id!r}: 'damaged' must say why (a non-empty string)")
        else:
            self._damaged += 1
        logs = obj["logs"]
        if type(logs) is not list or (logs and not _all_bytes(logs)):
            raise self._error(f"job {job_id!r}: 'logs' must be a list of byte strings")
        if len(keys) > 5:  # optional fields
            score = obj.get("score")
            if state in SCORED:
                if not _is_score(score):
                    raise self._error(f"job {job_id!r}: a {state} job needs a numeric 'score', got {score!r}")
            elif score is not None:
                raise self._error(f"job {job_id!r}: a {state} job has no score")
            priority = obj.get("priority")
            if priority is not None and (state not in ("wait", "paused") or not _is_score(priority)):
                raise self._error(f"job {job_id!r}: 'priority' must be a number, on waiting jobs only")
            ttl = obj.get("debounce_ttl")
            if ttl is not None and (not _is_int(ttl) or ttl < -1 or field_value(flat, b"deid") is None):
                raise self._error(f"job {job_id!r}: 'debounce_ttl' must be an integer >= -1 on a job with a deid")
        elif state in SCORED:
            raise self._error(f"job {job_id!r}: a {state} job needs a numeric 'score', got None")
        self._ids.add(job_id)
        self._counts[state] += 1
        return obj

    def _parse_repeat(self, obj: dict[str, Any]) -> RepeatEntry:
        self._fields(obj, {"t", "key", "score"})
        if not isinstance(obj["key"], str) or not obj["key"] or not _is_score(obj["score"]):
            raise self._error("repeat record: 'key' must be a non-empty string and 'score' a number")
        self._repeat += 1
        return RepeatEntry(obj["key"], float(obj["score"]))

    def _parse_queue(self, obj: dict[str, Any]) -> QueueInfo:
        self._fields(obj, {"t", "paused", "id", "metrics"})
        if not isinstance(obj["paused"], bool):
            raise self._error("queue record: 'paused' must be true or false")
        if obj["id"] is not None and not _is_int(obj["id"]):
            raise self._error("queue record: 'id' must be an integer or nil")
        metrics = obj["metrics"]
        if not isinstance(metrics, dict) or not all(
            k in METRICS_KEYS and isinstance(v, list) and all(isinstance(x, bytes) for x in v)
            for k, v in metrics.items()
        ):
            raise self._error(f"queue record: 'metrics' must map some of {', '.join(METRICS_KEYS)} to byte strings")
        for name, values in metrics.items():
            if not name.endswith(":data") and len(values) % 2:
                raise self._error(f"queue record: {name!r} needs field, value pairs")
        return QueueInfo(obj["paused"], obj["id"], {k: tuple(v) for k, v in metrics.items()})

    def _finish(self, obj: dict[str, Any]) -> None:
        self._fields(obj, END_FIELDS_V1 if self.header.version == 1 else END_FIELDS)
        if self._queue_info is None:
            raise self._error("the end record comes before the queue record")
        records = self._record - 2  # neither the header nor the end record
        if obj["records"] != records:
            raise self._error(f"the end record counts {obj['records']!r} records, the file holds {records}")
        counts = obj["counts"]
        if not isinstance(counts, dict) or any(counts.get(s, 0) != self._counts.get(s, 0)
                                               for s in {*counts, *self._counts}):
            raise self._error(f"job counts differ: the end record says {counts!r}, the file holds {dict(self._counts)}")
        if obj["repeat"] != self._repeat:
            raise self._error(f"the end record counts {obj['repeat']!r} repeatable definitions, the file holds "
                              f"{self._repeat}")
        if obj["sha256"] != self._hasher.hexdigest():
            raise self._error("checksum mismatch: the file was altered or damaged")
        left_out = {name: obj.get(name, 0) for name in ("dangling", "not_hash", "duplicates")}
        if not all(_is_int(n) and n >= 0 for n in left_out.values()):
            raise self._error(f"end record: {', '.join(map(repr, left_out))} must be integers >= 0")
        if obj.get("damaged", 0) != self._damaged:
            raise self._error(f"the end record counts {obj.get('damaged', 0)!r} damaged jobs, the file holds "
                              f"{self._damaged}")
        if self._next() is not _END or self._fed > self._end:
            raise ExportFormatError("data after the end record", source=self.name, offset=self._end)
        info = self._queue_info
        self.summary = ExportSummary(
            self.header.queue, self.header.prefix, self.header.exported_at,
            {s: self._counts[s] for s in JOB_STATES if s in self.header.states},
            self._repeat, info.paused, info.id_counter, self._end, left_out["dangling"], self.header.version,
            self.header.bullpy_version, left_out["not_hash"], self._damaged, left_out["duplicates"],
        )



def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_score(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and not (isinstance(value, float) and math.isnan(value))



def read_export(source: str | os.PathLike[str] | IO[bytes]) -> ExportReader:
    """Open an export file (a path or a binary stream) for reading; use it as a context manager."""
    if isinstance(source, (str, os.PathLike)):
        return ExportReader(open(source, "rb"), name=os.fspath(source), close=True)
    return ExportReader(source)


def validate_export(source: str | os.PathLike[str] | IO[bytes]) -> ExportSummary:
    """Read a whole export file, checking every record, the counts and the checksum; its summary."""
    with read_export(source) as reader:
        for _ in reader:
            pass
    if reader.summary is None:  # a complete iteration either sets it or raises
        raise ExportFormatError("the file ended without its end record", source=reader.name)
    return reader.summary
