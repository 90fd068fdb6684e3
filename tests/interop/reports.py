"""What every interop service reports about its request context, whatever its framework.

Imported by the in-process services (``apps.py``) and by the gunicorn-served Django service
(``django_service.py``, whose ``--pythonpath`` is this folder), so the report the tests compare
is built in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soajs.models.context import ContextData


def describe(name: str, context: ContextData) -> dict[str, Any]:
    """What a handler reports about its request context."""
    urac = context.urac
    return {
        "service": name,
        "tenant": context.tenant.code,
        "config": context.services_config.get(name),
        "greeting": context.services_config.get("greeting"),
        "urac": None
        if urac is None
        else {
            "username": urac.username,
            "first_name": urac.first_name,
            "last_name": urac.last_name,
        },
    }
