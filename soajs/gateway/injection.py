"""Build the ``soajsinjectobj`` header exactly as the real gateway does (``mw/mt``).

Key order, optional blocks and value encodings follow ``docs/protocol.md`` §4 and the captured
headers in ``tests/fixtures/captured/soajsinjectobj.*.json``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from soajs.gateway.access import GatewayError, ResolvedKey
from soajs.gateway.wire import INJECTION_FLAGS, encode_uri_component, js_dumps, js_truthy

__all__ = [
    "InterConnectHost",
    "ServiceParams",
    "build_inject_object",
    "encode_inject_header",
    "flatten_key_config",
    "merge_config",
    "urac_profile",
]

_FLAGS = (*INJECTION_FLAGS, "extKeyRequired")


@dataclass(frozen=True)
class ServiceParams:
    """The flags of the called service version, with the gateway's defaults."""

    values: dict[str, Any]

    @classmethod
    def from_version(cls, info: dict[str, Any]) -> ServiceParams:
        """Read ``versions[v]`` of a registry entry (``oauth`` defaults to true when absent)."""
        values: dict[str, Any] = {flag: info.get(flag) or False for flag in _FLAGS}
        values["oauth"] = info.get("oauth", True)
        values["interConnect"] = info.get("interConnect") or None
        return cls(values)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def on(self, name: str) -> bool:
        """Whether a flag is set (JavaScript truthiness, as registered values may be strings)."""
        return js_truthy(self.values.get(name))


@dataclass(frozen=True)
class InterConnectHost:
    """Where an interConnect target can be reached (``host`` is None with no healthy host)."""

    host: str | None
    port: Any
    latest: str | None


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (``merge.recursive``)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def flatten_key_config(config: dict[str, Any], service: str) -> dict[str, Any]:
    """``commonFields`` spread to the top level, then the called service's own entry."""
    flattened: dict[str, Any] = {}
    common = config.get("commonFields")
    if isinstance(common, dict):
        for key, value in common.items():
            if not js_truthy(flattened.get(key)):
                flattened[key] = copy.deepcopy(value)
    if js_truthy(config.get(service)):
        flattened[service] = copy.deepcopy(config[service])
    return flattened


def urac_profile(record: dict[str, Any], *, with_config: bool) -> dict[str, Any]:
    """The user's profile as the gateway's URAC driver returns it (``getProfile``).

    Fields the record lacks stay absent, as ``JSON.stringify`` drops ``undefined``.

    Raises:
        GatewayError: 164 for a record with a ``username`` but no ``tenant``: the real gateway
            reads ``tenant.id`` of it and fails.
    """
    if js_truthy(record.get("username")):
        if record.get("tenant") is None:
            raise GatewayError(164)
        fields = ["_id", "username", "firstName", "lastName", "email", "groups", "profile"]
        profile = {key: record[key] for key in [*fields, "tenant"] if key in record}
        social = record.get("socialLogin")
        if isinstance(social, dict):
            profile["socialLogin"] = {
                key: social[key] for key in ("strategy", "id") if key in social
            }
        if with_config:
            profile.update(
                {key: record[key] for key in ("config", "groupsConfig") if key in record}
            )
        return profile
    if record.get("userId"):
        return {
            "_id": record.get("_id"),
            "username": record["userId"],
            "tenant": {"id": record.get("tId")},
        }
    return {
        "_id": record.get("id") or record.get("user"),
        "username": record.get("user"),
        "tenant": {},
        "profile": record,
    }


def _user_block(
    profile: dict[str, Any],
    params: ServiceParams,
    user_acl: tuple[Any, Any],
) -> dict[str, Any]:
    urac: dict[str, Any] = {}
    for key in ("_id", "username", "firstName", "lastName", "email", "groups", "socialLogin"):
        if key not in profile:
            continue
        value = profile[key]
        if key in ("firstName", "lastName") and isinstance(value, str):
            # Node writes headers as Latin-1, so the gateway percent-encodes user names.
            value = encode_uri_component(value)
        urac[key] = copy.deepcopy(value)
    given = profile.get("tenant")
    tenant: dict[str, Any] = given if isinstance(given, dict) else {}
    urac["tenant"] = {key: tenant[key] for key in ("id", "code") if key in tenant}
    if params.on("urac_Profile") and "profile" in profile:
        urac["profile"] = copy.deepcopy(profile["profile"])
    if params.on("urac_ACL"):
        urac["acl"], urac["acl_AllEnv"] = copy.deepcopy(user_acl[0]), copy.deepcopy(user_acl[1])
    if params.on("urac_Config") and "config" in profile:
        urac["config"] = copy.deepcopy(profile["config"])
    if params.on("urac_GroupConfig") and "groupsConfig" in profile:
        urac["groupsConfig"] = copy.deepcopy(profile["groupsConfig"])
    return urac


