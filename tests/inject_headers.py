"""Every soajsinjectobj header under the shared fixtures, as the raw text a service receives."""

from __future__ import annotations

import json
from typing import Any

from fixture_paths import FIXTURES

RAW_STRING_FILES = sorted(FIXTURES.glob("*/soajsinjectobj.raw-header-strings.json"))
PARSED_FILES = sorted(
    path
    for path in FIXTURES.glob("*/soajsinjectobj.*.json")
    if path.name != "soajsinjectobj.raw-header-strings.json"
)
SERVICE_RECEIVED = FIXTURES / "captured" / "service-received.json"
SECURE_URAC_JWT = "captured/raw/secure-urac-jwt"


def _received_headers() -> dict[str, str]:
    """The soajsinjectobj values the echo services recorded, in arrival order."""
    found: dict[str, str] = {}
    services: dict[str, Any] = json.loads(SERVICE_RECEIVED.read_text(encoding="utf-8"))
    for service, record in services.items():
        for index, request in enumerate(record.get("proxied_requests", [])):
            for name, value in request["headers"]:
                if name.lower() == "soajsinjectobj":
                    found[f"captured/received/{service}/{index}"] = value
    return found


def all_headers() -> dict[str, str]:
    """Map a readable id to the raw header text, for every header in the fixtures."""
    headers: dict[str, str] = {}
    for path in RAW_STRING_FILES:
        for name, value in json.loads(path.read_text(encoding="utf-8")).items():
            headers[f"{path.parent.name}/raw/{name}"] = value
    for path in PARSED_FILES:
        data = json.loads(path.read_text(encoding="utf-8"))
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        headers[f"{path.parent.name}/parsed/{path.stem.removeprefix('soajsinjectobj.')}"] = text
    headers.update(_received_headers())
    return headers


def expected_wire_dict(text: str) -> dict[str, Any]:
    """What a parsed header dumps back to: the JSON, with the user's names percent-decoded."""
    from urllib.parse import unquote

    data: dict[str, Any] = json.loads(text)
    urac = data.get("urac")
    if isinstance(urac, dict):
        for field in ("firstName", "lastName"):
            if field in urac:
                urac[field] = unquote(urac[field], errors="strict")
    return data


HEADERS = all_headers()


MINIMAL: dict[str, Any] = {
    "tenant": {"id": "t1", "code": "TTEN", "name": "Caf\u00e9"},
    "key": {"config": {}, "iKey": "ikey-secret", "eKey": "ekey-secret"},
    "application": {"package": "TPROD_BASIC"},
}
"""The smallest header the gateway's shape allows, with a Latin-1 tenant name."""


def header_text(data: dict[str, Any]) -> str:
    """JSON.stringify output, as the Latin-1 text a WSGI server puts in the environ."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
