"""Importing MongoDB provisioning records (a gateway's seed) as a local gateway configuration.

:func:`config_from_seed` reads the ``core_provision`` collections the real gateway reads
(``environment``, ``products``, ``tenants``), in MongoDB Extended JSON as in the captured
``db.seed.core_provision.json``, so the bundled gateway and the real one can run on the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from soajs.gateway.config import GatewayConfig, GatewayConfigError, default_core_db

__all__ = ["config_from_seed"]


def _from_extended_json(value: Any) -> Any:
    """Turn MongoDB Extended JSON wrappers (``$oid``, ``$date``, ``$numberLong``...) into plain
    values: ids become their hex string, dates milliseconds since the epoch."""
    if isinstance(value, list):
        return [_from_extended_json(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        convert = _EXTENDED_JSON.get(tag)
        if convert is not None:
            return convert(inner)
    return {key: _from_extended_json(item) for key, item in value.items()}


def _date_ms(value: Any) -> Any:
    from datetime import datetime

    if isinstance(value, dict) and "$numberLong" in value:
        return int(value["$numberLong"])
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return int(parsed.timestamp() * 1000)
    return value


_EXT_KEY_FIELDS = ("extKey", "env", "device", "geo", "dashboardAccess", "expDate")
_EXTENDED_JSON: dict[str, Callable[[Any], Any]] = {
    "$oid": str,
    "$numberLong": int,
    "$numberInt": int,
    "$numberDouble": float,
    "$date": _date_ms,
}


def _pick(record: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: record[name] for name in names if name in record}


def config_from_seed(
    seed: Mapping[str, Any], *, env: str | None = None, source: str = "seed"
) -> GatewayConfig:
    """Convert MongoDB provisioning records (the ``core_provision`` collections) to a config.

    ``seed`` maps collection names to lists of documents in Extended JSON: ``environment``,
    ``products`` and ``tenants`` are read, anything else is ignored. ``env`` picks the
    environment record by code (default: the first record).

    Raises:
        GatewayConfigError: the records are missing or invalid.
    """
    data = _from_extended_json(dict(seed))
    environments = data.get("environment") or []
    if not environments:
        raise GatewayConfigError(
            f"{source}: environment: no environment record", field="environment"
        )
    record = environments[0]
    if env is not None:
        matches = [
            item for item in environments if str(item.get("code", "")).lower() == env.lower()
        ]
        if not matches:
            raise GatewayConfigError(
                f"{source}: environment: no record with code {env.upper()!r}", field="environment"
            )
        record = matches[0]
    services = record.get("services") or {}
    environment: dict[str, Any] = _pick(
        record, "code", "description", "domain", "sitePrefix", "apiPrefix", "protocol", "port"
    )
    if "deployer" in record:
        environment["deployer"] = record["deployer"]
    if isinstance(services.get("controller"), dict):
        environment["controller"] = _pick(
            services["controller"],
            "maxPoolSize",
            "authorization",
            "requestTimeout",
            "requestTimeoutRenewal",
        )
    if isinstance(services.get("config"), dict):
        environment["serviceConfig"] = services["config"]
    core_db = default_core_db()
    if not (record.get("dbs") or {}).get("config"):
        core_db["session"] = None
    environment["coreDB"] = core_db

    products = [
        {
            **_pick(product, "code", "name", "description"),
            "packages": [
                _pick(package, "code", "name", "description", "acl")
                for package in product.get("packages") or []
            ],
        }
        for product in data.get("products") or []
    ]
    tenants = []
    for tenant in data.get("tenants") or []:
        converted: dict[str, Any] = {
            "id": tenant.get("_id"),
            **_pick(tenant, "code", "name", "type", "description", "locked", "profile"),
        }
        if isinstance(tenant.get("tenant"), dict):
            converted["main"] = _pick(tenant["tenant"], "id", "code")
        if isinstance(tenant.get("oauth"), dict):
            converted["oauth"] = _pick(tenant["oauth"], "secret", "type", "disabled", "loginMode")
        converted["applications"] = [
            {
                **_pick(app, "product", "package", "appId", "description", "acl"),
                "keys": [
                    {
                        "key": key.get("key"),
                        "config": key.get("config") or {},
                        "extKeys": [
                            _pick(ext, *_EXT_KEY_FIELDS) for ext in key.get("extKeys") or []
                        ],
                    }
                    for key in app.get("keys") or []
                ],
            }
            for app in tenant.get("applications") or []
        ]
        tenants.append(converted)
    return GatewayConfig.from_mapping(
        {"environment": environment, "products": products, "tenants": tenants}, source=source
    )
