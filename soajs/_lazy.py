"""Module attributes imported from their home module on first use (a lazy ``__getattr__``)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(module: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """Make a module ``__getattr__`` that imports each name of ``homes`` from its home module.

    The value is cached in the module, so only the first access pays for the import.

    Args:
        module: the module the ``__getattr__`` is for (its ``__name__``).
        homes: the module each name is imported from, by name.
    """
    namespace = sys.modules[module].__dict__

    def get_attribute(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    return get_attribute
