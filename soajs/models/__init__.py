"""Wire models: the gateway's registry, the request context header, the service configuration."""

from __future__ import annotations

from soajs.models.registry import (
    AwarenessConfig,
    CookieConfig,
    CustomRegistry,
    Daemon,
    Database,
    Deployer,
    GatewayAwareness,
    KeyConfig,
    LoggerConfig,
    PortsConfig,
    Registry,
    RegistryLocation,
    Resource,
    Server,
    Service,
    ServiceConfig,
    SessionConfig,
)

__all__ = [
    "AwarenessConfig",
    "CookieConfig",
    "CustomRegistry",
    "Daemon",
    "Database",
    "Deployer",
    "GatewayAwareness",
    "KeyConfig",
    "LoggerConfig",
    "PortsConfig",
    "Registry",
    "RegistryLocation",
    "Resource",
    "Server",
    "Service",
    "ServiceConfig",
    "SessionConfig",
]
