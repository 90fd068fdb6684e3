"""The wire data of these tests: the captured headers and one header per simulated caller.

The tagged registry replies are in tests/tagged_registry.py, shared with the unit tests.
"""

from __future__ import annotations

import json
from typing import Any

from fixture_paths import FIXTURES

__all__ = [
    "CAPTURED",
    "FIXTURES",
    "RAW_HEADERS",
    "caller_header",
    "caller_tenant",
]

CAPTURED = FIXTURES / "captured"
# The captured soajsinjectobj values, byte for byte (as Latin-1 text), by request name.
RAW_HEADERS: dict[str, str] = json.loads(
    (CAPTURED / "soajsinjectobj.raw-header-strings.json").read_text(encoding="utf-8")
)
_BASE_HEADER: dict[str, Any] = json.loads(RAW_HEADERS["hello-get"])


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
