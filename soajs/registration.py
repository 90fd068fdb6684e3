"""Registration with the gateway: the ``POST /register`` body, and when it is sent.

:class:`Registrar` owns every rule about *when* a manually deployed service registers (once its
port listens, then again on a timer, never under ``SOAJS_DEPLOY_HA``, until stopped);
:func:`build_register_body` owns *what* it sends.

The body uses the gateway's own field names (docs/protocol.md §3.1), in the order the reference
services send them, and always ``"mw": true``: the gateway persists a registration (marketplace
record and ``hosts`` collection) only when ``mw`` is truthy. Without it the entry lives in one
gateway process's memory and vanishes on the next registry reload. Upstream Python sent
``"middleware": true``, which the gateway ignores.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from soajs._fork import call_in_forked_child
from soajs.errors import RegistryError, RegistryFetchStopped

if TYPE_CHECKING:
    from collections.abc import Callable

    from soajs.models.service_config import Config
    from soajs.registry.client import RegistryClient
    from soajs.settings import Settings

__all__ = ["MIN_REREGISTER_INTERVAL", "Registrar", "build_register_body"]

logger = logging.getLogger("soajs.registry")

MIN_REREGISTER_INTERVAL = 1.0
"""Fewest seconds between two registrations, whatever ``SOAJS_REREGISTER_INTERVAL`` says."""
STOP_TIMEOUT = 1.0
# Seconds Registrar.stop() waits for its thread: a registration in flight ends within
# soajs.registry.client.STOP_POLL_INTERVAL of the stop, and the thread is a daemon.

# (wire key, Config attribute) for the optional fields, in wire order; None values are not sent.
_OPTIONAL_FIELDS = (
    ("subType", "sub_type"),
    ("description", "description"),
    ("extKeyRequired", "ext_key_required"),
    ("oauth", "oauth"),
    ("urac", "urac"),
    ("urac_Profile", "urac_profile"),
    ("urac_ACL", "urac_acl"),
    ("urac_Config", "urac_config"),
    ("urac_GroupConfig", "urac_group_config"),
    ("tenant_Profile", "tenant_profile"),
    ("provision_ACL", "provision_acl"),
    ("requestTimeout", "request_timeout"),
    ("requestTimeoutRenewal", "request_timeout_renewal"),
)


def build_register_body(config: Config, settings: Settings) -> dict[str, Any]:
    """Build the JSON body of ``POST /register`` for this service.

    Args:
        config: the service configuration.
        settings: supplies the registered IP (``SOAJS_SRVIP``) when ``config.ip`` is unset.

    Returns:
        A JSON-serialisable dict; its key order is the wire order.
    """
    body: dict[str, Any] = {
        "name": config.name,
        "group": config.group,
        "port": config.port,
        "ip": config.ip or settings.srv_ip,
        "type": config.type,
        "version": config.version,
    }
    for key, attribute in _OPTIONAL_FIELDS:
        value = getattr(config, attribute)
        if value is not None:
            body[key] = value
    if config.inter_connect is not None:
        body["interConnect"] = [
            target.model_dump(mode="json", exclude_none=True) for target in config.inter_connect
        ]
    if config.maintenance is not None:
        body["maintenance"] = config.maintenance.model_dump(mode="json", exclude_none=True)
    if config.port_host is not None:
        body["portHost"] = config.port_host
    body["mw"] = True
    return body


class Registrar:
    """Registers one service instance with the gateway and keeps it registered.

    The one place that decides when ``POST /register`` is sent:

    * :meth:`register` sends it once, now (skipped under ``SOAJS_DEPLOY_HA``: an HA gateway
      refuses registrations). ``result: false`` or an unreachable gateway is a logged warning,
      or an error with ``SOAJS_REGISTER_STRICT``;
    * :meth:`start` registers now, then again every ``SOAJS_REREGISTER_INTERVAL`` seconds in a
      daemon thread, because the gateway forgets registrations on every registry rebuild;
    * :meth:`start_when_listening` does the same from the thread, once the service port
      accepts connections, because the gateway health-checks a host as soon as it registers;
    * :meth:`stop` ends the thread and cuts short a registration in flight.

    A process forked while the registrar repeats (gunicorn ``--preload``) repeats in the child
    too.

    Args:
        client: the gateway's maintenance API.
        settings: ``SOAJS_SRVIP``, ``SOAJS_DEPLOY_*``, ``SOAJS_REGISTER_STRICT`` and
            ``SOAJS_REREGISTER_INTERVAL``.
        config: gives the configuration to register, read anew at each registration.
        service_name: names the service in the log when no configuration is read.
        on_registered: called with the service name after each accepted registration.
    """

    def __init__(
        self,
        client: RegistryClient,
        settings: Settings,
        config: Callable[[], Config],
        *,
        service_name: str,
        on_registered: Callable[[str], None] | None = None,
    ) -> None:
        self.service_name = service_name
        self._client = client
        self._settings = settings
        self._config = config
        self._on_registered = on_registered
        self._lock = threading.Lock()
        # Set by stop() for the calls and the thread of that moment, then replaced.
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._repeating = False
        call_in_forked_child(self._rearm_after_fork)

    @property
    def enabled(self) -> bool:
        """Whether the settings ask for registration (``SOAJS_DEPLOY_MANUAL``, not HA)."""
        return self._settings.deploy_manual and self._settings.deploy_ha is None

    @property
    def interval(self) -> float | None:
        """Seconds between two registrations, or ``None`` when it registers only once."""
        every = self._settings.reregister_interval
        if self._settings.deploy_ha is not None or every <= 0:
            return None
        return max(MIN_REREGISTER_INTERVAL, every)

    @property
    def thread(self) -> threading.Thread | None:
        """The registration thread last started, or ``None`` when none was."""
        return self._thread

    @property
    def running(self) -> bool:
        """Whether the registration thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def register(self) -> bool:
        """Register this instance with the gateway now (``POST /register``).

        Returns:
            ``True`` when the gateway accepted it; ``False`` when it refused or could not be
            reached (a warning is logged), when :meth:`stop` cut it short, or when
            ``SOAJS_DEPLOY_HA`` is set (skipped).

        Raises:
            RegistryError: the registration failed and ``SOAJS_REGISTER_STRICT`` is set.
            ConfigValidationError: the service configuration is incomplete or invalid.
        """
        return self._register(self._stopping)

    def start(self) -> bool:
        """Register now, then again every ``SOAJS_REREGISTER_INTERVAL`` seconds until :meth:`stop`.

        Returns:
            The result of the first :meth:`register`.
        """
        registered = self.register()
        if self.interval is not None:
            with self._lock:
                self._repeating = True
                if not self.running:
                    self._start_thread(self._repeat, self._stopping)
        return registered

    def start_when_listening(
        self, listen_timeout: float, *, before: Callable[[], None] | None = None
    ) -> None:
        """In a daemon thread: wait for the service port, call ``before``, then :meth:`start`.

        Returns at once; does nothing when the thread already runs. When nothing listens after
        ``listen_timeout`` seconds, it registers anyway and logs a warning. A failure (an
        invalid configuration, a strict registration refused) is logged: the thread has no
        caller to raise to.
        """
        with self._lock:
            if self.running:
                return
            self._start_thread(
                self._register_when_listening, self._stopping, listen_timeout, before
            )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """End the registration thread and any registration in flight; idempotent."""
        with self._lock:
            self._repeating = False
            thread = self._thread
            stopping, self._stopping = self._stopping, threading.Event()
        stopping.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("the registration thread did not stop in time")

    def _start_thread(self, target: Callable[..., None], *args: object) -> None:
        """Start the registration thread; call with ``_lock`` held."""
        self._thread = threading.Thread(
            target=target, args=args, name=f"soajs-register-{self.service_name}", daemon=True
        )
        self._thread.start()

    def _register(self, stopping: threading.Event) -> bool:
        settings = self._settings
        if settings.deploy_ha is not None:
            logger.info(
                "not registering %s: SOAJS_DEPLOY_HA is set and HA gateways refuse /register",
                self.service_name,
            )
            return False
        config = self._config()
        body = build_register_body(config, settings)
        try:
            with self._client.stop_when(stopping):
                self._client.register(body)
        except RegistryFetchStopped:
            logger.info("registration of %s stopped", config.name)
            return False
        except RegistryError as exc:
            if settings.register_strict:
                raise
            logger.warning("registration of %s failed: %s", config.name, exc)
            return False
        logger.info(
            "registered %s version %s at %s:%s with the gateway",
            config.name,
            config.version,
            body["ip"],
            config.port,
        )
        if self._on_registered is not None:
            self._on_registered(config.name)
        return True

    def _register_when_listening(
        self, stopping: threading.Event, listen_timeout: float, before: Callable[[], None] | None
    ) -> None:
        try:
            config = self._config()
            host, port = config.ip or self._settings.srv_ip, config.port
            if not _wait_listening(host, port, listen_timeout, stopping):
                if stopping.is_set():
                    return
                logger.warning(
                    "nothing listens on %s:%s after %.0f s; registering with the gateway anyway",
                    host,
                    port,
                    listen_timeout,
                )
            if stopping.is_set():
                return
            if before is not None:
                before()
            self._register(stopping)
        except Exception:
            # A thread has no caller to raise to: the failure must at least be visible.
            logger.exception("could not register the service with the gateway")
            return
        if self.interval is not None:
            with self._lock:
                if stopping.is_set():
                    return
                self._repeating = True
        self._repeat(stopping)

    def _repeat(self, stopping: threading.Event) -> None:
        while True:
            every = self.interval
            if every is None or not self._repeating or stopping.wait(every):
                return
            try:
                self._register(stopping)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any failure
                logger.warning("re-registration failed: %s", exc)

    def _rearm_after_fork(self) -> None:
        """Give a forked child a fresh lock and, if the parent repeated, its own thread."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = None
        if self._repeating:
            with self._lock:
                self._start_thread(self._repeat, self._stopping)


def _wait_listening(host: str, port: int, timeout: float, stopping: threading.Event) -> bool:
    """Whether ``host:port`` accepts a connection within ``timeout`` seconds (and no stop)."""
    deadline = time.monotonic() + timeout
    while not stopping.is_set():
        try:
            with socket.create_connection((host, port), timeout=0.5) as probe:
                # A server that forks now (gunicorn --preload) copies the probe into its
                # workers: end the connection itself, or the worker that accepted it waits
                # for a request until the server's timeout kills it.
                with contextlib.suppress(OSError):
                    probe.shutdown(socket.SHUT_RDWR)
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
        stopping.wait(0.05)
    return False
