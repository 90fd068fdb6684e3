"""Fixtures of the reliability tests."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tagged_registry import registry_reply

from soajs import Settings
from soajs import registration as registration_module
from soajs.registry import RegistryManager
from soajs.registry import manager as manager_module

from .faultserver import FaultServer

# Poll floor and start-up retry cap while these tests run (seconds): schedules that take
# minutes in production play out in a fraction of a second, in the same proportions.
FLOOR = 0.005
STARTUP_CAP = 0.05


class Figures:
    """What the tests tried and lost, by test; written as JSON when a report is asked for."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def record(self, name: str, **values: Any) -> None:
        """Keep ``values`` (counts) under ``name``."""
        self.rows[name] = values


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    """Counts the tests record; ``RELIABILITY_REPORT=path`` writes them there as JSON."""
    collected = Figures()
    yield collected
    target = os.environ.get("RELIABILITY_REPORT")
    if target:
        Path(target).write_text(json.dumps(collected.rows, indent=2, sort_keys=True) + "\n")


@pytest.fixture(autouse=True)
def clean_environment(no_soajs_env: None) -> None:
    """Keep the machine's SOAJS_* variables out of these tests."""


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lower the poll floors so reload and registration schedules play out in milliseconds."""
    monkeypatch.setattr(manager_module, "MIN_RELOAD_INTERVAL", FLOOR)
    monkeypatch.setattr(registration_module, "MIN_REREGISTER_INTERVAL", FLOOR)
    monkeypatch.setattr(manager_module, "STARTUP_RETRY_CAP", STARTUP_CAP)


@pytest.fixture
def gateway() -> Iterator[FaultServer]:
    """A switchable maintenance API serving the registry tagged ``a`` (reloads every 200 ms)."""
    with FaultServer(registry_reply("a", interval_ms=200), slow_seconds=1.0) as server:
        yield server


@pytest.fixture
def make_manager(
    managers: list[RegistryManager],
) -> Callable[..., RegistryManager]:
    """Build a ``hello`` manager against a :class:`FaultServer` (stopped after the test)."""

    def make(server: FaultServer, /, **options: Any) -> RegistryManager:
        settings = Settings(
            registry_api=server.registry_api,
            registry_timeout=options.pop("timeout", 0.1),
            **options.pop("settings", {}),
        )
        manager = RegistryManager(settings=settings, service_name="hello", **options)
        managers.append(manager)
        return manager

    return make
