"""soajs-python: join a SOAJS microservice mesh from a Python web service.

The top level is light: names are imported on first use, so ``import soajs`` pulls in no web
framework and no HTTP client until they are needed.
"""

from __future__ import annotations

import importlib
from typing import Any

from soajs.errors import (
    ConfigValidationError,
    ConnectError,
    GatewayUnavailable,
    InjectHeaderError,
    NotFound,
    RegistryDeadlineExceeded,
    RegistryError,
    RegistryFetchStopped,
    RegistryNotLoaded,
    RegistryRejected,
    RegistryReplyMalformed,
    RegistryReplyTooLarge,
    SettingsError,
    SoajsError,
)
from soajs.settings import Settings

__version__ = "0.1.0"

_LAZY = {
    "RegistryManager": "soajs.registry.manager",
    "RegistryStatus": "soajs.registry.manager",
    "ServiceConnector": "soajs.connector",
    "ConnectResponse": "soajs.connector",
    "Config": "soajs.models.service_config",
    "ContextData": "soajs.models.context",
    "current_context": "soajs.request",
    "stream_with_context": "soajs.current",
    "parse_inject_header": "soajs.inject",
}

__all__ = [
    "Config",
    "ConfigValidationError",
    "ConnectError",
    "ConnectResponse",
    "ContextData",
    "GatewayUnavailable",
    "InjectHeaderError",
    "NotFound",
    "RegistryDeadlineExceeded",
    "RegistryError",
    "RegistryFetchStopped",
    "RegistryManager",
    "RegistryNotLoaded",
    "RegistryRejected",
    "RegistryReplyMalformed",
    "RegistryReplyTooLarge",
    "RegistryStatus",
    "ServiceConnector",
    "Settings",
    "SettingsError",
    "SoajsError",
    "__version__",
    "current_context",
    "parse_inject_header",
    "stream_with_context",
]


def __getattr__(name: str) -> Any:
    """Import the public names that live in heavier modules on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'soajs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
