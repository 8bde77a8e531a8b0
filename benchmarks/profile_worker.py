"""Profile the bullpy worker on no-op jobs with cProfile in every thread.

    python benchmarks/profile_worker.py [--jobs 20000] [--concurrency 50] [--top 25]

Pre-loads a fresh queue, pins this process to core 1, runs run.py's ``py-worker`` measurement with a
cProfile profiler in each thread (``threading.setprofile`` starts one per thread), merges them and
prints the top functions by own time and by cumulative time, then deletes its keys. cProfile slows
Python code down (roughly 2x), so read the shares, not the rate.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402

PROFILERS: list[cProfile.Profile] = []


def _start_thread_profiler(frame: Any, event: str, arg: Any) -> None:
    # The first profile event of a new thread: hand the thread to its own cProfile profiler.
    profiler = cProfile.Profile()
    PROFILERS.append(profiler)
    profiler.enable()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--dump", help="also write the merged stats here (pstats format)")
    args = parser.parse_args()

    bench = run.Bench(args.redis_url, pin=True)
    name = f"profile-{uuid.uuid4().hex[:6]}"
    try:
        bench.preload_bull(name, args.jobs)
        if bench.pin:
            os.sched_setaffinity(0, {1})
        threading.setprofile(_start_thread_profiler)
        main_profiler = cProfile.Profile()
        PROFILERS.append(main_profiler)
        main_profiler.enable()
        run.child_py_worker(args.redis_url, bench.prefix, name, args.jobs, args.concurrency)
        main_profiler.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
    finally:
        bench.cleanup()

    stats = pstats.Stats(PROFILERS[0])
    for profiler in PROFILERS[1:]:
        try:
            stats.add(profiler)
        except TypeError:  # a thread that never recorded anything
            pass
    if args.dump:
        stats.dump_stats(args.dump)
    for order, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(order).print_stats(args.top * 4)
        rows = [line for line in out.getvalue().splitlines() if line.strip()[:1].isdigit()]
        if order == "cumulative":  # skip the threading/concurrent.futures wrappers and waits
            rows = [r for r in rows if "threading.py" not in r and "thread.py" not in r and "{method 'acquire'" not in r]
        print(f"\n=== top {args.top} by {title}, {len(PROFILERS)} thread profilers, concurrency {args.concurrency} ===")
        print("   ncalls  tottime  percall  cumtime  percall filename:lineno(function)")
        for row in rows[: args.top]:
            print(row.replace(str(Path(run.__file__).resolve().parents[1]) + "/", ""))


if __name__ == "__main__":
    main()
