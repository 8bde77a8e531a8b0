"""Campaign files (CSV, Parquet, JSON lines) read into DataFrames, whole or a record batch at a time, for
``add_frame``, ``load_file`` and ``bullpy load``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from ..errors import MissingDependency

if TYPE_CHECKING:
    import pandas as pd


try:
    import pandas as pd
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise MissingDependency("pandas", "pandas") from exc


def _kind(path: Path, format: str | None) -> str:
    kind = (format or path.suffix.lstrip(".")).lower()
    if kind in ("csv", "txt"):
        return "csv"
    if kind in ("parquet", "pq"):
        return "parquet"
    if kind in ("jsonl", "ndjson", "json"):
        return "jsonl"
    raise ValueError(f"unknown campaign file format {kind!r}: use .csv, .parquet or .jsonl (or format=...)")


@overload
def read_campaign(path: str | Path, *, format: str | None = None, chunksize: None = None) -> pd.DataFrame: ...
@overload
def read_campaign(path: str | Path, *, format: str | None = None, chunksize: int) -> Iterator[pd.DataFrame]: ...


def read_campaign(path: str | Path, *, format: str | None = None,
                  chunksize: int | None = None) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """Read a campaign file: CSV, Parquet, or JSON lines (by extension, or ``format``).

    CSV columns are read as text (so phone numbers keep leading zeros; empty cells are missing). With
    ``chunksize`` an iterator of frames of at most that many rows, indexed by the file's row numbers, so a
    file of any size is read in bounded memory (Parquet by record batches).
    """
    path = Path(path)
    kind = _kind(path, format)
    if chunksize is None:
        if kind == "csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_json(path, lines=True, dtype=False)
    if not isinstance(chunksize, int) or isinstance(chunksize, bool) or chunksize < 1:
        raise ValueError(f"chunksize must be a positive integer, got {chunksize!r}")
    return _batches(path, kind, chunksize)


def _batches(path: Path, kind: str, size: int) -> Iterator[pd.DataFrame]:
    start = 0
    reader: Any
    if kind == "csv":
        reader = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], chunksize=size)
    elif kind == "jsonl":
        reader = pd.read_json(path, lines=True, dtype=False, chunksize=size)
    else:
        try:
            import pyarrow.parquet as pq  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - a dependency of the extra
            raise MissingDependency("pyarrow", "pandas") from exc
        reader = (batch.to_pandas() for batch in pq.ParquetFile(path).iter_batches(batch_size=size))
    with _closing(reader):
        for frame in reader:
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame


class _closing:
    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        close = getattr(self.reader, "close", None)
        if close is not None:
            close()
