"""Run the local gateway: both ports on uvicorn in one background thread, driven from Python."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from os import PathLike
from types import TracebackType
from typing import Any, TypeVar

import httpx
import uvicorn

from soajs.gateway.config import GatewayConfig, load_config
from soajs.gateway.maintenance import CallLog, CallRecord, create_maintenance_app
from soajs.gateway.proxy import DataPortApp
from soajs.gateway.registry_views import full_registry
from soajs.gateway.state import RegistryState
from soajs.gateway.wire import GATEWAY_NAME

__all__ = ["LocalGateway"]

logger = logging.getLogger("soajs.gateway")

T = TypeVar("T")
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
# The libraries the gateway runs on log below WARNING what the gateway logs itself, once and
# without secrets: httpx puts every proxied URL with its ?key= and ?access_token= at INFO,
# httpcore response headers at DEBUG, and each of the two uvicorn servers its own start and
# stop lines.
_LIBRARY_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "uvicorn.error",
)


class _QuietLibrariesInThread(logging.Filter):
    """Drop library records below WARNING emitted from one thread (the gateway's)."""

    def __init__(self, thread_id: int) -> None:
        super().__init__()
        self.thread_id = thread_id

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread_id or record.levelno >= logging.WARNING


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class LocalGateway:
    """A local SOAJS gateway for development and tests.

    It serves the data port (routing, keys, ``soajsinjectobj``) and the maintenance API
    (``/getRegistry``, ``/register``, ...) on uvicorn, in a background thread.

    Args:
        config: a :class:`GatewayConfig`, a mapping, or the path of a YAML/JSON/seed file.
        host: the address both ports listen on (loopback by default).
        port: the data port; ``None`` takes ``environment.dataPort``; 0 picks a free port.
        maintenance_port: the maintenance port; ``None`` means data port + ``maintenanceInc``
            (a free port when the data port is picked freely); 0 picks a free port.
        advertise_host: the host reported as ``awareness.host``; by default ``host``, or
            127.0.0.1 when listening on every interface.
        health_check_interval: milliseconds between health checks, overriding the config.

    Example:
        >>> with LocalGateway(default_dev_config(), port=0) as gateway:  # doctest: +SKIP
        ...     os.environ["SOAJS_REGISTRY_API"] = gateway.registry_api
    """

    def __init__(
        self,
        config: GatewayConfig | Mapping[str, Any] | str | PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        maintenance_port: int | None = None,
        advertise_host: str | None = None,
        health_check_interval: int | None = None,
    ) -> None:
        if isinstance(config, GatewayConfig):
            loaded = config
        elif isinstance(config, Mapping):
            loaded = GatewayConfig.from_mapping(config)
        else:
            loaded = load_config(config)
        if health_check_interval is not None:
            environment = loaded.environment.model_copy(
                update={"health_check_interval": health_check_interval}
            )
            loaded = loaded.model_copy(update={"environment": environment})
        self._config = loaded
        self.host = host
        self.advertise_host = advertise_host or ("127.0.0.1" if host in _WILDCARDS else host)
        self._requested_port = loaded.environment.data_port if port is None else port
        self._requested_maintenance_port = maintenance_port
        self._calls = CallLog()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[uvicorn.Server] = []
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._state: RegistryState | None = None
        self._client: httpx.AsyncClient | None = None
        self.data_port = 0
        self.maintenance_port = 0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> LocalGateway:
        """Bind both ports and serve them; returns once both accept connections.

        Raises:
            OSError: a port cannot be bound (for example, it is in use).
            RuntimeError: the servers did not start within ``timeout`` seconds.
        """
        if self._thread is not None:
            raise RuntimeError("this LocalGateway is already started")
        data_sock = _bind(self.host, self._requested_port)
        try:
            self.data_port = data_sock.getsockname()[1]
            wanted = self._requested_maintenance_port
            if wanted is None:
                wanted = (
                    0
                    if self._requested_port == 0
                    else self.data_port + self._config.environment.maintenance_inc
                )
            maintenance_sock = _bind(self.host, wanted)
        except OSError:
            data_sock.close()
            raise
        self.maintenance_port = maintenance_sock.getsockname()[1]
        self._state = RegistryState(
            self._config, host=self.advertise_host, data_port=self.data_port
        )
        self._ready.clear()
        self._failure = None
        self._thread = threading.Thread(
            target=self._run, args=(data_sock, maintenance_sock), name="soajs-gateway", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout) or self._failure is not None:
            self.stop()
            raise RuntimeError(f"the local gateway did not start: {self._failure!r}")
        logger.info(
            "local gateway for env %r: data port %s, maintenance API %s",
            self._config.env,
            self.data_url,
            self.maintenance_url,
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the background thread to end."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            for server in self._servers:
                loop.call_soon_threadsafe(setattr, server, "should_exit", True)
        thread.join(timeout)
        self._thread = None
        self._loop = None
        self._servers = []
        logger.info("local gateway stopped")

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, data_sock: socket.socket, maintenance_sock: socket.socket) -> None:
        quiet = _QuietLibrariesInThread(threading.get_ident())
        library_loggers = [logging.getLogger(name) for name in _LIBRARY_LOGGERS]
        for library_logger in library_loggers:
            library_logger.addFilter(quiet)
        try:
            asyncio.run(self._serve(data_sock, maintenance_sock))
        except BaseException as exc:  # the thread must report, never die silently
            self._failure = exc
            logger.exception("local gateway failed")
        finally:
            for library_logger in library_loggers:
                library_logger.removeFilter(quiet)
            data_sock.close()
            maintenance_sock.close()
            self._ready.set()

    async def _serve(self, data_sock: socket.socket, maintenance_sock: socket.socket) -> None:
        state = self._require_state()
        self._loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(trust_env=False) as client:
            self._client = client
            data_app = DataPortApp(state, client)
            maintenance_app = create_maintenance_app(state, self._calls)
            self._servers = [
                uvicorn.Server(_uvicorn_config(data_app)),
                uvicorn.Server(_uvicorn_config(maintenance_app)),
            ]
            serving = [
                asyncio.create_task(self._servers[0].serve(sockets=[data_sock])),
                asyncio.create_task(self._servers[1].serve(sockets=[maintenance_sock])),
            ]
            background = [
                asyncio.create_task(self._health_loop(state, client)),
                asyncio.create_task(self._reload_loop(state)),
            ]
            try:
                while not all(server.started for server in self._servers):
                    if any(task.done() for task in serving):
                        break
                    await asyncio.sleep(0.01)
                self._ready.set()
                for server in self._servers:
                    if not server.started:
                        server.should_exit = True
                await asyncio.gather(*serving)
            finally:
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)

    async def _health_loop(self, state: RegistryState, client: httpx.AsyncClient) -> None:
        interval = self._config.environment.health_check_interval / 1000
        while True:
            try:
                await state.check_health(client)
            except Exception:
                logger.exception("health check failed")
            await asyncio.sleep(interval)

    async def _reload_loop(self, state: RegistryState) -> None:
        interval = self._config.environment.auto_reload_registry / 1000
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            state.rebuild()
            logger.info("registry rebuilt (autoRelaodRegistry)")

    def _require_state(self) -> RegistryState:
        if self._state is None:
            raise RuntimeError("the local gateway is not started")
        return self._state

    def _in_loop(self, action: Callable[[RegistryState], T], timeout: float = 5.0) -> T:
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("the local gateway is not running")
        state = self._require_state()

        async def call() -> T:
            return action(state)

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(call(), loop)
        return future.result(timeout)

    # -- addresses --------------------------------------------------------------------------

    @property
    def config(self) -> GatewayConfig:
        """The configuration served."""
        return self._config

    @property
    def data_url(self) -> str:
        """``http://host:port`` of the data port."""
        return f"http://{_url_host(self.advertise_host)}:{self.data_port}"

    @property
    def maintenance_url(self) -> str:
        """``http://host:port`` of the maintenance API."""
        return f"http://{_url_host(self.advertise_host)}:{self.maintenance_port}"

    @property
    def registry_api(self) -> str:
        """The value for ``SOAJS_REGISTRY_API`` (``host:port`` of the maintenance API)."""
        return f"{_url_host(self.advertise_host)}:{self.maintenance_port}"

    @property
    def env(self) -> str:
        """The lowercase environment code (the value for ``SOAJS_ENV``)."""
        return self._config.env

    @property
    def ext_keys(self) -> list[str]:
        """The external keys configured for this environment."""
        return self._config.ext_keys()

    @property
    def ext_key(self) -> str:
        """The first external key of this environment (raises if none is configured)."""
        keys = self.ext_keys
        if not keys:
            raise LookupError(f"no external key is configured for environment {self.env!r}")
        return keys[0]

    # -- inspection -------------------------------------------------------------------------

    def calls(self, route: str | None = None) -> list[CallRecord]:
        """The ``/getRegistry`` and ``/register`` calls received, optionally for one route."""
        return self._calls.all(route)

    def clear_calls(self) -> None:
        """Forget the calls received so far."""
        self._calls.clear()

    def registry(self) -> dict[str, Any]:
        """A copy of the whole registry, secrets included (``/reloadRegistry`` hides them)."""
        return self._in_loop(full_registry)

    def reload(self) -> None:
        """Rebuild the registry, dropping registrations made without ``mw``."""
        self._in_loop(lambda state: state.rebuild())

    def healthy_hosts(self, service: str, version: str | None = None) -> list[str]:
        """The hosts of ``service`` (default: its latest version) the last check found healthy."""

        def find(state: RegistryState) -> list[str]:
            entry = state.services.get(service) or state.daemons.get(service)
            if entry is None:
                return []
            hosts = entry.get("hosts") or {}
            chosen = str(version or hosts.get("latest"))
            if service == GATEWAY_NAME:
                return [state.host]
            return [ip for ip in hosts.get(chosen) or [] if state.is_healthy(service, chosen, ip)]

        return self._in_loop(find)

    def check_health(self, timeout: float = 30.0) -> None:
        """Probe every registered host now, instead of waiting for the next check."""
        loop, client = self._loop, self._client
        if loop is None or client is None:
            raise RuntimeError("the local gateway is not running")
        state = self._require_state()
        asyncio.run_coroutine_threadsafe(state.check_health(client), loop).result(timeout)

    def wait_healthy(self, service: str, version: str | None = None, timeout: float = 10.0) -> bool:
        """Wait until a health check finds a host of ``service`` healthy; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy_hosts(service, version):
                return True
            time.sleep(0.05)
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _uvicorn_config(app: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
