"""The dependency-injector container, and the start and stop every integration shares.

Typical use::

    container = SoajsContainer()
    container.config.service.from_dict({"name": "hello", "group": "Demo", "port": 4100})
    container.wire(modules=[__name__])

    @inject
    def handler(registry: RegistryManager = Provide[SoajsContainer.registry]) -> ...: ...

Configuration flows in as dependency-injector's documentation shows: ``settings`` is read
from the ``SOAJS_*`` environment (plus ``config.settings``), ``service_config`` from
``config.service`` (a dict, or a JSON/YAML file such as a Node service's ``soa.json``:
``container.config.service.from_json("soa.json")``), else ``SOAJS_SERVICE_*``. The registry's
start and stop are the ``started_registry`` resource. In tests,
``container.registry.override(FakeRegistryManager(...))`` (see :mod:`soajs.testing`) is enough
to run an app with no gateway; the integrations (:mod:`soajs.fastapi`, :mod:`soajs.flask`,
:mod:`soajs.django`) read the registry and settings through the container on every request,
so an override made at any time before a request is seen by that request.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from dependency_injector import containers, providers

from soajs._fork import call_in_forked_child
from soajs.asgi import SoajsASGIMiddleware
from soajs.connector import ServiceConnector
from soajs.current import current_request
from soajs.errors import ConfigValidationError
from soajs.models.service_config import Config
from soajs.registry.manager import RegistryManager
from soajs.request import current_context
from soajs.settings import Settings
from soajs.urac import UracDriver
from soajs.wsgi import SoajsWSGIMiddleware

if TYPE_CHECKING:
    from collections.abc import Iterable

    from soajs._asgi_types import (
        ASGIApp,
        Receive,
        Scope,
        Send,
        StartResponse,
        WSGIApplication,
        WSGIEnvironment,
    )
    from soajs.registration import Registrar

__all__ = [
    "ContainerASGIMiddleware",
    "ContainerWSGIMiddleware",
    "FromContainer",
    "ServiceLifecycle",
    "SoajsContainer",
    "run_registry",
    "trusts_header",
]

logger = logging.getLogger("soajs.container")

T = TypeVar("T")


def _settings(values: Mapping[str, Any] | None) -> Settings:
    """``Settings`` from the ``SOAJS_*`` environment, with ``config.settings`` over it."""
    return Settings(**dict(values or {}))


def _service_config(values: Config | Mapping[str, Any] | None) -> Config | None:
    """The ``Config`` of ``config.service``, or ``None`` to build it from ``SOAJS_SERVICE_*``."""
    if values is None or isinstance(values, Config):
        return values
    if not values:
        return None
    return Config.model_validate(dict(values))


def _build_registry(settings: Settings, config: Config | None) -> RegistryManager:
    # Never started here: the started_registry resource decides when to reach the gateway.
    return RegistryManager.from_settings(settings, config, autostart=False)


def run_registry(registry: RegistryManager) -> Iterator[RegistryManager]:
    """The ``started_registry`` resource: begin the first load in the background; stop at the end.

    Shutting it down stops the registry's reloads and its registrar.
    """
    registry.start_in_background()
    try:
        yield registry
    finally:
        registry.stop()


class SoajsContainer(containers.DeclarativeContainer):
    """Providers for a SOAJS service.

    Attributes:
        config: the configuration tree: ``config.service`` holds the service's
            :class:`~soajs.Config` fields (model, wire or ``soa.json`` names), ``config.settings``
            any :class:`~soajs.Settings` fields that win over the ``SOAJS_*`` environment;
            other keys are free for the application's own providers.
        settings: one :class:`~soajs.Settings` per container.
        service_config: the service's :class:`~soajs.Config` from ``config.service``, or
            ``None`` to build it from ``SOAJS_SERVICE_*``.
        registry: one :class:`~soajs.RegistryManager` per container, built thread-safely and
            not started.
        started_registry: the registry, started: a ``Resource`` whose ``init()`` begins the
            first load in the background and whose ``shutdown()`` stops it (the integrations
            call them with the app, through :class:`ServiceLifecycle`).
        request: the current request's :class:`~soajs.request.RequestContext` (or ``None``).
        context: the current request's :class:`~soajs.ContextData` (or ``None``); request-scoped,
            it reads the value the middleware set for this request.
        connector: a new :class:`~soajs.ServiceConnector` bound to the current request.
        urac: the current request's :class:`~soajs.urac.UracDriver` (Node's
            ``req.soajs.uracDriver``), built from ``context``; empty outside a request.
    """

    config = providers.Configuration()
    # Thread-safe even for settings: two first uses at once must still see one instance.
    settings = providers.ThreadSafeSingleton(_settings, config.settings)
    service_config: providers.Provider[Config | None] = providers.ThreadSafeSingleton(
        _service_config, config.service
    )
    registry = providers.ThreadSafeSingleton(
        _build_registry, settings=settings, config=service_config
    )
    started_registry = providers.Resource(run_registry, registry)
    request = providers.Callable(current_request)
    context = providers.Callable(current_context)
    connector = providers.Factory(ServiceConnector, context=context, registry=registry)
    urac = providers.Factory(UracDriver.for_context, context)


def trusts_header(container: SoajsContainer) -> bool:
    """Whether the service asks the gateway for a key, and so may trust ``soajsinjectobj``.

    A public service (``extKeyRequired: false``) must not trust the header: the gateway passes
    a client's own through to it. Without a usable config, the header is trusted.
    """
    config = container.service_config()
    if config is None:
        registry: RegistryManager = container.registry()
        try:
            config = registry.registration_config()
        except ConfigValidationError:
            return True
    return bool(config.ext_key_required)


class FromContainer(Generic[T]):
    """Something built from a container's current settings and registry.

    Calling it resolves both through the container (overrides included) and gives the object
    built from them, built again only when one of them changed. This is how the
    middlewares of :func:`soajs.fastapi.setup_soajs`, :class:`soajs.flask.Soajs` and
    :mod:`soajs.django` see an override made after setup.

    Args:
        container: the providers to follow.
        build: makes the object from ``(settings, registry)``.
    """

    __slots__ = ("_build", "_built", "_registry", "_settings")

    def __init__(
        self, container: SoajsContainer, build: Callable[[Settings, RegistryManager], T]
    ) -> None:
        self._settings = container.settings
        self._registry = container.registry
        self._build = build
        self._built: tuple[object, object, T] | None = None

    def __call__(self) -> T:
        """The object for the providers' current values."""
        settings = self._settings()
        registry = self._registry()
        built = self._built
        if built is None or built[0] is not settings or built[1] is not registry:
            # Two threads may both build after an override; either result is right.
            built = (settings, registry, self._build(settings, registry))
            self._built = built
        return built[2]


