"""The views of ``orders``: they answer with what the gateway told the service."""

from __future__ import annotations

import logging

from dependency_injector.wiring import Provide, inject
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from soajs import ContextData, RegistryManager
from soajs.container import SoajsContainer

from .apps import SERVICE_NAME

logger = logging.getLogger("examples.orders")


@require_GET
@inject
def echo(
    request: HttpRequest, registry: RegistryManager = Provide[SoajsContainer.registry]
) -> JsonResponse:
    """Answer with the tenant, user and configuration of the request, and the environment."""
    context: ContextData | None = request.soajs  # type: ignore[attr-defined]
    if context is None:
        return JsonResponse(
            {"error": "no SOAJS context: call this service through the gateway, with a key"},
            status=403,
        )
    logger.info("GET /echo for tenant %s", context.tenant.code)
    return JsonResponse(
        {
            "service": SERVICE_NAME,
            "tenant": {"code": context.tenant.code, "name": context.tenant.name},
            "user": context.urac.username if context.urac is not None else None,
            "config": context.services_config.get(SERVICE_NAME),
            "environment": registry.registry.environment,
        }
    )
