"""Every `bullpy` command over a queue that holds damaged jobs next to healthy ones (tests/damaged_corpus.py).

Nothing crashes; every healthy job is listed whole on its line; every damaged one is listed and marked (a
``!`` after its state in tables, a ``damaged`` field in JSON and CSV, a ``damaged`` line in ``bullpy job``);
``bullpy doctor`` finds each damaged job by kind; and the reads and dry runs leave the keyspace as it was.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

import bullpy
import bullpy.doctor
from bullpy.cli import main

from . import damaged_corpus
from .damaged_corpus import Corpus

WIDTH = 80

#: The doctor's kind for each kind of damage the corpus writes.
DOCTOR_KIND = {
    "opts-null": "opts-null", "opts-truncated": "opts-not-json", "data-truncated": "data-not-json",
    "data-not-utf8": "not-utf8", "name-not-utf8": "not-utf8", "data-deep": "deep", "data-too-deep": "too-deep",
    "key-is-string": "not-a-hash", "key-is-list": "not-a-hash", "hash-missing": "no-hash",
    "random:truncated-data": "data-not-json", "random:truncated-opts": "opts-not-json",
    "random:not-utf8": "not-utf8", "random:deep": "deep",
}
RUNS = {"not-utf8", "deep", "two-states"}  # the doctor's warnings; the other kinds are errors


@dataclass
class Damaged:
    corpus: Corpus
    raw: redis.Redis
    url: str

    @property
    def queue(self) -> bullpy.Queue:
        return self.corpus.queue

    @property
    def all_ids(self) -> list[str]:
        return [*self.corpus.healthy, *self.corpus.damaged, self.corpus.twice]

    def digest(self) -> str:
        return damaged_corpus.digest(self.raw, self.queue.keys.base)

    def run(self, *args: str, fmt: str | None = None, code: int | None = 0) -> Result:
        base = ["--redis", self.url, "--prefix", self.queue.prefix] + (["--format", fmt] if fmt else [])
        result = CliRunner().invoke(main, [*base, *args], env={"COLUMNS": str(WIDTH)})
        assert "Traceback" not in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        if code is not None:
            assert result.exit_code == code, (args, result.output[-3000:])
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, fmt="json").stdout)


@pytest.fixture
def damaged(queue: bullpy.Queue, redis_url: str) -> Iterator[Damaged]:
    raw = redis.Redis.from_url(redis_url)
    try:
        yield Damaged(damaged_corpus.write(queue, raw), raw, redis_url)
    finally:
        raw.close()


def rows_by_id(stdout: str) -> dict[str, list[list[str]]]:
    """Table lines (after the header) split into cells, by their first cell (the whole id)."""
    out: dict[str, list[list[str]]] = {}
    for line in stdout.splitlines()[1:]:
        if line.strip():
            out.setdefault(line.split()[0], []).append(line.split())
    return out


def assert_listed(d: Damaged, stdout: str, *, states: tuple[str, ...] = ("waiting", "completed")) -> None:
    """Healthy jobs whole on their line with their plain state; damaged ones marked ``!``."""
    by_id = rows_by_id(stdout)
    for job_id in d.corpus.healthy:
        assert [row[1] for row in by_id[job_id]] == ["waiting"], (job_id, by_id.get(job_id))
    for job_id in d.corpus.damaged:
        assert [row[1] for row in by_id[job_id]] == ["waiting!"], (job_id, by_id.get(job_id))
    twice = [row[1] for row in by_id[d.corpus.twice]]
    assert sorted(twice) == sorted(f"{s}!" for s in states), twice
    lines = stdout.splitlines()
    assert lines[0].split()[:2] == ["id", "state"]


def test_jobs_lists_every_job_and_marks_the_damaged(damaged: Damaged) -> None:
    before = damaged.digest()
    shown = damaged.run("jobs", damaged.queue.name, "-n", "100")
    assert_listed(damaged, shown.stdout)
    assert all(len(line) <= WIDTH for line in shown.stdout.splitlines()), shown.stdout
    # Two rows for the job listed in waiting and completed.
    assert f"{len(damaged.corpus.damaged) + 2} damaged jobs (state marked !)" in shown.stderr
    assert f"doctor {damaged.queue.name}" in shown.stderr

    waiting = damaged.run("jobs", damaged.queue.name, "--state", "waiting", "-n", "100")
    by_id = rows_by_id(waiting.stdout)
    assert set(by_id) == set(damaged.all_ids)
    assert all(len(line) <= WIDTH for line in waiting.stdout.splitlines())
    completed = damaged.run("jobs", damaged.queue.name, "--state", "completed")
    assert list(rows_by_id(completed.stdout)) == [damaged.corpus.twice]

    wide = damaged.run("jobs", damaged.queue.name, "-n", "100", "--wide")
    assert_listed(damaged, wide.stdout)
    assert wide.stdout.splitlines()[0].split()[-1] == "damaged"
    for job_id, says in damaged.corpus.says.items():
        assert any(line.startswith(job_id + " ") and says in line for line in wide.stdout.splitlines()), job_id

    picked = damaged.run("jobs", damaged.queue.name, "-n", "100", "--columns", "id,state,damaged")
    assert picked.stdout.splitlines()[0].split() == ["id", "state", "damaged"]
    assert_listed(damaged, picked.stdout)

    # Paged: the damaged jobs take their place in the pages like any other.
    paged = [damaged.run("jobs", damaged.queue.name, "-n", "5", "--page", str(p)).stdout for p in range(1, 7)]
    listed = [row[0] for page in paged for rows in rows_by_id(page).values() for row in rows]
    assert sorted(listed) == sorted([*damaged.all_ids, damaged.corpus.twice])
    assert damaged.digest() == before


def test_jobs_grep_skips_what_it_cannot_read_and_marks_the_rest(damaged: Damaged) -> None:
    before = damaged.digest()
    hello = damaged.run("jobs", damaged.queue.name, "--state", "waiting", "--grep", "HELLO", "-n", "100")
    assert set(rows_by_id(hello.stdout)) == set(damaged.corpus.healthy)
    number = damaged.run("jobs", damaged.queue.name, "--grep", "55119", "-n", "100")
    by_id = rows_by_id(number.stdout)
    assert set(damaged.corpus.healthy) <= set(by_id) and damaged.corpus.twice in by_id
    assert {"damaged-data-truncated", "random-2"} <= set(by_id)
    for job_id, rows in by_id.items():
        assert all(row[1].endswith("!") == (job_id not in damaged.corpus.healthy) for row in rows), rows
    # Ids match too; keys that are not hashes (nothing to read) are skipped, not an error.
    named = damaged.run("jobs", damaged.queue.name, "--grep", "damaged-", "-n", "100")
    assert set(rows_by_id(named.stdout)) <= set(damaged.corpus.damaged)
    assert "damaged-opts-null" in rows_by_id(named.stdout)
    since = damaged.run("jobs", damaged.queue.name, "--since", "3650d", "-n", "100")
    assert set(damaged.corpus.healthy) <= set(rows_by_id(since.stdout))
    assert damaged.digest() == before


def test_jobs_json_and_csv_say_damaged(damaged: Damaged) -> None:
    before = damaged.digest()
    rows = damaged.json("jobs", damaged.queue.name, "-n", "100")
    by_id: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_id.setdefault(row["id"], []).append(row)
    for job_id in damaged.corpus.healthy:
        [row] = by_id[job_id]
        assert row["damaged"] is None and row["data"]["number"].startswith("55119")
    for job_id, says in damaged.corpus.says.items():
        assert by_id[job_id] and all(says in row["damaged"] for row in by_id[job_id]), (job_id, by_id[job_id])
    assert isinstance(by_id["damaged-data-deep"][0]["data"], str)  # deep JSON given as its text
    assert by_id["damaged-data-deep"][0]["data"] == "[" * 5000 + "]" * 5000

    as_csv = damaged.run("jobs", damaged.queue.name, "-n", "100", fmt="csv").stdout
    table = list(csv.DictReader(io.StringIO(as_csv)))
    assert {r["id"] for r in table} == set(damaged.all_ids)
    for r in table:
        assert bool(r["damaged"]) == (r["id"] not in damaged.corpus.healthy), r
    assert damaged.digest() == before


def test_job_shows_every_job_and_why_it_is_damaged(damaged: Damaged) -> None:
    before = damaged.digest()
    name = damaged.queue.name
    shown = damaged.run("job", name, *damaged.all_ids).stdout
    blocks = {b.splitlines()[0].split()[1]: b for b in shown.strip().split("\n\n")}
    assert set(blocks) == set(damaged.all_ids)
    for job_id in damaged.corpus.healthy:
        assert "  damaged" not in blocks[job_id] and '"number": "55119' in blocks[job_id]
    for job_id in damaged.corpus.damaged:
        line = next(x for x in blocks[job_id].splitlines() if x.startswith("  damaged "))
        assert damaged.corpus.says[job_id] in line, (job_id, line)
        assert all(len(x) <= WIDTH for x in blocks[job_id].splitlines() if x.startswith("    [[")), job_id
    assert '"message": "ol\ufffd"' in blocks["damaged-data-not-utf8"]  # Node's reading of the bytes
    assert "  opts           {\"attempts\":" in blocks["damaged-opts-truncated"]  # the stored text, cut short
    assert blocks["damaged-opts-truncated"].count('"attempts"') == 1
    for job_id in damaged.all_ids:
        record = json.loads(damaged.run("job", name, job_id, fmt="json").stdout)
        assert record["id"] == job_id
        if job_id in damaged.corpus.damaged:
            assert damaged.corpus.says[job_id] in record["damaged"], (job_id, record)
        else:
            assert record["damaged"] is None
        damaged.run("job", name, job_id, fmt="csv")
    assert damaged.digest() == before


def test_logs_and_log_work_on_damaged_jobs(damaged: Damaged) -> None:
    before = damaged.digest()
    for job_id in damaged.all_ids:
        damaged.run("logs", damaged.queue.name, job_id)
        assert json.loads(damaged.run("logs", damaged.queue.name, job_id, fmt="json").stdout)["id"] == job_id
    assert damaged.digest() == before
    damaged.run("log", damaged.queue.name, "damaged-data-deep", "looked at it")
    assert damaged.queue.get_job_logs("damaged-data-deep").logs == ["looked at it"]


def test_views_and_dry_runs_change_nothing(damaged: Damaged) -> None:
    before = damaged.digest()
    name = damaged.queue.name
    queues = damaged.run("queues")
    assert any(line.split()[0] == name for line in queues.stdout.splitlines()[1:])
    assert damaged.json("stats", name)[0]["waiting"] == len(damaged.all_ids)
    damaged.run("stats", name)
    damaged.run("workers", name)
    ids = ",".join(damaged.all_ids)
    for args in (["retry", name, "--dry-run"], ["retry", name, "--state", "completed", "--dry-run"],
                 ["promote", name, "--all", "--dry-run"], ["remove", name, "--pattern", "*", "--dry-run"],
                 ["clean", name, "--state", "waiting", "--grace", "0", "--dry-run"],
                 ["clean", name, "--state", "completed", "--grace", "0", "--dry-run"],
                 ["clean", name, "--state", "waiting", "--grace", "0", "--limit", "5", "--dry-run"],
                 ["empty", name, "--dry-run"], ["obliterate", name, "--dry-run"]):
        damaged.run(*args)
        damaged.run(*args, fmt="json")
    cleaned = damaged.json("clean", name, "--state", "waiting", "--grace", "0", "--dry-run")
    assert cleaned["would_remove"] >= len(damaged.corpus.healthy)
    for args in (["retry", name, "--id", ids, "--dry-run"], ["promote", name, "--id", ids, "--dry-run"],
                 ["remove", name, *damaged.all_ids, "--dry-run"],
                 ["fail", name, *damaged.all_ids, "--reason", "x", "--dry-run"],
                 ["complete", name, *damaged.all_ids, "--dry-run"]):
        table = damaged.run(*args).stdout
        by_id = rows_by_id(table)
        assert set(by_id) == set(damaged.all_ids) and table.splitlines()[0].split()[-1] == "damaged"
        assert all(len(line) <= WIDTH for line in table.splitlines())
        for row in damaged.json(*args):
            if row["id"] in damaged.corpus.damaged:
                assert damaged.corpus.says[row["id"]] in row["damaged"], row
            else:
                assert row["damaged"] is None, row
    assert damaged.digest() == before


def test_export_import_and_copy_carry_the_healthy_jobs_and_count_the_rest(damaged: Damaged, tmp_path: Any,
                                                                           make_queue: Any) -> None:
    before = damaged.digest()
    dump = tmp_path / "dump.bullpy"
    exported = damaged.run("export", damaged.queue.name, "-o", str(dump)).output
    assert damaged.digest() == before
    for count in ("not_hash", "dangling", "damaged"):
        assert count in exported, exported
    hashes = set(damaged.corpus.healthy) | {damaged.corpus.twice} | (
        set(damaged.corpus.damaged) - {"damaged-key-is-string", "damaged-key-is-list", "damaged-hash-missing"})
    imported = make_queue(damaged.queue.name + "-imported")
    damaged.run("import", str(dump), "--queue", imported.name, "--yes")
    assert set(imported.get_ranges(["waiting"])) == hashes  # byte-exact hashes, damaged ones included
    assert {j.id for j in imported.get_waiting() if j.damaged} == hashes - set(damaged.corpus.healthy) - {
        damaged.corpus.twice}
    copied = make_queue(damaged.queue.name + "-copied")
    damaged.run("copy", damaged.queue.name, copied.name, "--yes")
    assert set(copied.get_ranges(["waiting"])) == hashes
    assert damaged.digest() == before
    damaged.run("move", damaged.queue.name, copied.name + "-moved", "--dry-run")
    assert damaged.digest() == before


def test_doctor_finds_every_damaged_job_by_kind(damaged: Damaged) -> None:
    before = damaged.digest()
    report = json.loads(damaged.run("doctor", damaged.queue.name, "--format", "json", code=2).stdout)
    findings = [f for f in report["findings"] if f["code"] == "damaged-jobs"]
    assert sorted(f["severity"] for f in findings) == ["error", "warning"]
    found: dict[str, set[str]] = {}
    for f in findings:
        for kind, ids in f["details"]["job_ids"].items():
            assert (f["severity"] == "warning") == (kind in RUNS), (kind, f["severity"])
            found.setdefault(kind, set()).update(ids)
            assert f["details"]["counts"][kind] == len(ids)
    expected: dict[str, set[str]] = {}
    for job_id, kind in damaged.corpus.damaged.items():
        expected.setdefault(DOCTOR_KIND[kind], set()).add(job_id)
    expected.setdefault("two-states", set()).add(damaged.corpus.twice)
    assert found == expected
    text = damaged.run("doctor", damaged.queue.name, code=2).stdout
    assert "ERROR    damaged-jobs:" in text and "WARNING  damaged-jobs:" in text

    library = bullpy.doctor.diagnose(damaged.queue, recheck_delay=0)
    assert {f.severity.value for f in library.by_code("damaged-jobs")} == {"error", "warning"}
    assert damaged.digest() == before


def test_doctor_walks_in_batches(damaged: Damaged) -> None:
    """Small batches find the same jobs: ids listed in two states and suspects across batch edges."""
    from bullpy import doctor_jobs

    with damaged.queue.raw as raw:
        whole = doctor_jobs.find_damaged_jobs(damaged.queue, raw)
        small = doctor_jobs.find_damaged_jobs(damaged.queue, raw, batch_size=3)
    assert small.counts == whole.counts and small.ids == whole.ids
    assert whole.scanned == len(damaged.all_ids) + 1


def test_a_healthy_queue_has_no_damaged_jobs(queue: bullpy.Queue) -> None:
    for i in range(5):
        queue.add({"n": i, "deep": [[[["ok"]]]]}, job_id=f"h{i}")
    report = bullpy.doctor.diagnose(queue, recheck_delay=0)
    assert "damaged-jobs" not in report.codes()


def test_deep_json_writes_what_json_writes_at_any_depth() -> None:
    from bullpy.cli._output import compact, deep_json, dumps, json_text

    for value in ({"a": [1, 2.5, {"b": None, "c": "olá \"q\" \n"}], "t": True, "f": False}, [], {}, "x", 0,
                  [[["é"]], {"k": [None]}]):
        assert deep_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    deep: list[Any] = []
    node = deep
    for _ in range(30_000):
        node.append([])
        node = node[0]
    text = "[" * 30_001 + "]" * 30_001
    assert compact(deep) == json_text(deep) == json_text(deep, indent=2) == dumps(deep) == text
