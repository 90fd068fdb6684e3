"""Keys, package ACLs and user tokens: the checks the real gateway makes before proxying.

Each check returns a gateway error code (see :data:`ERRORS`) or its result; the data-port app
turns a code into the gateway's error reply.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from soajs.gateway.config import (
    ApplicationConfig,
    ExtKeyConfig,
    GatewayConfig,
    KeyConfig,
    PackageConfig,
    TenantConfig,
)
from soajs.gateway.wire import latest_version, sanitize_version, unsanitize_version

__all__ = [
    "ERRORS",
    "AclDecision",
    "GatewayError",
    "ResolvedKey",
    "TokenError",
    "api_check",
    "api_is_public",
    "find_key",
    "make_user_token",
    "read_user_token",
    "resolve_acl",
]

# code: (HTTP status, message), as the real gateway answers them.
ERRORS: dict[int, tuple[int, str]] = {
    130: (404, "Unknown service."),
    132: (403, "A valid key is needed to access any API."),
    133: (504, "The service you are trying to reach is not reachable at this moment."),
    134: (504, "All requests to the service you are trying to reach are timing out."),
    135: (503, "Error occurred while redirecting your request to the service"),
    143: (500, "invalid_request: Malformed auth header"),
    144: (401, "The provided key cannot be used with this environment"),
    148: (500, "Unable to load the key information"),
    149: (500, "Unable to load the product package information"),
    154: (403, "Access denied: The service is not available in your current package."),
    157: (401, "You do not belong to a group with access to this System."),
    158: (401, "You need to be logged in to access this System."),
    159: (401, "System api access is restricted. api is not in provision."),
    160: (401, "You do not belong to a group with access to this system API."),
    161: (401, "You need to be logged in to access this API."),
}


class GatewayError(Exception):
    """A request the gateway refuses, with its error code."""

    def __init__(self, code: int) -> None:
        super().__init__(ERRORS[code][1])
        self.code = code

    @property
    def status(self) -> int:
        """The HTTP status the gateway answers with."""
        return ERRORS[self.code][0]


class TokenError(Exception):
    """A user token that is malformed, wrongly signed or expired."""


@dataclass(frozen=True)
class ResolvedKey:
    """What an external key unlocks: its tenant, application, key and package."""

    tenant: TenantConfig
    application: ApplicationConfig
    key: KeyConfig
    ext_key: ExtKeyConfig
    package: PackageConfig | None

    @property
    def ext_key_value(self) -> str:
        """The external key itself."""
        return self.ext_key.ext_key.get_secret_value()

    def env_config(self, env: str) -> dict[str, Any]:
        """The key's configuration for ``env`` (commonFields and per-service entries)."""
        return dict(self.key.config.get(env) or {})


def find_key(config: GatewayConfig, ext_key: str) -> ResolvedKey | None:
    """Look an external key up verbatim (the real gateway decrypts it with AES first)."""
    for tenant in config.tenants:
        for application in tenant.applications:
            for key in application.keys:
                for ext in key.ext_keys:
                    if hmac.compare_digest(ext.ext_key.get_secret_value(), ext_key):
                        package = config.package(application.package)
                        return ResolvedKey(tenant, application, key, ext, package)
    return None


@dataclass(frozen=True)
class AclDecision:
    """The ACL that applies to one request, and the version the ACL chose if none was asked."""

    final_acl: dict[str, Any] | None
    version: str | None


def resolve_acl(
    resolved: ResolvedKey, env: str, service: str, version: str | None, method: str
) -> AclDecision:
    """The application's (else the package's) ACL for ``service``, narrowed to the version
    and the HTTP method (the gateway's ``keyACL`` step).

    Raises:
        GatewayError: 154 when the ACL lists versions but not the requested one.
    """
    acl_obj: Any = None
    app_acl = (resolved.application.acl or {}).get(env)
    if isinstance(app_acl, dict):
        acl_obj = app_acl.get(service)
    package_acl = resolved.package.acl.get(env) if resolved.package else None
    if acl_obj is None and isinstance(package_acl, dict):
        acl_obj = package_acl.get(service)
    if not isinstance(acl_obj, dict):
        return AclDecision(None, version)
    if "apis" in acl_obj or "apisRegExp" in acl_obj:
        return AclDecision(acl_obj, version)
    acl_obj, chosen = _pick_version(acl_obj, version)
    if not isinstance(acl_obj, dict):
        return AclDecision(None, chosen)
    return AclDecision(_narrow_to_method(acl_obj, method), chosen)


