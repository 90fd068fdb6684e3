"""Real services for the reliability tests: apps behind gunicorn, registry readers, request load."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from helpers import free_port, wait_until
from tagged_registry import tag_of

from soajs import current_context
from soajs.registry import RegistryManager

__all__ = [
    "Gunicorn",
    "RequestLoad",
    "registry_reader_asgi",
    "registry_reader_wsgi",
]

TESTS_DIR = Path(__file__).resolve().parents[1]
GUNICORN_START_TIMEOUT = 30.0


class Gunicorn:
    """gunicorn serving ``app`` (``module:name`` under tests/) on a free 127.0.0.1 port.

    Its output goes to ``log``; ``env`` adds to this process's environment.
    """

    def __init__(self, app: str, log: Path, *options: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self._log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                *options,
                "--bind",
                f"127.0.0.1:{self.port}",
                "--pythonpath",
                str(TESTS_DIR),
                app,
            ],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_listening(self) -> Gunicorn:
        """Return once the port accepts connections.

        Raises:
            RuntimeError: gunicorn exited, or did not listen within ``GUNICORN_START_TIMEOUT``.
        """
        listening = wait_until(self._listening, timeout=GUNICORN_START_TIMEOUT)
        if not listening or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"gunicorn did not start: {self._log_path.read_text()}")
        return self

    def _listening(self) -> bool:
        """Whether the port accepts connections (or gunicorn has exited: no use waiting)."""
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return self.process.poll() is not None
        return True

    def stop(self) -> int:
        """SIGTERM, a bounded wait, then SIGKILL; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log.close()
        return self.process.returncode


def _reading(manager: RegistryManager) -> dict[str, Any]:
    """What a handler reads per request: the registry (checked whole) and the caller's tenant."""
    snapshot = manager.registry
    context = current_context()
    return {
        "tag": tag_of(snapshot),
        "db": manager.get_database("main").name,
        "tenant": None if context is None else context.tenant.code,
    }


def registry_reader_asgi(manager: RegistryManager) -> Callable[..., Any]:
    """A plain ASGI app answering every request with :func:`_reading` as JSON."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = json.dumps(_reading(manager)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def registry_reader_wsgi(manager: RegistryManager) -> Callable[..., Any]:
    """A plain WSGI app answering every request with :func:`_reading` as JSON."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = json.dumps(_reading(manager)).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return app


class RequestLoad:
    """Requests a service without pause from one background thread, counting the outcomes.

    A request fails when it raises, answers anything but 200, or its JSON does not pass
    ``check``. Failures are kept (at most 20) for the assertion message.
    """

    def __init__(
        self, url: str, *, headers: dict[str, str], check: Callable[[dict[str, Any]], None]
    ) -> None:
        self.url = url
        self.headers = headers
        self.check = check
        self.ok = 0
        self.failed = 0
        self.failures: list[str] = []
        self.tags: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RequestLoad:
        """Start requesting."""
        self._thread.start()
        return self

    def stop(self) -> RequestLoad:
        """Stop requesting and join the thread."""
        self._stop.set()
        self._thread.join(10)
        return self

    def _run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=5.0) as client:
            while not self._stop.is_set():
                try:
                    reply = client.get(self.url)
                    assert reply.status_code == 200, f"HTTP {reply.status_code}: {reply.text}"
                    body = reply.json()
                    self.check(body)
                    self.tags.add(body["tag"])
                    self.ok += 1
                except Exception as exc:
                    self.failed += 1
                    if len(self.failures) < 20:
                        self.failures.append(repr(exc))
