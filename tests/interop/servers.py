"""What a service under test needs around its server: its environment, and a routable wait.

The servers themselves are tests/helpers.py's UvicornThread and WSGIThread, each in a thread of
the test process, so a test can look at what its service recorded.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping

import httpx
from helpers import wait_until

ROUTE_TIMEOUT = 30.0


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a service start-up, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def service_environment(
    registry_api: str, name: str, port: int, *, env: str = "dev", **extra: str
) -> dict[str, str]:
    """The ``SOAJS_*`` variables of a manually deployed service registering with a gateway."""
    values = {
        "SOAJS_REGISTRY_API": registry_api,
        "SOAJS_ENV": env,
        "SOAJS_DEPLOY_MANUAL": "true",
        "SOAJS_SRVIP": "127.0.0.1",
        "SOAJS_SERVICE_NAME": name,
        "SOAJS_SERVICE_PORT": str(port),
    }
    values.update(extra)
    return values


def wait_until_routable(
    url: str, headers: Mapping[str, str], *, timeout: float = ROUTE_TIMEOUT
) -> httpx.Response:
    """GET ``url`` through the gateway until the service is registered and healthy there.

    Until a service has registered the gateway answers 404/130 (unknown service); after, it
    routes only to hosts its health check has marked healthy, which happens on its next check,
    and answers 504/133 until then. Any other answer is returned for the test to judge, and so
    is the last one once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        reply = httpx.get(url, headers=dict(headers), timeout=10)
        if not _not_routable_yet(reply) or time.monotonic() > deadline:
            return reply
        time.sleep(0.2)


def _not_routable_yet(reply: httpx.Response) -> bool:
    if reply.status_code not in (404, 504):
        return False
    try:
        codes = reply.json()["errors"]["codes"]
    except (ValueError, KeyError, TypeError):
        return False
    return 130 in codes or 133 in codes


def wait_for(predicate: Callable[[], bool], *, timeout: float = ROUTE_TIMEOUT) -> bool:
    """:func:`helpers.wait_until` with this suite's bound, polling every 0.1 s.

    A poll here often asks the real gateway, so it is spaced out more than in-process ones.
    """
    return wait_until(predicate, timeout, interval=0.1)


__all__ = [
    "ROUTE_TIMEOUT",
    "environment",
    "service_environment",
    "wait_for",
    "wait_until_routable",
]
