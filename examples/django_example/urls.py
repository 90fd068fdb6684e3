"""URLs of ``orders`` (``/heartbeat`` is answered by the SOAJS middleware)."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [path("echo", views.echo, name="echo")]
