"""Django integration: :class:`SoajsMiddleware` sets ``request.soajs`` and runs the registry.

In ``settings.py``::

    MIDDLEWARE = ["soajs.django.SoajsMiddleware", ...]
    SOAJS = {"header_policy": "ignore"}  # optional: any soajs.Settings field; else SOAJS_*

A view then reads ``request.soajs`` (:class:`~soajs.ContextData` or ``None``), or
:func:`soajs.current_context` anywhere below the middleware. The middleware is a real Django
middleware (sync and async), so Django's test client goes through it too.

It also answers ``GET /heartbeat`` (turn that off with ``configure(heartbeat=False)`` and
include :data:`urlpatterns` instead, e.g. ``path("", include("soajs.django"))``).

When things happen (the start-up policy shared with FastAPI and Flask, see
:class:`~soajs.container.ServiceLifecycle`):

* the first time Django loads its middleware (process start under gunicorn/uwsgi/runserver),
  the first registry load begins in a background thread (waiting for it only up to
  ``SOAJS_REGISTRY_STARTUP_WAIT``, default 0); no request ever fetches the registry;
* until the registry has loaded, ``/heartbeat`` answers 503, a view that reads the registry
  gets 503 code 135 in the gateway's error format (:mod:`soajs.readiness`), and other views
  are served;
* with ``SOAJS_DEPLOY_MANUAL``, a daemon thread waits until the service port accepts
  connections, then registers with the gateway (and re-registers periodically);
* :func:`stop` stops both; it also runs at interpreter exit.

Everything is per process. To choose the container (e.g. a fake registry in tests), call
:func:`configure` before the first request.
"""

from __future__ import annotations

import atexit
import functools
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

from soajs.container import FromContainer, ServiceLifecycle, SoajsContainer, trusts_header
from soajs.current import current_request, request_var
from soajs.errors import RegistryNotLoaded
from soajs.guards import ANY_USER, UserGuard, guard_view
from soajs.header_policy import HeaderGuard, Rejection
from soajs.heartbeat import HEARTBEAT_PATH, heartbeat_reply, is_heartbeat
from soajs.readiness import NOT_LOADED, readiness_of
from soajs.request import current_context
from soajs.settings import Settings

if TYPE_CHECKING:
    from soajs.models.context import ContextData
    from soajs.registry.manager import RegistryManager
    from soajs.request import RequestContext

__all__ = [
    "REQUEST_ATTRIBUTE",
    "SoajsMiddleware",
    "configure",
    "get_container",
    "heartbeat",
    "require_groups",
    "require_user",
    "stop",
    "urlpatterns",
]

# request_var's own methods, bound once: a name bound by an import is called through a fresh
# bound method each time (CPython skips LOAD_METHOD for it). They act on the calling context.
_set_current = request_var.set
_reset_current = request_var.reset

_View = TypeVar("_View", bound=Callable[..., Any])

REQUEST_ATTRIBUTE = "soajs"
"""The ``HttpRequest`` attribute holding the :class:`~soajs.ContextData` (or ``None``)."""


class _Policy(NamedTuple):
    """What a request needs from the container's current settings and registry."""

    guard: HeaderGuard
    service_name: str | None
    ready: Callable[[], bool] | None


class _Integration:
    """The process-wide state shared by every middleware instance."""

    def __init__(
        self,
        container: SoajsContainer,
        *,
        register: bool | None,
        heartbeat: bool,
        trust_header: bool | None,
    ) -> None:
        self.container = container
        self.lifecycle = ServiceLifecycle(container, register=register)
        self.heartbeat = heartbeat

        def build(settings: Settings, registry: RegistryManager) -> _Policy:
            trusted = trusts_header(container) if trust_header is None else trust_header
            return _Policy(
                HeaderGuard(settings, trust_header=trusted),
                settings.service_name,
                readiness_of(registry),
            )

        # Read through the container per request, so a test's override is seen.
        self._policy = FromContainer(container, build)
        self._policy()

    @property
    def guard(self) -> HeaderGuard:
        """The header policy of the container's current settings."""
        return self._policy().guard

    @property
    def service_name(self) -> str | None:
        """The service name the heartbeat answers with."""
        return self._policy().service_name

    @property
    def ready(self) -> Callable[[], bool] | None:
        """The readiness check of the container's current registry."""
        return self._policy().ready


_lock = threading.Lock()
_integration: _Integration | None = None


def configure(
    container: SoajsContainer | None = None,
    *,
    register: bool | None = None,
    heartbeat: bool = True,
    trust_header: bool | None = None,
) -> SoajsContainer:
    """Set up the integration for this process (optional; call it before the first request).

    Args:
        container: the providers to use; by default a :class:`SoajsContainer` whose settings
            come from the ``SOAJS`` Django setting (a dict of :class:`~soajs.Settings` fields),
            else from the ``SOAJS_*`` environment variables.
        register: register with the gateway; ``None`` follows ``SOAJS_DEPLOY_MANUAL``.
        heartbeat: answer ``GET /heartbeat`` in the middleware.
        trust_header: whether the ``soajsinjectobj`` header may be trusted; by default it is
            unless the service config says ``extKeyRequired: false`` (a public service).

    Returns:
        The container in use.
    """
    global _integration
    if container is None:
        container = SoajsContainer()
        options = getattr(django_settings, "SOAJS", None)
        if options:
            container.config.settings.from_dict(
                {str(key).lower(): value for key, value in dict(options).items()}
            )
    integration = _Integration(
        container, register=register, heartbeat=heartbeat, trust_header=trust_header
    )
    with _lock:
        previous, _integration = _integration, integration
    if previous is not None:
        previous.lifecycle.stop()
    return container


