"""The gateway registry: the HTTP client and the manager that keeps a fresh snapshot."""

from __future__ import annotations

from soajs.registry.client import RegistryClient

__all__ = ["RegistryClient"]
