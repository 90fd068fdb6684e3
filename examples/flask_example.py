"""``caller``: a Flask service that calls ``hello`` through the SOAJS mesh.

Its configuration lists ``hello`` under ``interConnect``, so the gateway tells it, in each
request's ``soajsinjectobj`` header, where a healthy ``hello`` runs. ``ServiceConnector`` then
calls ``hello`` directly (the mesh) and forwards the header byte for byte, so ``hello`` sees the
same tenant, user and key; without a mesh entry, the call goes through the gateway with the key.

Start the bundled gateway and ``hello`` (see ``fastapi_example.py``), then this service::

    SOAJS_REGISTRY_API=127.0.0.1:5000 SOAJS_DEPLOY_MANUAL=true \
        python examples/flask_example.py --port 4200

or under gunicorn (the port registered is ``SOAJS_SERVICE_PORT``)::

    SOAJS_REGISTRY_API=127.0.0.1:5000 SOAJS_DEPLOY_MANUAL=true SOAJS_SERVICE_PORT=4200 \
        gunicorn --chdir examples --bind 127.0.0.1:4200 "flask_example:create_app()"

Then call it through the gateway with a key from ``examples/gateway.yaml``::

    curl -H "key: $EXTKEY" http://127.0.0.1:4000/caller/hello-via-mesh
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import httpx
from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Flask
from werkzeug.serving import run_simple

from soajs import ContextData, ServiceConnector, Settings
from soajs.container import SoajsContainer
from soajs.flask import Soajs, current_context
from soajs.log import install_request_logging

LOG_FORMAT = (
    "%(asctime)s %(name)s [%(soajs_request_id)s tenant=%(soajs_tenant)s user=%(soajs_user)s] "
    "%(message)s"
)
SERVICE_NAME = "caller"
DEFAULT_PORT = 4200
TARGET, TARGET_VERSION = "hello", "1"

logger = logging.getLogger("examples.caller")
routes = Blueprint(SERVICE_NAME, __name__)

# The answer when the request did not come through the gateway (no soajsinjectobj header).
NO_CONTEXT = (
    {"error": "no SOAJS context: call this service through the gateway, with a key"},
    403,
)


def what_i_saw(context: ContextData) -> dict[str, Any]:
    """The parts of the request context this service reports back."""
    return {
        "service": SERVICE_NAME,
        "tenant": {"code": context.tenant.code, "name": context.tenant.name},
        "user": context.urac.username if context.urac is not None else None,
        "config": context.services_config.get(SERVICE_NAME),
    }


@routes.get("/echo")
def echo() -> tuple[dict[str, Any], int] | dict[str, Any]:
    """Answer with what the gateway told this service about the request."""
    context = current_context()
    if context is None:
        return NO_CONTEXT
    logger.info("GET /echo for tenant %s", context.tenant.code)
    return what_i_saw(context)


@routes.get("/hello-via-mesh")
@inject
def hello_via_mesh(
    connector: ServiceConnector = Provide[SoajsContainer.connector],
) -> tuple[dict[str, Any], int] | dict[str, Any]:
    """Call ``hello``'s ``/echo`` (directly when the mesh allows) and report both sides."""
    context = current_context()
    if context is None:
        return NO_CONTEXT
    target = connector.connect(TARGET, TARGET_VERSION)
    call: dict[str, Any] = {
        "service": TARGET,
        "via": "mesh" if target.mesh else "gateway",
        "url": f"{target.url}/echo",
    }
    try:
        with connector.client(TARGET, TARGET_VERSION) as client:
            reply = client.get("/echo")
    except httpx.HTTPError as exc:
        logger.warning("calling %s at %s failed: %s", TARGET, call["url"], exc)
        return {**what_i_saw(context), "call": {**call, "error": str(exc)}}, 502
    call["status"] = reply.status_code
    call["reply"] = reply.json()
    logger.info("called %s via %s: HTTP %s", TARGET, call["via"], reply.status_code)
    return {**what_i_saw(context), "call": call}


def create_app(port: int | None = None) -> Flask:
    """Build the ``caller`` app; the port registered is ``port``, else ``SOAJS_SERVICE_PORT``."""
    container = SoajsContainer()
    settings = container.settings()
    container.config.service.from_dict(
        {
            "name": SERVICE_NAME,
            "group": "Demo",
            "version": "1",
            "port": port or settings.service_port or DEFAULT_PORT,
            "ext_key_required": True,
            "oauth": True,
            "urac": True,
            # The gateway then adds where a healthy hello runs to each request's awareness.
            "inter_connect": [{"name": TARGET, "version": TARGET_VERSION}],
        }
    )
    app = Flask(SERVICE_NAME)
    app.register_blueprint(routes)
    Soajs(app, container)
    container.wire(modules=[__name__])
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve ``caller`` with werkzeug's threaded server."""
    parser = argparse.ArgumentParser(description="The caller example service (Flask).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=None, help=f"default: SOAJS_SERVICE_PORT, else {DEFAULT_PORT}"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # Every line logged while a request is served names its request, tenant and user.
    install_request_logging(service=SERVICE_NAME)
    port = args.port or Settings().service_port or DEFAULT_PORT
    logger.info("caller listens on %s:%s", args.host, port)
    run_simple(args.host, port, create_app(port), threaded=True)


if __name__ == "__main__":
    main()