class ContainerASGIMiddleware:
    """:class:`~soajs.asgi.SoajsASGIMiddleware` over a container's current settings and registry.

    Args:
        app: the ASGI application to wrap.
        container: where the settings and registry come from, per request.
        trust_header: as for the middleware; ``None`` follows :func:`trusts_header`.
        heartbeat: answer ``/heartbeat`` (503 until the registry loaded).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        container: SoajsContainer,
        trust_header: bool | None = None,
        heartbeat: bool = True,
    ) -> None:
        self.app = app

        def build(settings: Settings, registry: RegistryManager) -> SoajsASGIMiddleware:
            trusted = trusts_header(container) if trust_header is None else trust_header
            return SoajsASGIMiddleware(
                app, settings=settings, registry=registry, trust_header=trusted, heartbeat=heartbeat
            )

        self.middleware = FromContainer(container, build)
        self.middleware()  # validates the settings now, as the middleware itself does

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection through the middleware for the current providers."""
        await self.middleware()(scope, receive, send)


class ContainerWSGIMiddleware:
    """:class:`~soajs.wsgi.SoajsWSGIMiddleware` over a container's current settings and registry.

    Args:
        app: the WSGI application to wrap (Flask: ``app.wsgi_app``).
        container: where the settings and registry come from, per request.
        trust_header: as for the middleware; ``None`` follows :func:`trusts_header`.
        heartbeat: answer ``/heartbeat`` (503 until the registry loaded).
        environ_context: as for the middleware.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        container: SoajsContainer,
        trust_header: bool | None = None,
        heartbeat: bool = True,
        environ_context: bool = True,
    ) -> None:
        self.app = app

        def build(settings: Settings, registry: RegistryManager) -> SoajsWSGIMiddleware:
            trusted = trusts_header(container) if trust_header is None else trust_header
            return SoajsWSGIMiddleware(
                app,
                registry,
                settings=settings,
                trust_header=trusted,
                heartbeat=heartbeat,
                environ_context=environ_context,
            )

        self.middleware = FromContainer(container, build)
        self.middleware()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request through the middleware for the current providers."""
        return self.middleware()(environ, start_response)


