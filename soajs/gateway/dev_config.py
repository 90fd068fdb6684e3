"""A ready development configuration for the local gateway (env ``DEV``, tenant ``TTEN``)."""

from __future__ import annotations

from collections.abc import Iterable

from soajs.gateway.config import GatewayConfig

__all__ = ["DEV_EXT_KEY", "DEV_TENANT_ID", "default_dev_config"]

DEV_TENANT_ID = "6a1e00000000000000000001"
DEV_EXT_KEY = (
    "e038c52a36e5952343acee09d798d3dbcd195123315fb3361502207b49daef4d5558d75db82ee82e9e97ef"
    "ceef31f844a301df055b6be36250cce34aadc9a02234df9e3e076f3fa2fd71ef333281931daec3f3e68bac"
    "2047b6ea939d8b802d9e"
)


def default_dev_config(
    services: Iterable[str] = ("hello", "caller", "secure"),
    *,
    health_check_interval: int = 2000,
) -> GatewayConfig:
    """A ready development configuration: env ``DEV``, tenant ``TTEN`` with one key.

    The ids, keys and the JWT secret (``tenant jwt secret``) are those of the captured real
    gateway seed, so headers and tokens look the same on both gateways. The package ACL grants
    version ``"1"`` of every name in ``services`` with public APIs (``access: false``).
    """
    acl = {name: {"1": {"access": False, "apisPermission": "unrestricted"}} for name in services}
    return GatewayConfig.model_validate(
        {
            "environment": {
                "code": "DEV",
                "description": "local development environment",
                "port": 4000,
                "healthCheckInterval": health_check_interval,
            },
            "products": [
                {
                    "code": "TPROD",
                    "name": "Test Product",
                    "packages": [
                        {"code": "TPROD_BASIC", "name": "basic package", "acl": {"dev": acl}}
                    ],
                }
            ],
            "tenants": [
                {
                    "id": DEV_TENANT_ID,
                    "code": "TTEN",
                    "name": "Test Tenant",
                    "type": "product",
                    "profile": {"plan": "test"},
                    "oauth": {"secret": "tenant jwt secret", "type": 0, "loginMode": "urac"},
                    "applications": [
                        {
                            "product": "TPROD",
                            "package": "TPROD_BASIC",
                            "appId": "6a1e00000000000000000a01",
                            "keys": [
                                {
                                    "key": "7d0b0c4a9d4e4b3a8f1e2d3c4b5a6978",
                                    "config": {"dev": {"commonFields": {}}},
                                    "extKeys": [{"extKey": DEV_EXT_KEY, "env": "DEV"}],
                                }
                            ],
                        }
                    ],
                }
            ],
        }
    )
