"""Every difference from soajs core's Node middleware that the parity suite allows, in one place.

docs/migration.md ("Differences from soajs core") lists the same names with the same reasons;
``test_parity.py`` checks that the two lists agree. A case may show a difference only if it
names it, and each name has a predicate saying exactly which pair of values it explains.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

DIFFERENCES: dict[str, str] = {
    "numbers-as-text": (
        "A number where text is expected (tenant.id, codes, names, appId) reads as its text, "
        "as String(x) gives in Node, so handlers always get str."
    ),
    "big-numbers": (
        "Integers beyond 2**53 keep every digit (Node rounds them to a double first), and "
        "integral floats keep Python's spelling (1.0 reads as '1.0')."
    ),
    "typed-default": (
        "A field read in a shape it cannot have (geo as text, a list for tenant.main, a non-"
        "boolean tenant.locked, urac as text, key.config missing) reads as its typed default "
        "(None, '', {}, []) instead of the value Node passes through."
    ),
    "falsy-kept": (
        "A falsy tenant.name, tenant.profile, tenant.main or device ('' or 0) is kept as sent; "
        "soajs core copies them only when truthy (both are falsy in an if)."
    ),
    "tenant-id-and-code-required": (
        "A tenant without text (or numeric) id and code is refused (an 'invalid' header): "
        "soajs core gives a context whose tenant.id is undefined."
    ),
    "objects-where-objects-are-read": (
        "tenant and key must be JSON objects and application.package text: soajs core gives a "
        "context (with every field undefined) for a truthy string or number there."
    ),
    "non-numeric-version": (
        "A version that is not a number ('latest', 'v1', '1.0.0') adds no /v... segment to a "
        "gateway call: Node builds /vlatest, which the gateway cannot route."
    ),
    "connect-error": (
        "Without awareness.host (or, for a gateway call, awareness.port) connect() raises "
        "ConnectError naming the field; Node answers {} or 'host:undefined/...'."
    ),
    "unreadable-entries-skipped": (
        "An interConnect entry that is not an object with a text name, whose version or latest "
        "is not text, a number or null, or that has no host or port, is skipped (the call goes "
        "to the gateway or a later entry); Node compares it as is, and mesh-calls "
        "'undefined:port' for an entry without a host."
    ),
    "authorization-forwarded": (
        "A gateway call forwards the incoming Authorization header (a logged-in user's Bearer "
        "token), with or without an access_token; soajs core reads req.headers.Authorization, "
        "which Node's lowercase header names never fill, so the user is lost on the next hop."
    ),
    "urac-record-secrets-only-with-all": (
        "For a user with neither username nor userId, getProfile() returns the record as its "
        "profile; here the record keeps config, groupsConfig and socialLogin.accessToken only "
        "with all=True, as for the other shapes; Node returns the record whole."
    ),
}

NOT_COMPARED = (
    "Not compared, by design: soajs core's awareness helpers exist whenever the header is a JSON "
    "object, even with no context; ServiceConnector needs a context (ConnectError otherwise). "
    "ServiceConnector also forwards W3C trace headers, and Node forwards a header access_token "
    "only when the key has an eKey; the suite sends neither. Node needs the service's own "
    "config to list interConnect before it mesh-calls; the harness sets it, as the gateway "
    "sends interConnect only to such services. tenant.roaming and unknown keys, which soajs "
    "core drops, are kept by this project and not compared."
)

_VERSION_SEGMENT = re.compile(r"/v[^/]*$")


def js_string(value: Any) -> str:
    """JavaScript's ``String(x)`` for a JSON number."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, int) and abs(value) > 2**53:
        return js_string(float(value))
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _empty(value: object) -> bool:
    return value in (None, "", [], {}) or value == {"id": None, "code": None}


def _numbers_as_text(node: Any, python: Any) -> bool:
    return _is_number(node) and python == js_string(node)


def _big_numbers(node: Any, python: Any) -> bool:
    return _is_number(node) and isinstance(python, str) and not math.isnan(float(python))


def _typed_default(node: Any, python: Any) -> bool:
    # A missing key.config reads as {} where Node has undefined.
    return _empty(python) and (not _empty(node) or (node is None and python == {}))


def _falsy_kept(node: Any, python: Any) -> bool:
    return node is None and python in ("", 0, "0")


def _non_numeric_version(node: Any, python: Any) -> bool:
    return (
        isinstance(node, dict)
        and isinstance(python, dict)
        and isinstance(node.get("host"), str)
        and _VERSION_SEGMENT.sub("", node["host"]) == python.get("host")
        and node.get("headers") == python.get("headers")
    )


def _connect_error(node: Any, python: Any) -> bool:
    if not isinstance(python, dict) or "error" not in python or not isinstance(node, dict):
        return False
    host = node.get("host")
    return host is None or "undefined" in str(host)


def _unreadable_entries_skipped(node: Any, python: Any) -> bool:
    return isinstance(node, dict) and isinstance(python, dict) and "host" in python


def _authorization_forwarded(node: Any, python: Any) -> bool:
    if not isinstance(node, dict) or not isinstance(python, dict):
        return False
    headers = dict(python.get("headers") or {})
    if "Authorization" not in headers:
        return False
    del headers["Authorization"]
    return node.get("host") == python.get("host") and (node.get("headers") or {}) == headers


def _secret_withheld(node: Any, python: Any) -> bool:
    return node is not None and python is None


def _refused_here(node: Any, python: Any) -> bool:
    # Checked on the outcome: Node has a context, this project an 'invalid' header.
    return node is not None and python == "invalid"


_PREDICATES: dict[str, Callable[[Any, Any], bool]] = {
    "numbers-as-text": _numbers_as_text,
    "big-numbers": _big_numbers,
    "typed-default": _typed_default,
    "falsy-kept": _falsy_kept,
    "tenant-id-and-code-required": _refused_here,
    "objects-where-objects-are-read": _refused_here,
    "non-numeric-version": _non_numeric_version,
    "connect-error": _connect_error,
    "unreadable-entries-skipped": _unreadable_entries_skipped,
    "authorization-forwarded": _authorization_forwarded,
    "urac-record-secrets-only-with-all": _secret_withheld,
}


def explains(name: str, node: object, python: object) -> bool:
    """Tell whether difference ``name`` explains Node's ``node`` against this project's ``python``.

    Values are leaves of the handler view (``None`` stands for ``undefined``); for
    ``connect()``, whole results (``{"host", "headers"}`` or ``{"error"}``); for the outcome,
    Node's handler view against this project's ``InjectHeaderError`` code.
    """
    return _PREDICATES[name](node, python)
