"""Request-aware logging: the current request's tenant, user, service and id on every record.

:class:`SoajsRequestFilter` is a stdlib :class:`logging.Filter` that sets these attributes on
each record it sees (``docs/logging.md`` shows the log lines):

===================== ===========================================================
``soajs_tenant``      the tenant's code (``context.tenant.code``)
``soajs_tenant_id``   the tenant's id
``soajs_user_id``     the logged-in user's id (``context.urac.id``)
``soajs_user``        the logged-in user's username
``soajs_service``     this service's name (``SOAJS_SERVICE_NAME`` by default)
``soajs_request_id``  :attr:`soajs.request.RequestContext.request_id`: the ``traceparent``
                      trace id, else ``x-request-id``, else a generated one
===================== ===========================================================

Outside a request every one of them is ``None``, so a format string naming them never fails,
and no value of one request reaches a record of another: the request is read from
:func:`soajs.current.current_request`, the context variable the ASGI, WSGI and Django
middlewares set, which follows asyncio tasks and threads run with the request's context
(``asyncio.to_thread``, ``contextvars.copy_context().run``). No key, token or password is ever
among the fields. Node services get the same from ``req.soajs.log``.

Install it on a handler with :func:`install_request_logging`, or in a ``dictConfig``
(``{"()": "soajs.log.SoajsRequestFilter"}``). structlog users add :func:`add_request_fields`
to their processors; structlog is not needed otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from contextvars import ContextVar
from functools import cache
from typing import Any, Final

from soajs.current import current_request
from soajs.errors import SoajsError

__all__ = [
    "LOG_FIELDS",
    "SoajsRequestFilter",
    "add_request_fields",
    "install_request_logging",
    "request_fields",
]

LOG_FIELDS: Final = (
    "soajs_tenant",
    "soajs_tenant_id",
    "soajs_user_id",
    "soajs_user",
    "soajs_service",
    "soajs_request_id",
)
"""The record attributes :class:`SoajsRequestFilter` sets, in this order."""

_OUTSIDE: Final[dict[str, Any]] = dict.fromkeys(LOG_FIELDS)

# Reading the request's context may log (an ignored header is a warning); a filter on a handler
# sees that record too, and must not read the context again while it is being worked out.
_filtering: ContextVar[bool] = ContextVar("soajs_log_filtering", default=False)


def request_fields(service: str | None = None) -> dict[str, Any]:
    """The fields of the request being served, each ``None`` outside a request.

    Args:
        service: The name reported as ``soajs_service`` while a request is served.
    """
    request = current_request()
    if request is None:
        return dict(_OUTSIDE)
    fields: dict[str, Any] = {
        "soajs_tenant": None,
        "soajs_tenant_id": None,
        "soajs_user_id": None,
        "soajs_user": None,
        "soajs_service": service,
        "soajs_request_id": request.request_id,
    }
    if _filtering.get():
        # A record logged while the context is worked out (the header's own warning).
        return fields
    flag = _filtering.set(True)
    try:
        context = request.context
    finally:
        _filtering.reset(flag)
    if context is not None:
        tenant = context.tenant
        fields["soajs_tenant"] = tenant.code
        fields["soajs_tenant_id"] = tenant.id
        urac = context.urac
        if urac is not None:
            fields["soajs_user_id"] = urac.id
            fields["soajs_user"] = urac.username
    return fields


class SoajsRequestFilter(logging.Filter):
    """Set the :data:`LOG_FIELDS` of the current request on every record; never drops one.

    A record that already has ``soajs_request_id`` keeps its values: a handler behind a
    :class:`logging.handlers.QueueHandler` runs in another thread, outside the request, and
    must not overwrite what the filter on the queue handler set inside it.

    Args:
        service: The service name logged as ``soajs_service``; by default the
            ``SOAJS_SERVICE_NAME`` setting.
        name: :class:`logging.Filter`'s own argument; leave it empty to see every record.
    """

    def __init__(self, service: str | None = None, name: str = "") -> None:
        super().__init__(name)
        self.service = service if service is not None else _configured_service_name()

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the fields to ``record`` and keep it."""
        attributes = record.__dict__
        if "soajs_request_id" not in attributes:
            attributes.update(request_fields(self.service))
        return True


def install_request_logging(
    target: logging.Logger | logging.Handler | None = None, *, service: str | None = None
) -> SoajsRequestFilter:
    """Add a :class:`SoajsRequestFilter` to ``target``, once, and return it.

    Install it on handlers: a logger's own filters only see records logged on that very logger,
    not those its children propagate to it.

    Args:
        target: A handler or logger; by default every handler of the root logger.
        service: See :class:`SoajsRequestFilter`.

    Raises:
        SoajsError: ``target`` is omitted and the root logger has no handler yet.
    """
    request_filter = SoajsRequestFilter(service)
    if target is None:
        handlers = logging.getLogger().handlers
        if not handlers:
            raise SoajsError(
                "the root logger has no handler to install the request filter on: configure "
                "logging first (logging.basicConfig() or dictConfig) or pass the handler"
            )
        targets: list[logging.Logger | logging.Handler] = list(handlers)
    else:
        targets = [target]
    for each in targets:
        if not any(isinstance(known, SoajsRequestFilter) for known in each.filters):
            each.addFilter(request_filter)
    return request_filter


def add_request_fields(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor that adds the request's fields to the event, inside a request only.

    Values bound by the caller win. The service name is the ``SOAJS_SERVICE_NAME`` setting.
    """
    if current_request() is not None:
        for field, value in request_fields(_configured_service_name()).items():
            event_dict.setdefault(field, value)
    return event_dict


@cache
def _configured_service_name() -> str | None:
    # Imported here: the settings pull in pydantic-settings, which logging set-up need not pay
    # for when the name is given.
    from soajs.settings import Settings

    return Settings().service_name
