"""Fixtures shared across the test files."""

from __future__ import annotations

from pathlib import Path

import pytest

# The shared fixtures live beside the repository (CI clones the repo next to shared/ too).
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    """The folder of captured and upstream wire fixtures."""
    return SHARED_FIXTURES
