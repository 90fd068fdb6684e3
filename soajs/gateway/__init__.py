"""A local SOAJS gateway for development and tests (needs the ``gateway`` extra).

It behaves like ``soajs.controller`` 4.3.3 on the wire: the maintenance API (``/getRegistry``,
``/register``, ...) and the data port (routing, keys, package ACL, user tokens and the
``soajsinjectobj`` header). Start it from Python with :class:`LocalGateway`, from pytest with
the ``local_gateway`` fixture (:mod:`soajs.pytest_plugin`) or :mod:`soajs.gateway.fixtures`, or
with ``soajs gateway --config FILE``.
"""

from __future__ import annotations

from soajs._lazy import lazy_attributes

__all__ = [
    "CallRecord",
    "GatewayConfig",
    "GatewayConfigError",
    "LocalGateway",
    "UserTokenPayloadError",
    "config_from_seed",
    "default_dev_config",
    "load_config",
    "make_user_token",
    "user_token_headers",
]

_LAZY = {
    "CallRecord": "soajs.gateway.maintenance",
    "GatewayConfig": "soajs.gateway.config",
    "GatewayConfigError": "soajs.gateway.config",
    "LocalGateway": "soajs.gateway.server",
    "UserTokenPayloadError": "soajs.gateway.access",
    "config_from_seed": "soajs.gateway.seed",
    "default_dev_config": "soajs.gateway.dev_config",
    "load_config": "soajs.gateway.config",
    "make_user_token": "soajs.gateway.access",
    "user_token_headers": "soajs.gateway.access",
}


# Imported on first use, so the configuration model loads without uvicorn or Starlette.
__getattr__ = lazy_attributes(__name__, _LAZY)
