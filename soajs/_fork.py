"""Rearm an object in a forked child (gunicorn ``--preload``) without keeping it alive."""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["call_in_forked_child"]


def call_in_forked_child(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in every child this process forks, while its object lives.

    Only a weak reference is kept, so the hook, which ``os`` never unregisters, does not keep
    the object alive.
    """
    ref = weakref.WeakMethod(method)

    def in_child() -> None:
        bound = ref()
        if bound is not None:
            bound()

    os.register_at_fork(after_in_child=in_child)
