"""Benchmark bullpy against Node Bull 4.16.5 (and BullMQ's Python worker) on one Redis.

    python benchmarks/run.py [--jobs N] [--produce-jobs M] [--quick] [--redis-url URL] [--no-pin]

Prints a Markdown table and writes it to benchmarks/results.md. Every measurement runs in its own
client process (``taskset -c 1`` when available, so the clients share one core and Redis can have the
other), on queues under a fresh ``bullpy-bench-<hex>`` prefix whose keys are deleted at the end.

Needs: bullpy installed (``pip install -e .``), ``bridge/node_modules`` (``cd bridge && npm ci``), and for
the BullMQ rows ``pip install bullmq`` (reported as "not installed" otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _keys import unlink_matching  # benchmarks/ is on sys.path: these run as scripts

HERE = Path(__file__).resolve().parent
NODE_BENCH = HERE / "node_bench.js"
JOB_OPTS = {"attempts": 3, "backoff": {"type": "exponential", "delay": 2000}}
DEFAULT_WORKER_JOBS = 20_000
DEFAULT_PRODUCE_JOBS = 100_000


def whatsapp(i: int) -> dict[str, Any]:
    return {"number": f"55119{i:08d}", "message": f"Olá! Mensagem {i} da campanha", "delay": 0}


# --- child processes: one measurement each, one JSON line on stdout ------------------------------------------
def _report(result: dict[str, Any]) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    print(json.dumps(result), flush=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_py_worker(url: str, prefix: str, name: str, jobs: int, concurrency: int) -> None:
    import bullpy
    from bullpy.worker import Worker

    queue = bullpy.Queue(name, url, prefix=prefix)
    queue.client.ping()
    done = threading.Event()
    lock = threading.Lock()
    count = [0]

    def on_completed(job: Any, result: Any) -> None:
        with lock:
            count[0] += 1
            if count[0] == jobs:
                done.set()

    queue.on("completed", on_completed)
    cpu0 = _cpu()
    t0 = time.perf_counter()
    worker = Worker(queue, lambda job: None, concurrency=concurrency).start()
    done.wait()
    seconds = time.perf_counter() - t0
    cpu_run = _cpu() - cpu0
    worker.close()
    queue.close()
    _report({"seconds": seconds, "jobs": count[0], "cpu_run_s": cpu_run})


def noop(job: Any) -> None:
    """The handler `bullpy worker` runs in the processes row (``run:noop``, imported from this folder)."""


def child_py_worker_processes(url: str, prefix: str, name: str, jobs: int, processes: int, concurrency: int) -> None:
    """``bullpy worker --processes N``; timed on the jobs' own stamps, from the first job taken (processedOn)
    to the last finished (finishedOn), so the processes' start-up is left out; CPU and RSS include it."""
    import redis

    client = redis.Redis.from_url(url)
    completed = f"{prefix}:{name}:completed"
    argv = [sys.executable, "-m", "bullpy.cli", "--redis", url, "--prefix", prefix, "worker", name, "run:noop",
            "--processes", str(processes), "--concurrency", str(concurrency), "--log-level", "warning"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=HERE)
    try:
        while client.zcard(completed) < jobs:
            if proc.poll() is not None:
                raise RuntimeError(f"bullpy worker exited with status {proc.returncode}")
            time.sleep(0.005)
        wall = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finished = client.zrange(completed, 0, -1, withscores=True)
    with client.pipeline(transaction=False) as pipe:
        for job_id, _ in finished:
            pipe.hget(f"{prefix}:{name}:{job_id.decode()}", "processedOn")
        processed = [int(v) for v in pipe.execute()]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the supervisor and its worker processes
    print(json.dumps({"seconds": (max(score for _, score in finished) - min(processed)) / 1000, "jobs": len(finished),
                      "wall_s": wall, "cpu_run_s": usage.ru_utime + usage.ru_stime,
                      "peak_rss_mb": usage.ru_maxrss / 1024}), flush=True)


