"""The package's shape: imports point one way, layers use the public API, every module says what it is for."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bullpy"
# The optional layers on the public API (STYLE.md): none of them may hold a raw client or a facade internal.
LAYERS = ["cli", "widgets", "transfer", "demo.py", "frames", "migrate.py", "doctor.py", "bridge.py",
          "testing.py", "_display.py", "exporter", "service.py"]
REACHING_PAST = re.compile(r"\.client\b|\._run\b|\._runner\b|\._emit\b|\._run_many\b|\._script\b")


def _layer_files() -> list[Path]:
    files: list[Path] = []
    for name in LAYERS:
        path = PACKAGE / name
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return [f for f in files if f.exists()]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e . --group dev)")
    return found


def test_import_linter_contracts_hold() -> None:
    result = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_layers_reach_nothing_past_the_public_api() -> None:
    hits = []
    for path in _layer_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if REACHING_PAST.search(code):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "layers reach past the public API:\n" + "\n".join(hits)


def test_no_assert_in_library_code() -> None:
    # `python -O` removes asserts: a check that matters must be an `if ...: raise`.
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hits += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    assert not hits, "assert in library code: " + ", ".join(hits)


def test_every_module_opens_with_one_line_saying_what_it_is_for() -> None:
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if not doc or not doc.splitlines()[0].strip():
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, "modules without an opening docstring: " + ", ".join(missing)


def test_mypy_strict_passes() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "bullpy"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]
