"""How the CLI lays out tables and writes times (no server): whole ids, cut values, zones."""

from __future__ import annotations

import time

import pytest

from bullpy.cli._output import Column, span, table_lines, when

COLUMNS = [Column("id"), Column("state"), Column("name", cut=8), Column("reason", elastic=True),
           Column("data", elastic=True)]
ROWS = [
    {"id": "12345", "state": "failed", "name": "__default__", "reason": "number not on WhatsApp " * 3,
     "data": {"number": "5511999", "message": "olá, São Paulo " * 5}},
    {"id": "repeat:5f1c:1700000000000", "state": "delayed", "name": "daily-report", "reason": None,
     "data": {"report": True}},
    {"id": "7", "state": "waiting", "name": "send", "reason": "", "data": "日本語のメッセージ" * 4},
]


@pytest.mark.parametrize("total", [40, 60, 80, 120, 200])
def test_every_line_fits_and_keeps_ids_and_states_whole(total: int) -> None:
    lines = table_lines(COLUMNS, ROWS, total=total)
    from rich.cells import cell_len

    essential = len("repeat:5f1c:1700000000000") + 2 + len("delayed") + 2 + len("daily-r…")
    for line, row in zip(lines[1:], ROWS):
        assert line.split()[:2] == [row["id"], row["state"]]
        assert cell_len(line) <= max(total, essential)
    if total >= 80:
        assert lines[0].split() == ["id", "state", "name", "reason", "data"]
    if total == 40:
        assert "data" not in lines[0] and "reason" not in lines[0]  # too narrow to say anything: left out


def test_columns_named_by_the_user_stay_however_narrow() -> None:
    lines = table_lines(COLUMNS, ROWS, total=40, drop=False)
    assert lines[0].split() == ["id", "state", "name", "reason", "data"]


def test_wide_shows_everything_uncut() -> None:
    lines = table_lines(COLUMNS, ROWS, total=10**6)
    assert "number not on WhatsApp " * 2 in lines[1] and "…" not in "".join(lines)


def test_times_say_their_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    ms = 1_767_258_000_000  # 2026-01-01 09:00:00 UTC
    monkeypatch.setenv("TZ", "America/Sao_Paulo")
    time.tzset()
    try:
        assert when(ms) == "2026-01-01 06:00:00 -03:00"
        assert when(ms, utc=True) == "2026-01-01 09:00:00 UTC"
        assert when(ms, tz="Asia/Kolkata") == "2026-01-01 14:30:00 +05:30 Asia/Kolkata"
        assert when(None) == "" and when(0) == ""
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_spans() -> None:
    assert [span(ms) for ms in (0, 45_000, 725_000, 3_600_000, 11_000_000, 190_000_000, None)] == [
        "0s", "45s", "12m5s", "1h", "3h3m", "2d4h", ""]


def test_a_rare_long_id_sticks_out_of_its_own_line_only() -> None:
    columns = [Column("id", overflow=True), *COLUMNS[1:]]
    rows = [*ROWS, *({"id": str(n), "state": "waiting", "name": "send", "data": {"n": n}} for n in range(8, 12))]
    lines = table_lines(columns, rows, total=80)
    assert lines[0].split() == ["id", "state", "name", "reason", "data"]
    for line, row in zip(lines[1:], rows):
        assert line.split()[:2] == [row["id"], row["state"]]
        if not row["id"].startswith("repeat:"):
            assert len(line) <= 80 and line.index(row["state"]) == lines[0].index("state")