def child_bullmq_preload(url: str, prefix: str, name: str, jobs: int) -> None:
    from bullmq import Queue

    async def main() -> None:
        queue = Queue(name, {"connection": url, "prefix": prefix})
        for start in range(0, jobs, 1000):
            await queue.addBulk([{"name": "send", "data": whatsapp(i)} for i in range(start, min(jobs, start + 1000))])
        await queue.close()

    asyncio.run(main())
    _report({"jobs": jobs})


def child_bullmq_worker(url: str, prefix: str, name: str, jobs: int, concurrency: int) -> None:
    from bullmq import Worker

    async def main() -> dict[str, Any]:
        done = asyncio.Event()
        count = [0]

        async def process(job: Any, token: str) -> None:
            return None

        def on_completed(job: Any, result: Any) -> None:
            count[0] += 1
            if count[0] == jobs:
                done.set()

        cpu0 = _cpu()
        t0 = time.perf_counter()
        worker = Worker(name, process, {"connection": url, "prefix": prefix, "concurrency": concurrency})
        worker.on("completed", on_completed)
        await done.wait()
        seconds = time.perf_counter() - t0
        cpu_run = _cpu() - cpu0
        await worker.close()
        return {"seconds": seconds, "jobs": count[0], "cpu_run_s": cpu_run}

    _report(asyncio.run(main()))


#: Bull's addJob script with the keys and arguments Node's add() sends, piped from a file by redis-cli.
CEILING = "Redis ceiling: Bull's add script, pre-packed, redis-cli --pipe"


def child_py_produce(url: str, prefix: str, name: str, jobs: int, mode: str) -> None:
    import bullpy

    queue = bullpy.Queue(name, url, prefix=prefix)
    queue.client.ping()
    t0 = time.perf_counter()
    if mode == "frame":
        import pandas as pd

        rows = [whatsapp(i) for i in range(jobs)]
        frame = pd.DataFrame(rows)
        t0 = time.perf_counter()  # the frame is the caller's: time only the load
        queue.add_frame(frame, attempts=3, backoff={"type": "exponential", "delay": 2000}, chunk_size=1000,
                        progress=False)
    elif mode == "bulk":
        for start in range(0, jobs, 1000):
            # One add_bulk call per 1000 jobs, as a caller streaming a campaign would do.
            queue.add_bulk(
                [{"data": whatsapp(i), "opts": JOB_OPTS} for i in range(start, min(jobs, start + 1000))],
                batch_size=1000,
            )
    else:
        for i in range(jobs):
            queue.add(whatsapp(i), attempts=3, backoff={"type": "exponential", "delay": 2000})
    seconds = time.perf_counter() - t0
    queue.close()
    _report({"seconds": seconds, "jobs": jobs})


def child_py_read(url: str, prefix: str, name: str, expected: int, mode: str) -> None:
    import bullpy

    queue = bullpy.Queue(name, url, prefix=prefix)
    queue.client.ping()
    if mode == "jobs_frame":
        import bullpy.frames  # noqa: F401  (pandas' import is a one-time cost, as Node's require is untimed)
    t0 = time.perf_counter()
    if mode == "jobs_frame":
        frame = queue.jobs_frame(["completed"])
        jobs = list(range(len(frame)))
    elif mode == "get_completed":
        jobs = queue.get_completed()
    elif mode == "get_jobs":
        jobs = queue.get_jobs(["completed"])
    else:  # get_jobs + to_dict: the same work as Node's getJobs + toJSON
        jobs = queue.get_jobs(["completed"])
        [job.to_dict() for job in jobs]
    seconds = time.perf_counter() - t0
    if len(jobs) != expected:
        raise SystemExit(f"read {len(jobs)} jobs, expected {expected}")
    queue.close()
    _report({"seconds": seconds, "jobs": len(jobs)})


