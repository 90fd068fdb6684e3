"""Keys, package ACLs and user tokens: the checks the real gateway makes before proxying.

Each check returns a gateway error code (see :data:`ERRORS`) or its result; the data-port app
turns a code into the gateway's error reply.

User tokens follow soajs.controller 4.3.3 for a tenant with ``oauth.type: 0`` (``mw/url``,
``mw/mt/utils.js`` ``oauthCheck``/``uracCheck``, ``mw/oauth``), checked against it by
``tests/interop/test_user_token.py``:

* Only ``Authorization: Bearer <jwt>`` carries the user (:func:`authenticate_user`). An
  ``access_token`` (query string or header) is never verified: it only makes the gateway run
  the OAuth step on an API that its ACL makes public. So ``?access_token=<good token>`` alone
  answers 500/143, and a Bearer token on a public API is ignored (200, no user) unless the
  request also carries an ``access_token``.
* A verified token without ``user`` or without a text ``env`` makes the real gateway throw:
  500/164. So does a ``username`` without ``tenant`` for a ``urac`` service (see
  :mod:`soajs.gateway.injection`). :func:`make_user_token` refuses such payloads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from soajs.errors import SoajsError
from soajs.gateway.config import (
    ApplicationConfig,
    ExtKeyConfig,
    GatewayConfig,
    KeyConfig,
    PackageConfig,
    TenantConfig,
    TenantOAuth,
)
from soajs.gateway.wire import latest_version, sanitize_version, unsanitize_version

__all__ = [
    "ERRORS",
    "USER_TOKEN_FIELDS",
    "AclDecision",
    "GatewayError",
    "ResolvedKey",
    "TokenError",
    "UserTokenPayloadError",
    "api_check",
    "api_is_public",
    "authenticate_user",
    "find_key",
    "make_user_token",
    "read_user_token",
    "resolve_acl",
    "user_token_headers",
]

logger = logging.getLogger("soajs.gateway")

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
    # What the real gateway answers when a verified user token lacks a field it reads.
    164: (500, "Unknown error @ rest core!"),
    # The local gateway's own refusals (the real one has no such guard); see docs/reliability.md.
    190: (403, "The maintenance API refuses requests sent by a web browser."),
    191: (403, "Only loopback addresses and gateway.registerAllow may register."),
    192: (415, "Registrations are accepted only as JSON (Content-Type: application/json)."),
    193: (413, "The request body is larger than gateway.maintenanceMaxBody."),
    194: (400, "The registration is malformed."),
    195: (400, "The path holds a '.' or '..' segment."),
    196: (405, "GET /register is off; POST JSON, or set gateway.registerQueryForm."),
    197: (
        403,
        "The Host header is not an address of this gateway nor in gateway.maintenanceHosts.",
    ),
}

# mw/oauth: the token is the first run of non-space characters after "Bearer" and a space.
_BEARER = re.compile(r"Bearer\s(\S+)")

# The payload of a user token that both gateways accept and whose user reaches the service:
# field -> (the JSON type it must have, why it is needed).
USER_TOKEN_FIELDS: dict[str, tuple[type, str]] = {
    "_id": (str, "the user's id: the service's urac._id"),
    "username": (str, "the gateway builds urac from a token with a username"),
    "tenant": (dict, "the user's tenant, {'id': ..., 'code': ...}: the gateway reads tenant.id"),
    "env": (str, "the environment code the token was issued for, e.g. 'dev'"),
    "user": (dict, "the login details, e.g. {'loginMode': 'urac'}: the gateway reads loginMode"),
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


class UserTokenPayloadError(SoajsError, ValueError):
    """A payload given to :func:`make_user_token` lacks a field the gateway needs."""


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

    ``exp`` and ``nbf`` are checked as ``jsonwebtoken`` does: numbers of whole seconds, compared
    with the current second.

    Raises:
        TokenError: the token is malformed, not HS256, wrongly signed, expired or not yet valid.
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
    second = math.floor(time.time() if now is None else now)
    for claim in ("exp", "nbf"):
        value = payload.get(claim)
        if claim in payload and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise TokenError(f"the JWT's {claim} is not a number")
    if "exp" in payload and second >= payload["exp"]:
        raise TokenError("the JWT has expired")
    if "nbf" in payload and payload["nbf"] > second:
        raise TokenError("the JWT is not valid yet (nbf)")
    return payload


def authenticate_user(
    oauth: TenantOAuth | None, authorization: str | None, *, now: float | None = None
) -> dict[str, Any]:
    """The gateway's OAuth step for a tenant with ``oauth.type: 0``: the Bearer token's user.

    Only the ``Authorization`` header is read; an ``access_token`` never is (see the module).

    Args:
        oauth: the tenant's OAuth settings.
        authorization: the request's ``Authorization`` header, if any.
        now: the current time (seconds since the epoch); by default the clock.

    Returns:
        The verified payload: the user record the gateway injects as ``urac``.

    Raises:
        GatewayError: 143 without a Bearer token or with one that does not verify; 164 when
            the payload lacks ``user`` or a text ``env``, which the real gateway reads.
    """
    found = _BEARER.search(authorization or "")
    if found is None or oauth is None or oauth.secret is None or oauth.type != 0:
        raise GatewayError(143)
    try:
        payload = read_user_token(found.group(1), oauth.secret.get_secret_value(), now=now)
    except TokenError as exc:
        logger.info("user token refused: %s", exc)
        raise GatewayError(143) from None
    # soajs.controller reads bearerToken.user.loginMode and bearerToken.env.toLowerCase().
    if payload.get("user") is None or not isinstance(payload.get("env"), str):
        logger.warning("user token without 'user' or a text 'env': the real gateway fails (164)")
        raise GatewayError(164)
    return payload


def make_user_token(payload: dict[str, Any], secret: str) -> str:
    """Sign ``payload`` as an HS256 JWT, as a tenant with ``oauth.type: 0`` would.

    The payload is the user record the gateway injects as ``urac``. Both the local and the
    real gateway need these fields (:data:`USER_TOKEN_FIELDS`):

    * ``_id`` (text): the user's id; a service drops a ``urac`` without it.
    * ``username`` (text): the gateway builds ``urac`` only from a token with a username.
    * ``tenant`` (object, ``{"id": ..., "code": ...}``): the user's tenant.
    * ``env`` (text): the environment code the token was issued for, e.g. ``"dev"``.
    * ``user`` (object, e.g. ``{"loginMode": "urac"}``): the login details.

    ``firstName``, ``lastName``, ``email``, ``groups``, ``profile``, ``config``,
    ``groupsConfig`` and ``exp`` (seconds since the epoch) are optional.

    Raises:
        UserTokenPayloadError: a required field is missing, empty or of the wrong type; the
            message names each one.
    """
    problems = [
        f"{field!r} ({'text' if kind is str else 'an object'}: {why})"
        for field, (kind, why) in USER_TOKEN_FIELDS.items()
        if not isinstance(payload.get(field), kind) or (kind is str and not payload[field])
    ]
    if problems:
        raise UserTokenPayloadError("make_user_token: the payload needs " + "; ".join(problems))
    header = _b64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    body = _b64url_encode(
        json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    )
    signature = hmac.new(
        secret.encode("utf-8"), f"{header}.{body}".encode("ascii"), hashlib.sha256
    ).digest()
    return f"{header}.{body}.{_b64url_encode(signature)}"


def user_token_headers(token: str) -> dict[str, str]:
    """The headers that make the gateway, local or real, read the user of ``token`` on any API.

    ``Authorization: Bearer`` carries the token; ``access_token`` makes the gateway run its OAuth
    step on APIs its ACL makes public, where it would otherwise skip it and send no user.
    """
    return {"authorization": f"Bearer {token}", "access_token": token}
