"""What many test modules share: a free port, polling, real servers on 127.0.0.1, Django settings,
the Node.js prerequisite of the interop and parity suites.

Test modules import it as ``from helpers import ...`` (``tests/`` is on ``sys.path`` the way
pytest puts a rootdir without ``__init__.py`` there), like :mod:`fixture_paths`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from werkzeug.serving import BaseWSGIServer, make_server

__all__ = [
    "NodeSuite",
    "UvicornThread",
    "WSGIThread",
    "configure_django",
    "exit_code_in_forked_child",
    "free_port",
    "tenants_seen_at_once",
    "wait_until",
]

START_TIMEOUT = 30.0
"""Seconds a server in a thread may take to accept connections (generous: the machine is shared)."""
JOIN_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, *, interval: float = 0.005
) -> bool:
    """Poll ``predicate`` every ``interval`` seconds until it holds or ``timeout`` seconds pass.

    Returns:
        Its last value.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def tenants_seen_at_once(
    tenant_seen: Callable[[str], str | None], count: int
) -> dict[str, str | None]:
    """Call ``tenant_seen`` for ``count`` tenant codes, each from its own thread, all at once.

    Args:
        tenant_seen: sends one request as the tenant with the given code and returns the
            tenant code the handler saw.
        count: how many requests (and threads) run together.

    Returns:
        Each code sent, mapped to the code its handler saw.
    """
    seen: dict[str, str | None] = {}
    lock = threading.Lock()

    def call(code: str) -> None:
        answer = tenant_seen(code)
        with lock:
            seen[code] = answer

    threads = [threading.Thread(target=call, args=(f"T{index}",)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seen


def configure_django() -> None:
    """Give Django the minimal settings the tests share, once per process.

    Call it before importing Django modules that read settings; each test then picks its URLs
    and middleware with ``override_settings``.
    """
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="soajs-tests-only",
            ALLOWED_HOSTS=["*"],
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()


class UvicornThread:
    """An ASGI app served by uvicorn on ``host`` in a background thread.

    The socket is bound at construction (``port=0`` picks a free one), so :attr:`port` is known
    before the app starts; connections are refused until uvicorn listens, after the lifespan
    startup. Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        *,
        port: int = 0,
        lifespan: str = "off",
        **options: Any,
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app, lifespan=lifespan, log_config=None, access_log=False, **options
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        """The base URL of the service."""
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self._sock]))

    def start(self) -> UvicornThread:
        """Serve, and return once uvicorn accepts connections.

        Raises:
            RuntimeError: uvicorn stopped or did not start within ``START_TIMEOUT`` seconds.
        """
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.stop()
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.01)
        return self

    def request_stop(self) -> None:
        """Ask uvicorn to exit without waiting (to stop several servers at once)."""
        self.server.should_exit = True

    def stop(self) -> None:
        """Ask uvicorn to exit (running its shutdown) and join its thread."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(JOIN_TIMEOUT)
        self._sock.close()

    def __enter__(self) -> UvicornThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WSGIThread:
    """A WSGI app served by werkzeug (one thread per request) on 127.0.0.1.

    The server listens from construction (``port=0`` picks a free port). Use it as a context
    manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, app: Callable[..., Any], *, port: int = 0) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True)
        self.port: int = self.server.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL of the service."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WSGIThread:
        """Serve in the background."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        self.server.shutdown()
        self.thread.join(JOIN_TIMEOUT)
        self.server.server_close()

    def __enter__(self) -> WSGIThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class NodeSuite:
    """A suite that needs Node.js: skipped where ``node``/``npm`` are missing, failed in CI.

    CI is any non-false value of the ``CI`` environment variable.
    """

    name: str
    """How the summary names the suite, e.g. ``"INTEROP SUITE"``."""
    needs: str
    """What needs Node.js, e.g. ``"the real SOAJS gateway (...) needs Node.js 20 and npm"``."""

    def problem(self) -> str | None:
        """Why the suite cannot run here, or ``None`` when ``node`` and ``npm`` are on PATH."""
        missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
        if not missing:
            return None
        return f"{self.name} NOT RUN: {' and '.join(missing)} not found on PATH; {self.needs}"

    def report_header(self) -> str | None:
        """The line ``pytest_report_header`` shows up front when the suite cannot run here."""
        problem = self.problem()
        if problem is None:
            return None
        return f"{problem} ({'CI: the run will FAIL' if _in_ci() else 'tests will be skipped'})"

    def require(self) -> None:
        """Skip the calling fixture's tests where the suite cannot run; fail them in CI."""
        problem = self.problem()
        if problem is None:
            return
        if _in_ci():
            pytest.fail(f"{problem} (the CI environment variable is set)", pytrace=False)
        pytest.skip(problem)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def exit_code_in_forked_child(check: Callable[[], bool]) -> int:
    """Fork this process (as gunicorn ``--preload`` does), run ``check`` in the child, wait.

    The child reports through its exit code only and never returns into pytest: 0 when
    ``check`` returned true, 2 when false, 1 when it raised.
    """
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a threaded process: that is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if check() else 2
        finally:
            os._exit(code)
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status)
