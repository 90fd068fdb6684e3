"""The WSGI service of the fork-safety test, for ``gunicorn --preload``.

Everything happens at import time, in gunicorn's master, before it forks the workers: the
registry manager loads the registry from ``SOAJS_REGISTRY_API`` and starts its reload thread.
Each worker answers with its PID and how many reloads its own manager has done.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from soajs import Settings
from soajs.registry import RegistryManager
from soajs.registry import manager as manager_module
from soajs.wsgi import SoajsWSGIMiddleware

# The registry asks for a reload every 100 ms; let the manager follow it.
manager_module.MIN_RELOAD_INTERVAL = 0.05

registry = RegistryManager(settings=Settings(), service_name="hello")


def service(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Report this worker's PID and its manager's health."""
    status = registry.status
    body = json.dumps(
        {
            "pid": os.getpid(),
            "reloads": status.reloads,
            "running": status.running,
            "environment": registry.registry.environment,
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


app = SoajsWSGIMiddleware(service, registry)
