"""Wire helpers shared by the local gateway: JSON as Node writes it, JavaScript truthiness,
and the redaction of secrets from registry values."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import quote

__all__ = [
    "CONTROLLER_PACKAGE",
    "CONTROLLER_VERSION",
    "GATEWAY_NAME",
    "INJECTION_FLAGS",
    "REDACTED",
    "encode_uri_component",
    "js_dumps",
    "js_ordered",
    "js_string",
    "js_truthy",
    "latest_version",
    "now_ms",
    "parse_float",
    "parse_int",
    "redact_secrets",
    "sanitize_version",
    "unsanitize_version",
    "version_is_valid",
]

CONTROLLER_PACKAGE = "soajs.controller"
CONTROLLER_VERSION = "4.3.3"
GATEWAY_NAME = "controller"
"""The registry name of the gateway's own entry."""
INJECTION_FLAGS = (
    "urac",
    "urac_Profile",
    "urac_ACL",
    "urac_Config",
    "urac_GroupConfig",
    "tenant_Profile",
    "provision_ACL",
)
"""Per-version flags choosing what the gateway injects about user and tenant, in its order."""

# Keys that a JavaScript object enumerates first, in ascending order (array indexes).
_INDEX_KEY = re.compile(r"^(0|[1-9][0-9]*)$")
_INDEX_MAX = 2**32 - 2
# soajs.core.libs version.validate: unanchored, so "v1" and "1.0.0" pass but "" and "e.e" fail.
_VERSION = re.compile(r"[0-9]+(.[0-9]+)?")
_URI_SAFE = "-_.!~*'()"
# Keys whose values are secrets wherever they appear in a registry (case-insensitive).
_SECRET_KEYS = frozenset(
    {
        "password",
        "secret",
        "credentials",
        "token",
        "accesstoken",
        "extkey",
        "ekey",
        "ikey",
        "key",
    }
)
REDACTED = "***"


def now_ms() -> int:
    """The current time in milliseconds since the epoch, like ``Date.now()``."""
    return int(time.time() * 1000)


def _is_index(key: str) -> bool:
    return bool(_INDEX_KEY.match(key)) and int(key) <= _INDEX_MAX


def js_ordered(value: Any) -> Any:
    """Copy ``value`` with every object's keys in JavaScript enumeration order.

    Integer-like keys (``"1"``, ``"2"``) come first in ascending order, then the others in
    insertion order. The real gateway's JSON therefore reads ``{"1": [...], "latest": "1"}``
    even when ``latest`` was set first.
    """
    if isinstance(value, dict):
        keys = [str(key) for key in value]
        index_keys = sorted((key for key in keys if _is_index(key)), key=int)
        other_keys = [key for key in keys if not _is_index(key)]
        items = {str(key): item for key, item in value.items()}
        return {key: js_ordered(items[key]) for key in index_keys + other_keys}
    if isinstance(value, list | tuple):
        return [js_ordered(item) for item in value]
    return value


def js_dumps(value: Any) -> str:
    """Serialise like ``JSON.stringify``: compact, JavaScript key order, non-ASCII kept."""
    return json.dumps(js_ordered(value), separators=(",", ":"), ensure_ascii=False)


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness: ``{}`` and ``[]`` and ``"false"`` are true; ``""``, 0, null false."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, str):
        return value != ""
    return True


def parse_int(value: Any) -> int | None:
    """``parseInt`` for the values ``/register`` receives; ``None`` where JavaScript gets NaN."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        match = re.match(r"\s*([+-]?[0-9]+)", value)
        return int(match.group(1)) if match else None
    return None


def version_is_valid(version: str) -> bool:
    """The gateway's version check (``soajs.core.libs`` ``version.validate``), unanchored."""
    return bool(_VERSION.search(version))


def encode_uri_component(text: str) -> str:
    """``encodeURIComponent``: UTF-8 percent-encoding that keeps ``A-Za-z0-9-_.!~*'()``."""
    return quote(text, safe=_URI_SAFE)


def parse_float(value: str) -> float | None:
    """``parseFloat``: the leading number of ``value``; ``None`` where JavaScript gets NaN."""
    match = re.match(r"\s*([+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+))", value)
    return float(match.group(1)) if match else None


def latest_version(current: str | None, candidate: str) -> str:
    """``version.getLatest``: keep ``current`` unless ``candidate`` is a higher number."""
    if not current:
        return candidate
    if version_is_valid(current) and version_is_valid(candidate):
        new, old = parse_float(candidate), parse_float(current)
        if new is not None and old is not None and new > old:
            return candidate
    return current


def sanitize_version(version: str) -> str:
    """``version.sanitize``: the first ``.`` becomes ``x`` (ACL keys cannot hold dots)."""
    return version.replace(".", "x", 1)


def unsanitize_version(version: str) -> str:
    """``version.unsanitize``: the first ``x`` becomes ``.``."""
    return version.replace("x", ".", 1)


def js_string(value: Any) -> str:
    """``"" + value`` for JSON values: ``true``, ``1``, ``1.5``, ``undefined`` for a missing one."""
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def redact_secrets(value: Any) -> Any:
    """Copy a registry value with every secret-looking entry replaced by ``***``.

    A secret key holding an object (``key: {algorithm, password}``) is searched rather than
    hidden whole, so the structure stays readable; ``null`` stays ``null``.
    """
    if isinstance(value, dict):
        return {
            key: (
                REDACTED
                if str(key).lower() in _SECRET_KEYS
                and value[key] is not None
                and not isinstance(value[key], dict)
                else redact_secrets(value[key])
            )
            for key in value
        }
    if isinstance(value, list):
        return [redact_secrets(item) for item in value]
    return value