def build_inject_object(
    *,
    resolved: ResolvedKey,
    env: str,
    service: str,
    params: ServiceParams,
    services_config: dict[str, Any],
    device: str | None,
    client_ip: str | None,
    user: dict[str, Any] | None,
    user_acl: tuple[Any, Any] = (None, None),
    awareness: tuple[str, int] | None,
    locate: Callable[[str, str | None], InterConnectHost | None],
) -> dict[str, Any]:
    """The ``soajsinjectobj`` object for one request, keys in the gateway's order.

    Args:
        resolved: the tenant, application, key and package of the request's external key.
        env: the lowercase environment code.
        service: the called service's name.
        params: the called version's flags.
        services_config: the key's configuration for ``env``, merged with the user's.
        device: the ``User-Agent`` header, if any.
        client_ip: the caller's IP address.
        user: the logged-in user's record (the verified JWT payload), if any.
        user_acl: the user's ``(acl, acl_all_env)`` (``urac_ACL``).
        awareness: the gateway's ``(host, port)``.
        locate: finds a healthy host of an interConnect target (name, version or None).
    """
    key_config = flatten_key_config(services_config, service)
    application, package = _provision_blocks(resolved, env, params)
    inject: dict[str, Any] = {
        "tenant": _tenant_block(resolved, params),
        "key": {
            "config": key_config,
            "iKey": resolved.key.i_key,
            "eKey": resolved.ext_key_value,
        },
        "application": application,
        "package": package,
    }
    if device is not None:
        inject["device"] = device
    inject["geo"] = {"ip": client_ip}
    if user is not None and params.on("urac"):
        profile = urac_profile(
            user, with_config=params.on("urac_Config") or params.on("urac_GroupConfig")
        )
        inject["urac"] = _user_block(profile, params, user_acl)
        inject["param"] = {"urac_Profile": params["urac_Profile"], "urac_ACL": params["urac_ACL"]}
    if awareness is not None:
        inject["awareness"] = {"host": awareness[0], "port": awareness[1]}
        targets = params["interConnect"]
        if isinstance(targets, list) and targets:
            # Like the gateway, a target's key config is added even when no host is healthy.
            inject["awareness"]["interConnect"] = _inter_connect(
                targets, services_config, key_config, locate
            )
    return inject


def _tenant_block(resolved: ResolvedKey, params: ServiceParams) -> dict[str, Any]:
    tenant = resolved.tenant
    block: dict[str, Any] = {"id": tenant.id}
    if tenant.name is not None:
        block["name"] = tenant.name
    block["code"] = tenant.code
    block["locked"] = bool(tenant.locked)
    if tenant.type is not None:
        block["type"] = tenant.type
    if tenant.main is not None:
        block["main"] = copy.deepcopy(tenant.main)
    if params.on("tenant_Profile") and tenant.profile is not None:
        block["profile"] = copy.deepcopy(tenant.profile)
    return block


def _provision_blocks(
    resolved: ResolvedKey, env: str, params: ServiceParams
) -> tuple[dict[str, Any], dict[str, Any]]:
    app = resolved.application
    application: dict[str, Any] = {
        "product": app.product,
        "package": app.package,
        "appId": app.app_id,
    }
    package: dict[str, Any] = {}
    if params.on("provision_ACL"):
        application["acl"] = copy.deepcopy(app.acl.get(env)) if app.acl else None
        application["acl_all_env"] = copy.deepcopy(app.acl) if app.acl else None
        package_acl = resolved.package.acl if resolved.package else {}
        package["acl"] = copy.deepcopy(package_acl.get(env))
        package["acl_all_env"] = copy.deepcopy(package_acl) if package_acl else None
    return application, package


def _inter_connect(
    targets: list[Any],
    services_config: dict[str, Any],
    key_config: dict[str, Any],
    locate: Callable[[str, str | None], InterConnectHost | None],
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for target in targets:
        if not isinstance(target, dict) or not target.get("name"):
            continue
        name = str(target["name"])
        version = target.get("version") if js_truthy(target.get("version")) else None
        located = locate(name, None if version is None else str(version))
        if located is None:
            continue
        if js_truthy(services_config.get(name)):
            key_config[name] = copy.deepcopy(services_config[name])
        if located.host is None or located.latest is None:
            continue
        item = {**copy.deepcopy(target), "version": version}
        item["host"], item["port"], item["latest"] = located.host, located.port, located.latest
        found.append(item)
    return found


def encode_inject_header(inject: dict[str, Any]) -> bytes:
    """Serialise like ``JSON.stringify`` and encode as Latin-1, as Node writes headers.

    Raises:
        UnicodeEncodeError: a character above U+00FF, which makes Node's proxy request fail.
    """
    return js_dumps(inject).encode("latin-1")
