"""Give the service its SOAJS configuration and wire the views, once per process."""

from __future__ import annotations

from django.apps import AppConfig

SERVICE_NAME = "orders"
DEFAULT_PORT = 4300


class OrdersConfig(AppConfig):
    """The ``orders`` app: configures :mod:`soajs.django` before the first request."""

    name = "django_example"

    def ready(self) -> None:
        """Build the container, hand it to the SOAJS middleware and wire the views."""
        import soajs.django
        from soajs.container import SoajsContainer

        container = SoajsContainer()
        settings = container.settings()
        container.config.service.from_dict(
            {
                "name": SERVICE_NAME,
                "group": "Demo",
                "version": "1",
                # The port registered with the gateway: the one the server listens on.
                "port": settings.service_port or DEFAULT_PORT,
                "ext_key_required": True,
                "oauth": True,
                "urac": True,
            }
        )
        soajs.django.configure(container)
        container.wire(modules=["django_example.views"])
