"""FastAPI integration: dependencies for the request context and a one-call app setup.

::

    from fastapi import FastAPI
    from soajs.fastapi import SoajsContext, setup_soajs

    app = FastAPI()
    setup_soajs(app)

    @app.get("/hello")
    def hello(context: SoajsContext) -> dict[str, str]:
        return {"tenant": context.tenant.code}

:func:`setup_soajs` installs the pure ASGI middleware (which also answers ``/heartbeat``), the
error handlers of :func:`soajs_context` and of a registry read before the registry loaded, and
a lifespan, composed with the app's own, that begins the first registry load (the start-up
policy shared with Flask and Django, see :class:`~soajs.container.ServiceLifecycle`: in the
background, waiting for it at most ``SOAJS_REGISTRY_STARTUP_WAIT``; until it loads,
``/heartbeat`` and the requests that read the registry answer 503), registers the service
(``SOAJS_DEPLOY_MANUAL``) once its port accepts connections, and stops both at shutdown.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.requests import HTTPConnection
from starlette.responses import Response

from soajs import middleware
from soajs.connector import ServiceConnector
from soajs.container import ContainerASGIMiddleware, ServiceLifecycle, SoajsContainer
from soajs.current import current_request
from soajs.errors import RegistryNotLoaded
from soajs.guards import ANY_USER, UserGuard
from soajs.header_policy import NO_HEADER, Rejection, context_or_rejection
from soajs.models.context import ContextData, Urac
from soajs.readiness import NOT_LOADED
from soajs.request import current_context

__all__ = [
    "STATE_KEY",
    "ContextRejected",
    "SoajsConnector",
    "SoajsContext",
    "SoajsOptionalContext",
    "SoajsUser",
    "context_rejected_handler",
    "get_soajs_context",
    "registry_not_loaded_handler",
    "require_groups",
    "require_user",
    "setup_soajs",
    "soajs_connector",
    "soajs_context",
    "soajs_optional_context",
]

STATE_KEY = "soajs"
"""Attribute of ``app.state`` that holds the :class:`~soajs.container.ServiceLifecycle`."""

_NO_MIDDLEWARE = NO_HEADER._replace(
    message="A valid key is needed to access any API: no SOAJS middleware saw this request "
    "(call soajs.fastapi.setup_soajs(app))"
)


class ContextRejected(HTTPException):
    """A handler needs the SOAJS context and the request has none (or an invalid one).

    :func:`context_rejected_handler` (installed by :func:`setup_soajs`) answers it in the
    gateway's error format, with the status and code the ``reject`` header policy uses (see
    :mod:`soajs.header_policy`). Without that handler FastAPI still answers with this status, never
    500, and the same body under ``detail``.
    """

    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection
        super().__init__(status_code=rejection.status, detail=json.loads(rejection.body()))


async def context_rejected_handler(request: Request, exc: Exception) -> Response:
    """Answer a :class:`ContextRejected` with the gateway's error body."""
    if not isinstance(exc, ContextRejected):
        raise exc
    return Response(
        exc.rejection.body(), status_code=exc.status_code, media_type="application/json"
    )


async def registry_not_loaded_handler(request: Request, exc: Exception) -> Response:
    """Answer a handler that read the registry before it loaded: 503, code 135."""
    if not isinstance(exc, RegistryNotLoaded):
        raise exc
    return Response(NOT_LOADED.body(), status_code=NOT_LOADED.status, media_type="application/json")


# The dependencies below do no I/O, so they are coroutines: FastAPI runs a plain `def`
# dependency in its threadpool, a hop that costs more than the work itself.


async def soajs_optional_context() -> ContextData | None:
    """Dependency: the request's SOAJS context, or ``None`` when it has none."""
    return current_context()


async def get_soajs_context(request: HTTPConnection) -> ContextData | None:
    """Dependency: ``context: ContextData | None = Depends(get_soajs_context)``.

    The design card's name, with the seed's meaning: the request's context, or ``None`` when it
    has no usable header (never an error). It is :data:`soajs.middleware.get_soajs_context` as
    a coroutine, so FastAPI calls it without a trip through its threadpool.
    """
    return middleware.get_soajs_context(request)


async def soajs_context() -> ContextData:
    """Dependency: the request's SOAJS context.

    Raises:
        ContextRejected: no SOAJS middleware, no header, or one that is invalid or untrusted.
    """
    request = current_request()
    if request is None:
        raise ContextRejected(_NO_MIDDLEWARE)
    # The reject policy's answer, whatever the middleware's policy: this handler needs a context.
    outcome = context_or_rejection(request)
    if isinstance(outcome, Rejection):
        raise ContextRejected(outcome)
    return outcome


async def soajs_connector(request: Request) -> ServiceConnector:
    """Dependency: a :class:`~soajs.ServiceConnector` for the request's calls to other services.

    It comes from the container's ``connector`` provider when :func:`setup_soajs` was used.
    """
    lifecycle: ServiceLifecycle | None = getattr(request.app.state, STATE_KEY, None)
    if lifecycle is None:
        return ServiceConnector()
    connector: ServiceConnector = lifecycle.container.connector()
    return connector


