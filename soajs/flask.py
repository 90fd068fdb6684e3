"""Flask integration: the :class:`Soajs` extension and :func:`current_context`.

::

    from flask import Flask
    from soajs.flask import Soajs, current_context

    app = Flask(__name__)
    soajs = Soajs(app)

    @app.get("/hello")
    def hello() -> dict[str, str | None]:
        context = current_context()
        return {"tenant": context.tenant.code if context else None}

The extension wraps ``app.wsgi_app`` with :class:`~soajs.wsgi.SoajsWSGIMiddleware` (which also
answers ``/heartbeat``) over the container's current settings and registry, so every request,
including Flask's test client, sets the context that :func:`current_context` and the
container's ``context`` provider return.

When things happen (the start-up policy shared with FastAPI and Django, see
:class:`~soajs.container.ServiceLifecycle`):

* ``init_app`` begins the first registry load in a background thread and returns (it waits
  for it only up to ``SOAJS_REGISTRY_STARTUP_WAIT``, default 0). No request ever fetches the
  registry. A server that forks workers after loading the app (gunicorn ``--preload``) gets
  one registry thread per worker, in the worker;
* until the registry has loaded, ``/heartbeat`` answers 503, a view that reads the registry
  gets 503 code 135 in the gateway's error format (:mod:`soajs.readiness`), and other views
  are served;
* with ``SOAJS_DEPLOY_MANUAL``, ``init_app`` starts a daemon thread that waits until the
  service port accepts connections, then registers (and re-registers periodically);
* :meth:`Soajs.stop` stops both; it also runs at interpreter exit.
"""

from __future__ import annotations

import atexit
import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, Response, current_app, has_request_context, request

from soajs.container import ContainerWSGIMiddleware, ServiceLifecycle, SoajsContainer
from soajs.current import current_request
from soajs.errors import RegistryNotLoaded
from soajs.guards import ANY_USER, UserGuard, guard_view
from soajs.header_policy import Rejection
from soajs.readiness import NOT_LOADED
from soajs.request import REQUEST_KEY, RequestContext
from soajs.request import current_context as _current_context

if TYPE_CHECKING:
    from soajs.models.context import ContextData

__all__ = ["EXTENSION_KEY", "Soajs", "current_context", "require_groups", "require_user"]

_View = TypeVar("_View", bound=Callable[..., Any])

EXTENSION_KEY = "soajs"
"""Key of the extension in ``app.extensions``."""


class Soajs:
    """Make a Flask app a SOAJS service.

    Args:
        app: the application; or call :meth:`init_app` later.
        container: the providers to use; a new :class:`~soajs.container.SoajsContainer` by
            default. The middleware reads its registry and settings on every request, so a
            test's override is seen by the requests made after it.
        register: register with the gateway; ``None`` follows ``SOAJS_DEPLOY_MANUAL``.
        heartbeat: answer ``GET /heartbeat`` in the middleware (503 until the registry loaded).
        trust_header: whether the ``soajsinjectobj`` header may be trusted; by default it is
            unless the service config says ``extKeyRequired: false`` (a public service).
        environ_context: provide the seed's ``request.environ["soajs.context"]``; ``False``
            leaves the server's environ a plain ``dict`` (see
            :class:`~soajs.wsgi.SoajsWSGIMiddleware`), the providers work the same.
    """

    def __init__(
        self,
        app: Flask | None = None,
        container: SoajsContainer | None = None,
        *,
        register: bool | None = None,
        heartbeat: bool = True,
        trust_header: bool | None = None,
        environ_context: bool = True,
    ) -> None:
        self.container = container if container is not None else SoajsContainer()
        self.lifecycle = ServiceLifecycle(self.container, register=register)
        self.heartbeat = heartbeat
        self.trust_header = trust_header
        self.environ_context = environ_context
        self._exit_hook = False
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Install the middleware and the registry's start and stop on ``app``."""
        app.extensions[EXTENSION_KEY] = self
        app.wsgi_app = ContainerWSGIMiddleware(  # type: ignore[method-assign]
            app.wsgi_app,
            container=self.container,
            trust_header=self.trust_header,
            heartbeat=self.heartbeat,
            environ_context=self.environ_context,
        )
        app.register_error_handler(RegistryNotLoaded, _registry_not_loaded)
        self.lifecycle.start()
        self.lifecycle.register_when_listening()
        if not self._exit_hook:
            atexit.register(self.stop)
            self._exit_hook = True

    def stop(self) -> None:
        """Stop the registration thread and the registry's background reload."""
        self.lifecycle.stop()


def _registry_not_loaded(error: RegistryNotLoaded) -> Response:
    """Answer a view that read the registry before it loaded: 503, code 135."""
    return Response(NOT_LOADED.body(), status=NOT_LOADED.status, mimetype="application/json")


def current_context() -> ContextData | None:
    """The SOAJS context of the current Flask request, or ``None``."""
    found = _environ_request()
    if found is not None:
        return found.context
    return _current_context()


def _environ_request() -> RequestContext | None:
    """The request context in the current Flask request's environ, or ``None``."""
    if not has_request_context():
        return None
    # Through the request object, not the proxy: each attribute read through Flask's
    # ``request`` proxy costs ~0.8 µs, ten times the object's own (docs/performance.md).
    found = request._get_current_object().environ.get(REQUEST_KEY)  # type: ignore[attr-defined]
    return found if isinstance(found, RequestContext) else None


def _refusal(guard: UserGuard) -> Response | None:
    """The gateway-format answer when ``guard`` refuses the current request, else ``None``."""
    extension = current_app.extensions.get(EXTENSION_KEY)
    context = current_context() if extension is None else extension.container.context()
    found = _environ_request()
    served = found if found is not None else current_request()
    outcome = guard.admit(context, served)
    if isinstance(outcome, Rejection):
        return Response(outcome.body(), status=outcome.status, mimetype="application/json")
    return None


def _guard_view(guard: UserGuard, view: _View) -> _View:
    """``view``, answering the guard's refusal instead of running (sync or async views)."""
    return guard_view(
        view, functools.partial(_refusal, guard), is_async=inspect.iscoroutinefunction(view)
    )


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
