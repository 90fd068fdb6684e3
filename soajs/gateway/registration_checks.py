"""What the local gateway refuses in a ``/register`` payload before it touches the registry.

The real gateway takes almost anything; these checks keep a malformed value or a foreign address
from breaking the registry or sending traffic away (see ``docs/local-gateway.md``, safe on a
laptop). The refusals the real gateway makes itself stay with
:meth:`soajs.gateway.state.RegistryState.register`.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from typing import Any

from soajs.gateway.config import maintenance_problem
from soajs.gateway.wire import GATEWAY_NAME, parse_int

__all__ = [
    "MAX_REQUEST_TIMEOUT",
    "IPNetwork",
    "RegistrationInvalid",
    "address_allowed",
    "check_registration",
]

# requestTimeout and requestTimeoutRenewal above a day are a mistake, and their product must
# stay a timeout httpx can wait for.
MAX_REQUEST_TIMEOUT = 86_400
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    with :meth:`~soajs.gateway.state.RegistryState.register`.

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
