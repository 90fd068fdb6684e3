"""RegistryManager: an immutable registry snapshot, kept fresh by one background thread."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload

from soajs._fork import call_in_forked_child
from soajs.errors import (
    GatewayUnavailable,
    RegistryFetchStopped,
    RegistryNotLoaded,
    SettingsError,
)
from soajs.registration import Registrar
from soajs.registry.client import RegistryClient
from soajs.settings import Settings

if TYPE_CHECKING:
    from soajs.models.registry import (
        CustomRegistry,
        Daemon,
        Database,
        Deployer,
        GatewayAwareness,
        Registry,
        Resource,
        Service,
        ServiceConfig,
    )
    from soajs.models.service_config import Config

__all__ = [
    "DEFAULT_RELOAD_INTERVAL",
    "MIN_RELOAD_INTERVAL",
    "STOP_TIMEOUT",
    "RegistryManager",
    "RegistryStatus",
    "reload_interval",
    "retry_delay",
]

logger = logging.getLogger("soajs.registry")

# Every /getRegistry call starts another health-check loop inside the gateway (docs/protocol.md §7),
# so nothing polls faster than this, whatever the registry says. Seconds; tests lower it.
MIN_RELOAD_INTERVAL = 1.0
# Used when the registry sets no positive interval (Go and upstream Python do the same).
DEFAULT_RELOAD_INTERVAL = 3600.0
# Longest pause between two attempts while waiting for the gateway at start-up.
STARTUP_RETRY_CAP = 10.0
STOP_TIMEOUT = 1.0
"""Seconds :meth:`RegistryManager.stop` waits for the background thread by default.

