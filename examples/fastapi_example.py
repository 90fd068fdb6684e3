"""``hello``: a FastAPI service behind a SOAJS gateway, written with dependency injection.

Start the bundled gateway (``soajs gateway --config examples/gateway.yaml``: data port 4000,
maintenance API 5000), then this service, which reads the registry from the gateway and
registers itself with it::

    SOAJS_REGISTRY_API=127.0.0.1:5000 SOAJS_DEPLOY_MANUAL=true \
        python examples/fastapi_example.py --port 4100

or with uvicorn's own command (the port registered is ``SOAJS_SERVICE_PORT``)::

    SOAJS_REGISTRY_API=127.0.0.1:5000 SOAJS_DEPLOY_MANUAL=true SOAJS_SERVICE_PORT=4100 \
        uvicorn --app-dir examples --factory fastapi_example:create_app --port 4100

Then call it through the gateway with a key from ``examples/gateway.yaml``::

    curl -H "key: $EXTKEY" http://127.0.0.1:4000/hello/echo
    curl -H "key: $EXTKEY" -H "content-type: application/json" -d '{"message": "hi"}' \
        http://127.0.0.1:4000/hello/v1/echo

Each answer says what the service saw: the tenant, the logged-in user (send a tenant user token
as ``Authorization: Bearer`` and ``access_token``: ``soajs.gateway.user_token_headers``), its own
configuration from the key, and the environment of the registry.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import uvicorn
from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel

from soajs import ContextData, RegistryManager, Settings
from soajs.container import SoajsContainer
from soajs.fastapi import SoajsContext, setup_soajs
from soajs.log import install_request_logging

LOG_FORMAT = (
    "%(asctime)s %(name)s [%(soajs_request_id)s tenant=%(soajs_tenant)s user=%(soajs_user)s] "
    "%(message)s"
)
SERVICE_NAME = "hello"
DEFAULT_PORT = 4100

logger = logging.getLogger("examples.hello")
router = APIRouter()


class EchoBody(BaseModel):
    """The body of ``POST /echo``."""

    message: str = ""


def what_i_saw(context: ContextData, registry: RegistryManager) -> dict[str, Any]:
    """The parts of the request context and registry this service reports back."""
    return {
        "service": SERVICE_NAME,
        "tenant": {"code": context.tenant.code, "name": context.tenant.name},
        "user": context.urac.username if context.urac is not None else None,
        "config": context.services_config.get(SERVICE_NAME),
        "environment": registry.registry.environment,
    }


@router.get("/echo")
@inject
def echo(
    context: SoajsContext,
    registry: RegistryManager = Depends(Provide[SoajsContainer.registry]),  # noqa: B008
) -> dict[str, Any]:
    """Answer with what the gateway told this service about the request."""
    logger.info("GET /echo for tenant %s", context.tenant.code)
    return what_i_saw(context, registry)


@router.post("/echo")
@inject
async def echo_body(
    body: EchoBody,
    context: SoajsContext,
    registry: RegistryManager = Depends(Provide[SoajsContainer.registry]),  # noqa: B008
) -> dict[str, Any]:
    """Answer with the body received and what the gateway told this service."""
    logger.info("POST /echo for tenant %s", context.tenant.code)
    return {**what_i_saw(context, registry), "body": body.model_dump()}


def create_app(port: int | None = None) -> FastAPI:
    """Build the ``hello`` app; the port registered is ``port``, else ``SOAJS_SERVICE_PORT``."""
    container = SoajsContainer()
    settings = container.settings()
    container.config.service.from_dict(
        {
            "name": SERVICE_NAME,
            "group": "Demo",
            "version": "1",
            "port": port or settings.service_port or DEFAULT_PORT,
            # The gateway builds soajsinjectobj only for services that require a key.
            "ext_key_required": True,
            # With oauth and urac on, a request with a user token (Bearer) carries the user.
            "oauth": True,
            "urac": True,
        }
    )
    app = FastAPI(title="hello (soajs-python example)")
    app.include_router(router)
    setup_soajs(app, container)
    container.wire(modules=[__name__])
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve ``hello`` with uvicorn."""
    parser = argparse.ArgumentParser(description="The hello example service (FastAPI).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=None, help=f"default: SOAJS_SERVICE_PORT, else {DEFAULT_PORT}"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # Every line logged while a request is served names its request, tenant and user.
    install_request_logging(service=SERVICE_NAME)
    port = args.port or Settings().service_port or DEFAULT_PORT
    logger.info("hello listens on %s:%s", args.host, port)
    uvicorn.run(create_app(port), host=args.host, port=port, log_config=None)


if __name__ == "__main__":
    main()
