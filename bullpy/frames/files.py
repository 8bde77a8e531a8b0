"""Campaign files (CSV, Parquet, JSON lines) read into DataFrames, for ``add_frame`` and ``bullpy load``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import MissingDependency

if TYPE_CHECKING:
    import pandas as pd


try:
    import pandas as pd
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise MissingDependency("pandas", "pandas") from exc

# --- files -----------------------------------------------------------------------------------------------

def read_campaign(path: str | Path, *, format: str | None = None) -> pd.DataFrame:
    """Read a campaign file: CSV, Parquet, or JSON lines (by extension, or ``format``).

    CSV columns are read as text except where pandas is sure (so phone numbers keep leading zeros).
    """
    path = Path(path)
    kind = (format or path.suffix.lstrip(".")).lower()
    if kind in ("csv", "txt"):
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    if kind in ("parquet", "pq"):
        return pd.read_parquet(path)
    if kind in ("jsonl", "ndjson", "json"):
        return pd.read_json(path, lines=True, dtype=False)
    raise ValueError(f"unknown campaign file format {kind!r}: use .csv, .parquet or .jsonl (or format=...)")