def get_container() -> SoajsContainer:
    """The container of this process's integration (configured with defaults on first use)."""
    return _current().container


def stop() -> None:
    """Stop the registration thread and the registry of this process."""
    integration = _integration
    if integration is not None:
        integration.lifecycle.stop()


def _current() -> _Integration:
    integration = _integration
    if integration is None:
        with _lock:
            integration = _integration
        if integration is None:
            configure()
            integration = _integration
            if integration is None:
                raise RuntimeError("soajs.django.configure() did not set up the integration")
    return integration


class SoajsMiddleware:
    """Set ``request.soajs`` and the current SOAJS context for each request.

    Sync and async capable. The header policy (``header_policy``, ``trusted_gateways``,
    ``max_inject_header_size``) comes from the settings, as with the ASGI/WSGI middlewares:
    under ``reject`` a request without a valid, trusted header is answered in the gateway's
    error format and the view never runs.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        integration = _current()
        integration.lifecycle.start()
        integration.lifecycle.register_when_listening()

    def __call__(self, request: HttpRequest) -> Any:
        """Serve one request (returns a coroutine when Django runs asynchronously)."""
        if self.is_async:
            return self.__acall__(request)
        admitted = self._admit(_current(), request)
        if isinstance(admitted, HttpResponse):
            return admitted
        token = _set_current(admitted)
        try:
            return self.get_response(request)
        finally:
            _reset_current(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        """Serve one request under ASGI."""
        admitted = self._admit(_current(), request)
        if isinstance(admitted, HttpResponse):
            return admitted
        token = _set_current(admitted)
        try:
            response = self.get_response(request)
            if not isinstance(response, HttpResponse):
                response = await response
            return response
        finally:
            _reset_current(token)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Answer a view that read the registry before it loaded: 503, code 135."""
        if isinstance(exception, RegistryNotLoaded):
            return HttpResponse(
                NOT_LOADED.body(), status=NOT_LOADED.status, content_type="application/json"
            )
        return None

    @staticmethod
    def _admit(integration: _Integration, request: HttpRequest) -> RequestContext | HttpResponse:
        """The request to make current (``request.soajs`` set), or the heartbeat or a refusal."""
        if integration.heartbeat and is_heartbeat(request.method or "GET", request.path_info):
            return _heartbeat_response(
                integration.service_name, integration.ready, request.method == "HEAD"
            )
        admitted = integration.guard.admit_environ(request.META)
        if isinstance(admitted, Rejection):
            return HttpResponse(
                admitted.body(), status=admitted.status, content_type="application/json"
            )
        # request.soajs is a plain attribute (None or ContextData): reading it must not raise.
        context: ContextData | None = admitted.context
        setattr(request, REQUEST_ATTRIBUTE, context)
        return admitted


def heartbeat(request: HttpRequest) -> HttpResponse:
    """The ``/heartbeat`` view: 200 JSON for GET and HEAD (503 until the registry loaded)."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    integration = _integration
    if integration is None:
        # No middleware has set the integration up: nothing loads here, so nothing to wait for.
        return _heartbeat_response(None, None, request.method == "HEAD")
    return _heartbeat_response(
        integration.service_name, integration.ready, request.method == "HEAD"
    )


def _heartbeat_response(
    service_name: str | None, ready: Callable[[], bool] | None, head: bool
) -> HttpResponse:
    status, body = heartbeat_reply(service_name, ready)
    response = HttpResponse(
        b"" if head else body,
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
    response["Content-Length"] = str(len(body))
    return response


urlpatterns = [path(HEARTBEAT_PATH.lstrip("/"), heartbeat, name="soajs-heartbeat")]
"""``include("soajs.django")`` to serve ``/heartbeat`` as a URL instead of in the middleware."""

atexit.register(stop)


def _refusal(guard: UserGuard) -> HttpResponse | None:
    """The gateway-format answer when ``guard`` refuses the current request, else ``None``."""
    integration = _integration
    context = current_context() if integration is None else integration.container.context()
    outcome = guard.admit(context, current_request())
    if isinstance(outcome, Rejection):
        return HttpResponse(outcome.body(), status=outcome.status, content_type="application/json")
    return None


def _guard_view(guard: UserGuard, view: _View) -> _View:
    """``view``, answering the guard's refusal instead of running (sync or async views)."""
    return guard_view(view, functools.partial(_refusal, guard), is_async=iscoroutinefunction(view))


def require_user(view: _View) -> _View:
    """Decorate a view that needs a logged-in user: 401 (code 161) without one.

    A request with no usable context gets the context rejection (403, code 132, for no header).
    """
    return _guard_view(ANY_USER, view)


def require_groups(*groups: str, all: bool = False) -> Callable[[_View], _View]:  # noqa: A002
    """Decorate a view whose user must be in one of ``groups`` (every one with ``all``).

    ``@require_groups("owner")``: 403 (code 160) for a user in none of them, 401 without a user.
    """
    guard = UserGuard.for_groups(groups, all=all)
    return functools.partial(_guard_view, guard)
