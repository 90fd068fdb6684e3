"""Fixtures shared across the test files."""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fixture_paths import FIXTURES
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from pytest_httpserver import HTTPServer

if TYPE_CHECKING:
    from soajs.registry.manager import RegistryManager

# Property tests: a few hundred examples each by default ("ci"); `make fuzz` selects "fuzz".
hypothesis_settings.register_profile("ci", max_examples=300, deadline=None)
hypothesis_settings.register_profile(
    "fuzz",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _unfreeze_gc() -> Iterator[None]:
    """Undo the ``gc.freeze()`` an integration's start-up does (``SOAJS_GC_FREEZE``).

    A test process starts many apps; frozen, each one's leftovers would never be collected.
    """
    yield
    gc.unfreeze()


@pytest.fixture
def fixtures_dir() -> Path:
    """The folder of captured and upstream wire fixtures."""
    return FIXTURES


@pytest.fixture(scope="session")
def _loopback_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def maintenance_server(_loopback_server: HTTPServer) -> Iterator[HTTPServer]:
    """A real HTTP server on 127.0.0.1 (threaded) to play the gateway maintenance API.

    One server serves the whole session (stopping one takes half a second); its expectations
    and log are cleared after each test.
    """
    _loopback_server.clear()
    yield _loopback_server
    _loopback_server.clear()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def no_soajs_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's SOAJS_* variables out of a test."""
    for name in list(os.environ):
        if name.startswith("SOAJS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def managers() -> Iterator[list[RegistryManager]]:
    """Registry managers a test made; each is stopped at the end, whatever happens."""
    made: list[RegistryManager] = []
    yield made
    for manager in made:
        manager.stop()
