"""JSON and job-hash codec, mirroring Node Bull 4.16.5 ``lib/job.js`` (``toData``, ``Job.fromJSON``,
``toJSON``, ``setDefaultOpts``), ``lib/backoffs.js`` ``normalize`` and the delayed-score arithmetic of
``lib/scripts.js`` ``moveToDelayedArgs`` / ``commands/addJob-6.lua``.

Everything bullpy writes as JSON goes through :func:`to_json`, which reproduces JavaScript's
``JSON.stringify`` byte for byte (numbers in ``Number.prototype.toString`` form, raw non-ASCII, JS key
order). Everything it reads goes through :func:`from_json` (``JSON.parse``). The job hash itself is read in
:mod:`bullpy._core.jobhash`.

Pure: no redis, no I/O, no clock (callers pass ``now_ms``).

Conventions: a JavaScript ``NaN`` (``parseInt("")``, ``Number("x")``) is represented by ``None``, which is
also what ``JSON.stringify`` writes for it, so ``to_json(record.to_node_json())`` equals Node's
``JSON.stringify(job)``. Python ints are kept exact everywhere (JavaScript would round beyond 2**53).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

__all__ = [
    "DEFAULT_JOB_NAME",
    "counter_score",
    "delayed_score",
    "from_json",
    "js_number",
    "js_number_str",
    "js_parse_int",
    "text",
    "to_json",
]

DEFAULT_JOB_NAME: Final = "__default__"  # lib/job.js DEFAULT_JOB_NAME

_MAX_SAFE_INTEGER: Final = 2**53 - 1
_MAX_ARRAY_INDEX: Final = 2**32 - 2  # ECMAScript "array index": canonical uint32 below 2**32 - 1

# ---------------------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------------------


def js_number_str(x: int | float) -> str:
    """The JavaScript ``Number.prototype.toString()`` of ``x`` (ints: their exact decimal digits).

    Also the form of the job hash's ``priority`` field: ``2.5`` -> ``"2.5"``, ``5.0`` -> ``"5"``.
    """
    if isinstance(x, bool):  # a bool is an int to Python, not a number to JavaScript
        raise TypeError(f"expected a number, got {x!r}")
    if isinstance(x, int):
        return int.__repr__(x)
    if isinstance(x, float):
        return _float_str(x)
    raise TypeError(f"expected a number, got object of type {type(x).__name__}")


def _float_str(x: float) -> str:
    # ECMA-262 Number::toString(x) with radix 10. CPython's repr already yields the shortest digits that
    # round-trip (the digit string JS requires, ties included); only the layout differs: JS uses fixed
    # notation for exponents -7 < e < 21 and writes exponents without zero padding ("1e-7", "1e+21").
    if x == 0.0:
        return "0"  # -0 prints as "0" in JS
    if x != x:
        return "NaN"
    if x == math.inf:
        return "Infinity"
    if x == -math.inf:
        return "-Infinity"
    r = float.__repr__(x)
    sign = ""
    if r[0] == "-":
        sign, r = "-", r[1:]
    if "e" in r:
        mantissa, _, exponent = r.partition("e")
        whole, _, frac = mantissa.partition(".")
        digits = whole + frac
        n = len(whole) + int(exponent)
    else:
        whole, _, frac = r.partition(".")
        if whole == "0":
            digits = frac.lstrip("0")
            n = len(digits) - len(frac)
        else:
            digits = whole + frac
            n = len(whole)
    digits = digits.rstrip("0")
    k = len(digits)
    # x = 0.<digits> * 10**n, with k significant digits (the spec's s, k, n)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    exp = f"e+{e}" if e >= 0 else f"e-{-e}"
    if k == 1:
        return sign + digits + exp
    return sign + digits[0] + "." + digits[1:] + exp


# ECMAScript WhiteSpace + LineTerminator (what parseInt and Number() skip). Deliberately not str.strip(),
# which also strips \x1c-\x1f and \x85 where JavaScript does not.
_JS_WHITESPACE: Final = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_PARSE_INT: Final = re.compile(r"([+-]?)(?:(0[xX])([0-9a-fA-F]*)|([0-9]+))")
_DECIMAL_LITERAL: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_DECIMAL_LITERAL: Final = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")


def js_parse_int(s: str | None) -> int | None:
    """JavaScript ``parseInt(s)`` (no radix); ``None`` stands for ``NaN``.

    Leading whitespace and one sign are skipped, a ``0x`` prefix switches to hex, then digits are read up to
    the first non-digit: ``" 42px"`` -> 42, ``"1.7e12"`` -> 1, ``""``/``"abc"``/``None`` -> None. Beyond
    2**53 the result is rounded to the double JavaScript would hold.
    """
    if s is None:
        return None  # parseInt(undefined) is NaN
    m = _PARSE_INT.match(s.lstrip(_JS_WHITESPACE))
    if m is None:
        return None
    sign, hex_prefix, hex_digits, dec_digits = m.groups()
    if hex_prefix and not hex_digits:
        return None  # "0x" commits to radix 16: parseInt("0x") and parseInt("0xg") are NaN, not 0
    try:
        value = int(hex_digits, 16) if hex_prefix else int(dec_digits)
    except ValueError:  # beyond int_max_str_digits; JavaScript would say Infinity
        return None
    if value > _MAX_SAFE_INTEGER:
        value = int(float(value))  # JS holds the nearest double: keep that value, as an int
    return -value if sign == "-" else value


def js_number(s: str) -> int | float | None:
    """JavaScript ``Number(s)`` for a string; ``None`` stands for ``NaN``.

    Trims JS whitespace, ``""`` -> 0, ``0x``/``0o``/``0b`` literals, exponents, ``Infinity``. Integral results
    within 2**53 come back as ``int``, others as ``float``.
    """
    t = s.strip(_JS_WHITESPACE)
    if not t:
        return 0
    if _NON_DECIMAL_LITERAL.fullmatch(t):  # unsigned only: Number("-0x10") is NaN
        base = {"x": 16, "o": 8, "b": 2}[t[1].lower()]
        return _narrow(int(t[2:], base))
    if t in ("Infinity", "+Infinity"):
        return math.inf
    if t == "-Infinity":
        return -math.inf
    if _DECIMAL_LITERAL.fullmatch(t):  # float() alone would also take "nan", "inf", "1_000"
        return _narrow(float(t))
    return None


def _narrow(x: int | float) -> int | float:
    # A JS number is a double: keep it an int when it is one exactly, else the double's float.
    if isinstance(x, int):
        return x if -_MAX_SAFE_INTEGER <= x <= _MAX_SAFE_INTEGER else float(x)
    if x.is_integer() and -_MAX_SAFE_INTEGER <= x <= _MAX_SAFE_INTEGER:
        return int(x)
    return x


def _js_to_string(v: Any) -> str:
    # ECMAScript ToString of a JSON.parse result (what parseInt applies to a non-string argument).
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return js_number_str(v)
    if isinstance(v, list):  # Array.prototype.join: null and undefined elements become ""
        return ",".join("" if e is None else _js_to_string(e) for e in v)
    return "[object Object]"


def _js_to_number(v: Any) -> int | float | None:
    # ECMAScript ToNumber of a JSON.parse result; None stands for NaN.
    if v is None or v is False:
        return 0
    if v is True:
        return 1
    if isinstance(v, (int, float)):
        return _narrow(v) if math.isfinite(v) else v
    if isinstance(v, str):
        return js_number(v)
    if isinstance(v, list):  # ToPrimitive of an array is its join(): [] -> 0, [5] -> 5, [1, 2] -> NaN
        return js_number(_js_to_string(v))
    return None  # "[object Object]"


def _js_truthy(v: Any) -> bool:
    # JavaScript truthiness: unlike Python, {} and [] are truthy; NaN (None here) is falsy.
    if v is None or v is False or v == "":
        return False
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v == v and v != 0
    return True


def delayed_score(due_ms: int, job_id: str) -> int:
    """The ``delayed`` zset score Node gives a job due at ``due_ms`` (``scripts.moveToDelayedArgs``).

    ``due * 4096 + (jobId & 0xfff)``: JavaScript's ``&`` applies ToInt32 to ``Number(jobId)``, so numeric ids
    give their low 12 bits (``"12345"`` -> 57, ``"-1"`` -> 4095) and any other id gives 0. A due time <= 0
    gives score 0 (promoted at once), as in Node.
    """
    if due_ms <= 0:
        return 0
    return due_ms * 0x1000 + _int32_low12(js_number(job_id))


def _int32_low12(x: int | float | None) -> int:
    # ToInt32 (NaN and infinities -> 0, truncate toward zero, wrap modulo 2**32) then & 0xfff. As 4096
    # divides 2**32 the wrap cannot change the low bits, and Python's % already yields two's-complement ones.
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return 0
    return int(x) % 0x1000


def counter_score(due_ms: int, counter: int) -> int:
    """The ``delayed`` score addJob gives a new job: ``due * 4096 + bit.band(idCounter, 0xfff)``."""
    return due_ms * 0x1000 + (counter & 0xFFF)


# ---------------------------------------------------------------------------------------------------------
# to_json: JSON.stringify
# ---------------------------------------------------------------------------------------------------------

_encode_str: Callable[[str], str] = json.encoder.encode_basestring
# Escapes exactly JSON.stringify's set (" \\ \b \f \n \r \t, other C0 controls as lowercase \u00xx), leaves
# the rest raw; only lone surrogates still need JSON.stringify's "well-formed" treatment (_fix_surrogates).

_SURROGATES: Final = re.compile("[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]")

# What the C encoder may have written differently from JSON.stringify, found by scanning its output. Each
# check is a substring test or a regex with a literal prefix (an alternation without one costs ~20 ns/char).
#   Keys: every key in compact JSON is `"...":` and a closing quote is never followed by a digit, so
#   `"<digit or ->...":` finds exactly the keys that may be array indices (JS orders those first) and the
#   int/float keys the C encoder converted silently; `"true":` etc. the bool/None keys it converted.
#   Floats (values, so followed by , ] } or the end): exponent form ("1e-05", "1e+16") and integral
#   ("1.0", "-0.0") are the only places Python's repr and JS's Number#toString disagree.
# The same text inside a string value is a false positive, which only costs a trip through a slower path.
_SUSPECT_KEY: Final = re.compile(r'"[-0-9][^"\\]*":')
_MAYBE_EXPONENT: Final = re.compile(r"e[+-][0-9]")
_EXPONENT: Final = re.compile(r"[0-9]e[+-][0-9]")
_INTEGRAL_FLOAT: Final = re.compile(r"\.0(?=[,\]}]|$)")


class _Bail(Exception):
    """The fast path met something only the slow path handles (or reports) exactly."""


def _fast_default(o: Any) -> str:
    if isinstance(o, _dt.date):
        return _date_iso(o, "")
    raise _Bail


_fast_encode: Callable[..., Iterable[str]]
try:
    from _json import make_encoder as _c_make_encoder

    # One C encoder built once: json.dumps would build a JSONEncoder (and a C encoder) per call, which
    # costs more than encoding a small job. markers=None skips the circular-reference bookkeeping; a cycle
    # ends in RecursionError, which sends the value down the slow path, which names it.
    _fast_encode = _c_make_encoder(None, _fast_default, _encode_str, None, ":", ",", False, False, False)
except ImportError:  # pragma: no cover - non-CPython
    _fast_encode = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_fast_default
    ).iterencode


def to_json(value: object, *, where: str = "value") -> str:
    """``JSON.stringify(value)`` byte for byte, or an error naming the offending place.

    dict (str keys; int keys become their decimal string, as JS does), list and tuple, str, int (exact
    digits), float (JS number formatting), bool, None, and tz-aware ``datetime`` / ``date`` (the JS
    ``Date.toJSON`` string, UTC, millisecond precision). Keys that are array indices ("0", "1", ...) come first
    in ascending order, as in any JS object; other keys keep insertion order.

    Raises:
        ValueError: NaN or an infinity (JavaScript would silently write null), or a circular reference.
        TypeError: a naive datetime, a non-str/int key, or any other type (set, bytes, objects).
        ``where`` names the root in messages: ``to_json(data, where="data")`` -> ``data['price']: ...``.
    """
    try:
        out = "".join(_fast_encode(value, 0))
    except Exception:  # NaN, unknown types, odd keys, cycles: let the exact path say what and where
        return _slow_to_json(value, where)
    if out.count("[") + out.count("{") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        return _slow_to_json(value, where)  # which names the place that nests too deep
    if (
        _SUSPECT_KEY.search(out) is not None
        or '"true":' in out
        or '"false":' in out
        or '"null":' in out
    ):
        return _slow_to_json(value, where)
    if _INTEGRAL_FLOAT.search(out) is not None or (
        _MAYBE_EXPONENT.search(out) is not None and _EXPONENT.search(out) is not None
    ):
        # Usually integral floats (10.0 from pandas and friends): turn them into ints and stay in C.
        try:
            out = "".join(_fast_encode(_ints_for_integral_floats(value), 0))
        except _Bail:
            return _slow_to_json(value, where)
    if not out.isascii():
        try:
            out.encode("utf-8")
        except UnicodeEncodeError:  # surrogate code points: only the string escapes need patching
            out = _fix_surrogates(out)
    return out


def _ints_for_integral_floats(v: Any) -> Any:
    # A copy in which every float prints the same from Python and JS: an integral float within 2**53 is
    # the int of the same value (JS prints it as those digits); larger integral floats and floats that
    # repr() in exponent form bail out to the slow path. Other floats (fixed notation, a fraction) are
    # already identical in both.
    if isinstance(v, float):
        if v.is_integer():
            if -_MAX_SAFE_INTEGER <= v <= _MAX_SAFE_INTEGER:
                return int(v)
            # Beyond 2**53 JS prints shortest digits padded with zeros, not the double's exact digits.
            raise _Bail
        if "e" in float.__repr__(v):
            raise _Bail
        return v
    if isinstance(v, dict):
        return {k: _ints_for_integral_floats(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_ints_for_integral_floats(x) for x in v]
    return v


def _fix_surrogates(encoded: str) -> str:
    return _SURROGATES.sub(_surrogate_repl, encoded)


def _surrogate_repl(m: re.Match[str]) -> str:
    s = m.group()
    if len(s) == 2:
        # A high+low pair held as two code points is one well-formed UTF-16 character in JS: write it raw.
        return chr(0x10000 + ((ord(s[0]) - 0xD800) << 10) + (ord(s[1]) - 0xDC00))
    return f"\\u{ord(s):04x}"  # well-formed JSON.stringify (ES2019) escapes lone surrogates, lowercase


def _quote(s: str) -> str:
    q = _encode_str(s)
    return _fix_surrogates(q) if _SURROGATES.search(q) else q


def _date_iso(d: _dt.date, path: str) -> str:
    # Date.prototype.toJSON -> toISOString: UTC, exactly 3 fractional digits (JS dates are whole ms, so
    # microseconds are dropped).
    if isinstance(d, _dt.datetime):
        if d.utcoffset() is None:
            raise TypeError(
                f"{path}: naive datetime {d.isoformat()!r} has no time zone; make it tz-aware "
                "(e.g. .replace(tzinfo=datetime.timezone.utc)) so its instant is unambiguous"
            )
        u = d.astimezone(_dt.timezone.utc)
        return (
            f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
            f".{u.microsecond // 1000:03d}Z"
        )
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T00:00:00.000Z"


def _is_array_index(k: str) -> bool:
    return (
        k.isascii()
        and k.isdigit()
        and (k == "0" or k[0] != "0")
        and (len(k) < 10 or int(k) <= _MAX_ARRAY_INDEX)
    )


def _js_key_order(keys: list[str]) -> list[str]:
    # OrdinaryOwnPropertyKeys: array-index keys ascending, then the other string keys in creation order.
    index = [k for k in keys if _is_array_index(k)]
    if not index:
        return keys
    index.sort(key=int)
    return index + [k for k in keys if not _is_array_index(k)]


# Data nested deeper than this is refused (ValueError naming the place): deeper data overflows Python's
# stack (RecursionError) and, soon after, the stack of a Node worker's JSON.parse.
MAX_DEPTH = 256


def _deeper_than(value: object, limit: int) -> bool:
    """Whether dicts and lists nest more than ``limit`` levels (walked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _short(path: str) -> str:
    return path if len(path) <= 80 else path[:60] + "..." + path[-16:]


def _slow_to_json(value: object, where: str) -> str:
    parts: list[str] = []
    _encode(value, where, parts, set())
    return "".join(parts)


def _encode(v: object, path: str, parts: list[str], active: set[int]) -> None:
    if v is None:
        parts.append("null")
    elif v is True:
        parts.append("true")
    elif v is False:
        parts.append("false")
    elif isinstance(v, str):
        parts.append(_quote(v))
    elif isinstance(v, int):
        parts.append(int.__repr__(v))
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{path}: {_float_str(v)} is not allowed (JavaScript would write null)")
        parts.append(_float_str(v))
    elif isinstance(v, dict):
        if id(v) in active:
            raise ValueError(f"{_short(path)}: circular reference")
        if len(active) >= MAX_DEPTH:  # ``active`` holds the containers above this one
            raise ValueError(f"{_short(path)}: nested deeper than {MAX_DEPTH} levels")
        active.add(id(v))
        items: dict[str, tuple[object, str]] = {}
        for k, item in v.items():
            if isinstance(k, str):
                key = str.__str__(k)
            elif isinstance(k, int) and not isinstance(k, bool):
                key = int.__repr__(k)  # a JS property key is ToString(key)
            else:
                raise TypeError(f"{path}: key {k!r} of type {type(k).__name__} is not a string")
            # {1: a, "1": b} is one JS property: the later value wins, like repeated assignment.
            items[key] = (item, f"{path}[{k!r}]")
        parts.append("{")
        first = True
        for key in _js_key_order(list(items)):
            if not first:
                parts.append(",")
            first = False
            item, item_path = items[key]
            parts.append(_quote(key))
            parts.append(":")
            _encode(item, item_path, parts, active)
        parts.append("}")
        active.discard(id(v))
    elif isinstance(v, (list, tuple)):
        if id(v) in active:
            raise ValueError(f"{_short(path)}: circular reference")
        if len(active) >= MAX_DEPTH:
            raise ValueError(f"{_short(path)}: nested deeper than {MAX_DEPTH} levels")
        active.add(id(v))
        parts.append("[")
        for i, item in enumerate(v):
            if i:
                parts.append(",")
            _encode(item, f"{path}[{i}]", parts, active)
        parts.append("]")
        active.discard(id(v))
    elif isinstance(v, _dt.date):
        parts.append('"' + _date_iso(v, path) + '"')
    else:
        raise TypeError(f"{path}: object of type {type(v).__name__} is not JSON serialisable")


# ---------------------------------------------------------------------------------------------------------
# from_json: JSON.parse
# ---------------------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")  # Python's json accepts NaN/Infinity, JSON.parse does not


_decode: Final = json.JSONDecoder(parse_constant=_reject_constant).decode

# A key that might be an array index: "<digit>...": (escapes can spell digits too: "\u0031").
_INDEX_KEY_HINT: Final = re.compile(r"\"(?:[0-9]|\\u003[0-9])[^\"]*\"[ \t\n\r]*:")


def from_json(text: str | bytes) -> Any:
    """``JSON.parse(text)``; bytes are decoded as UTF-8 (invalid bytes -> U+FFFD, as ioredis does).

    Objects become dicts in JavaScript's key order (array-index keys first, ascending), so re-encoding
    gives what Node would write. Ints stay exact. Raises ``ValueError`` for text JSON.parse rejects.
    """
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8", "replace")
    value = _decode(text)
    if _INDEX_KEY_HINT.search(text) is not None:
        value = _reorder(value)
    return value


def _reorder(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _reorder(v[k]) for k in _js_key_order(list(v))}
    if isinstance(v, list):
        return [_reorder(e) for e in v]
    return v


def text(value: Any) -> str:
    """A reply item as str, whether the client decodes replies or not; bytes that are not UTF-8 are replaced,
    never fatal (another program may have written them)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
