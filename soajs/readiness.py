"""Whether this instance can serve: its registry has loaded from the gateway.

The one rule every integration (FastAPI, Flask, Django, and the ASGI/WSGI middlewares' own
``/heartbeat``) follows while the first registry load is still pending:

* ``/heartbeat`` answers **503**, so the gateway does not route users to the instance;
* a request that reads the registry (``RegistryManager.registry``, ``get_database``, ...,
  :class:`~soajs.errors.RegistryNotLoaded`) is answered **503, code 135** in the gateway's
  error format: the status and code the gateway itself answers when it cannot reach a
  service, so callers treat both alike;
* every other request is served.

When the first load happens is :class:`~soajs.container.ServiceLifecycle`'s rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from soajs.header_policy import Rejection

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["NOT_LOADED", "readiness_of"]

NOT_LOADED = Rejection(
    503,
    135,
    "The service is starting: its registry has not loaded from the gateway yet; retry shortly",
)
"""The answer to ``/heartbeat`` and to a request that reads the registry before it loaded."""


def readiness_of(registry: object | None) -> Callable[[], bool] | None:
    """The readiness check of a middleware's registry, or ``None`` when it has none.

    A registry that tells whether it has ``loaded`` (a :class:`~soajs.RegistryManager`) is
    ready once it has; any other object (or none) leaves the heartbeat always ready.
    """
    if not isinstance(getattr(registry, "loaded", None), bool):
        return None

    def ready() -> bool:
        return getattr(registry, "loaded", True) is not False

    return ready
