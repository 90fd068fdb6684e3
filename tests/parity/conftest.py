"""Fixtures of the parity suite: soajs core's service middleware run once for every case.

Without ``node``/``npm`` the suite is skipped with the reason shown in the summary, unless the
``CI`` environment variable is set: there the missing prerequisite fails the run.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from .cases import CASES
from .node import SOAJS_PACKAGE, ensure_installed, missing_prerequisites, running_middleware


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _prerequisite_problem() -> str | None:
    missing = missing_prerequisites()
    if not missing:
        return None
    return (
        f"PARITY SUITE NOT RUN: {' and '.join(missing)} not found on PATH; soajs core's "
        f"service middleware ({SOAJS_PACKAGE}) needs Node.js and npm"
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say up front when the parity suite cannot run here."""
    problem = _prerequisite_problem()
    if problem is None:
        return None
    return f"{problem} ({'CI: the run will FAIL' if _in_ci() else 'tests will be skipped'})"


@pytest.fixture(scope="session")
def node_answers() -> dict[str, dict[str, Any]]:
    """What soajs core's middleware gives for every case, by case id (one node process)."""
    problem = _prerequisite_problem()
    if problem is not None:
        if _in_ci():
            pytest.fail(f"{problem} (the CI environment variable is set)", pytrace=False)
        pytest.skip(problem)
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
