"""The Flask view that reads the context through the container (``Provide``), for the load
benchmark: a module of its own, because ``container.wire`` patches module-level functions and
the other load apps must not import the container machinery."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject

from soajs.container import SoajsContainer
from soajs.models.context import ContextData


@inject
def provided_tenant(
    context: ContextData | None = Provide[SoajsContainer.context],
) -> dict[str, str]:
    """``{"tenant": code}`` of the injected context."""
    return {"tenant": context.tenant.code if context is not None else "none"}
