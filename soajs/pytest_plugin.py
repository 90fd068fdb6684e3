"""pytest fixtures for testing a SOAJS service, loaded by pytest on its own.

soajs-python registers this module under the ``pytest11`` entry point ``soajs``, so once it is
installed next to pytest the fixtures are there in every test, with no ``conftest.py`` line:

* ``soajs_registry``: a started :class:`~soajs.testing.FakeRegistryManager`, stopped after.
* ``soajs_container``: a :class:`~soajs.container.SoajsContainer` whose registry is it.
* ``soajs_header``: a gateway-shaped ``soajsinjectobj`` value.
* ``local_gateway``: a started local gateway (needs the ``gateway`` extra).

The plugin defines fixtures and nothing else (no hooks, no options, nothing ``autouse``), and
imports only pytest until a fixture is used, so a project that uses none of them runs exactly
as before. ``pytest -p no:soajs`` turns it off; with plugin autoloading disabled
(``PYTEST_DISABLE_PLUGIN_AUTOLOAD``), ``pytest -p soajs`` turns it on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from soajs.container import SoajsContainer
    from soajs.gateway.server import LocalGateway
    from soajs.testing import FakeRegistryManager

__all__ = ["local_gateway", "soajs_container", "soajs_header", "soajs_registry"]


@pytest.fixture
def soajs_registry() -> Iterator[FakeRegistryManager]:
    """A started :class:`~soajs.testing.FakeRegistryManager` over the default registry."""
    from soajs.testing import FakeRegistryManager

    registry = FakeRegistryManager()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def soajs_container(soajs_registry: FakeRegistryManager) -> Iterator[SoajsContainer]:
    """A :class:`~soajs.container.SoajsContainer` whose registry is ``soajs_registry``."""
    from soajs.container import SoajsContainer

    container = SoajsContainer()
    container.registry.override(soajs_registry)
    try:
        yield container
    finally:
        container.unwire()
        container.reset_override()


@pytest.fixture
def soajs_header() -> bytes:
    """A gateway-shaped ``soajsinjectobj`` value (tenant ``TTEN``), as bytes."""
    from soajs.testing import build_inject_header

    return build_inject_header()


@pytest.fixture
def local_gateway() -> Iterator[LocalGateway]:
    """A started local gateway on free loopback ports, with the default development config.

    Raises:
        ModuleNotFoundError: the ``gateway`` extra is not installed.
    """
    try:
        from soajs.gateway.fixtures import loopback_gateway
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"the local_gateway fixture needs the gateway extra ({error}): "
            "pip install 'soajs-python[gateway]'",
            name=error.name,
        ) from error
    with loopback_gateway() as gateway:
        yield gateway
