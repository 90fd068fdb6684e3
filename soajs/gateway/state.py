"""The local gateway's registry: the services and daemons it knows, and ``/register``.

The registry is built from the configuration and the persisted (``mw``) registrations, as the
real gateway rebuilds it from its database, and changed by ``/register``. What the maintenance
API answers about it is rendered by :mod:`soajs.gateway.registry_views`; which hosts are
healthy is :mod:`soajs.gateway.health`'s; what ``/register`` refuses before it gets here is
:mod:`soajs.gateway.registration_checks`'. Everything runs on the gateway's event loop; nothing
takes a lock. The shapes copy what the real gateway (``soajs.controller`` 4.3.3) was seen to
answer, see ``tests/fixtures/captured/``: a fresh ``/register`` entry and the entry rebuilt
from the database after a reload.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx

from soajs.gateway.config import GatewayConfig
from soajs.gateway.health import HealthChecks, ProbeTarget
from soajs.gateway.wire import (
    GATEWAY_NAME,
    INJECTION_FLAGS,
    js_string,
    js_truthy,
    latest_version,
    now_ms,
    parse_int,
    version_is_valid,
)

__all__ = ["RegistrationRejected", "RegistryState"]

# Per-version flags /register copies into versions[v], in the gateway's order.
_VERSION_FLAGS = ("oauth", *INJECTION_FLAGS, "interConnect")
# The order of the same flags in an entry rebuilt from the database.
_DB_FLAGS = ("extKeyRequired", *INJECTION_FLAGS, "oauth")


class RegistrationRejected(Exception):
    """``/register`` refused a registration; the gateway answers ``result: false``."""


class RegistryState:
    """The in-memory registry of one environment, as the gateway keeps it.

    Args:
        config: the gateway configuration.
        host: the address other parties use to reach the gateway (``awareness.host``).
        data_port: the data port actually listened on (``serviceConfig.ports.controller``).
    """

    def __init__(self, config: GatewayConfig, *, host: str, data_port: int) -> None:
        self.config = config
        self.env = config.env
        self.host = host
        self.data_port = data_port
        self.time_loaded = now_ms()
        self.services: dict[str, dict[str, Any]] = {}
        self.daemons: dict[str, dict[str, Any]] = {}
        self._persisted: list[dict[str, Any]] = []
        self.health = HealthChecks()
        self._round_robin: dict[tuple[str, str], int] = {}
        self.rebuild()

    # -- building ---------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Rebuild from the configuration and ``mw`` registrations, as a DB reload does.

        Registrations made without ``mw`` are dropped, exactly like the real gateway's
        ``/reloadRegistry`` and automatic reloads.
        """
        self.time_loaded = now_ms()
        self.services = {GATEWAY_NAME: self._controller_entry()}
        self.daemons = {}
        for service in self.config.services:
            for ip in service.host_ips:
                self._add_db_entry({**service.registration(), "ip": ip})
        for body in self._persisted:
            self._add_db_entry(body)
        self.health.keep_only(
            (name, version, ip)
            for name, entry in self._all_entries()
            for version, ip in self._host_pairs(entry)
        )

    def _controller_entry(self) -> dict[str, Any]:
        controller = self.config.environment.controller
        return {
            "name": GATEWAY_NAME,
            "group": "Gateway",
            "version": "1",
            "maxPoolSize": controller.max_pool_size,
            "authorization": controller.authorization,
            "port": self.data_port,
            "requestTimeout": controller.request_timeout,
            "requestTimeoutRenewal": controller.request_timeout_renewal,
            "hosts": {"1": [self.host], "latest": "1"},
        }

    def _add_db_entry(self, body: dict[str, Any]) -> None:
        """Add a persisted registration in the shape the gateway builds from its database."""
        name = str(body["name"])
        version = js_string(body.get("version"))
        is_service = body.get("type", "service") == "service"
        target = self.services if is_service else self.daemons
        port = parse_int(body.get("portHost")) or parse_int(body.get("port"))
        info: dict[str, Any] = {}
        for flag in _DB_FLAGS:
            if flag == "oauth" and flag not in body:
                continue
            info[flag] = body.get(flag) or False
        info["interConnect"] = body.get("interConnect")
        if body.get("maintenance") is not None:
            info["maintenance"] = copy.deepcopy(body["maintenance"])
        entry = target.get(name)
        if entry is None:
            entry = {}
            if body.get("group") is not None:
                entry["group"] = body["group"]
            entry["port"] = port
            entry["requestTimeoutRenewal"] = parse_int(body.get("requestTimeoutRenewal"))
            entry["requestTimeout"] = parse_int(body.get("requestTimeout"))
            entry["versions"] = {}
            if body.get("maintenance") is not None:
                entry["maintenance"] = copy.deepcopy(body["maintenance"])
            entry["version"] = version
            entry["extKeyRequired"] = info["extKeyRequired"]
            if "oauth" in info:
                entry["oauth"] = info["oauth"]
            entry["oport"] = port
            entry["hosts"] = {}
            target[name] = entry
        entry["versions"][version] = info
        hosts = entry["hosts"]
        ips = hosts.setdefault(version, [])
        if body.get("ip") and body["ip"] not in ips:
            ips.append(body["ip"])
        latest = None
        for candidate in (key for key in hosts if key != "latest"):
            latest = latest_version(latest, candidate)
        hosts["latest"] = latest

    # -- registration -----------------------------------------------------------------------

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a ``/register`` payload and return the in-memory entry (the reply's ``data``).

        Raises:
            RegistrationRejected: a required field is missing, the version is invalid, or a
                persisted registration's port belongs to another service.
        """
        name = body.get("name")
        ip = body.get("ip")
        if not js_truthy(name) or not js_truthy(ip):
            raise RegistrationRejected("missing ip or name param")
        name, ip = str(name), str(ip)
        version = js_string(body.get("version"))
        if not version_is_valid(version) or version == "undefined":
            raise RegistrationRejected(f"invalid version [{version}]")
        is_service = body.get("type") == "service"
        target = self.services if is_service else self.daemons
        mw = js_truthy(body.get("mw"))
        port = parse_int(body.get("port"))
        if mw and js_truthy(body.get("portHost")):
            port = parse_int(body.get("portHost"))
        entry = target.get(name)
        if entry is None and port is None:
            raise RegistrationRejected("missing port param")
        if mw:
            self._check_port_free(name, body.get("type"), port)

        info = _version_info(body, is_service=is_service)
        if entry is None:
            entry = _new_entry(body, port, version, info, is_service=is_service)
            target[name] = entry
        elif port is not None:
            entry["port"] = port
        entry.setdefault("versions", {})[version] = info
        hosts = entry.setdefault("hosts", {"latest": version})
        ips = hosts.setdefault(version, [])
        if ip not in ips:
            ips.append(ip)
        self.time_loaded = now_ms()
        if mw:
            stored = {**copy.deepcopy(body), "name": name, "ip": ip, "version": version}
            self._persisted = [
                item
                for item in self._persisted
                if (item["name"], item["version"], item["ip"], item.get("type"))
                != (name, version, ip, body.get("type"))
            ]
            self._persisted.append(stored)
        return copy.deepcopy(entry)

    def _check_port_free(self, name: str, kind: Any, port: int | None) -> None:
        declared = [service.registration() for service in self.config.services]
        for other in declared + self._persisted:
            if other.get("type") != kind or other["name"] == name:
                continue
            other_port = parse_int(other.get("portHost")) or parse_int(other.get("port"))
            if other_port == port:
                raise RegistrationRejected(
                    f"Item of type [{kind}] with port [{port}] is taken by [{other['name']}]."
                )

    @property
    def cors(self) -> dict[str, Any] | None:
        """The environment's CORS settings when enabled."""
        cors = self.config.environment.service_config.get("cors")
        if isinstance(cors, dict) and cors.get("enabled"):
            return cors
        return None

    # -- health and routing -----------------------------------------------------------------

    def _all_entries(self) -> list[tuple[str, dict[str, Any]]]:
        entries = [(name, e) for name, e in self.services.items() if name != GATEWAY_NAME]
        return entries + list(self.daemons.items())

    @staticmethod
    def _host_pairs(entry: dict[str, Any]) -> list[tuple[str, str]]:
        hosts = entry.get("hosts") or {}
        return [
            (version, ip)
            for version, ips in hosts.items()
            if version != "latest" and isinstance(ips, list)
            for ip in ips
        ]

    async def check_health(self, client: httpx.AsyncClient) -> None:
        """Probe every registered host once and record which ones answer 200."""
        targets: list[ProbeTarget] = [
            (name, version, ip, entry)
            for name, entry in self._all_entries()
            for version, ip in self._host_pairs(entry)
        ]
        inc = self.config.environment.maintenance_inc
        checked = await self.health.check(client, targets, inc)
        controller = self.services[GATEWAY_NAME]
        controller["awarenessStats"] = {
            self.host: {"lastCheck": checked, "healthy": True, "version": "1"}
        }

    def is_healthy(self, name: str, version: str, ip: str) -> bool:
        """Whether the last health check found this host healthy."""
        return self.health.is_healthy(name, version, ip)

    def pick_host(self, name: str, version: str | None) -> str | None:
        """A healthy host of ``name`` at ``version`` (default latest), round-robin."""
        entry = self.services.get(name)
        if entry is None:
            return None
        hosts = entry.get("hosts") or {}
        version = version or hosts.get("latest")
        if version is None:
            return None
        if name == GATEWAY_NAME:
            return self.host
        candidates = [ip for ip in hosts.get(version) or [] if self.is_healthy(name, version, ip)]
        if not candidates:
            return None
        turn = self._round_robin.get((name, version), 0)
        self._round_robin[(name, version)] = turn + 1
        chosen: str = candidates[turn % len(candidates)]
        return chosen

    def latest(self, name: str) -> str | None:
        """``hosts.latest`` of a service."""
        entry = self.services.get(name)
        if entry is None:
            return None
        latest = (entry.get("hosts") or {}).get("latest")
        return str(latest) if latest is not None else None


_MISSING = object()


def _version_info(body: dict[str, Any], *, is_service: bool) -> dict[str, Any]:
    """``versions[v]`` of a fresh registration: maintenance first, then the flags given."""
    info: dict[str, Any] = {}
    if body.get("maintenance") is not None:
        info["maintenance"] = copy.deepcopy(body["maintenance"])
    if is_service:
        info["extKeyRequired"] = body.get("extKeyRequired") or False
        for flag in _VERSION_FLAGS:
            if body.get(flag, _MISSING) is not _MISSING:
                info[flag] = copy.deepcopy(body[flag])
    return info


def _new_entry(
    body: dict[str, Any],
    port: int | None,
    version: str,
    info: dict[str, Any],
    *,
    is_service: bool,
) -> dict[str, Any]:
    """A registry entry created by ``/register``, keys in the gateway's order."""
    entry: dict[str, Any] = {}
    if "group" in body:
        entry["group"] = body["group"]
    entry["port"] = port
    if is_service:
        entry["requestTimeout"] = parse_int(body.get("requestTimeout"))
        entry["requestTimeoutRenewal"] = parse_int(body.get("requestTimeoutRenewal"))
    entry["versions"] = {}
    if is_service:
        entry["extKeyRequired"] = info["extKeyRequired"]
    entry["version"] = version
    entry["hosts"] = {"latest": version}
    return entry
