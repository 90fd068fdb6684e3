"""A Django service with soajs.django.SoajsMiddleware, served by gunicorn for the interop suite.

Started as ``gunicorn django_service:application`` with ``--pythonpath`` set to this folder and
the ``SOAJS_*`` variables of a manually deployed service (its identity comes from
``SOAJS_SERVICE_NAME``/``GROUP``/``PORT``/``VERSION``). It answers ``/echo`` with what its
request context says and ``/seen`` with every context it reported.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.urls import path
from reports import describe

SERVICE_NAME = os.environ["SOAJS_SERVICE_NAME"]
_seen: list[dict[str, Any]] = []
_seen_lock = threading.Lock()


def echo(request: HttpRequest) -> HttpResponse:
    """Report the tenant, this service's key config and the user of the request."""
    context = getattr(request, "soajs", None)
    if context is None:
        return HttpResponseForbidden()
    report = describe(SERVICE_NAME, context)
    with _seen_lock:
        _seen.append(report)
    return JsonResponse(report)


def seen(request: HttpRequest) -> HttpResponse:
    """Every report ``/echo`` gave, oldest first."""
    with _seen_lock:
        return JsonResponse(list(_seen), safe=False)


urlpatterns = [path("echo", echo), path("seen", seen)]

settings.configure(
    DEBUG=False,
    SECRET_KEY="interop-tests-only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["soajs.django.SoajsMiddleware"],
    INSTALLED_APPS=[],
    USE_TZ=True,
)
django.setup()
application = WSGIHandler()
