"""Schemas: the JSON types a worker expects of job data, checked before anything is written.

``queue.add(data, schema={"number": str, "message": str})``, the same for ``add_bulk`` and ``add_frame``, and
``bullpy load --schema number=str,message=str``. A Node worker that calls ``number.includes(...)`` fails on
a JSON number; a schema turns that into an error naming the job or the rows before the first write.

Types are JSON's, as Python writes them: ``str``, ``int`` (not bool), ``float`` (any number; an integral
float is also an ``int``, as JavaScript writes it), ``bool``, ``list``, ``dict`` and ``None``; a union such as
``str | None`` or a tuple accepts any of its members. Type names (``"str"``, ``"str|None"``) work too.
Keys the schema does not name are not checked.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

__all__ = ["Schema", "check_data", "check_items", "parse_schema", "schema_accepts", "schema_name", "schema_violations"]

#: A parsed schema: data key -> the JSON types it accepts.
Schema = dict[str, tuple[type, ...]]

_SCHEMA_TYPES: Final[dict[str, type]] = {"str": str, "int": int, "float": float, "bool": bool, "list": list,
                                         "dict": dict, "null": type(None), "None": type(None)}
_TYPE_NAMES: Final[dict[type, str]] = {str: "str", int: "int", float: "float", bool: "bool", list: "list",
                                       dict: "dict", type(None): "None"}


def parse_schema(schema: Mapping[str, Any] | str | None) -> Schema:
    """``{"number": str, "score": float | None}`` (or ``"number=str,score=float|None"``) -> key -> types."""
    if schema is None:
        return {}
    if isinstance(schema, str):
        pairs: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in schema.split(","))):
            key, sep, spec = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"schema {schema!r}: write key=type pairs, e.g. number=str,message=str")
            pairs[key.strip()] = spec.strip()
        schema = pairs
    if not isinstance(schema, Mapping):
        raise TypeError(f"schema must be a dict of data key -> type, got {type(schema).__name__}")
    out: Schema = {}
    for key, spec in schema.items():
        if not isinstance(key, str):
            raise TypeError(f"schema keys are data keys (str), got {key!r}")
        out[key] = tuple(dict.fromkeys(_types(key, spec)))
    return out


def _types(key: str, spec: Any) -> Iterable[type]:
    if spec is None:
        return [type(None)]
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split("|")]
        if all(p in _SCHEMA_TYPES for p in parts):
            return [_SCHEMA_TYPES[p] for p in parts]
    elif isinstance(spec, types.UnionType):
        return [t for member in spec.__args__ for t in _types(key, member)]
    elif isinstance(spec, tuple):
        return [t for member in spec for t in _types(key, member)]
    elif spec in _TYPE_NAMES:
        return [spec]
    raise TypeError(f"schema[{key!r}]: {spec!r} is not a JSON type; use str, int, float, bool, list, dict or None "
                    "(or a union such as str | None)")


def schema_name(accepted: tuple[type, ...]) -> str:
    """``(str, NoneType)`` -> ``"str | None"``."""
    return " | ".join(_TYPE_NAMES[t] for t in accepted)


def schema_accepts(value: Any, accepted: tuple[type, ...]) -> bool:
    """Whether ``value`` (as it will be written) has one of the ``accepted`` JSON types."""
    kind = type(value)
    if kind is str:
        return str in accepted
    if kind is bool:
        return bool in accepted
    if value is None:
        return type(None) in accepted
    if isinstance(value, int):
        return int in accepted or float in accepted
    if isinstance(value, float):
        return float in accepted or (int in accepted and value.is_integer())
    if isinstance(value, (list, tuple)):
        return list in accepted
    if isinstance(value, Mapping):
        return dict in accepted
    return isinstance(value, str) and str in accepted


def schema_violations(values: Sequence[Any], accepted: tuple[type, ...]) -> list[int]:
    """Positions of the values whose type the schema does not accept."""
    if accepted == (str,):
        return [i for i, v in enumerate(values) if type(v) is not str]
    return [i for i, v in enumerate(values) if not schema_accepts(v, accepted)]


def check_data(data: Any, schema: Schema, *, where: str = "data") -> None:
    """Raise TypeError naming the first key whose value the schema does not accept (or that is missing)."""
    if not schema:
        return
    if not isinstance(data, Mapping):
        raise TypeError(f"{where}: the schema wants an object with {sorted(schema)}, got {type(data).__name__}")
    for key, accepted in schema.items():
        if key not in data:
            raise TypeError(f"{where}: no {key!r} (the schema wants {schema_name(accepted)})")
        value = data[key]
        if not schema_accepts(value, accepted):
            raise TypeError(f"{where}[{key!r}]: the schema wants {schema_name(accepted)}, got "
                            f"{type(value).__name__} {value!r}")


def check_items(jobs: Iterable[Any], schema: Mapping[str, Any] | str | None) -> Iterable[Any]:
    """``add_bulk``'s items with each one's ``data`` checked against ``schema`` (TypeError names the item)."""
    parsed = parse_schema(schema)
    if not parsed:
        return jobs
    items = list(jobs)
    for index, item in enumerate(items):
        if isinstance(item, Mapping):
            try:
                check_data(item.get("data"), parsed)
            except TypeError as exc:
                raise TypeError(f"add_bulk item {index}: {exc}") from None
    return items
