"""The ``POST /register`` body a manually deployed service sends to the gateway.

The body uses the gateway's own field names (docs/protocol.md §3.1), in the order the reference
services send them, and always ``"mw": true``: the gateway persists a registration (marketplace
record and ``hosts`` collection) only when ``mw`` is truthy. Without it the entry lives in one
gateway process's memory and vanishes on the next registry reload. Upstream Python sent
``"middleware": true``, which the gateway ignores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soajs.models.service_config import Config
    from soajs.settings import Settings

__all__ = ["build_register_body"]

# (wire key, Config attribute) for the optional fields, in wire order; None values are not sent.
_OPTIONAL_FIELDS = (
    ("subType", "sub_type"),
    ("description", "description"),
    ("extKeyRequired", "ext_key_required"),
    ("oauth", "oauth"),
    ("urac", "urac"),
    ("urac_Profile", "urac_profile"),
    ("urac_ACL", "urac_acl"),
    ("urac_Config", "urac_config"),
    ("urac_GroupConfig", "urac_group_config"),
    ("tenant_Profile", "tenant_profile"),
    ("provision_ACL", "provision_acl"),
    ("requestTimeout", "request_timeout"),
    ("requestTimeoutRenewal", "request_timeout_renewal"),
)


def build_register_body(config: Config, settings: Settings) -> dict[str, Any]:
    """Build the JSON body of ``POST /register`` for this service.

    Args:
        config: the service configuration.
        settings: supplies the registered IP (``SOAJS_SRVIP``) when ``config.ip`` is unset.

    Returns:
        A JSON-serialisable dict; its key order is the wire order.
    """
    body: dict[str, Any] = {
        "name": config.name,
        "group": config.group,
        "port": config.port,
        "ip": config.ip or settings.srv_ip,
        "type": config.type,
        "version": config.version,
    }
    for key, attribute in _OPTIONAL_FIELDS:
        value = getattr(config, attribute)
        if value is not None:
            body[key] = value
    if config.inter_connect is not None:
        body["interConnect"] = [
            target.model_dump(mode="json", exclude_none=True) for target in config.inter_connect
        ]
    if config.maintenance is not None:
        body["maintenance"] = config.maintenance.model_dump(mode="json", exclude_none=True)
    if config.port_host is not None:
        body["portHost"] = config.port_host
    body["mw"] = True
    return body
