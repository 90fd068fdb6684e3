"""Services built with soajs, one per framework, as the interop scenarios run them.

Each service answers ``/echo`` with what its request context says (tenant, its own key config,
the logged-in user), ``/call/<target>`` with what another service answered through
:class:`soajs.ServiceConnector`, and ``/seen`` with every ``/echo`` report it gave. The
framework integration does the rest: ``/heartbeat``, the registry, and registering once the
port listens.

FastAPI (uvicorn) and Flask (werkzeug) run in threads of the test process. Django runs under
gunicorn in its own process (``django_service.py``): Django settings are configured once per
process, and other test files may use Django too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI
from flask import Flask, abort, request
from helpers import UvicornThread, WSGIThread, free_port

from soajs.connector import ServiceConnector
from soajs.fastapi import SoajsContext, setup_soajs
from soajs.flask import Soajs, current_context

from .realgateway import stop_process, wait_for_port
from .reports import describe
from .servers import environment, service_environment, wait_until_routable

if TYPE_CHECKING:
    from soajs.container import SoajsContainer
    from soajs.registry.manager import RegistryManager

    from .realgateway import GatewayUnderTest

GROUP = "Interop Services"
VERSION = "1"
HERE = Path(__file__).resolve().parent


@dataclass
class RunningService:
    """A service under test, listening on ``url``."""

    name: str
    framework: str
    port: int
    url: str
    container: SoajsContainer | None = None
    log_path: Path | None = None
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def registry(self) -> RegistryManager:
        """The service's own RegistryManager (services running in the test process only)."""
        if self.container is None:
            raise RuntimeError(f"{self.name} runs in another process")
        manager: RegistryManager = self.container.registry()
        return manager

    def received(self) -> list[dict[str, Any]]:
        """The reports the service's ``/echo`` gave, asked from the service directly."""
        reply = httpx.get(f"{self.url}/seen", timeout=10)
        reply.raise_for_status()
        reports: list[dict[str, Any]] = reply.json()
        return reports

    def log_tail(self, lines: int = 60) -> str:
        """The end of the service's own log (out-of-process services only)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop what the service started, newest first."""
        while self.stoppers:
            self.stoppers.pop()()


class Reports:
    """The ``/echo`` reports of one in-process service (thread-safe)."""

    def __init__(self) -> None:
        self._items: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, report: dict[str, Any]) -> dict[str, Any]:
        """Record ``report`` and return it."""
        with self._lock:
            self._items.append(report)
        return report

    def all(self) -> list[dict[str, Any]]:
        """Every report, oldest first."""
        with self._lock:
            return list(self._items)


def _container(service: RunningService, config: dict[str, Any]) -> SoajsContainer:
    from dependency_injector import providers

    from soajs.container import SoajsContainer
    from soajs.models.service_config import Config

    container = SoajsContainer()
    service_config = Config(
        name=service.name, group=GROUP, port=service.port, version=VERSION, **config
    )
    container.service_config.override(providers.Object(service_config))
    return container


def _call(target: str, version: str | None) -> dict[str, Any]:
    """Call ``target``'s /echo with a connector bound to the current request."""
    connector = ServiceConnector()
    connection = connector.connect(target, version)
    with connector.client(target, version) as client:
        reply = client.get("/echo")
    return {
        "mesh": connection.mesh,
        "host": connection.host,
        "status": reply.status_code,
        "reply": reply.json(),
    }


def fastapi_app(service: RunningService, config: dict[str, Any]) -> Any:
    """A FastAPI service wired with :func:`soajs.fastapi.setup_soajs`."""
    app = FastAPI()
    reports = Reports()
    service.container = _container(service, config)
    setup_soajs(app, service.container)

    @app.get("/echo")
    def echo(context: SoajsContext) -> dict[str, Any]:
        return reports.add(describe(service.name, context))

    @app.get("/seen")
    def seen() -> list[dict[str, Any]]:
        return reports.all()

    @app.get("/call/{target}")
    def call(target: str, context: SoajsContext, version: str | None = None) -> dict[str, Any]:
        return _call(target, version)

    @app.get("/registry")
    def registry() -> dict[str, Any]:
        return registry_report(service.registry)

    return app


