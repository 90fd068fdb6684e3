"""What the local gateway's maintenance API answers about its registry, shaped like the real one.

``/getRegistry`` (:func:`registry_view`, filtered per requester), ``/reloadRegistry``
(:func:`full_registry`) and ``/awarenessStat`` (:func:`awareness_view`), rendered from a
:class:`~soajs.gateway.state.RegistryState` and its configuration. Every view is a copy: a
caller may change it without touching the registry.
"""

from __future__ import annotations

import copy
from typing import Any

from soajs.gateway.state import RegistryState
from soajs.gateway.wire import GATEWAY_NAME, js_truthy

__all__ = ["awareness_view", "full_registry", "registry_view"]


def registry_view(state: RegistryState, service_name: str | None, kind: str) -> dict[str, Any]:
    """The ``/getRegistry`` ``data`` for a requester, filtered like the real gateway."""
    data = _base(state, requester=service_name)
    if kind == "service":
        services: dict[str, Any] = {GATEWAY_NAME: copy.deepcopy(state.services[GATEWAY_NAME])}
        own = state.services.get(service_name or "")
        if service_name and service_name != GATEWAY_NAME and own is not None:
            reduced = {key: own[key] for key in ("group", "port") if key in own}
            services[service_name] = reduced
        data["services"] = services
    else:
        data["services"] = copy.deepcopy(state.services)
        data["daemons"] = copy.deepcopy(state.daemons)
    data["awareness"] = {"host": state.host, "port": state.data_port}
    return data


def full_registry(state: RegistryState) -> dict[str, Any]:
    """The whole registry, as ``/reloadRegistry`` answers it."""
    data = _base(state, requester=None)
    data["services"] = copy.deepcopy(state.services)
    data["daemons"] = copy.deepcopy(state.daemons)
    return data


def awareness_view(state: RegistryState) -> dict[str, Any]:
    """``/awarenessStat``: every service and daemon with its health statistics."""
    return {"services": copy.deepcopy(state.services), "daemons": copy.deepcopy(state.daemons)}


def _service_config(state: RegistryState, *, requester: str | None) -> dict[str, Any]:
    """``serviceConfig`` without ``cors``, and without ``oauth`` unless ``oauth`` asks."""
    rendered = _full_service_config(state)
    rendered.pop("cors", None)
    if requester != "oauth":
        rendered.pop("oauth", None)
    return rendered


def _full_service_config(state: RegistryState) -> dict[str, Any]:
    environment = state.config.environment
    extras = copy.deepcopy(environment.service_config)
    given = extras.get("awareness")
    awareness: dict[str, Any] = {
        **(given if isinstance(given, dict) else {}),
        "cacheTTL": environment.cache_ttl,
        "healthCheckInterval": environment.health_check_interval,
        "autoRelaodRegistry": environment.auto_reload_registry,
        "maxLogCount": environment.max_log_count,
        "autoRegisterService": environment.auto_register_service,
    }
    given_ports = extras.get("ports")
    ports: dict[str, Any] = {
        **(given_ports if isinstance(given_ports, dict) else {}),
        "controller": state.data_port,
        "maintenanceInc": environment.maintenance_inc,
        "randomInc": environment.random_inc,
    }
    rendered: dict[str, Any] = {}
    if "awareness" not in extras:
        rendered["awareness"] = awareness
    for key, value in extras.items():
        if key == "awareness":
            rendered[key] = awareness
        elif key == "ports":
            rendered[key] = ports
        else:
            rendered[key] = value
    if "ports" not in extras:
        rendered["ports"] = ports
    return rendered


def _core_db(state: RegistryState) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    for name, value in copy.deepcopy(state.config.environment.core_db).items():
        if isinstance(value, dict):
            value["registryLocation"] = {
                "l1": "coreDB",
                "l2": name,
                "env": state.env,
                "timeLoaded": state.time_loaded,
            }
        rendered[name] = value
    return rendered


def _base(state: RegistryState, *, requester: str | None) -> dict[str, Any]:
    environment = state.config.environment
    data: dict[str, Any] = {"timeLoaded": state.time_loaded, "name": state.env}
    for key, value in (
        ("domain", environment.domain),
        ("sitePrefix", environment.site_prefix),
        ("apiPrefix", environment.api_prefix),
        ("protocol", environment.protocol),
        ("port", environment.port),
    ):
        if js_truthy(value):
            data[key] = value
    data["environment"] = state.env
    data["coreDB"] = _core_db(state)
    data["tenantMetaDB"] = copy.deepcopy(environment.tenant_meta_db)
    data["serviceConfig"] = _service_config(state, requester=requester)
    data["deployer"] = copy.deepcopy(environment.deployer)
    data["custom"] = copy.deepcopy(environment.custom)
    data["resources"] = copy.deepcopy(environment.resources)
    return data
