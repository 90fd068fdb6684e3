#!/usr/bin/env python
"""Run the ``orders`` example behind the bundled gateway.

Start the gateway (``soajs gateway --config examples/gateway.yaml``), then::

    SOAJS_REGISTRY_API=127.0.0.1:5000 SOAJS_DEPLOY_MANUAL=true SOAJS_SERVICE_PORT=4300 \
        python examples/django_example/manage.py runserver 127.0.0.1:4300

and call it through the gateway with a key from ``examples/gateway.yaml``::

    curl -H "key: $EXTKEY" http://127.0.0.1:4000/orders/echo
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    """Run a Django management command for the example project."""
    # The project package is django_example/, so its parent folder goes on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_example.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
