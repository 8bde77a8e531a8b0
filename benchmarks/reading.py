"""Reading a big queue back: ``jobs_frame``, ``iter_jobs_frames`` to Parquet, ``export`` and ``import``.

    python benchmarks/reading.py [--jobs 1000000] [--compare-jobs 100000] [--redis-url URL] [--out FILE]
                                 [--only frame,parquet,compare,grep,transfer] [--repeat N]

Starts a private ``redis-server --save ''`` on a free port (unless ``--redis-url`` names one; then only a
fresh ``bullpy-bench-<hex>`` prefix is used and deleted), fills one queue with ``--jobs`` Bull-shaped job hashes
by pipelined writes (90% waiting, 5% completed, 4% failed, 1% delayed: what Node's ``add``/``moveToFinished``
leave), and measures, each in its own client process:

* ``jobs_frame`` over every job: rows/s, client and Redis CPU, the frame's deep size and the peak extra RSS;
* ``iter_jobs_frames(chunk_rows=100_000)`` written to Parquet: rows/s and peak extra RSS;
* ``jobs_frame(['completed'])`` against Node Bull's ``getJobs(['completed'])`` + ``toJSON()``
  (benchmarks/node_bench.js ``read``) over the same ``--compare-jobs`` completed jobs of a second queue;
* ``export_queue`` of the whole queue to a file and ``import_queue`` of that file into an empty queue under
  another prefix, checked job for job by count.

Prints a Markdown table (figure, target, ratio to the target) and writes it to ``--out``
(default benchmarks/reading.md). Needs ``bridge/node_modules`` for the Node row (left out without it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _keys import unlink_matching  # benchmarks/ is on sys.path: these run as scripts

HERE = Path(__file__).resolve().parent
NODE_BENCH = HERE / "node_bench.js"
TS0 = 1_795_800_000_000
OPTS = '{"attempts":3,"backoff":{"type":"exponential","delay":2000},"delay":%d,"timestamp":%d}'
STACK = json.dumps(["Error: whatsapp not ready\n    at send (/app/worker.js:12:11)"], separators=(",", ":"))


# --- filling -------------------------------------------------------------------------------------------------

def job_hash(i: int, state: str) -> dict[str, str]:
    """Job ``i`` as Node Bull 4 leaves it in ``state`` (addJob-6.lua, moveToActive, moveToFinished)."""
    ts = TS0 + i
    delay = 3_600_000 if state == "delayed" else 0
    data = json.dumps({"number": f"55119{i:08d}", "message": f"Olá! Mensagem {i} da campanha", "delay": 0},
                      ensure_ascii=False, separators=(",", ":"))
    fields = {"name": "__default__", "data": data, "opts": OPTS % (delay, ts), "timestamp": str(ts),
              "delay": str(delay), "priority": "0"}
    if state in ("completed", "failed"):
        fields |= {"processedOn": str(ts + 5), "finishedOn": str(ts + 9)}
    if state == "completed":
        fields["returnvalue"] = f'{{"success":true,"messageId":"m{i}"}}'
    if state == "failed":
        fields |= {"failedReason": "whatsapp not ready", "stacktrace": STACK, "attemptsMade": "3"}
    return fields


def fill(url: str, base: str, counts: dict[str, int], first_id: int = 1) -> int:
    """Write ``counts`` jobs per state under ``base`` ("prefix:name:") with pipelined writes; the last id."""
    import redis

    client = redis.Redis.from_url(url)
    i = first_id - 1
    with client.pipeline(transaction=False) as pipe:
        for state, count in counts.items():
            for _ in range(count):
                i += 1
                pipe.hset(base + str(i), mapping=job_hash(i, state))  # type: ignore[arg-type]
                if state == "wait":
                    pipe.lpush(base + "wait", str(i))
                elif state == "delayed":
                    pipe.zadd(base + "delayed", {str(i): (TS0 + i + 3_600_000) * 4096 + (i & 0xFFF)})
                else:
                    pipe.zadd(base + state, {str(i): TS0 + i + 9})
                if i % 5000 == 0:
                    pipe.execute()
        pipe.execute()
    client.set(base + "id", i)
    client.close()
    return i


# --- child processes: one measurement each, one JSON line on stdout ------------------------------------------

class Peak:
    """Peak RSS above the RSS at start, sampled every 5 ms (ru_maxrss cannot be reset)."""

    def __init__(self) -> None:
        import gc

        gc.collect()
        self.base = self.rss()
        self.peak = self.base
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    @staticmethod
    def rss() -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def sample(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.005)

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, self.rss())
        return self.peak - self.base


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_frame(url: str, prefix: str, name: str, states: str, out: str) -> None:
    import bullpy
    import bullpy.frames  # pandas' import is a one-time cost, as Node's require is untimed

    queue = bullpy.Queue(name, url, prefix=prefix)
    queue.jobs_frame(["delayed"], end=0)  # warm: the lazy imports inside pandas and pyarrow
    wanted = states.split(",")
    peak = Peak()
    cpu, t0 = _cpu(), time.perf_counter()
    if out == "-":
        frame = queue.jobs_frame(wanted)
        rows, frame_mb = len(frame), frame.memory_usage(deep=True).sum() / 2**20
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows, frame_mb, writer = 0, 0.0, None
        for frame in queue.iter_jobs_frames(wanted, chunk_rows=100_000):
            table = pa.Table.from_pandas(frame.drop(columns=["returnvalue", "progress"]), preserve_index=False)
            writer = writer or pq.ParquetWriter(out, table.schema)
            writer.write_table(table)
            rows += len(frame)
            frame_mb = max(frame_mb, frame.memory_usage(deep=True).sum() / 2**20)
            del frame, table
        if writer is not None:
            writer.close()
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu
    extra = peak.stop()
    queue.close()
    print(json.dumps({"seconds": seconds, "rows": rows, "cpu_s": cpu, "frame_mb": frame_mb, "extra_mb": extra}))


def child_transfer(url: str, prefix: str, name: str, mode: str, path: str, target_prefix: str) -> None:
    import bullpy
    from bullpy.transfer import export_queue, import_queue

    queue = bullpy.Queue(name, url, prefix=prefix if mode == "export" else target_prefix)
    peak = Peak()
    cpu, t0 = _cpu(), time.perf_counter()
    summary = export_queue(queue, path) if mode == "export" else import_queue(path, queue)
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu
    extra = peak.stop()
    queue.close()
    print(json.dumps({"seconds": seconds, "rows": summary.jobs, "cpu_s": cpu, "extra_mb": extra}))


CHILDREN: dict[str, Callable[..., None]] = {"frame": child_frame, "transfer": child_transfer}


# --- the orchestrator ----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A private redis-server (no persistence) on a free port, or an existing one by URL."""

    def __init__(self, url: str | None, folder: str) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if url is None:
            port = free_port()
            binary = shutil.which("redis-server", path="/usr/bin:/usr/local/bin") or "redis-server"
            self.proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                          "--appendonly", "no", "--dir", folder], stdout=subprocess.DEVNULL)
            url = f"redis://127.0.0.1:{port}/0"
        import redis

        self.url = url
        self.client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        if self.proc is not None:  # our own server: keep every slow call, to report them by command
            self.client.config_set("slowlog-max-len", 100_000)

    def cpu(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def delete(self, prefix: str) -> None:
        unlink_matching(self.client, f"{prefix}:*", batch=500)  # short UNLINKs: SLOWLOG is for the measured calls

    def stop(self) -> None:
        self.client.close()
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def run_child(server: Server, argv: list[str], timeout: float = 3600) -> dict[str, Any]:
    redis_cpu = server.cpu()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    result["redis_cpu_s"] = server.cpu() - redis_cpu
    return result


def py(server: Server, mode: str, *args: Any) -> dict[str, Any]:
    return run_child(server, [sys.executable, str(Path(__file__).resolve()), "--child", mode, *map(str, args)])


IMPORT_BATCH = 250  # import_queue's default batch


def pipe_ceiling(server: Server, path: str, prefix: str) -> dict[str, Any] | None:
    """Redis's own ceiling for import's writes: the export file's jobs as HSETs and pushes into queue ``big``
    under ``prefix``, packed into a file of Redis commands beforehand (not timed), then sent by
    ``redis-cli --pipe``; deleted after. None without redis-cli or hiredis."""
    cli = shutil.which("redis-cli")
    try:
        import hiredis
        import msgpack
    except ImportError:
        return None
    if cli is None:
        return None
    pack = hiredis.pack_command
    base = f"{prefix}:big:"
    resp = path + ".resp"
    with open(path, "rb") as source, open(resp, "wb") as out:
        ready: list[str] = []
        scored: dict[str, list[Any]] = {}

        def placements() -> None:
            if ready:
                out.write(pack(("RPUSH", base + "wait", *ready)))
            for state, members in scored.items():
                out.write(pack(("ZADD", base + state, *members)))
            ready.clear()
            scored.clear()

        jobs = 0
        for record in msgpack.Unpacker(source, raw=False):
            if not isinstance(record, dict) or record.get("t") != "job":
                continue
            out.write(pack(("HSET", base + record["id"], *record["hash"])))
            if record["state"] in ("wait", "paused", "active"):
                ready.append(record["id"])
            else:
                scored.setdefault(record["state"], []).extend((repr(float(record.get("score") or 0)), record["id"]))
            jobs += 1
            if jobs % IMPORT_BATCH == 0:
                placements()
        placements()
    url = urllib.parse.urlsplit(server.url)
    argv = [cli, "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 6379), "-n", (url.path or "/0")[1:] or "0"]
    with open(resp, "rb") as commands:
        redis_cpu = server.cpu()
        t0 = time.perf_counter()
        subprocess.run([*argv, "--pipe"], stdin=commands, check=True, capture_output=True)
        seconds = time.perf_counter() - t0
        redis_cpu = server.cpu() - redis_cpu
    os.unlink(resp)
    server.delete(prefix)
    return {"seconds": seconds, "redis_cpu_s": redis_cpu}


def median_run(times: int, run: Callable[[], dict[str, Any]], notes: list[str], label: str) -> dict[str, Any]:
    """``run()`` ``times`` times: the result of median rate (rows / seconds); with several runs, every run
    goes into the notes (this machine's speed varies from one minute to the next)."""
    results = [run() for _ in range(max(1, times))]
    results.sort(key=lambda r: r["rows"] / r["seconds"])
    if len(results) > 1:
        runs = ", ".join(f"{r['rows'] / r['seconds']:,.0f}/s ({r['seconds']:.2f} s)" for r in results)
        notes.append(f"{label}, {len(results)} runs: {runs}; the median is in the table.")
    return results[len(results) // 2]


def slowest(server: Server) -> str:
    """The SLOWLOG of the run by command (scripts by name): how many calls took over 10 ms, the longest."""
    import hashlib

    from bullpy._core.scripts import SOURCES

    names = {hashlib.sha1(src.encode()).hexdigest(): name for name, src in SOURCES.items()}
    longest: dict[str, list[float]] = {}
    for entry in server.client.slowlog_get(100_000):
        command = [a.decode(errors="replace") if isinstance(a, bytes) else str(a) for a in entry["command"].split()[:2]] \
            if isinstance(entry["command"], (bytes, str)) else []
        name = command[0].upper() if command else "?"
        if name == "EVALSHA" and len(command) > 1:
            name = names.get(command[1], "EVALSHA")
        longest.setdefault(name, []).append(entry["duration"] / 1000)
    if not longest:
        return "Redis SLOWLOG: no call over 10 ms."
    parts = [f"{name} {len(d)} (longest {max(d):.1f} ms, {sum(1 for x in d if x > 20):,} over 20 ms)"
             for name, d in sorted(longest.items(), key=lambda item: -max(item[1]))]
    return "Redis SLOWLOG, calls over 10 ms by command: " + "; ".join(parts) + "."


def cpu_rate(result: dict[str, Any]) -> str:
    """What the CPU seconds allow when client and Redis each have a core (they work at the same time): the
    figure to compare on a machine busy with other work, where the wall clock also counts the waiting."""
    busiest = max(result["cpu_s"], result["redis_cpu_s"])
    return f"{result['rows'] / busiest:,.0f}/s by CPU: the busier side's CPU time"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs in the big queue (default 1,000,000)")
    parser.add_argument("--compare-jobs", type=int, default=100_000,
                        help="completed jobs read by bullpy and by Node for the comparison (default 100,000)")
    parser.add_argument("--redis-url", help="use this server instead of starting a private one")
    parser.add_argument("--out", default=str(HERE / "reading.md"))
    parser.add_argument("--only", default=None,
                        help="run only these parts, comma-separated: frame, parquet, compare, grep, transfer "
                             "(export and import); default all")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of jobs_frame, grep, export and import each; the median by rate is kept and "
                             "every run listed (default 1)")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        CHILDREN[mode](*rest)
        return

    parts = {"frame", "parquet", "compare", "grep", "transfer"}
    only = parts if args.only is None else {p.strip() for p in args.only.split(",")}
    if only - parts:
        parser.error(f"--only: unknown parts {sorted(only - parts)}; use some of {sorted(parts)}")
    load_before = os.getloadavg()[0]
    folder = tempfile.mkdtemp(prefix="bullpy-reading-")
    server = Server(args.redis_url, folder)
    prefix, target_prefix = f"bullpy-bench-{uuid.uuid4().hex[:8]}", f"bullpy-bench-{uuid.uuid4().hex[:8]}"
    n = args.jobs
    counts = {"wait": n * 90 // 100, "completed": n * 5 // 100, "failed": n * 4 // 100}
    counts["delayed"] = n - sum(counts.values())
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = []
    try:
        print(f"filling {n:,} jobs ({', '.join(f'{s} {c:,}' for s, c in counts.items())}) on {server.url}",
              flush=True)
        t0 = time.perf_counter()
        last = fill(server.url, f"{prefix}:big:", counts)
        if "compare" in only:
            fill(server.url, f"{prefix}:cmp:", {"completed": args.compare_jobs}, first_id=last + 1)
        print(f"  filled in {time.perf_counter() - t0:.0f} s", flush=True)

        if "frame" in only:
            print("jobs_frame over every job", flush=True)
            frame = median_run(args.repeat, lambda: py(server, "frame", server.url, prefix, "big",
                                                       "waiting,delayed,completed,failed", "-"), notes, "jobs_frame")
            rate = frame["rows"] / frame["seconds"]
            ratio = frame["extra_mb"] / frame["frame_mb"]
            rows.append((f"jobs_frame, {frame['rows']:,} jobs: rows/s", f"{rate:,.0f}", "≥ 150,000", f"{rate / 150_000:.2f}"))
            rows.append(("jobs_frame: peak extra RSS / frame deep size",
                         f"{ratio:.2f}x ({frame['extra_mb']:,.0f} MB / {frame['frame_mb']:,.0f} MB)", "≤ 2x",
                         f"{2 / ratio:.2f}"))
            notes.append(f"jobs_frame over {frame['rows']:,} jobs: {frame['seconds']:.2f} s, client CPU "
                         f"{frame['cpu_s']:.2f} s, Redis CPU {frame['redis_cpu_s']:.2f} s ({cpu_rate(frame)}).")

        if "parquet" in only:
            print("iter_jobs_frames(chunk_rows=100_000) to Parquet", flush=True)
            parquet = os.path.join(folder, "jobs.parquet")
            stream = py(server, "frame", server.url, prefix, "big", "waiting,delayed,completed,failed", parquet)
            rows.append((f"iter_jobs_frames to Parquet, {stream['rows']:,} jobs: rows/s",
                         f"{stream['rows'] / stream['seconds']:,.0f}", "", ""))
            rows.append(("iter_jobs_frames to Parquet: peak extra RSS",
                         f"{stream['extra_mb']:,.0f} MB (largest frame {stream['frame_mb']:,.0f} MB)", "", ""))

        if "compare" in only:
            print(f"jobs_frame(['completed']) and Node getJobs + toJSON over {args.compare_jobs:,} jobs", flush=True)
            ours = py(server, "frame", server.url, prefix, "cmp", "completed", "-")
            ours_rate = ours["rows"] / ours["seconds"]
            if (HERE.parent / "bridge" / "node_modules" / "bull").is_dir() and shutil.which("node"):
                node = run_child(server, ["node", str(NODE_BENCH), "read", server.url, prefix, "cmp", str(args.compare_jobs)])
                node_rate = node["jobs"] / node["seconds"]
                rows.append((f"jobs_frame / Node getJobs + toJSON, {args.compare_jobs:,} completed jobs",
                             f"{ours_rate / node_rate:.2f}x ({ours_rate:,.0f} / {node_rate:,.0f} rows/s)", "≥ 2x",
                             f"{ours_rate / node_rate / 2:.2f}"))
            else:
                rows.append(("jobs_frame / Node getJobs + toJSON",
                             f"Node not measured ({ours_rate:,.0f} rows/s for bullpy): run `cd bridge && npm ci`", "≥ 2x", ""))

        if "grep" in only:
            print("bullpy jobs --state waiting --grep (a text no job holds: every waiting job is searched)", flush=True)
            cli = [sys.executable, "-m", "bullpy.cli", "--redis", server.url, "--prefix", prefix, "jobs", "big",
                   "--state", "waiting", "--grep", "no-such-text-anywhere", "-n", "20", "--format", "json"]

            def grep_once() -> dict[str, Any]:
                t0 = time.perf_counter()
                subprocess.run(cli, check=True, capture_output=True)
                return {"rows": counts["wait"], "seconds": time.perf_counter() - t0}

            grep_s = median_run(args.repeat, grep_once, notes, "jobs --grep")["seconds"]
            rows.append((f"bullpy jobs --grep over {counts['wait']:,} waiting jobs: seconds", f"{grep_s:.2f}", "≤ 5",
                         f"{5 / grep_s:.2f}"))

        if "transfer" in only:
            print("export and import", flush=True)
            path = os.path.join(folder, "big.bullpy")
            exported = median_run(args.repeat, lambda: py(server, "transfer", server.url, prefix, "big", "export", path,
                                                          target_prefix), notes, "export")

            def import_once() -> dict[str, Any]:
                server.delete(target_prefix)  # each run into an empty queue (deleting is not timed)
                return py(server, "transfer", server.url, prefix, "big", "import", path, target_prefix)

            imported = median_run(args.repeat, import_once, notes, "import")
            if exported["rows"] != n or imported["rows"] != n:
                raise SystemExit(f"exported {exported['rows']:,} and imported {imported['rows']:,} of {n:,} jobs")
            for label, result in (("export", exported), ("import", imported)):
                rate = result["rows"] / result["seconds"]
                rows.append((f"{label}, {result['rows']:,} jobs: jobs/s", f"{rate:,.0f}", "≥ 100,000", f"{rate / 100_000:.2f}"))
                notes.append(f"{label}: {result['seconds']:.2f} s, client CPU {result['cpu_s']:.2f} s, Redis CPU "
                             f"{result['redis_cpu_s']:.2f} s ({cpu_rate(result)}), peak extra RSS "
                             f"{result['extra_mb']:,.0f} MB.")
            notes.append(f"export file: {os.path.getsize(path) / 2**20:,.0f} MB.")
        notes.append(slowest(server))
        if "transfer" in only:
            # After SLOWLOG is read: deleting the imported copy and the ceiling's own pushes are not ours to count.
            print("Redis's ceiling for the import's writes (redis-cli --pipe)", flush=True)
            server.delete(target_prefix)
            ceiling = pipe_ceiling(server, path, f"{target_prefix}-ceiling")
            if ceiling is not None:
                rate = n / ceiling["seconds"]
                ours = imported["rows"] / imported["seconds"]
                rows.append(("import / Redis's own ceiling (the same writes, unchecked, from `redis-cli --pipe`)",
                             f"{ours / rate:.2f} ({ours:,.0f} / {rate:,.0f} jobs/s)", "", ""))
                notes.append(f"the ceiling: every job's HSET and its list push or zset add, {IMPORT_BATCH} ids a "
                             f"push, packed in advance and piped by `redis-cli --pipe` (C, no Python): "
                             f"{ceiling['seconds']:.2f} s, Redis CPU {ceiling['redis_cpu_s']:.2f} s. No validation, no "
                             "conflict or type checks, no transaction: what Redis alone can take on this machine.")
    finally:
        if args.redis_url:
            server.delete(prefix)
            server.delete(target_prefix)
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)

    cores = os.cpu_count()
    load = os.getloadavg()[0]
    lines = [
        f"## Reading {n:,} jobs (`python benchmarks/reading.py --jobs {n}`, {time.strftime('%Y-%m-%d')})",
        "",
        f"{cores} cores, load average {load_before:.1f} at the start and {load:.1f} at the end (other work on the "
        "machine makes the wall clock count waiting for a core; see the CPU figures below); "
        + ("a private redis-server without persistence" if not args.redis_url else f"Redis at {args.redis_url}"),
        "",
        "| measurement | measured | target | vs target (≥ 1: met) |",
        "|---|---:|---:|---:|",
        *(f"| {label} | {value} | {target} | {ratio} |" for label, value, target, ratio in rows),
        "",
        *(f"- {note}" for note in notes),
    ]
    table = "\n".join(lines) + "\n"
    Path(args.out).write_text(table, encoding="utf-8")
    print()
    print(table)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