def child_py_memory(url: str, prefix: str, name: str, rows: int) -> None:
    """Peak memory while add_frame loads a rows-long campaign, against the frame's own size."""
    import threading

    import pandas as pd

    import bullpy

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    queue = bullpy.Queue(name, url, prefix=prefix)
    frame = pd.DataFrame({
        "customer_id": range(rows),
        "number": [f"55119{i:08d}" for i in range(rows)],
        "message": [f"Olá! Mensagem {i} da campanha" for i in range(rows)],
    })
    frame_mb = frame.memory_usage(deep=True).sum() / 2**20
    import gc

    gc.collect()
    base = rss_mb()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    result = queue.add_frame(frame, data=["number", "message"], job_id="c-{customer_id}", progress=False)
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    queue.close()
    _report({"seconds": seconds, "jobs": len(result), "frame_mb": frame_mb, "extra_mb": peak[0] - base,
             "base_mb": base})


def child_py_cli(url: str, prefix: str, name: str, jobs: int) -> None:
    """Fill a queue with ``jobs`` jobs in several states, then count the Redis round trips (and time) of
    ``bullpy stats`` and ``bullpy jobs -n 20`` on it, in-process through click."""
    import redis.connection
    from click.testing import CliRunner

    import bullpy
    from bullpy.cli import main as cli

    queue = bullpy.Queue(name, url, prefix=prefix)
    batch = 5_000
    for start in range(0, jobs, batch):
        n = min(batch, jobs - start)
        # Every tenth job delayed, the rest waiting: the counts span lists and sorted sets.
        queue.add_bulk([{"data": whatsapp(start + i), "opts": {"delay": 3_600_000} if (start + i) % 10 == 0 else {}}
                        for i in range(n)], batch_size=1000)
    sends = [0]
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sends[0] += 1  # one call per request written: a single command or a whole pipeline
        original(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    out: dict[str, Any] = {"jobs": jobs}
    runner = CliRunner()
    for label, argv in (("stats", ["stats", name]), ("jobs", ["jobs", name, "-n", "20"])):
        sends[0] = 0
        t0 = time.perf_counter()
        result = runner.invoke(cli, ["--redis", url, "--prefix", prefix, "--format", "json", *argv])
        out[f"{label}_seconds"] = time.perf_counter() - t0
        if result.exit_code != 0:
            raise RuntimeError(result.output)
        out[f"{label}_round_trips"] = sends[0]
    redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
    code = "import sys, bullpy.cli; print(sorted(m for m in ('pandas', 'ipywidgets', 'numpy') if m in sys.modules))"
    t0 = time.perf_counter()
    light = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    out["import_seconds"] = time.perf_counter() - t0
    out["heavy_modules"] = light.stdout.strip()
    queue.close()
    _report(out)


CHILDREN = {
    "py-cli": child_py_cli,
    "py-memory": child_py_memory,
    "py-worker": child_py_worker,
    "py-worker-processes": child_py_worker_processes,
    "bullmq-preload": child_bullmq_preload,
    "bullmq-worker": child_bullmq_worker,
    "py-produce": child_py_produce,
    "py-read": child_py_read,
}


# --- the orchestrator ----------------------------------------------------------------------------------------
class Bench:
    def __init__(self, url: str, pin: bool) -> None:
        import redis

        self.url = url
        self.redis = redis.Redis.from_url(url)
        self.redis.ping()
        self.prefix = f"bullpy-bench-{uuid.uuid4().hex[:8]}"
        self.pin = pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) > 1
        self.rows: list[dict[str, Any]] = []
        self.repeat = 1
        self.node_version = ""
        self.bullmq_missing = ""
        self.notes: list[str] = []

    def _pinned(self, argv: list[str]) -> list[str]:
        return ["taskset", "-c", "1", *argv] if self.pin else argv

    def _redis_cpu(self) -> float:
        info = self.redis.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def run_child(self, argv: list[str], timeout: float = 1800) -> dict[str, Any]:
        cpu0 = self._redis_cpu()
        proc = subprocess.run(self._pinned(argv), capture_output=True, text=True, timeout=timeout)
        redis_cpu = self._redis_cpu() - cpu0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        result: dict[str, Any] = json.loads(lines[-1])
        result["redis_cpu_s"] = redis_cpu
        return result

    def py(self, mode: str, *args: Any) -> dict[str, Any]:
        return self.run_child([sys.executable, str(Path(__file__).resolve()), "--child", mode, *map(str, args)])

    def node(self, mode: str, *args: Any) -> dict[str, Any]:
        return self.run_child(["node", str(NODE_BENCH), mode, *map(str, args)])

    def queue_name(self, label: str) -> str:
        return f"{label}-{uuid.uuid4().hex[:6]}"

    def delete_queue(self, name: str) -> None:
        unlink_matching(self.redis, f"{self.prefix}:{name}:*")

    def cleanup(self) -> None:
        unlink_matching(self.redis, f"{self.prefix}:*")

    def add(self, section: str, label: str, result: dict[str, Any] | None, note: str = "") -> None:
        self.rows.append({"section": section, "label": label, "result": result, "note": note})

    def measure(self, section: str, contenders: list[tuple[str, Callable[[], dict[str, Any]]]]) -> None:
        """Run every contender ``self.repeat`` times, interleaved round by round (so drift in the shared
        machine hits all alike), and keep the median run of each by jobs/s."""
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in contenders}
        errors: dict[str, str] = {}
        for round_no in range(self.repeat):
            for label, fn in contenders:
                if label in errors:
                    continue
                try:
                    result = fn()
                except Exception as exc:  # report it in the table, do not abort the whole run
                    errors[label] = f"failed: {str(exc).strip().splitlines()[-1][:150]}"
                    print(f"  {label:<48} {errors[label]}", flush=True)
                    continue
                result["rate"] = result["jobs"] / result["seconds"]
                runs[label].append(result)
                print(f"  [{round_no + 1}/{self.repeat}] {label:<48} {result['rate']:>10,.0f} jobs/s  "
                      f"{result['seconds']:7.2f} s  rss {result.get('peak_rss_mb', 0):6.0f} MB", flush=True)
        for label, _ in contenders:
            results = sorted(runs[label], key=lambda r: r["rate"])
            if not results:
                self.add(section, label, None, errors.get(label, "no result"))
                continue
            median = dict(results[len(results) // 2])
            median["rates"] = [r["rate"] for r in runs[label]]
            self.add(section, label, median, errors.get(label, ""))

    def rate(self, label: str) -> float | None:
        for row in self.rows:
            if row["label"] == label and row["result"] is not None:
                return float(row["result"]["jobs"] / row["result"]["seconds"])
        return None

    # --- the three sections --------------------------------------------------------------------------------
    def preload_bull(self, name: str, jobs: int) -> None:
        import bullpy

        queue = bullpy.Queue(name, self.redis, prefix=self.prefix)
        for start in range(0, jobs, 1000):
            queue.add_bulk([{"data": whatsapp(i)} for i in range(start, min(jobs, start + 1000))])
        assert queue.get_waiting_count() == jobs

    def worker_run(self, kind: str, jobs: int, concurrency: int) -> dict[str, Any]:
        name = self.queue_name(f"{kind}-c{concurrency}")
        try:
            if kind == "bullmq":
                self.py("bullmq-preload", self.url, self.prefix, name, jobs)
                return self.py("bullmq-worker", self.url, self.prefix, name, jobs, concurrency)
            self.preload_bull(name, jobs)
            if kind == "node":
                return self.node("worker", self.url, self.prefix, name, jobs, concurrency)
            if kind == "py-processes":  # two processes sharing the concurrency
                return self.py("py-worker-processes", self.url, self.prefix, name, jobs, 2, concurrency // 2)
            return self.py("py-worker", self.url, self.prefix, name, jobs, concurrency)
        finally:
            self.delete_queue(name)

    def workers(self, jobs: int) -> None:
        print(f"Workers: {jobs:,} no-op jobs each, pre-loaded into a fresh queue", flush=True)
        for concurrency in (1, 50):
            contenders: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                (f"bullpy Worker, concurrency {concurrency}", lambda c=concurrency: self.worker_run("py", jobs, c)),
                (f"Node Bull process(), concurrency {concurrency}",
                 lambda c=concurrency: self.worker_run("node", jobs, c)),
            ]
            if concurrency > 1:
                contenders.insert(1, (f"bullpy worker --processes 2, concurrency {concurrency // 2} each",
                                      lambda c=concurrency: self.worker_run("py-processes", jobs, c)))
            label = f"BullMQ Python Worker, concurrency {concurrency}"
            if self.bullmq_missing:
                self.add("workers", label, None, self.bullmq_missing)
            else:
                contenders.append((label, lambda c=concurrency: self.worker_run("bullmq", jobs, c)))
            self.measure("workers", contenders)

    def produce_run(self, side: str, mode: str, jobs: int) -> dict[str, Any]:
        name = self.queue_name("produce")
        try:
            if side == "py":
                result = self.py("py-produce", self.url, self.prefix, name, jobs, mode)
            else:
                result = self.node(mode, self.url, self.prefix, name, jobs, 1000 if mode == "addBulk" else 100)
            waiting = self.redis.llen(f"{self.prefix}:{name}:wait")
            if waiting != jobs:
                raise RuntimeError(f"the wait list has {waiting} jobs, expected {jobs}")
            return result
        finally:
            self.delete_queue(name)

    def producing(self, jobs: int) -> None:
        print(f"Producing: {jobs:,} WhatsApp-shaped jobs (attempts 3, exponential backoff 2000)", flush=True)
        self.measure("producing", [
            ("bullpy add_frame (chunks of 1000)", lambda: self.produce_run("py", "frame", jobs)),
            ("bullpy add_bulk (batches of 1000)", lambda: self.produce_run("py", "bulk", jobs)),
            ("Node Bull addBulk (batches of 1000)", lambda: self.produce_run("node", "addBulk", jobs)),
            ("bullpy add, one at a time", lambda: self.produce_run("py", "single", jobs)),
            ("Node Bull add, 100 in flight", lambda: self.produce_run("node", "add", jobs)),
            # No client cost at all: what Redis alone takes of Bull's add (the stretch target's ceiling).
            (CEILING, lambda: self.produce_run("node", "addCeiling", jobs)),
        ])

    def reading(self, jobs: int) -> None:
        print(f"Reading: {jobs:,} completed jobs (written by a Node Bull worker)", flush=True)
        name = self.queue_name("read")
        self.preload_bull(name, jobs)
        self.node("worker", self.url, self.prefix, name, jobs, 50)
        try:
            contenders: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                (label, lambda m=mode: self.py("py-read", self.url, self.prefix, name, jobs, m))
                for label, mode in (
                    ("bullpy jobs_frame(['completed'])", "jobs_frame"),
                    ("bullpy get_completed()", "get_completed"),
                    ("bullpy get_jobs(['completed'])", "get_jobs"),
                    ("bullpy get_jobs(['completed']) + to_dict()", "get_jobs_dict"),
                )
            ]
            contenders.append(("Node Bull getJobs(['completed']) + toJSON()",
                               lambda: self.node("read", self.url, self.prefix, name, jobs)))
            self.measure("reading", contenders)
        finally:
            self.delete_queue(name)

    def cli(self, sizes: list[int]) -> None:
        print(f"CLI: Redis round trips of `bullpy stats` on queues of {', '.join(f'{n:,}' for n in sizes)} jobs",
              flush=True)
        self.cli_results = []
        for size in sizes:
            name = self.queue_name("cli")
            try:
                self.cli_results.append(self.py("py-cli", self.url, self.prefix, name, size))
            finally:
                self.delete_queue(name)

    def memory(self, rows: int) -> None:
        print(f"Memory: loading a {rows:,}-row campaign with add_frame", flush=True)
        name = self.queue_name("memory")
        try:
            self.memory_result = self.py("py-memory", self.url, self.prefix, name, rows)
            self.memory_rows = rows
        finally:
            self.delete_queue(name)

    # --- the report ----------------------------------------------------------------------------------------
    def ratio(self, a: str, b: str) -> str:
        ra, rb = self.rate(a), self.rate(b)
        return "n/a" if ra is None or rb is None else f"{ra / rb:.2f}x"

    def markdown(self, worker_jobs: int, produce_jobs: int) -> str:
        redis_info = self.redis.info("server")
        speed = calibration()
        lines = [
            "# bullpy benchmark results",
            "",
            f"`python benchmarks/run.py --jobs {worker_jobs} --produce-jobs {produce_jobs}`, "
            f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}. "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, Node {self.node_version}, "
            f"Redis {redis_info['redis_version']} on {self.url}; machine speed: a fixed pure-Python loop takes "
            f"{speed:.2f} s (best of 3; compare it between runs: the machines these run on differ); "
            + ("every client process pinned to core 1 with `taskset -c 1` (the Redis server is not re-pinned)."
               if self.pin else "clients not pinned."),
            f"Each row is the median of {self.repeat} run(s) by jobs/s (all runs listed; contenders interleaved "
            "round by round). "
            "Jobs/s = jobs / wall time of the measured part; client CPU = the client process's user+sys over "
            "the measurement; Redis CPU = the server's used_cpu_user+sys delta over the client's run "
            "(Redis is shared, so it includes any other traffic); peak RSS of the client process.",
            "",
        ]
        sections = {
            "workers": f"Workers: {worker_jobs:,} no-op jobs pre-loaded into a fresh queue, timed from worker start "
                       "to the last `completed` event (`--processes 2`: from the first job's processedOn to the last "
                       "finishedOn, leaving the processes' start-up out)",
            "producing": f"Producing: {produce_jobs:,} WhatsApp-shaped jobs `{{number, message, delay}}`, "
                         "`attempts: 3, backoff: {type: 'exponential', delay: 2000}`",
            "reading": f"Reading: {worker_jobs:,} completed jobs",
        }
        for section, title in sections.items():
            lines += [f"## {title}", "",
                      "| | jobs/s (median) | all runs, jobs/s | seconds | client CPU s | Redis CPU s | peak RSS MB |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for row in self.rows:
                if row["section"] != section:
                    continue
                r = row["result"]
                if r is None:
                    lines.append(f"| {row['label']} | {row['note']} | | | | | |")
                    continue
                cpu = r.get("cpu_run_s", r.get("cpu_s", 0.0))
                note = f" {row['note']}" if row["note"] else ""
                lines.append(
                    f"| {row['label']}{note} | {r['rate']:,.0f} | {', '.join(f'{x:,.0f}' for x in r['rates'])} | "
                    f"{r['seconds']:.2f} | "
                    f"{cpu:.2f} | {r['redis_cpu_s']:.2f} | {r.get('peak_rss_mb', 0):.0f} |"
                )
            lines.append("")
        py1, py50 = "bullpy Worker, concurrency 1", "bullpy Worker, concurrency 50"
        node1, node50 = "Node Bull process(), concurrency 1", "Node Bull process(), concurrency 50"
        mq1, mq50 = "BullMQ Python Worker, concurrency 1", "BullMQ Python Worker, concurrency 50"
        lines += [
            "## Ratios",
            "",
            "| | ratio | target |",
            "|---|---:|---|",
            f"| bullpy / BullMQ Python worker, concurrency 50 | {self.ratio(py50, mq50)} | ≥ 3x |",
            f"| bullpy / Node Bull worker, concurrency 50 | {self.ratio(py50, node50)} | ≥ 0.8x |",
            f"| bullpy worker --processes 2 (25 each) / Node Bull worker, concurrency 50 | "
            f"{self.ratio('bullpy worker --processes 2, concurrency 25 each', node50)} | |",
            f"| bullpy / BullMQ Python worker, concurrency 1 | {self.ratio(py1, mq1)} | |",
            f"| bullpy / Node Bull worker, concurrency 1 | {self.ratio(py1, node1)} | |",
            f"| bullpy add_frame / Node addBulk | "
            f"{self.ratio('bullpy add_frame (chunks of 1000)', 'Node Bull addBulk (batches of 1000)')} | ≥ 2x |",
            f"| bullpy add_frame / Node add (100 in flight) | "
            f"{self.ratio('bullpy add_frame (chunks of 1000)', 'Node Bull add, 100 in flight')} | ≥ 1.5x |",
            f"| bullpy add_frame / Redis's ceiling (Bull's add script, pre-packed, `redis-cli --pipe`) | "
            f"{self.ratio('bullpy add_frame (chunks of 1000)', CEILING)} | ≥ 0.7x (stretch) |",
            f"| bullpy jobs_frame / Node getJobs + toJSON | "
            f"{self.ratio(chr(98) + 'ullpy jobs_frame([' + chr(39) + 'completed' + chr(39) + '])', 'Node Bull getJobs([' + chr(39) + 'completed' + chr(39) + ']) + toJSON()')} | ≥ 2x |",
            f"| bullpy add_bulk / Node addBulk | "
            f"{self.ratio('bullpy add_bulk (batches of 1000)', 'Node Bull addBulk (batches of 1000)')} | |",
            f"| bullpy add (sequential) / Node add (100 in flight) | "
            f"{self.ratio('bullpy add, one at a time', 'Node Bull add, 100 in flight')} | |",
            f"| bullpy get_completed() / Node getJobs + toJSON | "
            f"{self.ratio('bullpy get_completed()', 'Node Bull getJobs([' + chr(39) + 'completed' + chr(39) + ']) + toJSON()')}"
            " | |",
            "",
        ]
        memory = getattr(self, "memory_result", None)
        if memory:
            ratio = memory["extra_mb"] / memory["frame_mb"] if memory["frame_mb"] else float("nan")
            lines += [
                f"## Memory: add_frame of a {self.memory_rows:,}-row campaign",
                "",
                "| frame (deep) MB | process RSS before the load MB | peak extra RSS during the load MB | ratio | target | jobs/s |",
                "|---:|---:|---:|---:|---|---:|",
                f"| {memory['frame_mb']:.0f} | {memory['base_mb']:.0f} | {memory['extra_mb']:.0f} | {ratio:.2f}x | < 3x | "
                f"{memory['jobs'] / memory['seconds']:,.0f} |",
                "",
            ]
        cli_results = getattr(self, "cli_results", None)
        if cli_results:
            trips = {r["stats_round_trips"] for r in cli_results}
            lines += [
                "## CLI: `bullpy stats` and `bullpy jobs -n 20` (round trips counted on the client's socket)",
                "",
                "| jobs in the queue | stats round trips | stats seconds | jobs -n 20 round trips | jobs seconds |",
                "|---:|---:|---:|---:|---:|",
                *(f"| {r['jobs']:,} | {r['stats_round_trips']} | {r['stats_seconds']:.3f} | {r['jobs_round_trips']} | "
                  f"{r['jobs_seconds']:.3f} |" for r in cli_results),
                "",
                f"Target: a constant number of round trips whatever the size: "
                f"{'met' if len(trips) == 1 else 'NOT met'}. `import bullpy.cli` loaded "
                f"{cli_results[-1]['heavy_modules']} of pandas/ipywidgets/numpy "
                f"({cli_results[-1]['import_seconds']:.2f} s for the whole interpreter start).",
                "",
            ]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def calibration() -> float:
    """Seconds a fixed pure-Python loop takes (best of three): how fast this machine is, to compare runs."""
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        sum(i * i for i in range(3_000_000))
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, help=f"jobs per worker run and read (default {DEFAULT_WORKER_JOBS:,})")
    parser.add_argument("--produce-jobs", type=int, help=f"jobs per producer run (default {DEFAULT_PRODUCE_JOBS:,})")
    parser.add_argument("--repeat", type=int, help="runs per measurement, median kept (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="2,000 worker jobs, 10,000 producer jobs, 1 run each")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--no-pin", action="store_true", help="do not pin client processes with taskset")
    parser.add_argument("--only", default="workers,producing,reading,memory,cli,scale,million",
                        help="comma-separated sections to run (default: all five)")
    parser.add_argument("--cli-jobs", type=int, help="size of the large queue of the cli section "
                        "(default 1,000,000; 20,000 with --quick)")
    parser.add_argument("--memory-rows", type=int, help="rows of the memory run (default 1,000,000; 50,000 with --quick)")
    parser.add_argument("--scale-jobs", type=int, help="queue size of the scale and million sections "
                        "(default 1,000,000; 50,000 with --quick)")
    parser.add_argument("--out", default=str(HERE / "results.md"))
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        mode, *rest = args.child
        CHILDREN[mode](*[int(a) if a.isdigit() else a for a in rest])
        return

    worker_jobs = args.jobs or (2_000 if args.quick else DEFAULT_WORKER_JOBS)
    produce_jobs = args.produce_jobs or (10_000 if args.quick else DEFAULT_PRODUCE_JOBS)
    bench = Bench(args.redis_url, pin=not args.no_pin)
    bench.repeat = max(1, args.repeat or (1 if args.quick else 3))
    bench.node_version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    try:
        import bullmq  # noqa: F401

        bench.bullmq_missing = ""
        from importlib.metadata import version

        bench.notes.append(f"BullMQ Python {version('bullmq')} (its own queue layout, `bullmq` queues), "
                           "with an `async def` no-op processor.")
    except ImportError:
        bench.bullmq_missing = "not installed (`pip install bullmq`)"
    server_pid = bench.redis.info("server").get("process_id")
    if bench.pin:
        affinity = subprocess.run(["taskset", "-p", str(server_pid)], capture_output=True, text=True).stdout.strip()
        bench.notes.append(f"Redis server pid {server_pid}: {affinity or 'affinity unknown (not local?)'}.")
    import redis.utils

    bench.notes.append("redis-py " + redis.__version__ + (" with hiredis" if redis.utils.HIREDIS_AVAILABLE else
                       " with its pure-Python parser (hiredis not installed)") + " in every Python client.")
    clients = bench.redis.info("clients").get("connected_clients")
    bench.notes.append(f"Redis had {clients} connected clients when the run started (shared server).")
    print(f"prefix {bench.prefix}; clients pinned to core 1: {bench.pin}", flush=True)

    sections = set(args.only.split(","))
    try:
        if "workers" in sections:
            bench.workers(worker_jobs)
        if "producing" in sections:
            bench.producing(produce_jobs)
        if "reading" in sections:
            bench.reading(worker_jobs)
        if "memory" in sections:
            bench.memory(args.memory_rows or (50_000 if args.quick else 1_000_000))
        if "cli" in sections:
            bench.cli([1_000, args.cli_jobs or (20_000 if args.quick else 1_000_000)])
    finally:
        bench.cleanup()
    table = bench.markdown(worker_jobs, produce_jobs)
    # The production-size sections fill their own private redis-server (so SLOWLOG and memory belong to
    # them alone); each is its own script, run here so one command measures every target.
    scale_jobs = args.scale_jobs or (50_000 if args.quick else 1_000_000)
    for section, script, title in (
        ("scale", "scale.py", "Management on a queue of {n:,} jobs: no single Redis command over 20 ms"),
        ("million", "reading.py", "Reading, export and import at {n:,} jobs"),
    ):
        if section in sections:
            out = HERE / f"{section}.md"
            repeat = ["--repeat", str(min(bench.repeat, 3))] if section == "million" else []
            subprocess.run([sys.executable, str(HERE / script), "--jobs", str(scale_jobs), "--out", str(out), *repeat],
                           check=True)
            table += f"\n#### {title.format(n=scale_jobs)}\n\n" + out.read_text(encoding="utf-8")
    Path(args.out).write_text(table, encoding="utf-8")
    print()
    print(table)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
