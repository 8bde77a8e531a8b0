"""Management operations on a big queue: how long each takes, and the longest Redis was blocked by one command.

    python benchmarks/scale.py [--jobs 1000000] [--batch-size N] [--out FILE]

Starts a private ``redis-server`` (loopback, a free port, no persistence) and fills one Bull queue with
``--jobs`` jobs shaped as Bull writes them: 90% waiting, 5% completed, 4% failed (three attempts, stack
traces), 1% delayed (a tenth of them with a priority); at 1,000,000 that is 900k waiting, 50k completed,
40k failed and 10k delayed. With SLOWLOG keeping every command of 1 ms or more (``slowlog-log-slower-than
1000`` on that server) it then runs, one after the other: a baseline (scripts that spin 5 ms: what the
machine's other load adds to a command that long), clean of the completed jobs (a dry run, then for real),
a clean dry run over the waiting list and a clean with a limit, remove_jobs of a pattern matching a few
waiting jobs (a dry run, then for real), retry_jobs of the failed jobs, promote_jobs of the delayed ones,
empty, and on a refilled queue obliterate. For each it prints the wall time, the round trips, the script
calls and Redis's p50/p99 of them, the longest single command and how many took over 20 ms (the target: at
most 20 ms, whatever the queue's size), as a Markdown table. The server is stopped at the end.

Importable: ``fill`` writes the jobs on any client, ``measure`` times one operation, ``run`` does it all.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import redis.connection

import bullpy

#: The shares of the queue that are not waiting.
SHARES = {"completed": 0.05, "failed": 0.04, "delayed": 0.01}
JOB_OPTS = ('{{"attempts":3,"backoff":{{"type":"exponential","delay":2000}},"delay":{delay}{priority},'
            '"timestamp":{ts}}}')
STACK = ("Error: whatsapp not ready\n    at Queue.<anonymous> (/app/worker.js:9:11)\n"
         "    at Queue.processJob (/app/node_modules/bull/lib/queue.js:1210:22)")
#: A pattern matching 111 jobs at 1,000,000: job 5555, failed 55550-55559 and waiting 555500-555599.
PATTERN = "5555*"
TARGET_MS = 20.0
#: SLOWLOG keeps every command at least this long (µs): all that matters next to a 20 ms target.
SLOWLOG_US = 1000
# Commands of the measuring client itself, not of the operation.
_OWN = {"slowlog", "config", "ping", "info", "client", "hello"}


@dataclass(frozen=True)
class Measurement:
    """One operation: wall seconds, commands Redis ran for it, and the longest of them."""

    operation: str
    seconds: float
    round_trips: int
    script_calls: int
    p50_ms: float
    p99_ms: float
    longest_ms: float | None  # None: no command took SLOWLOG_US or more
    longest_command: str
    over_target: int  # commands longer than TARGET_MS
    outcome: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    """The newest redis-server on PATH or in /usr/bin, /usr/local/bin (a pyenv shim may hide the system's)."""
    found: dict[tuple[int, ...], str] = {}
    for folder in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin", "/usr/local/bin"]:
        path = shutil.which("redis-server", path=folder) if folder else None
        if not path:
            continue
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        version = out.split("v=")[1].split()[0] if "v=" in out else ""
        if version:
            found.setdefault(tuple(int(x) for x in version.split(".") if x.isdigit()), path)
    if not found:
        raise SystemExit("redis-server is not installed")
    return found[max(found)]


@contextlib.contextmanager
def private_redis(binary: str | None = None, nice: int = 0) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (no RDB, no AOF); yields its URL, stops it after.

    ``nice`` < 0 raises its scheduling priority (root only), so on a busy machine the durations measured are
    less those of other processes running in its place.
    """
    binary = binary or redis_server_binary()
    with tempfile.TemporaryDirectory(prefix="bullpy-scale-") as folder:
        port = _free_port()
        prio = ["nice", "-n", str(nice)] if nice and shutil.which("nice") else []
        proc = subprocess.Popen(
            [*prio, binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", folder, "--daemonize", "no", "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            client = redis.Redis(port=port)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start: {Path(folder, 'redis.log').read_text()}")
                    time.sleep(0.05)
            client.close()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _message(i: int) -> str:
    return json.dumps({"number": f"55119{i:08d}", "message": f"Olá! Mensagem {i} da campanha", "delay": 0},
                      ensure_ascii=False, separators=(",", ":"))


def fill(client: redis.Redis, prefix: str, name: str, jobs: int, *, now_ms: int | None = None,
         chunk: int = 5000) -> dict[str, int]:
    """Write ``jobs`` Bull jobs with pipelined HSET/LPUSH/ZADD, as Node Bull would have left them; returns the
    count per state. Ids run 1..jobs: completed first, then failed, delayed, and the waiting rest."""
    now = now_ms or int(time.time() * 1000)
    base = f"{prefix}:{name}:"
    counts = {state: int(jobs * share) for state, share in SHARES.items()}
    counts["wait"] = jobs - sum(counts.values())
    start = now - 3_600_000  # created an hour ago, 1 ms apart
    ranges: dict[str, range] = {}
    first = 1
    for state in ("completed", "failed", "delayed", "wait"):
        ranges[state] = range(first, first + counts[state])
        first += counts[state]
    stacktrace = json.dumps([STACK] * 3)
    for state, ids in ranges.items():
        for lo in range(ids.start, ids.stop, chunk):
            batch = range(lo, min(lo + chunk, ids.stop))
            with client.pipeline(transaction=False) as pipe:
                scores: dict[str, float] = {}
                for i in batch:
                    ts = start + i // 1000
                    delay = 3_600_000 if state == "delayed" else 0
                    # One delayed job in ten has a priority: promoting it is Bull's priority placement.
                    priority = 1 + i % 3 if state == "delayed" and i % 10 == 0 else 0
                    with_priority = f',"priority":{priority}' if priority else ""
                    opts = JOB_OPTS.format(delay=delay, ts=ts, priority=with_priority)
                    fields: dict[Any, Any] = {
                        "name": "send", "data": _message(i), "opts": opts, "timestamp": ts, "delay": delay,
                        "priority": str(priority),
                    }
                    if state == "completed":
                        fields |= {"processedOn": ts + 5, "finishedOn": ts + 9,
                                   "returnvalue": '{"success":true,"messageId":"wamid.' + str(i) + '"}'}
                        scores[str(i)] = ts + 9
                    elif state == "failed":
                        fields |= {"processedOn": ts + 4005, "finishedOn": ts + 4009, "attemptsMade": 3,
                                   "failedReason": "whatsapp not ready", "stacktrace": stacktrace}
                        scores[str(i)] = ts + 4009
                    elif state == "delayed":
                        scores[str(i)] = (ts + delay) * 4096 + (i & 0xFFF)
                    pipe.hset(base + str(i), mapping=fields)
                if state == "wait":
                    pipe.lpush(base + "wait", *(str(i) for i in batch))
                else:
                    pipe.zadd(base + state, scores)
                pipe.execute()
    client.set(base + "id", str(jobs))
    return counts


def measure(client: redis.Redis, operation: str, action: Callable[[], Any],
            describe: Callable[[Any], str] = str) -> Measurement:
    """Run ``action``; its time, round trips, script calls, their p50/p99 and the longest command.

    The longest command comes from SLOWLOG, which logs every command of at least ``SLOWLOG_US`` with its
    exact duration (client "?:0", the commands a script runs, are part of the script's own entry and left
    out). A threshold of 0 would also log each of the millions of commands the scripts run on a big queue:
    that doubles the scripts' own cost and pushes their entries out of the log. The percentiles are Redis's
    own (INFO latencystats, Redis 7+) over the EVALSHA calls.
    """
    client.config_set("slowlog-max-len", 100_000)
    client.config_set("slowlog-log-slower-than", SLOWLOG_US)
    client.slowlog_reset()
    client.config_resetstat()
    sent = [0]
    original: Any = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        original(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - t0
    finally:
        redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
    entries = [e for e in client.slowlog_get(100_000)
               if e.get("client_address") not in (b"?:0", "?:0") and _name(e) not in _OWN]
    client.config_set("slowlog-log-slower-than", 10_000)
    stats = client.info("commandstats")
    scripts_run = sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))
    latency = client.info("latencystats").get("latency_percentiles_usec_evalsha", {})
    slowest = max(entries, key=lambda e: int(e["duration"]), default=None)
    return Measurement(
        operation, seconds, sent[0], scripts_run,
        float(latency.get("p50", 0)) / 1000, float(latency.get("p99", 0)) / 1000,
        int(slowest["duration"]) / 1000 if slowest else None,
        _shown(slowest) if slowest else "",
        sum(1 for e in entries if int(e["duration"]) > TARGET_MS * 1000),
        describe(result),
    )


def _words(entry: dict[str, Any]) -> list[str]:
    command = entry.get("command", b"")
    text = command.decode("utf-8", "replace") if isinstance(command, bytes) else str(command)
    return text.split()


def _name(entry: dict[str, Any]) -> str:
    words = _words(entry)
    return words[0].lower() if words else ""


def _shown(entry: dict[str, Any]) -> str:
    words = _words(entry)
    return " ".join(words[:1]) + (f" ({len(words) - 1} args)" if len(words) > 1 else "")


def _longest(m: Measurement) -> str:
    if m.longest_ms is None:
        return f"< {SLOWLOG_US / 1000:g}"
    flag = "" if m.longest_ms <= TARGET_MS else " ⚠"
    return f"{m.longest_ms:.2f}{flag} ({m.longest_command})"


def _count(result: Any) -> str:
    return f"{len(result):,} ids" if isinstance(result, list) else f"{result:,}" if isinstance(result, int) else "done"


def _delete_prefix(client: redis.Redis, prefix: str) -> None:
    batch: list[Any] = []
    for key in client.scan_iter(f"{prefix}:*", count=10_000):
        batch.append(key)
        if len(batch) == 1000:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)


def run(url: str, jobs: int, *, batch_size: int = 1000, log: Callable[[str], None] = print) -> list[Measurement]:
    """Fill a queue on ``url`` and measure every operation on it; the queue is gone afterwards."""
    client = redis.Redis.from_url(url)
    prefix, name = "bullpy-scale", "message-queue"
    queue = bullpy.Queue(name, url, prefix=prefix)
    out: list[Measurement] = []

    def step(label: str, action: Callable[[], Any]) -> None:
        m = measure(client, label, action, _count)
        log(f"  {label}: {m.seconds:.2f} s, {m.round_trips:,} round trips, {m.script_calls:,} scripts, p50 "
            f"{m.p50_ms:.2f} ms, p99 {m.p99_ms:.2f} ms, longest {_longest(m)}, {m.outcome}")
        out.append(m)

    t0 = time.perf_counter()
    counts = fill(client, prefix, name, jobs)
    log(f"filled {jobs:,} jobs in {time.perf_counter() - t0:.1f} s: {counts}")
    # What the machine's other load does to a command of a step's length: a script that spins for 5 ms of
    # wall time is stretched by exactly the time its server spends waiting for a CPU.
    spin = client.register_script(
        "local t0 = redis.call('TIME') local n = 0 repeat n = n + 1 local t = redis.call('TIME') "
        "until (t[1] - t0[1]) * 1000000 + t[2] - t0[2] >= tonumber(ARGV[1]) return n")
    step("baseline: 200 scripts spinning 5 ms each", lambda: [spin(args=[5000]) for _ in range(200)] and None)
    step(f"clean(0, 'completed', dry_run) of {counts['completed']:,}",
         lambda: queue.clean(0, "completed", dry_run=True, batch_size=batch_size))
    step(f"clean(0, 'completed') of {counts['completed']:,}",
         lambda: queue.clean(0, "completed", batch_size=batch_size))
    step(f"clean(0, 'wait', dry_run) over {counts['wait']:,}",
         lambda: queue.clean(0, "wait", dry_run=True, batch_size=batch_size))
    step(f"clean(0, 'wait', limit=1000) of {counts['wait']:,}",
         lambda: queue.clean(0, "wait", 1000, batch_size=batch_size))
    step(f"remove_jobs({PATTERN!r}, dry_run)", lambda: queue.remove_jobs(PATTERN, dry_run=True, batch_size=batch_size))
    step(f"remove_jobs({PATTERN!r})", lambda: queue.remove_jobs(PATTERN, batch_size=batch_size))
    step(f"retry_jobs() of {counts['failed']:,} failed", lambda: queue.retry_jobs(count=batch_size))
    step(f"promote_jobs() of {counts['delayed']:,} delayed", lambda: queue.promote_jobs(batch_size=batch_size))
    waiting = queue.count()
    step(f"empty() of {waiting:,}", lambda: queue.empty(batch_size=batch_size))
    _delete_prefix(client, prefix)
    t0 = time.perf_counter()
    fill(client, prefix, name, jobs)
    log(f"refilled {jobs:,} jobs in {time.perf_counter() - t0:.1f} s")
    step(f"obliterate() of {jobs:,}", lambda: queue.obliterate(count=batch_size))
    left = sum(1 for _ in client.scan_iter(f"{prefix}:*", count=10_000))
    if left:
        raise SystemExit(f"obliterate left {left} keys")
    queue.close()
    client.close()
    return out


def markdown(results: list[Measurement], jobs: int, url: str, note: str = "") -> str:
    client = redis.Redis.from_url(url)
    version = client.info("server")["redis_version"]
    client.close()
    intro = (
        f"Queue of {jobs:,} jobs (90% waiting, 5% completed, 4% failed, 1% delayed) on a private Redis {version}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end. p50/p99: "
        "Redis's own latency percentiles of the script calls (INFO latencystats); longest command: from SLOWLOG "
        f"(every command of {SLOWLOG_US / 1000:g} ms or more, exact), i.e. the longest Redis served nobody else. "
        f"Target: at most {TARGET_MS:g} ms." + (f" {note}" if note else "")
    )
    header = ("| Operation | Total s | Round trips | Script calls | p50 script (ms) | p99 script (ms) "
              f"| Longest command (ms) | Over {TARGET_MS:g} ms | Result |")
    lines = [intro, "", header, "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for m in results:
        lines.append(f"| `{m.operation}` | {m.seconds:.2f} | {m.round_trips:,} | {m.script_calls:,} | {m.p50_ms:.2f} | "
                     f"{m.p99_ms:.2f} | {_longest(m)} | {m.over_target} | {m.outcome} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs in the queue (default 1,000,000)")
    parser.add_argument("--batch-size", type=int, default=1000, help="the operations' batch_size (default 1000)")
    parser.add_argument("--redis-server", default=None, help="the redis-server binary (default: on PATH)")
    parser.add_argument("--nice", type=int, default=0,
                        help="run the server at this niceness (negative: higher priority; needs root)")
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    with private_redis(args.redis_server, args.nice) as url:
        print(f"private Redis at {url}", file=sys.stderr)
        results = run(url, args.jobs, batch_size=args.batch_size, log=lambda s: print(s, file=sys.stderr))
        note = f"The server ran at niceness {args.nice}." if args.nice else ""
        table = markdown(results, args.jobs, url, note)
    print(table)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
