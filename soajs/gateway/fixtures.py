"""pytest fixtures that start the local gateway, for users' own tests.

Import the ready fixture into a ``conftest.py``::

    from soajs.gateway.fixtures import local_gateway  # noqa: F401

or build one with your own configuration and scope::

    from soajs.gateway.fixtures import gateway_fixture

    my_gateway = gateway_fixture("tests/gateway.yaml", scope="session")

Each yields a started :class:`~soajs.gateway.server.LocalGateway` on free loopback ports.
Point a service at it with ``SOAJS_REGISTRY_API=gateway.registry_api`` and call it through
``gateway.data_url`` with ``key: gateway.ext_key``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from os import PathLike
from typing import Any, Literal

import pytest

from soajs.gateway.config import GatewayConfig, default_dev_config
from soajs.gateway.server import LocalGateway

__all__ = ["gateway_fixture", "local_gateway"]

Scope = Literal["function", "class", "module", "package", "session"]


def gateway_fixture(
    config: GatewayConfig | Mapping[str, Any] | str | PathLike[str] | None = None,
    *,
    scope: Scope = "function",
    health_check_interval: int = 200,
    name: str | None = None,
) -> Callable[..., Any]:
    """Make a pytest fixture yielding a started :class:`LocalGateway`.

    Args:
        config: the gateway configuration (object, mapping or file); by default
            :func:`~soajs.gateway.config.default_dev_config`.
        scope: the pytest scope of the fixture.
        health_check_interval: milliseconds between health checks (short, for fast tests).
        name: the fixture's name; by default the name it is assigned to in the module.
    """

    @pytest.fixture(scope=scope, name=name)
    def fixture() -> Iterator[LocalGateway]:
        chosen = default_dev_config() if config is None else config
        with LocalGateway(chosen, port=0, health_check_interval=health_check_interval) as gateway:
            yield gateway

    return fixture


local_gateway = gateway_fixture(name="local_gateway")
"""A started local gateway with the default development configuration (function scope)."""