A call in flight ends within :data:`soajs.registry.client.STOP_POLL_INTERVAL` of ``stop()``;
only a connection still being set up can take longer (its connect timeout), and the thread is
a daemon, so it never holds the process."""


@dataclass(frozen=True)
class RegistryStatus:
    """Health of a :class:`RegistryManager` at one moment.

    Attributes:
        last_success: when a registry was last loaded (UTC), or ``None``.
        last_error: the message of the last failed load, or ``None`` if none failed yet.
        last_error_at: when that failure happened (UTC).
        consecutive_failures: failed loads since the last success.
        reloads: successful loads, the first one included.
        age_seconds: seconds since the current snapshot was loaded, or ``None``.
        next_reload_in: seconds until the next background reload, or ``None`` when none is
            scheduled.
        running: whether a background thread (reloads, or the registrar's re-registration) is
            alive.
    """

    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    reloads: int
    age_seconds: float | None
    next_reload_in: float | None
    running: bool


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """A registry and its lookups, built once per load and swapped in by one assignment, so a
    read is one dict lookup and never mixes two registries."""

    registry: Registry | None = None
    # coreDB wins over tenantMetaDB, as in Registry.get_database; null entries left out.
    databases: dict[str, Database] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)

    @classmethod
    def of(cls, registry: Registry) -> _Snapshot:
        """Index ``registry``."""
        return cls(registry, registry.get_all_databases(), dict(registry.services))


@dataclass(frozen=True)
class _Health:
    """What the last loads did; replaced as a whole so readers never see half an update."""

    last_success: datetime | None = None
    loaded_at: float | None = None  # time.monotonic() of last_success
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    reloads: int = 0


def reload_interval(registry: Registry | None) -> float:
    """Seconds between reloads for this registry.

    ``serviceConfig.awareness.autoReloadRegistry`` (falling back to the misspelled
    ``autoRelaodRegistry`` that real registries carry), in ms; one hour when unset; never less
    than :data:`MIN_RELOAD_INTERVAL`.
    """
    milliseconds = (
        None if registry is None else (registry.service_config.awareness.reload_interval_ms)
    )
    seconds = DEFAULT_RELOAD_INTERVAL if milliseconds is None else milliseconds / 1000
    return max(MIN_RELOAD_INTERVAL, seconds)


def retry_delay(failures: int, interval: float) -> float:
    """Seconds to wait after ``failures`` consecutive failed loads.

    Capped exponential backoff with up to 50% jitter, starting at :data:`MIN_RELOAD_INTERVAL`:
    never faster than that floor and never slower than ``interval``.
    """
    floor = MIN_RELOAD_INTERVAL
    backoff = floor * 2.0 ** min(max(failures, 1) - 1, 30)
    # Jitter spreads the retries of many workers; it is not a security measure.
    jittered = backoff * random.uniform(1.0, 1.5)  # noqa: S311
    return max(floor, min(interval, jittered))


class RegistryManager:
    """Holds the environment registry and keeps it fresh.

    The registry is an immutable :class:`~soajs.models.Registry` snapshot. A reload builds a new
    one and swaps it in with a single assignment, so readers never wait for a reload and never
    see half of one. No lock is held while a call waits on the network: :attr:`status`,
    :meth:`stop`, the readers and another :meth:`reload` never wait on a slow gateway. When two
    reloads overlap, the one started last wins. Every call to the gateway is bounded in time
    (``SOAJS_REGISTRY_FETCH_DEADLINE``) and size (``SOAJS_REGISTRY_MAX_REPLY_SIZE``); a call
    past either limit fails like any other, and shows in :attr:`status`.

    **Start-up.** With ``autostart`` (the default) the constructor loads the registry at once:
    ``registry.get_database("main")`` works on the next line. If the gateway cannot be reached
    it raises :class:`~soajs.errors.GatewayUnavailable` straight away. To wait for a gateway
    that is still starting, give ``startup_wait`` seconds (or ``SOAJS_REGISTRY_STARTUP_WAIT``):
    the manager then retries with backoff until the gateway answers or the time is up, and
    raises ``GatewayUnavailable`` only then. Other errors (``result: false``, a reply that is
    not a registry) are raised at once. ``autostart=False`` defers all of this to
    :meth:`start`.

    **Reloads.** With ``auto_reload`` a daemon thread reloads every
    ``serviceConfig.awareness.autoReloadRegistry`` ms (falling back to the misspelled
    ``autoRelaodRegistry`` real registries carry), one hour when unset, never more often than
    once a second. A failed reload keeps the last good snapshot, logs a warning on the
    ``soajs.registry`` logger, and is retried with capped exponential backoff plus jitter.
    :attr:`status` shows how it is going.

    **Registration** (manual deployment). The manager never registers on its own: its
    :attr:`registrar` (a :class:`~soajs.registration.Registrar`, which owns every rule about
    when ``POST /register`` is sent) does, when the framework integrations ask it to once the
    app listens. :meth:`register` and :meth:`start_registration` delegate to it.

    **Processes.** :meth:`stop` cuts short the calls in flight and joins the thread within
    :data:`STOP_TIMEOUT` seconds, even on a gateway that drips its reply; after it, only an explicit
    :meth:`start` brings the thread back (:meth:`reload` still works). A child forked while the
    thread ran (gunicorn ``--preload``) restarts its own thread and connection pool.

    The service identity comes from the arguments, else from ``config``, else from the
    ``SOAJS_SERVICE_*`` settings (``service_type="service"``, the default, defers to them); the
    environment from ``env_code``, else ``SOAJS_ENV`` (default ``dev``); the gateway from
    ``SOAJS_REGISTRY_API``. The registry is always fetched with ``type=service``.

    Raises:
        SettingsError: no service name, or ``SOAJS_REGISTRY_API`` unset (without ``client``).
        GatewayUnavailable: at start-up, the gateway did not answer (in time).
        RegistryRejected: at start-up, the gateway answered ``result: false``.
        RegistryReplyMalformed: at start-up, the reply was not a registry.
    """

    def __init__(  # noqa: PLR0917 - the seed API passes these positionally
        self,
        service_name: str | None = None,
        env_code: str | None = None,
        service_type: str = "service",
        auto_reload: bool = True,
        service_port: int | None = None,
        service_ip: str | None = None,
        service_group: str | None = None,
        service_version: str | None = None,
        config: Config | None = None,
        *,
        settings: Settings | None = None,
        autostart: bool = True,
        startup_wait: float | None = None,
        client: RegistryClient | None = None,
    ) -> None:
        self._settings = settings if settings is not None else Settings()
        name = service_name or (config.name if config is not None else None)
        name = name or self._settings.service_name
        if not name:
            raise SettingsError(
                "SOAJS_SERVICE_NAME is not set: pass service_name=..., a config with a name, "
                "or set SOAJS_SERVICE_NAME"
            )
        self.service_name: str = name
        env = (env_code or self._settings.env).strip().lower()
        if not env:
            raise SettingsError("SOAJS_ENV: the environment code must not be empty")
        self.env_code: str = env
        self.auto_reload = auto_reload
        self._config = config
        self._identity: dict[str, Any] = {
            "name": service_name,
            "group": service_group,
            "port": service_port,
            "version": service_version,
            "ip": service_ip,
            # the default defers to the config or SOAJS_SERVICE_TYPE
            "type": None if service_type == "service" else service_type,
        }
        if client is None:
            client = RegistryClient.from_settings(self._settings)
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client
        self._startup_wait = (
            self._settings.registry_startup_wait if startup_wait is None else startup_wait
        )

        self._snapshot = _Snapshot()
        self._health = _Health()
        # Guards the schedule and the publication of a snapshot; never held across a call.
        self._state_lock = threading.Lock()
        self._wake = threading.Event()
        # Set by stop() for the calls in flight at that moment, then replaced by a fresh one.
        self._stopping = threading.Event()
        self._loaded = threading.Event()  # set once a registry is in place
        self._attempted = threading.Event()  # set once a load has ended, either way
        self._first_load = False  # start_in_background(): the thread makes the first load
        self._fetches = 0  # reloads started
        self._published = 0  # the reload whose snapshot is in place
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._reloading = False
        self._next_reload_at: float | None = None
        self.registrar = Registrar(
            client,
            self._settings,
            self.registration_config,
            service_name=name,
            on_registered=self._reload_soon_if_unlisted,
        )
        """Sends ``POST /register`` and repeats it (see :class:`~soajs.registration.Registrar`)."""
        call_in_forked_child(self._rearm_after_fork)

        if autostart:
            self.start()

    @classmethod
    def from_settings(
        cls, settings: Settings, config: Config | None = None, *, autostart: bool = True
    ) -> RegistryManager:
        """Build a manager from :class:`~soajs.Settings` (and the service's ``Config``)."""
        return cls(config=config, settings=settings, autostart=autostart)

    def __repr__(self) -> str:
        registry = self._snapshot.registry
        loaded = None if registry is None else registry.environment
        return (
            f"RegistryManager(service_name={self.service_name!r}, env_code={self.env_code!r}, "
            f"gateway={self._client.base_url!r}, loaded={loaded!r}, running={self._running()})"
        )

    # -- the snapshot ------------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        """The current registry snapshot (never changes; a reload swaps in a new one).

        Raises:
            RegistryNotLoaded: nothing is loaded yet (``autostart=False`` and no :meth:`start`,
                or a background first load still waiting for the gateway).
        """
        registry = self._snapshot.registry
        if registry is None:
            raise RegistryNotLoaded(
                f"the {self.env_code!r} registry is not loaded yet: the gateway at "
                f"{self._client.base_url} (SOAJS_REGISTRY_API) has not answered; call start() "
                f"or reload()",
                url=self._client.base_url,
            )
        return registry

    @property
    def loaded(self) -> bool:
        """Whether a registry is in place (readers get the last good one from then on)."""
        return self._snapshot.registry is not None

    def wait_loaded(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a registry to be in place; whether one is."""
        return self._loaded.wait(timeout)

    def wait_attempted(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a first load to have ended, loaded or failed."""
        return self._attempted.wait(timeout)

    @property
    def settings(self) -> Settings:
        """The settings this manager was built with."""
        return self._settings

    @property
    def client(self) -> RegistryClient:
        """The client used to reach the gateway."""
        return self._client

    # -- lookups: the seed API's names (get_database, get_all_databases, get_service,
    # get_resource, get_custom) and typed additions, each a read of the current snapshot ----

    def get_database(self, name: str) -> Database:
        """The database ``name`` (``coreDB`` first, then ``tenantMetaDB``).

        Raises:
            NotFound: no such database.
        """
        try:
            return self._snapshot.databases[name]
        except KeyError:
            # Nothing loaded, or no such database: the registry says which.
            return self.registry.get_database(name)

    def get_all_databases(self) -> dict[str, Database]:
        """Every database of the registry, by name."""
        return self.registry.get_all_databases()

    def get_service(self, name: str) -> Service:
        """The ``services`` entry ``name``.

        Raises:
            NotFound: no such service in the registry.
        """
        try:
            return self._snapshot.services[name]
        except KeyError:
            return self.registry.get_service(name)

    def get_resource(self, name: str) -> Resource:
        """The resource ``name``, whatever its type.

        Raises:
            NotFound: no such resource.
        """
        return self.registry.get_resource(name)

    def get_resources(self, type: str | None = None) -> list[Resource]:  # noqa: A002
        """The resources of one ``type`` (e.g. ``"cluster"``), or all of them."""
        return self.registry.get_resources(type)

    # A str variable that happens to be "" gets the dict at run time; the overlap is the seed API.
    @overload
    def get_custom(  # type: ignore[overload-overlap]
        self, name: Literal[""] = ""
    ) -> dict[str, CustomRegistry]: ...

    @overload
    def get_custom(self, name: str) -> CustomRegistry: ...

    def get_custom(self, name: str = "") -> CustomRegistry | dict[str, CustomRegistry]:
        """The custom registry entry ``name``, or all of them when ``name`` is ``""``.

        Raises:
            NotFound: no custom registry entry has that name.
        """
        return self.registry.get_custom(name)

    def get_daemon(self, name: str) -> Daemon:
        """The ``daemons`` entry ``name``.

        Raises:
            NotFound: no such daemon (``type=service`` registries carry none).
        """
        return self.registry.get_daemon(name)

    @property
    def deployer(self) -> Deployer:
        """The environment's deployer settings."""
        return self.registry.deployer

    @property
    def daemons(self) -> dict[str, Daemon]:
        """The daemons the gateway sent (none for ``type=service`` requests)."""
        return dict(self.registry.daemons or {})

    @property
    def awareness(self) -> GatewayAwareness | None:
        """Where the gateway's data port is (top-level ``awareness``)."""
        return self.registry.awareness

    @property
    def service_config(self) -> ServiceConfig:
        """The environment's ``serviceConfig``."""
        return self.registry.service_config

    # -- loading (reload and stop are the seed API's names) ---------------------------------

    def reload(self) -> Registry:
        """Fetch the registry now and swap it in.

        Returns:
            The new snapshot.

        Raises:
            GatewayUnavailable, RegistryRejected, RegistryReplyMalformed: the fetch failed; the
                previous snapshot stays in place and the failure shows in :attr:`status`.
        """
        return self._reload(self._stopping)

    def _reload(self, stopping: threading.Event) -> Registry:
        with self._state_lock:
            self._fetches += 1
            ticket = self._fetches
        try:
            with self._client.stop_when(stopping):
                registry = self._client.fetch(self.env_code, self.service_name)
        except RegistryFetchStopped:
            raise
        except Exception as exc:
            self._record_failure(exc)
            self._attempted.set()
            raise
        snapshot = _Snapshot.of(registry)
        with self._state_lock:
            if ticket > self._published:
                self._published = ticket
                health = self._health
                self._health = _Health(
                    last_success=datetime.now(UTC),
                    loaded_at=time.monotonic(),
                    last_error=health.last_error,
                    last_error_at=health.last_error_at,
                    consecutive_failures=0,
                    reloads=health.reloads + 1,
                )
                self._next_reload_at = time.monotonic() + reload_interval(registry)
                # Published last: whoever sees the new snapshot also sees its status.
                self._snapshot = snapshot
                self._loaded.set()
                self._attempted.set()
            # A reload started later already put its (newer) registry in place.
            return self._snapshot.registry or registry

    def start(self) -> None:
        """Load the registry if needed, then start the background thread (with auto_reload).

        Idempotent. Start-up errors are described in the class docstring.
        """
        with self._state_lock:
            self._stopped = False
            stopping = self._stopping
        if self._snapshot.registry is None:
            self._load_at_startup(stopping)
        with self._state_lock:
            self._schedule_reloads()

    def start_in_background(self) -> None:
        """Start the background thread and let it make the first load; returns at once.

        Idempotent. Until a registry is in place the thread retries with capped exponential
        backoff and jitter, never more than ``STARTUP_RETRY_CAP`` (10 s) apart, each attempt
        bounded by ``SOAJS_REGISTRY_FETCH_DEADLINE``; meanwhile :attr:`loaded` is false and
        reading :attr:`registry` raises :class:`~soajs.errors.RegistryNotLoaded`. Then, with
        ``auto_reload``, it reloads on schedule as after :meth:`start`. This is the start-up
        the framework integrations use (see :class:`~soajs.container.ServiceLifecycle`).
        """
        with self._state_lock:
            self._stopped = False
            if self._snapshot.registry is None:
                self._first_load = True
                self._next_reload_at = time.monotonic()
            self._schedule_reloads()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the background thread and wait for it (at most ``timeout`` seconds).

        Idempotent. Stops the :attr:`registrar` too. Every call to the gateway in flight (a
        reload, a registration, a start-up still waiting for the gateway) ends at once with
        :class:`~soajs.errors.RegistryFetchStopped`, so the default wait,
        :data:`STOP_TIMEOUT`, is ample even mid-fetch on a gateway that drips its reply.
        Closes the connection pool the manager opened; :meth:`reload` still works afterwards.
        """
        self.registrar.stop(STOP_TIMEOUT if timeout is None else timeout)
        with self._state_lock:
            self._stopped = True
            thread = self._thread
            stopping, self._stopping = self._stopping, threading.Event()
            self._wake.set()
        stopping.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_TIMEOUT if timeout is None else timeout)
            if thread.is_alive():
                logger.warning("the registry thread of %s did not stop in time", self.service_name)
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> RegistryManager:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def status(self) -> RegistryStatus:
        """How the loads are going: last success, last error, age, next reload."""
        health = self._health
        now = time.monotonic()
        reloading = self._running()
        next_reload_at = self._next_reload_at
        next_reload_in = None
        if reloading and self._wants_reload() and next_reload_at is not None:
            next_reload_in = max(0.0, next_reload_at - now)
        return RegistryStatus(
            last_success=health.last_success,
            last_error=health.last_error,
            last_error_at=health.last_error_at,
            consecutive_failures=health.consecutive_failures,
            reloads=health.reloads,
            age_seconds=None if health.loaded_at is None else now - health.loaded_at,
            next_reload_in=next_reload_in,
            running=reloading or self.registrar.running,
        )

    # -- registration: delegates to :attr:`registrar` -----------------------------------------

    def registration_config(self) -> Config:
        """The ``Config`` registered: the arguments over ``config`` over ``SOAJS_SERVICE_*``.

        Raises:
            ConfigValidationError: a required field (group, port, ...) is missing or invalid.
        """
        from soajs.models.service_config import Config

        overrides = {key: value for key, value in self._identity.items() if value is not None}
        if self._config is None:
            return Config.from_settings(self._settings, **overrides)
        if not overrides:
            return self._config
        return Config.model_validate({**self._config.model_dump(exclude_unset=True), **overrides})

    @property
    def registration_enabled(self) -> bool:
        """Whether this service should register itself (``SOAJS_DEPLOY_MANUAL``, not HA)."""
        return self.registrar.enabled

    def register(self) -> bool:
        """Register this instance with the gateway now: :meth:`Registrar.register`.

        Call it once the app listens: the gateway health-checks the service right away.
        """
        return self.registrar.register()

    def start_registration(self) -> bool:
        """Register now, then every ``SOAJS_REREGISTER_INTERVAL`` seconds: :meth:`Registrar.start`.

        The repetition stops with :meth:`stop`.
        """
        return self.registrar.start()

    # -- internals ---------------------------------------------------------------------------

    def _record_failure(self, exc: BaseException) -> None:
        with self._state_lock:
            health = self._health
            failures = health.consecutive_failures + 1
            self._health = _Health(
                last_success=health.last_success,
                loaded_at=health.loaded_at,
                last_error=str(exc) or type(exc).__name__,
                last_error_at=datetime.now(UTC),
                consecutive_failures=failures,
                reloads=health.reloads,
            )
            registry = self._snapshot.registry
            # Nothing to serve yet: retry at least every STARTUP_RETRY_CAP, not hourly.
            cap = STARTUP_RETRY_CAP if registry is None else reload_interval(registry)
            self._next_reload_at = time.monotonic() + retry_delay(failures, cap)
        # A failed explicit reload() must bring the sleeping thread's retry forward too.
        self._wake.set()

    def _reload_soon_if_unlisted(self, name: str) -> None:
        """Bring the next reload forward when the snapshot does not list ``name`` yet.

        The gateway lists a service only once it registered, so a snapshot loaded before the
        first registration lacks the service's own entry until the next (often hourly)
        reload. Once the entry is there, registrations cost no extra poll.
        """
        registry = self._snapshot.registry
        if registry is None or name in registry.services:
            return
        with self._state_lock:
            if not self._reloading:
                return
            soon = time.monotonic() + MIN_RELOAD_INTERVAL
            if self._next_reload_at is None or self._next_reload_at > soon:
                self._next_reload_at = soon
                self._wake.set()

    def _load_at_startup(self, stopping: threading.Event) -> None:
        deadline = time.monotonic() + self._startup_wait
        attempts = 0
        while True:
            try:
                self._reload(stopping)
            except GatewayUnavailable as exc:
                remaining = deadline - time.monotonic()
                if self._startup_wait <= 0:
                    raise
                if remaining <= 0 or stopping.is_set():
                    raise GatewayUnavailable(
                        f"the gateway did not answer within SOAJS_REGISTRY_STARTUP_WAIT="
                        f"{self._startup_wait:g}s: {exc}",
                        url=exc.url,
                    ) from exc
                attempts += 1
                delay = min(remaining, retry_delay(attempts, STARTUP_RETRY_CAP))
                logger.info("waiting for the gateway (%s); next attempt in %.1fs", exc.url, delay)
                stopping.wait(delay)
            else:
                return

    def _running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopped

    def _schedule_reloads(self) -> None:
        """With ``auto_reload``, plan a reload, start the thread; hold ``_state_lock``."""
        if self.auto_reload:
            self._reloading = True
            if self._next_reload_at is None:
                self._next_reload_at = time.monotonic() + reload_interval(self._snapshot.registry)
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        """Start the background thread if work is scheduled; call with ``_state_lock`` held."""
        if self._stopped or not self._wants_reload():
            return
        if self._thread is not None and self._thread.is_alive():
            self._wake.set()
            return
        self._thread = threading.Thread(
            target=self._run, name=f"soajs-registry-{self.service_name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while True:
            delay = 0.0
            with self._state_lock:
                if self._stopped or not self._wants_reload():
                    self._thread = None
                    return
                # Taken with the check above, so a stop() after it ends this round's calls.
                stopping = self._stopping
                now = time.monotonic()
                next_at = self._next_reload_at
                due = next_at is not None and now >= next_at
                if not due:
                    self._wake.clear()
                    delay = DEFAULT_RELOAD_INTERVAL if next_at is None else next_at - now
            if due:
                self._reload_in_background(stopping)
            else:
                self._wake.wait(delay)

    def _wants_reload(self) -> bool:
        """Whether the thread reloads: on schedule, or until a first load it was asked for."""
        return self._reloading or (self._first_load and self._snapshot.registry is None)

    def _reload_in_background(self, stopping: threading.Event) -> None:
        try:
            registry = self._reload(stopping)
        except RegistryFetchStopped:
            return
        except Exception:  # noqa: BLE001 - the thread must outlive any failure
            health = self._health
            age = self.status.age_seconds
            logger.warning(
                "registry reload of %s/%s failed (%d in a row); %s; next attempt in %.1fs: %s",
                self.env_code,
                self.service_name,
                health.consecutive_failures,
                "no registry loaded yet (requests that read it get 503)"
                if age is None
                else f"keeping the registry loaded {age:.0f}s ago",
                max(0.0, (self._next_reload_at or 0.0) - time.monotonic()),
                health.last_error,
            )
        else:
            logger.debug(
                "registry %s reloaded (timeLoaded %s)", registry.environment, registry.time_loaded
            )

    def _rearm_after_fork(self) -> None:
        """Give a forked child fresh locks and, if the parent's thread ran, its own thread."""
        was_running = self._thread is not None and not self._stopped
        self._state_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._loaded = threading.Event()
        self._attempted = threading.Event()
        if self._snapshot.registry is not None:
            self._loaded.set()
            self._attempted.set()
        self._thread = None
        if was_running:
            with self._state_lock:
                self._ensure_thread()
