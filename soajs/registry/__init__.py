"""The gateway registry: the HTTP client and the manager that keeps a fresh snapshot."""

from __future__ import annotations

from soajs.registry.client import RegistryClient
from soajs.registry.manager import RegistryManager, RegistryStatus

__all__ = ["RegistryClient", "RegistryManager", "RegistryStatus"]
