"""The dependency-injector container: settings, registry, request context and connector.

Typical use::

    container = SoajsContainer()
    container.wire(modules=[__name__])

    @inject
    def handler(context: ContextData | None = Provide[SoajsContainer.context]) -> ...: ...

In tests, ``container.registry.override(FakeRegistryManager(...))`` (see :mod:`soajs.testing`)
is enough to run an app with no gateway. The integrations (:mod:`soajs.fastapi`,
:mod:`soajs.flask`, :mod:`soajs.django`) start and stop the registry with the app through
:class:`ServiceLifecycle`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import TYPE_CHECKING

from dependency_injector import containers, providers

from soajs.connector import ServiceConnector
from soajs.current import current_request
from soajs.errors import ConfigValidationError
from soajs.registry.manager import RegistryManager
from soajs.request import current_context
from soajs.settings import Settings

if TYPE_CHECKING:
    from soajs.models.service_config import Config

__all__ = ["ServiceLifecycle", "SoajsContainer"]

logger = logging.getLogger("soajs.container")


def _build_registry(settings: Settings, config: Config | None) -> RegistryManager:
    # Never started here: the app's lifespan (or the test) decides when to reach the gateway.
    return RegistryManager.from_settings(settings, config, autostart=False)


class SoajsContainer(containers.DeclarativeContainer):
    """Providers for a SOAJS service.

    Attributes:
        config: free configuration for the application's own providers.
        settings: one :class:`~soajs.Settings` per container (read from ``SOAJS_*``).
        service_config: the service's :class:`~soajs.Config`, or ``None`` to build it from
            ``SOAJS_SERVICE_*``; override with ``providers.Object(Config(...))``.
        registry: one :class:`~soajs.RegistryManager` per container, built thread-safely and
            not started (the integrations start it with the app).
        request: the current request's :class:`~soajs.request.RequestContext` (or ``None``).
        context: the current request's :class:`~soajs.ContextData` (or ``None``); request-scoped,
            it reads the value the middleware set for this request.
        connector: a new :class:`~soajs.ServiceConnector` bound to the current request.
    """

    config = providers.Configuration()
    # Thread-safe even for settings: two first uses at once must still see one instance.
    settings = providers.ThreadSafeSingleton(Settings)
    service_config: providers.Provider[Config | None] = providers.Object(None)
    registry = providers.ThreadSafeSingleton(
        _build_registry, settings=settings, config=service_config
    )
    request = providers.Callable(current_request)
    context = providers.Callable(current_context)
    connector = providers.Factory(ServiceConnector, context=context, registry=registry)


class ServiceLifecycle:
    """Start a container's registry, register the service once it listens, and stop both.

    **The start-up policy**, the same for FastAPI, Flask and Django (each calls :meth:`start`
    from its app-start hook: the FastAPI lifespan, ``Soajs.init_app``, Django loading its
    middleware):

    * the first registry load happens once per process, in the registry's background thread
      (:meth:`RegistryManager.start_in_background`), never on a request's path; a process
      forked afterwards (gunicorn ``--preload``) runs its own thread;
    * :meth:`start` waits for the first attempt to end, loaded or failed (bounded by
      ``SOAJS_REGISTRY_FETCH_DEADLINE``; a gateway that is down fails at once), or, when
      ``SOAJS_REGISTRY_STARTUP_WAIT`` is set, for the first load at most that long; then it
      returns, loaded or not, and the app serves;
    * until it has, ``/heartbeat`` answers 503 (the gateway does not route to the instance),
      requests that read the registry get 503 code 135 in the gateway's error format, and the
      others are served (:mod:`soajs.readiness`);
    * failed attempts are retried with capped exponential backoff and jitter (at most 10 s
      apart while nothing is loaded), each bounded by ``SOAJS_REGISTRY_FETCH_DEADLINE``.

    Registration (``POST /register``) runs only when ``register`` is true, or, when it is
    ``None``, when ``SOAJS_DEPLOY_MANUAL`` is set and ``SOAJS_DEPLOY_HA`` is not (an HA gateway
    refuses registrations). It runs in a daemon thread that first waits until the service port
    accepts connections, because the gateway health-checks a host as soon as it registers.

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
        self._started = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def registry(self) -> RegistryManager:
        """The container's registry (honours overrides)."""
        registry: RegistryManager = self.container.registry()
        return registry

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has begun the registry (and :meth:`stop` not undone it).

        The registry itself may still be loading: see ``registry.loaded``.
        """
        return self._started

    @property
    def ext_key_required(self) -> bool:
        """Whether the service asks the gateway for a key, and so may trust ``soajsinjectobj``.

        A public service (``extKeyRequired: false``) must not trust the header: the gateway
        passes a client's own through to it. Without a usable config, the header is trusted.
        """
        config = self.container.service_config()
        if config is None:
            try:
                config = self.registry.registration_config()
            except ConfigValidationError:
                return True
        return bool(config.ext_key_required)

    @property
    def should_register(self) -> bool:
        """Whether this service registers itself with the gateway."""
        if self.register is not None:
            return self.register
        return self.registry.registration_enabled

    def start(self) -> None:
        """Begin the first registry load in the background (see the class docstring).

        Idempotent and thread-safe. Waits for the first attempt (at most
        ``SOAJS_REGISTRY_FETCH_DEADLINE``), or for the first load at most
        ``SOAJS_REGISTRY_STARTUP_WAIT`` seconds when that is set; never raises because the
        gateway is down or slow.
        """
        registry = self.registry
        if not self._started:
            with self._lock:
                if not self._started:
                    self._stopping.clear()
                    registry.start_in_background()
                    self._started = True
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

    def register_when_listening(self) -> None:
        """Register in a daemon thread once the service port accepts connections."""
        if not self.should_register:
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._register, name="soajs-register", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop re-registration and the registry's background reload; idempotent."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        with self._lock:
            if not self._started:
                return
            self._started = False
            self.registry.stop()

    def _register(self) -> None:
        try:
            registry = self.registry
            config = registry.registration_config()
            host, port = config.ip or registry.settings.srv_ip, config.port
            if not self._wait_listening(host, port):
                if self._stopping.is_set():
                    return
                logger.warning(
                    "nothing listens on %s:%s after %.0f s; registering with the gateway anyway",
                    host,
                    port,
                    self.listen_timeout,
                )
            if self._stopping.is_set():
                return
            self.start()
            registry.start_registration()
        except Exception:
            # A thread has no caller to raise to: the failure must at least be visible.
            logger.exception("could not register the service with the gateway")

    def _wait_listening(self, host: str, port: int) -> bool:
        deadline = time.monotonic() + self.listen_timeout
        while not self._stopping.is_set():
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return True
            except OSError:
                if time.monotonic() >= deadline:
                    return False
            self._stopping.wait(0.05)
        return False
