"""The bulk fast path (rows whose options differ in the job id alone) writes exactly what the full path writes."""

from __future__ import annotations

from typing import Any

import pytest

from bullpy._core.options import prepare_job

NOW = 1_795_000_000_000

OPTION_SETS: list[dict[str, Any]] = [
    {"job_id": "c-1"},
    {"attempts": 3, "backoff": {"type": "exponential", "delay": 2000}, "job_id": "c-1"},
    {"job_id": 17, "priority": 2, "delay": 1500, "lifo": True},
    {"remove_on_complete": 100, "job_id": "x:y", "timeout": 30_000, "stack_trace_limit": 5},
    {"job_id": "é \" \\ \u2028 quoted", "debounce": {"id": "d", "ttl": 500}},
    {"delay": 0, "job_id": "t", "timestamp": 1_700_000_000_000},
    {"job_id": "p", "priority": 0.5e1},
    {"attempts": 3, "backoff": {"type": "exponential", "delay": 2000}},  # no ids: auto ids
    {},
    {"priority": 3, "job_id": None, "lifo": True},
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=[str(i) for i in range(len(OPTION_SETS))])
@pytest.mark.parametrize("defaults", [{}, {"attempts": 2, "remove_on_fail": True}])
def test_bulk_rows_with_ids_equal_the_full_path(options: dict[str, Any], defaults: dict[str, Any]) -> None:
    cache: dict[str, Any] = {}
    for row in range(3):  # the first row builds the template, the next ones use it
        job_id = options.get("job_id")
        row_options = dict(options)
        if job_id is not None:
            row_options["job_id"] = f"{job_id}-{row}" if isinstance(job_id, str) else job_id + row
        fast = prepare_job("send", {"n": row}, row_options, defaults=defaults, now_ms=NOW, cache=cache)
        full = prepare_job("send", {"n": row}, row_options, defaults=defaults, now_ms=NOW)
        assert fast is not None and full is not None
        assert fast.write == full.write
        assert fast.opts == full.opts
    assert len(cache) == 1  # one template served every row


def test_a_bad_id_in_a_bulk_row_is_refused() -> None:
    cache: dict[str, Any] = {}
    prepare_job(None, {}, {"job_id": "ok"}, defaults={}, now_ms=NOW, cache=cache)
    with pytest.raises(ValueError, match="reserved"):
        prepare_job(None, {}, {"job_id": "repeat:x"}, defaults={}, now_ms=NOW, cache=cache)
    with pytest.raises(TypeError, match="job_id"):
        prepare_job(None, {}, {"job_id": 1.5}, defaults={}, now_ms=NOW, cache=cache)
