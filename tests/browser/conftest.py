"""``--screenshots DIR`` (or ``BULLPY_SCREENSHOTS=DIR``): the browser test also writes the README's pictures
there, after a few minutes of Node traffic so that the throughput chart has a history:

    python -m pytest tests/browser --screenshots docs/
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--screenshots", metavar="DIR", default=None,
                     help="write docs screenshots of the widgets (dashboard.png, inspector.png, "
                          "campaign-monitor.png) to DIR")


@pytest.fixture(scope="session")
def screenshots_dir(request: pytest.FixtureRequest) -> Path | None:
    """Where the README's screenshots go, or None (only test-artifacts/ gets them)."""
    where = request.config.getoption("--screenshots", default=None) or os.environ.get("BULLPY_SCREENSHOTS")
    if not where:
        return None
    path = Path(where)
    path.mkdir(parents=True, exist_ok=True)
    return path
