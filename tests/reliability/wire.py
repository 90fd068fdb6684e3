"""The wire data of these tests: tagged registry replies and one header per simulated caller.

A registry tagged ``a`` carries ``a`` in four unrelated places, so a reader can tell whether a
snapshot is whole.
"""

from __future__ import annotations

import json
from typing import Any

from fixture_paths import FIXTURES

from soajs.models import Registry

__all__ = [
    "CAPTURED",
    "DB_PASSWORD",
    "FIXTURES",
    "RAW_HEADERS",
    "caller_header",
    "caller_tenant",
    "registry_reply",
    "tag_of",
]

CAPTURED = FIXTURES / "captured"
# Captured registries carry ``credentials: null``; these tests add a password to look for.
DB_PASSWORD = "reliability-db-password"
# The captured soajsinjectobj values, byte for byte (as Latin-1 text), by request name.
RAW_HEADERS: dict[str, str] = json.loads(
    (CAPTURED / "soajsinjectobj.raw-header-strings.json").read_text(encoding="utf-8")
)
_BASE_HEADER: dict[str, Any] = json.loads(RAW_HEADERS["hello-get"])


def registry_reply(tag: str = "a", interval_ms: int | None = None) -> dict[str, Any]:
    """The captured ``hello`` registry reply, marked with ``tag`` in four unrelated places."""
    path = CAPTURED / "getRegistry.dev.hello.after-register.response.json"
    reply: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    data = reply["data"]
    data["timeLoaded"] = ord(tag)
    data["coreDB"]["main"] = {
        "name": f"main_{tag}",
        "prefix": tag,
        "servers": [{"host": "127.0.0.1", "port": 27017}],
        "credentials": {"username": "app", "password": DB_PASSWORD},
    }
    data["services"]["hello"]["group"] = tag
    data["custom"]["tag"] = {"name": "tag", "value": tag}
    if interval_ms is not None:
        data["serviceConfig"]["awareness"]["autoRelaodRegistry"] = interval_ms
    return reply


def tag_of(registry: Registry) -> str:
    """The tag of a snapshot.

    Raises:
        AssertionError: the four marks disagree (the snapshot mixes two registries).
    """
    tags = {
        chr(registry.time_loaded or 0),
        registry.get_database("main").prefix,
        registry.get_service("hello").group,
        registry.get_custom("tag").value,
    }
    if len(tags) != 1:
        raise AssertionError(f"a snapshot mixes registries: {sorted(map(str, tags))}")
    return str(tags.pop())


def caller_tenant(index: int) -> str:
    """The tenant code of caller ``index``."""
    return f"T{index:05d}"


def caller_header(index: int) -> bytes:
    """The captured ``hello`` header, made caller ``index``'s (every third with a Latin-1 name).

    Returns:
        The header bytes as the gateway sends them (compact JSON, Latin-1).
    """
    data = json.loads(json.dumps(_BASE_HEADER))
    data["tenant"]["code"] = caller_tenant(index)
    data["tenant"]["id"] = f"{index:024x}"
    data["tenant"]["name"] = f"Société {index}" if index % 3 == 0 else f"Tenant {index}"
    data["key"]["iKey"] = f"ikey-{index}"
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("latin-1")
