"""The apps the end-to-end load benchmark serves (``benchmarks/load.py``), one per handler.

Each server process serves one configuration, named by the ``BENCH_LOAD_CONFIG`` environment
variable. Every app answers ``GET /hello`` with the same small JSON body, ``{"tenant": "TTEN"}``
(the bare and not-reading apps send the constant; the others read it from the captured
``soajsinjectobj`` header), and ``GET /gc`` with the worker's garbage-collector counters.

The soajs apps run the real middleware over :class:`soajs.testing.FakeRegistryManager` loaded
with the captured registry (no gateway), the header trusted from ``SOAJS_TRUSTED_GATEWAYS``
(the benchmark sets ``127.0.0.1``).
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable
from typing import Any

CONFIG_VARIABLE = "BENCH_LOAD_CONFIG"
HEADER = "soajsinjectobj"

FASTAPI_CONFIGS: dict[str, str] = {
    "bare": "bare FastAPI, no middleware",
    "not-read": "setup_soajs, handler does not read the context",
    "dependency": "reads via `context: SoajsContext` (the recommended dependency)",
    "current": "reads via `soajs.current_context()`",
    "floor-dependency": "floor: bare FastAPI, handler takes a trivial `async def` dependency",
    "starlette-context": "peer: starlette-context RawContextMiddleware + `json.loads` plugin",
    "correlation-id": "peer: asgi-correlation-id (X-Request-ID) + `json.loads` in the handler",
}

FLASK_CONFIGS: dict[str, str] = {
    "bare": "bare Flask, no middleware",
    "not-read": "`Soajs(app)`, view does not read the context",
    "flask-current": "reads via `soajs.flask.current_context()` (docs/flask.md's way)",
    "provide": "reads via `@inject` + `Provide[SoajsContainer.context]`",
    "current": "reads via `soajs.current_context()`",
    "json-loads": "peer floor: bare Flask, `json.loads` of the header in the view",
}


def gc_counters() -> dict[str, int]:
    """Objects the collector tracks now, and the full (generation 2) collections so far."""
    return {"tracked": len(gc.get_objects()), "full_collections": gc.get_stats()[2]["collections"]}


def soajs_container() -> Any:
    """A container whose registry is the captured one, served from memory."""
    from benchmarks.fixtures import load_inputs
    from soajs.container import SoajsContainer
    from soajs.settings import Settings
    from soajs.testing import FakeRegistryManager

    settings = Settings()
    container = SoajsContainer()
    container.settings.override(settings)
    container.registry.override(
        FakeRegistryManager(load_inputs().registry, service_name="hello", settings=settings)
    )
    return container


def create_flask_app() -> Any:
    """The Flask app of the configuration named by ``BENCH_LOAD_CONFIG``."""
    from flask import Flask, request

    name = os.environ[CONFIG_VARIABLE]
    if name not in FLASK_CONFIGS:
        raise ValueError(f"{CONFIG_VARIABLE}={name!r}: expected one of {sorted(FLASK_CONFIGS)}")
    app = Flask(f"load-{name}")
    app.get("/gc")(gc_counters)
    view: Callable[[], dict[str, str]]
    if name == "bare":

        def view() -> dict[str, str]:
            return {"tenant": "TTEN"}

    elif name == "json-loads":

        def view() -> dict[str, str]:
            return {"tenant": json.loads(request.headers[HEADER])["tenant"]["code"]}

    else:
        view = _flask_soajs_view(app, name)
    app.get("/hello")(view)
    return app


def _flask_soajs_view(app: Any, name: str) -> Callable[[], dict[str, str]]:
    import soajs
    from soajs.flask import Soajs, current_context
    from soajs.models.context import ContextData

    container = soajs_container()
    Soajs(app, container, register=False)

    def tenant(context: ContextData | None) -> dict[str, str]:
        return {"tenant": context.tenant.code if context is not None else "none"}

    if name == "not-read":

        def view() -> dict[str, str]:
            return {"tenant": "TTEN"}

    elif name == "flask-current":

        def view() -> dict[str, str]:
            return tenant(current_context())

    elif name == "current":

        def view() -> dict[str, str]:
            return tenant(soajs.current_context())

    else:
        from benchmarks import load_provide

        container.wire(modules=[load_provide])
        view = load_provide.provided_tenant
    return view
