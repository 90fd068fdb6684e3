"""The local gateway's health checks: probing each registered host and remembering the answers.

A host is probed the way the real gateway does: its ``maintenance.readiness`` path when the
entry was rebuilt from the database with one, else ``/heartbeat`` on the maintenance port
(port + ``maintenanceInc``) and then on the service port. What was found is written into each
entry's ``awarenessStats``, which ``/awarenessStat`` serves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from soajs.gateway.wire import now_ms, parse_int

__all__ = ["PROBE_TIMEOUT", "HealthChecks", "HostHealth", "ProbeTarget"]

logger = logging.getLogger("soajs.gateway")

PROBE_TIMEOUT = 5.0
ProbeTarget = tuple[str, str, str, dict[str, Any]]
"""One host to probe: ``(service name, version, ip, the service's registry entry)``."""


@dataclass
class HostHealth:
    """What the last health checks said about one host of one service version."""

    healthy: bool
    last_check: int
    down_since: int | None = None
    down_count: int = 0


class HealthChecks:
    """The health of every host checked so far, by ``(name, version, ip)``."""

    def __init__(self) -> None:
        self._hosts: dict[tuple[str, str, str], HostHealth] = {}

    def is_healthy(self, name: str, version: str, ip: str) -> bool:
        """Whether the last health check found this host healthy."""
        state = self._hosts.get((name, version, ip))
        return state is not None and state.healthy

    def keep_only(self, known: Iterable[tuple[str, str, str]]) -> None:
        """Forget the hosts no longer in the registry."""
        wanted = set(known)
        self._hosts = {key: value for key, value in self._hosts.items() if key in wanted}

    async def check(
        self, client: httpx.AsyncClient, targets: list[ProbeTarget], maintenance_inc: int
    ) -> int:
        """Probe every target once, record the answers and each entry's ``awarenessStats``.

        Returns:
            The time of the check, in milliseconds since the epoch.
        """
        results = await asyncio.gather(
            *(_probe_alone(client, target, maintenance_inc) for target in targets)
        )
        checked = now_ms()
        for (name, version, ip, entry), healthy in zip(targets, results, strict=True):
            previous = self._hosts.get((name, version, ip))
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
            self._hosts[(name, version, ip)] = state
            stats = {"lastCheck": checked, "healthy": state.healthy, "version": version}
            if not state.healthy:
                stats["downSince"] = state.down_since
                stats["downCount"] = state.down_count
            entry.setdefault("awarenessStats", {})[ip] = stats
        return checked


async def _probe_alone(client: httpx.AsyncClient, target: ProbeTarget, inc: int) -> bool:
    """Probe one host; a failure to probe marks that host unhealthy, never the others."""
    name, version, ip, entry = target
    try:
        return await _probe(client, ip, entry, inc)
    except Exception:
        logger.warning(
            "cannot probe host %s of %s v%s; marked unhealthy", ip, name, version, exc_info=True
        )
        return False


async def _probe(client: httpx.AsyncClient, ip: str, entry: dict[str, Any], inc: int) -> bool:
    port = parse_int(entry.get("port"))
    if port is None:
        return False
    maintenance = entry.get("maintenance")
    # Only an entry rebuilt from the database has a root `maintenance`; a fresh /register
    # keeps it under versions[v], so the real gateway falls back to /heartbeat probes.
    if isinstance(maintenance, dict) and maintenance.get("readiness") and maintenance.get("port"):
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


def _host_url(ip: str, port: int, path: str) -> str:
    host = f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip
    return f"http://{host}:{port}{path}"


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
