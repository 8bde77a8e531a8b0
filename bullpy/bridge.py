"""Start the Node side from Python: worker.js, the WhatsApp sender worker (dry-run by default), on the same
Redis, queue and prefix as a bullpy Queue. Used by ``bullpy demo`` and the notebooks.

The Node side is the checkout's ``bridge/`` when bullpy runs from a source tree; an installed bullpy ships a
copy (``bullpy/_bridge``: package.json, package-lock.json, worker.js, lib/), which on first use is copied to
bullpy's data dir (``$BULLPY_HOME``), where ``npm ci`` installs its packages once. Needs Node.js >= 18.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import connection
from .errors import NodeUnavailable
from .queue import Queue

_HERE = Path(__file__).resolve().parent
_PACKAGED = _HERE / "_bridge"  # the copy inside the wheel
_CHECKOUT = _HERE.parent / "bridge"  # a source tree's bridge/
_READY = ".bullpy-installed"  # written in an unpacked copy once npm ci has succeeded


def node_executable() -> str:
    """The ``node`` on the PATH, checked to be Node.js 18 or newer."""
    node = shutil.which("node")
    if node is None:
        raise NodeUnavailable("the Node Bull worker needs Node.js >= 18 (node and npm on the PATH): install it, then retry")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    major = version.lstrip("v").split(".")[0]
    if major.isdigit() and int(major) < 18:
        raise NodeUnavailable(f"the Node Bull worker needs Node.js >= 18, {node} is {version}: upgrade it, then retry")
    return node


def find_bridge(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The folder with worker.js and its Node packages installed (running ``npm ci`` there when needed).

    ``explicit`` if given, else the checkout's bridge/ (a source tree), else the packaged copy, unpacked
    into bullpy's data dir on first use.
    """
    if explicit:
        path = Path(explicit)
        if not (path / "worker.js").is_file():
            raise FileNotFoundError(f"{path / 'worker.js'} not found: pass the bridge/ folder of a bullpy checkout")
    elif (_CHECKOUT / "worker.js").is_file() and (_HERE.parent / "pyproject.toml").is_file():
        path = _CHECKOUT
    else:
        return _unpacked()
    if not (path / "node_modules" / "bull").is_dir():
        _npm_ci(path, path)
    return path


def _unpacked() -> Path:
    files = sorted(p for p in _PACKAGED.rglob("*") if p.is_file())
    if not any(p.name == "worker.js" for p in files):
        raise FileNotFoundError(f"bullpy's Node worker is missing from {_PACKAGED}: reinstall bullpy")
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(_PACKAGED).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    target = connection.data_dir() / f"bridge-{digest.hexdigest()[:12]}"
    if (target / _READY).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Install beside the target, then rename: a failed or concurrent first use never leaves a half-installed copy.
    work = Path(tempfile.mkdtemp(prefix=".bridge-", dir=target.parent))
    try:
        shutil.copytree(_PACKAGED, work, dirs_exist_ok=True)
        _npm_ci(work, target, omit_dev=True)  # the test-only peers' packages (Bull 3, BullMQ) are not needed
        (work / _READY).write_text("npm ci done\n", encoding="utf-8")
        try:
            work.rename(target)
        except OSError:  # target exists: another process's finished copy, else a leftover to replace
            if not (target / _READY).is_file():
                shutil.rmtree(target)
                work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _npm_ci(folder: Path, shown: Path, *, omit_dev: bool = False) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise NodeUnavailable(f"installing the Node worker's packages in {shown} needs npm (it comes with Node.js >= 18): "
                           "install it, then retry")
    print(f"bullpy: installing the Node worker's packages (npm ci) in {shown} (first use only)", file=sys.stderr)
    command = [npm, "ci", "--no-audit", "--no-fund"] + (["--omit=dev"] if omit_dev else [])
    run = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        print(run.stdout + run.stderr, file=sys.stderr, end="")
        errors = [line for line in run.stderr.splitlines() if line.strip()]
        raise NodeUnavailable(f"npm ci failed in {shown} (exit {run.returncode}): {errors[0] if errors else 'see its output above'}")


class NodeWorker:
    """bridge/worker.js running on a Queue's Redis; a context manager that stops it on exit.

    ``sent()`` returns the dry-run sender's records (one per message "sent").
    """

    def __init__(self, queue: Queue, *, bridge: str | os.PathLike[str] | None = None, dry_run_log: str | os.PathLike[str],
                 concurrency: int = 1, exit_when_drained: bool = False, env: dict[str, str] | None = None) -> None:
        node = node_executable()
        self.bridge = find_bridge(bridge)
        self.log = Path(dry_run_log)
        environ = {
            **os.environ,
            # Carries the password, if any, through the environment only; never printed.
            "REDIS_URL": queue.server.url(),
            # On a cluster that URL names the queue's master; worker.js starts an ioredis Cluster from it.
            **({"REDIS_CLUSTER": "1"} if queue.cluster is not None else {}),
            "QUEUE_NAME": queue.name,
            "BULL_PREFIX": queue.prefix,
            "DRY_RUN_LOG": str(self.log),
            "CONCURRENCY": str(concurrency),
            **({"EXIT_WHEN_DRAINED": "1"} if exit_when_drained else {}),
            **(env or {}),
        }
        self.process = subprocess.Popen([node, "worker.js"], cwd=self.bridge, env=environ, stdout=subprocess.DEVNULL)

    def sent(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines() if line.strip()]

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout)

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout)

    def __enter__(self) -> NodeWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