SoajsContext = Annotated[ContextData, Depends(soajs_context)]
"""``context: SoajsContext``: the request's context; a gateway-format error when absent."""

SoajsOptionalContext = Annotated[ContextData | None, Depends(soajs_optional_context)]
"""``context: SoajsOptionalContext``: the request's context or ``None``."""

SoajsConnector = Annotated[ServiceConnector, Depends(soajs_connector)]
"""``connector: SoajsConnector``: a connector bound to the request."""


def setup_soajs(
    app: FastAPI,
    container: SoajsContainer | None = None,
    *,
    register: bool | None = None,
    heartbeat: bool = True,
    trust_header: bool | None = None,
) -> SoajsContainer:
    """Make ``app`` a SOAJS service.

    Installs :class:`~soajs.asgi.SoajsASGIMiddleware` (answering ``/heartbeat`` unless
    ``heartbeat`` is false), the :class:`ContextRejected` and
    :class:`~soajs.errors.RegistryNotLoaded` handlers, and a lifespan wrapped around the app's
    own: the registry's first load begins before the app's lifespan (in the background; see
    :class:`~soajs.container.ServiceLifecycle`) and the registry stops after it, and the
    registration runs in a background thread once the port accepts connections (an ASGI
    server finishes the lifespan startup *before* it listens).

    The middleware reads the registry and settings through the container on every request,
    so an override (``container.registry.override(fake)`` in a test) made at any time before
    a request is seen by that request.

    Args:
        app: the FastAPI application.
        container: the providers to use; a new :class:`SoajsContainer` by default.
        register: register with the gateway; ``None`` follows ``SOAJS_DEPLOY_MANUAL``.
        heartbeat: answer ``GET /heartbeat`` in the middleware (503 until the registry loaded).
        trust_header: whether the ``soajsinjectobj`` header may be trusted; by default it is
            unless the service config says ``extKeyRequired: false`` (a public service).

    Returns:
        The container, ready for ``container.wire(...)``.
    """
    container = container if container is not None else SoajsContainer()
    lifecycle = ServiceLifecycle(container, register=register)
    # Settings that cannot work (no service name, a bad SOAJS_* value) fail here, not at the
    # first request.
    container.registry()
    setattr(app.state, STATE_KEY, lifecycle)
    app.add_middleware(
        ContainerASGIMiddleware,
        container=container,
        trust_header=trust_header,
        heartbeat=heartbeat,
    )
    app.add_exception_handler(ContextRejected, context_rejected_handler)
    app.add_exception_handler(RegistryNotLoaded, registry_not_loaded_handler)
    app.router.lifespan_context = _with_registry(app.router.lifespan_context, lifecycle)
    return container


def _with_registry(
    lifespan: Callable[[Any], AbstractAsyncContextManager[Any]],
    lifecycle: ServiceLifecycle,
) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
    """Wrap a lifespan so the registry runs around it."""

    @asynccontextmanager
    async def soajs_lifespan(app: Any) -> AsyncIterator[Any]:
        await anyio.to_thread.run_sync(lifecycle.start)
        try:
            async with lifespan(app) as state:
                lifecycle.register_when_listening()
                yield state
        finally:
            await anyio.to_thread.run_sync(lifecycle.stop)

    return soajs_lifespan


def _guarded(request: HTTPConnection, guard: UserGuard) -> Urac:
    """The user ``guard`` admits, read through the app's container; else ``ContextRejected``."""
    lifecycle: ServiceLifecycle | None = getattr(request.app.state, STATE_KEY, None)
    context = current_context() if lifecycle is None else lifecycle.container.context()
    served = current_request()
    if context is None and served is None:
        raise ContextRejected(_NO_MIDDLEWARE)
    outcome = guard.admit(context, served)
    if isinstance(outcome, Rejection):
        raise ContextRejected(outcome)
    return outcome


async def require_user(request: HTTPConnection) -> Urac:
    """Dependency: the logged-in user (``context.urac``).

    Raises:
        ContextRejected: no usable context (as :func:`soajs_context`), or no user (401, 161).
    """
    return _guarded(request, ANY_USER)


def require_groups(*groups: str, all: bool = False) -> Callable[[HTTPConnection], Awaitable[Urac]]:  # noqa: A002
    """A dependency: the logged-in user, who must be in one of ``groups`` (every one with ``all``).

    ``Depends(require_groups("owner"))``; a user in none of them gets 403, code 160.
    """
    guard = UserGuard.for_groups(groups, all=all)

    async def require_groups(request: HTTPConnection) -> Urac:
        return _guarded(request, guard)

    return require_groups


SoajsUser = Annotated[Urac, Depends(require_user)]
"""``user: SoajsUser``: the logged-in user; 401 (code 161) without one."""
