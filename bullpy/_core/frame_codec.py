"""``Job.fromJSON`` (Node Bull 4.16.5 ``lib/job.js``) for a batch of jobs at once, column by column: what
``jobs_frame`` shows of each job, equal to what :func:`bullpy._core.codec.parse_job_hash` gives for it.

A frame over a million jobs cannot afford a dict per job and a pass of Python code per field. Each column is
decoded for the whole batch with one check that the batch is ordinary (every timestamp plain ASCII digits,
every ``opts`` a JSON object with a numeric ``delay``, JSON without 19-digit numbers), and then with C-level
loops (``map(int, ...)``, ``map(orjson.loads, ...)``). A value that is not ordinary takes the exact path of
``codec`` (``js_parse_int``, ``from_json``, ``parse_job_hash``) for that job only.

orjson, where it is installed, parses JSON; it is used only where its result equals ``from_json`` (Python's
``json``, which keeps Node's ``JSON.parse`` rules as ``codec`` describes them). It differs on:

* integers beyond 64 bits, which it silently turns into floats: a batch whose JSON holds a run of 19 digits
  is parsed with ``from_json`` (``json`` keeps such ints exact, as ``codec`` does everywhere);
* object keys that look like array indexes, which ``from_json`` moves first as JavaScript orders them: such
  keys send the batch to ``from_json`` too;
* lone surrogate escapes, ``1e400``, invalid UTF-8: orjson raises, and that value takes ``from_json``.

Pure: no redis, no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Final

from .codec import (
    _INDEX_KEY_HINT,
    _MAX_SAFE_INTEGER,
    DEFAULT_JOB_NAME,
    from_json,
    js_parse_int,
    text,
)
from .jobhash import DEEP_NOTE, parse_job_hash_deep

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the exact path still works without it
    _orjson = None  # type: ignore[assignment]

__all__ = ["FRAME_FIELDS", "FrameBatch", "decode_batch"]

#: The hash fields a jobs_frame row needs (HMGET, not HGETALL: stack traces and logs stay on the server).
FRAME_FIELDS: Final = ("id", "name", "data", "opts", "progress", "timestamp", "attemptsMade", "processedOn",
                       "finishedOn", "failedReason", "returnvalue")
_ID, _NAME, _DATA, _OPTS, _PROGRESS, _TS, _MADE, _PROCESSED, _FINISHED, _REASON, _RETURNED = range(11)
_WIDTH: Final = len(FRAME_FIELDS)

# Digits as 0 and "{" as ",", whitespace dropped: what _ordinary looks for is then one fixed string each.
_PLAIN: Final = bytes.maketrans(b"0123456789{", b"0000000000,")
_LONG_NUMBER: Final = b"0" * 19  # 19 digits in a row: maybe an int beyond 64 bits
_INDEX_KEY: Final = re.compile(_INDEX_KEY_HINT.pattern.encode())
_BAD: Final = object()  # a value JSON.parse rejects


@dataclass
class FrameBatch:
    """One batch's columns, one entry per job that still exists (the jobs gone meanwhile are left out).

    ``None`` in an int column stands for NaN/undefined, as in ``JobRecord``. ``errors`` holds, per job, why
    Node could not read it (``Job.fromJSON`` throws: its other columns are shown, ``data``, ``priority`` and
    ``delay`` are None) or that its data is not UTF-8 (shown, as ioredis reads it, with U+FFFD); None for a
    sound job. ``errors`` itself is None when every job of the batch is sound.
    """

    ids: list[str]
    name: list[str | None]  # None only where Redis refused to read the job
    data: list[Any]
    priority: list[Any]
    delay: list[Any]
    attempts_made: list[int | None]
    progress: list[Any]
    timestamp: list[int | None]
    processed_on: list[int | None]
    finished_on: list[int | None]
    failed_reason: list[str | None]
    returnvalue: list[Any]
    errors: list[str | None] | None


def decode_batch(ids: Sequence[str], columns: Sequence[Sequence[bytes | None]],
                 refused: Mapping[int, str] | None = None, listed: str | None = None) -> FrameBatch:
    """The columns of a batch of jobs from their ``FRAME_FIELDS``: ``columns[k]`` holds the k-th field of each
    job in ``ids`` (bytes as Redis holds them, None where absent). ``refused`` names the jobs Redis would not
    read (position -> its error), shown as error rows. ``listed``: the state whose list the ids and fields
    were read from in one command; a job without any field is then shown as an error row (listed there, but
    no hash), not skipped as removed meanwhile."""
    refused = {i: f"Redis refused to read the job: {message}" for i, message in (refused or {}).items()}
    cols = list(columns)
    if len(cols) != _WIDTH:
        raise ValueError(f"expected the {_WIDTH} FRAME_FIELDS columns, got {len(cols)}")
    n = len(ids)
    if cols[_DATA].count(None):
        gone = [i for i, v in enumerate(cols[_DATA]) if v is None and i not in refused
                and all(c[i] is None for c in cols)]
        if gone and listed is not None:
            for i in gone:
                refused[i] = (f"listed in {listed}, but its key holds no job hash (missing, or another kind of "
                              "value): Node's getJob returns null for it")
        elif gone:  # removed since their ids were read, as getJobs skips them
            keep = sorted(set(range(n)) - set(gone))
            ids = [ids[i] for i in keep]
            cols = [[c[i] for i in keep] for c in cols]
            position = {old: new for new, old in enumerate(keep)}
            refused = {position[i]: message for i, message in refused.items()}
            n = len(keep)
    if not n:
        return FrameBatch([], [], [], [], [], [], [], [], [], [], [], [], None)
    kept_ids = ids if isinstance(ids, list) else list(ids)
    errors: list[str | None] | None = None

    id_col = cols[_ID]
    out_ids = kept_ids if id_col.count(None) == n else [  # json.id || jobId
        text(v) if v else job_id for v, job_id in zip(id_col, kept_ids)]
    name: list[str | None] = list(_texts(cols[_NAME], DEFAULT_JOB_NAME))

    # Only priority and delay are taken from opts, both checked below (an int orjson turned into a float
    # is a float there), and key order does not matter: opts need no check before orjson reads them.
    opts, bad_opts, opts_blob = _json_column(cols[_OPTS], b"{}", ordinary=_anything)
    data_raw = cols[_DATA]
    data, bad_data, data_blob = _json_column(data_raw, b"{}")
    data_fast = data_blob is not None
    # Jobs whose opts the fast path cannot take as they are: Node's full rules for those (setDefaultOpts,
    # preventParsingData, a non-numeric delay, a JSON error in data or opts).
    odd = set(bad_opts) | set(bad_data)
    priority: list[Any]
    delay: list[Any]
    if set(map(type, opts)) == {dict}:
        priority = list(map(dict.get, opts, repeat("priority"), repeat(0)))
        delay = list(map(dict.get, opts, repeat("delay"), repeat(0)))
    else:
        priority = [o.get("priority", 0) if type(o) is dict else None for o in opts]
        delay = [o.get("delay", 0) if type(o) is dict else None for o in opts]
        odd.update(i for i, o in enumerate(opts) if type(o) is not dict)
    # Both keys can only be in the parsed opts if their text is in the JSON, or spelled with \u escapes.
    if opts_blob is None or b"preventParsingData" in opts_blob or b"__proto__" in opts_blob or b"\\u" in opts_blob:
        odd.update(i for i, o in enumerate(opts) if type(o) is dict and ("preventParsingData" in o or "__proto__" in o))
    # setDefaultOpts' Number(delay) keeps a safe integer as it is; anything else takes its full rules. A
    # priority that is not an int is read again exactly (orjson would have made a float of a huge int).
    for values in (delay, priority):
        if set(map(type, values)) != {int} or max(values) > _MAX_SAFE_INTEGER or min(values) < -_MAX_SAFE_INTEGER:
            odd.update(i for i, d in enumerate(values) if type(d) is not int or abs(d) > _MAX_SAFE_INTEGER)
    for i in sorted(odd - set(refused)):
        fields: dict[str, bytes] = {f: v for f, c in zip(FRAME_FIELDS, cols) if (v := c[i]) is not None}
        try:
            record = parse_job_hash_deep(out_ids[i], fields, 0)
        except (ValueError, TypeError) as exc:
            data[i] = priority[i] = delay[i] = None
            errors = errors or [None] * n
            errors[i] = str(exc)
            continue
        data[i], priority[i], delay[i] = record.data, record.opts.get("priority", 0), record.opts["delay"]
        if record.damaged:
            errors = errors or [None] * n
            errors[i] = record.damaged
            if DEEP_NOTE in record.damaged:  # a frame must print: its JSON text instead
                data[i] = record.raw.get("data")
    # Text Node reads with U+FFFD is flagged (data read by orjson in one piece was all valid UTF-8).
    texts = [("name", cols[_NAME]), ("failedReason", cols[_REASON])]
    for field_name, column in ([] if data_fast else [("data", data_raw)]) + texts:
        for i in _not_utf8(column):
            if errors is None or errors[i] is None:
                errors = errors or [None] * n
                errors[i] = f"field {field_name!r} is not valid UTF-8 (shown as Node reads it, invalid bytes as U+FFFD)"
    for i, message in refused.items():
        errors = errors or [None] * n
        errors[i], name[i] = message, None
        data[i] = priority[i] = delay[i] = None

    progress_col = cols[_PROGRESS]
    progress: list[Any] = [0] * n if progress_col.count(None) == n else _lenient_json(progress_col, 0, empty=0)
    returned = cols[_RETURNED]
    returnvalue: list[Any] = [None] * n if returned.count(None) == n else _lenient_json(returned, None, empty=None)
    reason = cols[_REASON]
    return FrameBatch(
        ids=out_ids, name=name, data=data, priority=priority, delay=delay,
        attempts_made=_ints(cols[_MADE], missing=0), progress=progress, timestamp=_ints(cols[_TS]),
        processed_on=_ints(cols[_PROCESSED]), finished_on=_ints(cols[_FINISHED]),
        failed_reason=[None] * n if reason.count(None) == n else [None if v is None else text(v) for v in reason],
        returnvalue=returnvalue, errors=errors,
    )


# --- columns ----------------------------------------------------------------------------------------------

def _texts(values: Sequence[bytes | None], default: str) -> list[str]:
    """``value || default`` as text; bytes that are not UTF-8 replaced, as ioredis reads them."""
    n = len(values)
    if values.count(None) == n:
        return [default] * n
    raw = [v or default.encode() for v in values]
    joined = b"\x00".join(raw)
    if joined.count(b"\x00") == n - 1:
        try:
            return joined.decode("utf-8").split("\x00")
        except UnicodeDecodeError:
            pass
    return [text(v) for v in raw]


def _ints(values: Sequence[bytes | None], missing: int | None = None) -> list[int | None]:
    """``parseInt`` of each value; an absent or empty value is ``missing`` (Bull's ``parseInt(x || 0)`` for
    attemptsMade; undefined, shown as None, for the times)."""
    n = len(values)
    if values.count(None) == n:
        return [missing] * n
    if None not in values and b"" not in values:
        joined = b"".join(values)  # type: ignore[arg-type]
        # Plain digits parse the same with int(); 15 digits stay below 2**53, where parseInt stops being exact.
        if joined.isdigit() and max(map(len, values)) <= 15:  # type: ignore[arg-type]
            return list(map(int, values))  # type: ignore[arg-type]
    return [missing if not v else int(v) if v.isdigit() and len(v) <= 15 else js_parse_int(text(v)) for v in values]


def _ordinary(blob: bytes) -> bool:
    """Whether orjson reads this JSON exactly as ``from_json`` does: no run of 19 digits (maybe an int orjson
    would turn into a float) and no key that may be an array index (``from_json`` moves those first)."""
    plain = blob.translate(_PLAIN, b" \t\n\r")
    if _LONG_NUMBER in plain:
        return False
    # A key follows "{" or "," (both "," here): one that starts with a digit, or with an escape that may
    # spell one, shows as ,"0 or "\u. Only then, or in an array of such strings, is the exact search needed.
    if b',"0' in plain or b'"\\u' in plain:
        return _INDEX_KEY.search(blob) is None
    return True


def _anything(blob: bytes) -> bool:
    return True


def _exact(value: bytes) -> Any:
    try:
        return from_json(value)
    except (ValueError, RecursionError):  # too deep for this pass: the job is read again by Node's full rules
        return _BAD


def _one(value: bytes, ordinary: Callable[[bytes], bool] = _ordinary) -> Any:
    """JSON.parse of one value: orjson when it is ordinary, else ``from_json``; ``_BAD`` when rejected."""
    if _orjson is not None and ordinary(value):
        try:
            return _orjson.loads(value)
        except _orjson.JSONDecodeError:
            pass  # invalid UTF-8, a lone surrogate, 1e400...: from_json decides
    return _exact(value)


def _not_utf8(values: Sequence[bytes | None]) -> list[int]:
    """Positions of the values that are not valid UTF-8 (one decode of them all when every one is)."""
    try:
        b"".join(v for v in values if v).decode("utf-8")
        return []
    except UnicodeDecodeError:
        return [i for i, v in enumerate(values) if v and not v.isascii() and not _utf8(v)]


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_all(values: list[bytes], ordinary: Callable[[bytes], bool] = _ordinary) -> tuple[list[Any], bytes | None]:
    """JSON.parse of each value (``_BAD`` where rejected), and the values joined when orjson read them all
    at once (else None)."""
    if _orjson is not None:
        blob = b"\n".join(values)
        if ordinary(blob):
            try:
                return list(map(_orjson.loads, values)), blob
            except _orjson.JSONDecodeError:
                pass
    return [_one(v, ordinary) for v in values], None


def _json_column(values: Sequence[bytes | None], default: bytes, ordinary: Callable[[bytes], bool] = _ordinary
                 ) -> tuple[list[Any], list[int], bytes | None]:
    """``JSON.parse(value || default)`` of each value, the indexes JSON.parse rejects (None there), and the
    values joined when orjson read them all at once (then every one was valid UTF-8)."""
    parsed, blob = _parse_all([v or default for v in values], ordinary)
    bad = [i for i, v in enumerate(parsed) if v is _BAD] if blob is None and _BAD in parsed else []
    for i in bad:
        parsed[i] = None
    return parsed, bad, blob


def _lenient_json(values: Sequence[bytes | None], absent: Any, *, empty: Any) -> list[Any]:
    """JSON.parse of each value; ``absent`` where there is none, ``empty`` where it is rejected (Node logs and
    moves on for progress and returnvalue)."""
    present = [v for v in values if v is not None]
    parsed = iter(_parse_all(present)[0])
    out = [absent if v is None else next(parsed) for v in values]
    return [empty if v is _BAD else v for v in out] if _BAD in out else out

