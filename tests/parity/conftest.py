"""Fixtures of the parity suite: soajs core's service middleware run once for every case.

Without ``node``/``npm`` the suite is skipped with the reason shown in the summary, unless the
``CI`` environment variable is set: there the missing prerequisite fails the run.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import NodeSuite

from .cases import CASES
from .node import SOAJS_PACKAGE, ensure_installed, running_middleware

PARITY = NodeSuite(
    "PARITY SUITE", f"soajs core's service middleware ({SOAJS_PACKAGE}) needs Node.js and npm"
)


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say up front when the parity suite cannot run here."""
    return PARITY.report_header()


@pytest.fixture(scope="session")
def node_answers() -> dict[str, dict[str, Any]]:
    """What soajs core's middleware gives for every case, by case id (one node process)."""
    PARITY.require()
    package_dir = ensure_installed()
    requests = [
        {
            "id": case.id,
            "header": case.header,
            "calls": [list(c) for c in case.calls],
            "query": case.query,
            "headers": case.headers,
            "uracDriver": case.runs_urac_driver,
        }
        for case in CASES
    ]
    with running_middleware(package_dir) as middleware:
        return middleware.run(requests)