class ServiceLifecycle:
    """Start a container's registry, register the service once it listens, and stop both.

    **The start-up policy**, the same for FastAPI, Flask and Django (each calls :meth:`start`
    from its app-start hook: the FastAPI lifespan, ``Soajs.init_app``, Django loading its
    middleware):

    * the first registry load happens once per process, in the registry's background thread
      (the container's ``started_registry`` resource,
      :meth:`RegistryManager.start_in_background`), never on a request's path; a process
      forked afterwards (gunicorn ``--preload``) runs its own thread;
    * :meth:`start` waits for the first attempt to end, loaded or failed (bounded by
      ``SOAJS_REGISTRY_FETCH_DEADLINE``; a gateway that is down fails at once), or, when
      ``SOAJS_REGISTRY_STARTUP_WAIT`` is set, for the first load at most that long; then it
      returns, loaded or not, and the app serves;
    * until it has, ``/heartbeat`` answers 503 (the gateway does not route to the instance),
      requests that read the registry get 503 code 135 in the gateway's error format, and the
      others are served (:mod:`soajs.readiness`);
    * failed attempts are retried with capped exponential backoff and jitter (at most 10 s
      apart while nothing is loaded), each bounded by ``SOAJS_REGISTRY_FETCH_DEADLINE``;
    * the first :meth:`start` ends with ``gc.collect()`` and ``gc.freeze()`` (unless
      ``SOAJS_GC_FREEZE`` is false), so the objects alive after start-up are not walked by
      every full collection under load (under gunicorn ``--preload``: in the master, before
      the fork, and shared copy-on-write with the workers).

    Registration (``POST /register``) runs only when ``register`` is true, or, when it is
    ``None``, when ``SOAJS_DEPLOY_MANUAL`` is set and ``SOAJS_DEPLOY_HA`` is not (an HA gateway
    refuses registrations). The registry's :class:`~soajs.registration.Registrar` does it, in a
    daemon thread that first waits until the service port accepts connections.

    Args:
        container: the container whose ``registry`` and ``settings`` are used.
        register: force registration on or off; ``None`` follows the settings.
        listen_timeout: seconds to wait for the port before registering anyway (with a warning).
    """

    def __init__(
        self,
        container: SoajsContainer,
        *,
        register: bool | None = None,
        listen_timeout: float = 30.0,
    ) -> None:
        self.container = container
        self.register = register
        self.listen_timeout = listen_timeout
        self._lock = threading.Lock()
        self._registrar: Registrar | None = None  # the one register_when_listening started
        self._froze = False  # gc.freeze() after the first start only, never after a restart
        call_in_forked_child(self._rearm_after_fork)

    @property
    def registry(self) -> RegistryManager:
        """The container's registry (honours overrides)."""
        registry: RegistryManager = self.container.registry()
        return registry

    @property
    def registrar(self) -> Registrar:
        """The registry's registrar: it sends ``POST /register`` and repeats it."""
        return self.registry.registrar

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has begun the registry (and :meth:`stop` not undone it).

        The registry itself may still be loading: see ``registry.loaded``.
        """
        return bool(self.container.started_registry.initialized)

    @property
    def ext_key_required(self) -> bool:
        """Whether the header may be trusted: :func:`trusts_header` of the container."""
        return trusts_header(self.container)

    @property
    def should_register(self) -> bool:
        """Whether this service registers itself with the gateway."""
        if self.register is not None:
            return self.register
        return self.registrar.enabled

    def start(self) -> None:
        """Begin the first registry load in the background (see the class docstring).

        Idempotent and thread-safe. Waits for the first attempt (at most
        ``SOAJS_REGISTRY_FETCH_DEADLINE``), or for the first load at most
        ``SOAJS_REGISTRY_STARTUP_WAIT`` seconds when that is set; never raises because the
        gateway is down or slow.
        """
        with self._lock:
            freeze = not self._froze
            self._froze = True
            registry: RegistryManager = self.container.started_registry()
        settings = registry.settings
        wait = settings.registry_startup_wait
        if wait > 0:
            loaded = registry.wait_loaded(wait)
        else:
            # The attempt ends by itself within the deadline; the second is slack for the
            # thread to be scheduled.
            registry.wait_attempted(settings.registry_fetch_deadline + 1.0)
            loaded = registry.loaded
        if not loaded:
            logger.warning(
                "the registry has not loaded yet; serving anyway, /heartbeat answers 503 and "
                "requests that read the registry get 503 until it does (retrying in the "
                "background): %s",
                registry.status.last_error,
            )
        if freeze and settings.gc_freeze:
            _freeze_startup_objects()

    def register_when_listening(self) -> None:
        """Register in a daemon thread once the service port accepts connections.

        The registry is started first (:meth:`start`), and re-registration follows
        (:meth:`~soajs.registration.Registrar.start_when_listening`).
        """
        if not self.should_register:
            return
        registrar = self.registrar
        self._registrar = registrar
        registrar.start_when_listening(self.listen_timeout, before=self.start)

    def stop(self) -> None:
        """Stop registration and the registry's background reload; idempotent."""
        registrar = self._registrar
        if registrar is not None:
            registrar.stop(timeout=5.0)
        with self._lock:
            self.container.started_registry.shutdown()

    def _rearm_after_fork(self) -> None:
        """Give a forked child its own lock.

        A parent thread inside :meth:`start` (gunicorn ``--preload``: the master registers
        while it forks) holds the lock at the fork; the child would wait for it forever.
        """
        self._lock = threading.Lock()


def _freeze_startup_objects() -> None:
    """Move every object alive after start-up out of the collector's generations.

    Modules, classes, the settings and the loaded registry live as long as the process; left
    tracked, every full collection under load walks them all again (tens of milliseconds on a
    request's path). ``gc.collect()`` first, so start-up garbage is freed rather than frozen.
    Forked afterwards (gunicorn ``--preload``), workers inherit the frozen objects and the
    collector never writes to them, so their pages stay shared copy-on-write.
    """
    gc.collect()
    gc.freeze()
    logger.debug("froze %d start-up objects out of the garbage collector", gc.get_freeze_count())
