"""Where the test suite's wire fixtures live: ``tests/fixtures/``, inside the repository."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CAPTURED = FIXTURES / "captured"
UPSTREAM = FIXTURES / "upstream"
SEED_README = FIXTURES / "seed" / "README.seed.md"
