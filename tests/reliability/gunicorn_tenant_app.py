"""A WSGI service for gunicorn that answers with the tenant of the request's context.

The header policy comes from ``SOAJS_HEADER_POLICY``, as in production.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from soajs import Settings, current_context
from soajs.wsgi import SoajsWSGIMiddleware


def service(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer ``{"tenant": <code or null>}``."""
    context = current_context()
    body = json.dumps({"tenant": None if context is None else context.tenant.code}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


app = SoajsWSGIMiddleware(service, settings=Settings())