def _pick_version(acl_obj: dict[str, Any], version: str | None) -> tuple[Any, str | None]:
    schema_keys = ("access", "apis", "apisRegExp", "apisPermission")
    if not acl_obj or any(key in acl_obj for key in schema_keys):
        return acl_obj, version
    if version:
        sanitized = sanitize_version(version)
        if sanitized not in acl_obj:
            raise GatewayError(154)
        return acl_obj[sanitized], version
    best: str | None = None
    for candidate in acl_obj:
        best = latest_version(best, candidate)
    if best is None:
        return acl_obj, version
    return acl_obj[best], unsanitize_version(best)


def _narrow_to_method(acl_obj: dict[str, Any], method: str) -> dict[str, Any]:
    by_method = acl_obj.get(method.lower())
    if not isinstance(by_method, dict):
        return acl_obj
    narrowed: dict[str, Any] = {}
    if "access" in acl_obj:
        narrowed["access"] = acl_obj["access"]
    for key in ("apis", "apisRegExp"):
        if key in by_method:
            narrowed[key] = by_method[key]
    if "apisPermission" in by_method:
        narrowed["apisPermission"] = by_method["apisPermission"]
    elif "apisPermission" in acl_obj:
        narrowed["apisPermission"] = acl_obj["apisPermission"]
    return narrowed


def _api_entry(system: dict[str, Any] | None, path: str) -> dict[str, Any] | None:
    apis = (system or {}).get("apis")
    if isinstance(apis, dict) and isinstance(apis.get(path), dict):
        return dict(apis[path])
    return None


def api_is_public(system: dict[str, Any] | None, path: str) -> bool:
    """Whether the ACL makes this API reachable without a logged-in user."""
    if not system:
        return False
    api = _api_entry(system, path)
    public = False
    if system.get("access"):
        if api is not None and not api.get("access"):
            public = True
    elif api is None or not api.get("access"):
        public = True
    if system.get("apisPermission") == "restricted" and api is not None and not api.get("access"):
        public = True
    return public


def _check_access(access: Any, user: dict[str, Any] | None) -> int | None:
    if not access:
        return None
    if user is None:
        return 161
    if isinstance(access, list):
        groups = user.get("groups") or []
        return None if any(group in access for group in groups) else 160
    return None


def api_check(system: dict[str, Any] | None, path: str, user: dict[str, Any] | None) -> None:
    """The gateway's ``apiCheck``: groups and logged-in requirements of the ACL.

    Raises:
        GatewayError: 157, 158, 159, 160 or 161.
    """
    api = _api_entry(system, path)
    restricted = bool(system) and (system or {}).get("apisPermission") == "restricted"
    if system and system.get("access"):
        if user is not None:
            access = system["access"]
            if isinstance(access, list):
                groups = user.get("groups") or []
                if not any(group in access for group in groups):
                    raise GatewayError(157)
        elif api is None or api.get("access"):
            raise GatewayError(158)
    elif api is None and not restricted:
        return
    if restricted and api is None:
        raise GatewayError(159)
    if api is not None:
        error = _check_access(api.get("access"), user)
        if error is not None:
            raise GatewayError(error)


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def read_user_token(token: str, secret: str, *, now: float | None = None) -> dict[str, Any]:
    """Verify an HS256 JWT signed with the tenant's OAuth secret and return its payload.

    Raises:
        TokenError: the token is malformed, not HS256, wrongly signed or expired.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("a JWT has three dot-separated parts")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        payload = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, binascii.Error) as exc:
        raise TokenError("the JWT is not base64url-encoded JSON") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise TokenError("only HS256 tokens are accepted")
    expected = hmac.new(
        secret.encode("utf-8"), f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(expected, signature):
        raise TokenError("the JWT signature does not match the tenant secret")
    if not isinstance(payload, dict):
        raise TokenError("the JWT payload is not an object")
    expires = payload.get("exp")
    if isinstance(expires, int | float) and expires <= (time.time() if now is None else now):
        raise TokenError("the JWT has expired")
    return payload


def make_user_token(payload: dict[str, Any], secret: str) -> str:
    """Sign ``payload`` as an HS256 JWT, as a tenant with ``oauth.type: 0`` would."""
    header = _b64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    body = _b64url_encode(
        json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    )
    signature = hmac.new(
        secret.encode("utf-8"), f"{header}.{body}".encode("ascii"), hashlib.sha256
    ).digest()
    return f"{header}.{body}.{_b64url_encode(signature)}"
