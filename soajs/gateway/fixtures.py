"""pytest fixtures that start the local gateway, for users' own tests.

The ready ``local_gateway`` fixture needs no import: the soajs pytest plugin
(:mod:`soajs.pytest_plugin`) provides it. Build one with your own configuration and scope in a
``conftest.py``::

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

from soajs.gateway.config import GatewayConfig
from soajs.gateway.dev_config import default_dev_config
from soajs.gateway.server import LocalGateway

# Re-exported: conftests written before the plugin import it from here.
from soajs.pytest_plugin import local_gateway

__all__ = ["gateway_fixture", "local_gateway", "loopback_gateway"]

Scope = Literal["function", "class", "module", "package", "session"]


def loopback_gateway(
    config: GatewayConfig | Mapping[str, Any] | str | PathLike[str] | None = None,
    *,
    health_check_interval: int = 200,
) -> LocalGateway:
    """A local gateway on free loopback ports, not started yet (use it in a ``with`` block).

    Args:
        config: the gateway configuration (object, mapping or file); by default
            :func:`~soajs.gateway.dev_config.default_dev_config`.
        health_check_interval: milliseconds between health checks (short, for fast tests).
    """
    chosen = default_dev_config() if config is None else config
    return LocalGateway(chosen, port=0, health_check_interval=health_check_interval)


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
            :func:`~soajs.gateway.dev_config.default_dev_config`.
        scope: the pytest scope of the fixture.
        health_check_interval: milliseconds between health checks (short, for fast tests).
        name: the fixture's name; by default the name it is assigned to in the module.
    """

    @pytest.fixture(scope=scope, name=name)
    def fixture() -> Iterator[LocalGateway]:
        with loopback_gateway(config, health_check_interval=health_check_interval) as gateway:
            yield gateway

    return fixture
