"""Django settings of the ``orders`` example: no database, just the SOAJS middleware.

The SOAJS side reads the ``SOAJS_*`` environment variables (``SOAJS_REGISTRY_API``,
``SOAJS_ENV``, ``SOAJS_DEPLOY_MANUAL``, ``SOAJS_SERVICE_PORT``); ``apps.py`` gives the service
its configuration.
"""

from __future__ import annotations

import os

# An example only: a real project reads its secret from the environment, always.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "soajs-python example, not a secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = ["django_example"]
MIDDLEWARE = [
    # First, so /heartbeat and the context cost nothing to the rest of the stack.
    "soajs.django.SoajsMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "django_example.urls"
WSGI_APPLICATION = "django_example.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
TIME_ZONE = "UTC"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every line logged while a request is served names its request, tenant and user.
    "filters": {"soajs": {"()": "soajs.log.SoajsRequestFilter", "service": "orders"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(name)s [%(soajs_request_id)s tenant=%(soajs_tenant)s "
            "user=%(soajs_user)s] %(message)s"
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["soajs"]}
    },
    "loggers": {
        "examples": {"handlers": ["console"], "level": "INFO"},
        "soajs": {"handlers": ["console"], "level": "INFO"},
    },
}