def registry_report(manager: RegistryManager) -> dict[str, Any]:
    """What a service says about the registry snapshot it holds."""
    snapshot = manager.registry
    status = manager.status
    return {
        "services": sorted(snapshot.services or {}),
        "time_loaded": snapshot.time_loaded,
        "reloads": status.reloads,
        "last_error": status.last_error,
    }


def flask_app(service: RunningService, config: dict[str, Any]) -> Any:
    """A Flask service wired with :class:`soajs.flask.Soajs`."""
    app = Flask(service.name)
    reports = Reports()
    service.container = _container(service, config)
    extension = Soajs(app, container=service.container)
    service.stoppers.append(extension.stop)

    @app.get("/echo")
    def echo() -> dict[str, Any]:
        context = current_context()
        if context is None:
            abort(403)
        return reports.add(describe(service.name, context))

    @app.get("/seen")
    def seen() -> list[dict[str, Any]]:
        return reports.all()

    @app.get("/call/<target>")
    def call(target: str) -> dict[str, Any]:
        if current_context() is None:
            abort(403)
        return _call(target, request.args.get("version"))

    return app


@contextlib.contextmanager
def _in_process(
    service: RunningService, variables: dict[str, str], config: dict[str, Any]
) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        stack.callback(service.stop)
        # The integration reads SOAJS_* while the app is built and its server starts.
        with environment(variables):
            if service.framework == "fastapi":
                app = fastapi_app(service, config)
                stack.enter_context(UvicornThread(app, port=service.port, lifespan="on"))
            else:
                stack.enter_context(WSGIThread(flask_app(service, config), port=service.port))
        yield


@contextlib.contextmanager
def _gunicorn(service: RunningService, variables: dict[str, str], workdir: Path) -> Iterator[None]:
    service.log_path = workdir / f"{service.name}.log"
    environ = {key: value for key, value in os.environ.items() if not key.startswith("SOAJS_")}
    environ.update(variables)
    environ.update(SOAJS_SERVICE_GROUP=GROUP, SOAJS_SERVICE_VERSION=VERSION)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{service.port}",
        "--workers",
        "1",
        "--threads",
        "4",
        "--graceful-timeout",
        "5",
        "--pythonpath",
        str(HERE),
        "django_service:application",
    ]
    with service.log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(service.port, timeout=30, process=process)
    except Exception:
        stop_process(process, signal.SIGTERM)
        raise RuntimeError(f"gunicorn did not start:\n{service.log_tail()}") from None
    service.stoppers.append(lambda: stop_process(process, signal.SIGTERM))
    try:
        yield
    finally:
        service.stop()


@contextlib.contextmanager
def run_service(
    gateway: GatewayUnderTest,
    framework: str,
    name: str,
    *,
    variables: dict[str, str] | None = None,
    **config: Any,
) -> Iterator[RunningService]:
    """Build ``name`` with ``framework`` under ``SOAJS_DEPLOY_MANUAL=true`` and serve it.

    ``variables`` are extra ``SOAJS_*`` variables for the service. ``config`` is passed to
    :class:`soajs.Config` (in-process services only; the Django service takes its identity
    from ``SOAJS_SERVICE_*`` and the library's defaults).
    """
    port = free_port()
    service = RunningService(name, framework, port, f"http://127.0.0.1:{port}")
    variables = service_environment(
        gateway.registry_api, name, port, env=gateway.env, **(variables or {})
    )
    if framework == "django":
        if config:
            raise ValueError("the Django service takes no extra configuration")
        runner = _gunicorn(service, variables, gateway.workdir)
    else:
        runner = _in_process(service, variables, config)
    with runner:
        yield service


@contextlib.contextmanager
def run_routable_service(
    gateway: GatewayUnderTest, framework: str, name: str, **options: Any
) -> Iterator[RunningService]:
    """:func:`run_service`, once a keyed call to ``/<name>/echo`` through the gateway answers."""
    with run_service(gateway, framework, name, **options) as service:
        reply = wait_until_routable(f"{gateway.data_url}/{name}/echo", {"key": gateway.ext_key})
        assert reply.status_code == 200, reply.text
        yield service
