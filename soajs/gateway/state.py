"""The local gateway's registry: services, their hosts and health, and the views it serves.

Everything here runs on the gateway's event loop; nothing takes a lock. The shapes copy what the
real gateway (``soajs.controller`` 4.3.3) was seen to answer, see
``tests/fixtures/captured/``: a fresh ``/register`` entry, the entry rebuilt from the database
after a reload, the filtered ``/getRegistry`` view.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from soajs.gateway.config import GatewayConfig, maintenance_problem
from soajs.gateway.wire import (
    js_string,
    js_truthy,
    latest_version,
    now_ms,
    parse_int,
    version_is_valid,
)

__all__ = [
    "HostHealth",
    "RegistrationInvalid",
    "RegistrationRejected",
    "RegistryState",
    "address_allowed",
    "check_registration",
]

logger = logging.getLogger("soajs.gateway")

GATEWAY_NAME = "controller"
# Per-version flags /register copies into versions[v], in the gateway's order.
_VERSION_FLAGS = (
    "oauth",
    "urac",
    "urac_Profile",
    "urac_ACL",
    "urac_Config",
    "urac_GroupConfig",
    "tenant_Profile",
    "provision_ACL",
    "interConnect",
)
# The order of the same flags in an entry rebuilt from the database.
_DB_FLAGS = (
    "extKeyRequired",
    "urac",
    "urac_Profile",
    "urac_ACL",
    "urac_Config",
    "urac_GroupConfig",
    "tenant_Profile",
    "provision_ACL",
    "oauth",
)
PROBE_TIMEOUT = 5.0
# requestTimeout and requestTimeoutRenewal above a day are a mistake, and their product must
# stay a timeout httpx can wait for.
MAX_REQUEST_TIMEOUT = 86_400
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class RegistrationRejected(Exception):
    """``/register`` refused a registration; the gateway answers ``result: false``."""


class RegistrationInvalid(Exception):
    """A registration the real gateway would take but this one refuses, with the error code.

    194: a malformed value (wrong type, out of range); 191: an address outside loopback and
    ``gateway.registerAllow``.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def address_allowed(address: str, allow: Iterable[IPNetwork]) -> bool:
    """Whether ``address`` is an IP literal on loopback or inside one of the ``allow`` networks.

    Host names are never allowed: what they resolve to can change after the check.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed.is_loopback or any(parsed in network for network in allow)


def _number_problem(name: str, value: Any, low: int, high: int) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return f"{name} must be a number"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number"
    parsed = parse_int(value)
    if parsed is None or not low <= parsed <= high:
        return f"{name} must be between {low} and {high}"
    return None


def _registration_problem(body: dict[str, Any]) -> str | None:
    for name in ("name", "ip", "type", "group"):
        if body.get(name) is not None and not isinstance(body[name], str):
            return f"{name} must be a string"
    version = body.get("version")
    if version is not None and not isinstance(version, str | int | float):
        return "version must be a string"
    if isinstance(version, float) and not math.isfinite(version):
        return "version must be a finite number"
    for name, low, high in (
        ("port", 1, 65535),
        ("portHost", 1, 65535),
        ("requestTimeout", 0, MAX_REQUEST_TIMEOUT),
        ("requestTimeoutRenewal", 0, MAX_REQUEST_TIMEOUT),
    ):
        problem = _number_problem(name, body.get(name), low, high)
        if problem is not None:
            return problem
    targets = body.get("interConnect")
    if targets is not None and not (
        isinstance(targets, list)
        and all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in targets)
    ):
        return "interConnect must be a list of {name, version}"
    return maintenance_problem(body.get("maintenance"))


def check_registration(body: dict[str, Any], allow: Iterable[IPNetwork]) -> None:
    """Refuse a ``/register`` payload that could break the registry or send traffic away.

    The refusals the real gateway makes itself (missing fields, bad version, port taken) stay
    with :meth:`RegistryState.register`.

    Raises:
        RegistrationInvalid: 194 for a malformed value, 191 for an address not allowed.
    """
    problem = _registration_problem(body)
    if body.get("name") == GATEWAY_NAME:
        problem = f"{GATEWAY_NAME} is the gateway's own entry"
    if problem is not None:
        raise RegistrationInvalid(194, problem)
    ip = body.get("ip")
    if ip and not address_allowed(ip, allow):
        raise RegistrationInvalid(
            191, f"ip {ip!r} is not a loopback address nor inside gateway.registerAllow"
        )


@dataclass
class HostHealth:
    """What the last health checks said about one host of one service version."""

    healthy: bool
    last_check: int
    down_since: int | None = None
    down_count: int = 0


def _host_url(ip: str, port: int, path: str) -> str:
    host = f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip
    return f"http://{host}:{port}{path}"


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
        self._health: dict[tuple[str, str, str], HostHealth] = {}
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
        known = {
            (name, version, ip)
            for name, entry in self._all_entries()
            for version, ip in self._host_pairs(entry)
        }
        self._health = {key: value for key, value in self._health.items() if key in known}

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

    # -- views ------------------------------------------------------------------------------

    def service_config(self, *, requester: str | None) -> dict[str, Any]:
        """``serviceConfig`` without ``cors``, and without ``oauth`` unless ``oauth`` asks."""
        rendered = self._full_service_config()
        rendered.pop("cors", None)
        if requester != "oauth":
            rendered.pop("oauth", None)
        return rendered

    def _full_service_config(self) -> dict[str, Any]:
        environment = self.config.environment
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
            "controller": self.data_port,
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

    def _core_db(self) -> dict[str, Any]:
        rendered: dict[str, Any] = {}
        for name, value in copy.deepcopy(self.config.environment.core_db).items():
            if isinstance(value, dict):
                value["registryLocation"] = {
                    "l1": "coreDB",
                    "l2": name,
                    "env": self.env,
                    "timeLoaded": self.time_loaded,
                }
            rendered[name] = value
        return rendered

    def _base(self, *, requester: str | None) -> dict[str, Any]:
        environment = self.config.environment
        data: dict[str, Any] = {"timeLoaded": self.time_loaded, "name": self.env}
        for key, value in (
            ("domain", environment.domain),
            ("sitePrefix", environment.site_prefix),
            ("apiPrefix", environment.api_prefix),
            ("protocol", environment.protocol),
            ("port", environment.port),
        ):
            if js_truthy(value):
                data[key] = value
        data["environment"] = self.env
        data["coreDB"] = self._core_db()
        data["tenantMetaDB"] = copy.deepcopy(environment.tenant_meta_db)
        data["serviceConfig"] = self.service_config(requester=requester)
        data["deployer"] = copy.deepcopy(environment.deployer)
        data["custom"] = copy.deepcopy(environment.custom)
        data["resources"] = copy.deepcopy(environment.resources)
        return data

    def registry_view(self, service_name: str | None, kind: str) -> dict[str, Any]:
        """The ``/getRegistry`` ``data`` for a requester, filtered like the real gateway."""
        data = self._base(requester=service_name)
        if kind == "service":
            services: dict[str, Any] = {GATEWAY_NAME: copy.deepcopy(self.services[GATEWAY_NAME])}
            own = self.services.get(service_name or "")
            if service_name and service_name != GATEWAY_NAME and own is not None:
                reduced = {key: own[key] for key in ("group", "port") if key in own}
                services[service_name] = reduced
            data["services"] = services
        else:
            data["services"] = copy.deepcopy(self.services)
            data["daemons"] = copy.deepcopy(self.daemons)
        data["awareness"] = {"host": self.host, "port": self.data_port}
        return data

    def full_registry(self) -> dict[str, Any]:
        """The whole registry, as ``/reloadRegistry`` answers it."""
        data = self._base(requester=None)
        data["services"] = copy.deepcopy(self.services)
        data["daemons"] = copy.deepcopy(self.daemons)
        return data

    def awareness_view(self) -> dict[str, Any]:
        """``/awarenessStat``: every service and daemon with its health statistics."""
        return {"services": copy.deepcopy(self.services), "daemons": copy.deepcopy(self.daemons)}

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
        inc = self.config.environment.maintenance_inc
        jobs: list[tuple[str, str, str, dict[str, Any]]] = [
            (name, version, ip, entry)
            for name, entry in self._all_entries()
            for version, ip in self._host_pairs(entry)
        ]
        results = await asyncio.gather(*(self._probe_alone(client, job, inc) for job in jobs))
        checked = now_ms()
        for (name, version, ip, entry), healthy in zip(jobs, results, strict=True):
            previous = self._health.get((name, version, ip))
            state = previous or HostHealth(healthy=healthy, last_check=checked)
            state.last_check = checked
            if healthy:
                if previous is None or not previous.healthy:
                    logger.info("host %s of %s v%s is healthy", ip, name, version)
                state.healthy, state.down_since, state.down_count = True, None, 0
            else:
                if previous is None or previous.healthy:
                    logger.info("host %s of %s v%s is not healthy", ip, name, version)
                if state.down_since is None:
                    state.down_since = checked
                else:
                    state.down_count += 1
                state.healthy = False
            self._health[(name, version, ip)] = state
            stats = {"lastCheck": checked, "healthy": state.healthy, "version": version}
            if not state.healthy:
                stats["downSince"] = state.down_since
                stats["downCount"] = state.down_count
            entry.setdefault("awarenessStats", {})[ip] = stats
        controller = self.services[GATEWAY_NAME]
        controller["awarenessStats"] = {
            self.host: {"lastCheck": checked, "healthy": True, "version": "1"}
        }

    async def _probe_alone(
        self, client: httpx.AsyncClient, job: tuple[str, str, str, dict[str, Any]], inc: int
    ) -> bool:
        """Probe one host; a failure to probe marks that host unhealthy, never the others."""
        name, version, ip, entry = job
        try:
            return await self._probe(client, ip, entry, inc)
        except Exception:
            logger.warning(
                "cannot probe host %s of %s v%s; marked unhealthy", ip, name, version, exc_info=True
            )
            return False

    async def _probe(
        self, client: httpx.AsyncClient, ip: str, entry: dict[str, Any], inc: int
    ) -> bool:
        port = parse_int(entry.get("port"))
        if port is None:
            return False
        maintenance = entry.get("maintenance")
        # Only an entry rebuilt from the database has a root `maintenance`; a fresh /register
        # keeps it under versions[v], so the real gateway falls back to /heartbeat probes.
        if (
            isinstance(maintenance, dict)
            and maintenance.get("readiness")
            and maintenance.get("port")
        ):
            port_type = (maintenance["port"] or {}).get("type")
            if port_type == "maintenance":
                probe_port: int | None = port + inc
            elif port_type == "inherit":
                probe_port = port
            else:
                probe_port = parse_int((maintenance["port"] or {}).get("value"))
            if probe_port is None:
                return False
            return await _answers_200(client, _host_url(ip, probe_port, maintenance["readiness"]))
        if await _answers_200(client, _host_url(ip, port + inc, "/heartbeat")):
            return True
        return await _answers_200(client, _host_url(ip, port, "/heartbeat"))

    def is_healthy(self, name: str, version: str, ip: str) -> bool:
        """Whether the last health check found this host healthy."""
        state = self._health.get((name, version, ip))
        return state is not None and state.healthy

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


async def _answers_200(client: httpx.AsyncClient, url: str) -> bool:
    port = httpx.URL(url).port
    if port is not None and not 0 < port < 65536:
        # port + maintenanceInc can pass 65535; Node fails that one probe, and so does this.
        return False
    try:
        response = await client.get(url, timeout=PROBE_TIMEOUT)
    except httpx.HTTPError as exc:
        logger.debug("probe %s: %s", url, type(exc).__name__)
        return False
    logger.debug("probe %s: %s", url, response.status_code)
    return response.status_code == 200
