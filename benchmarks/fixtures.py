"""The inputs every benchmark uses: the captured headers and registry.

The captured files live in ``tests/fixtures/captured`` (recorded from the real
soajs.controller 4.3.3).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CAPTURED = REPO / "tests" / "fixtures" / "captured"

RAW_HEADERS = "soajsinjectobj.raw-header-strings.json"
HEADER_NAME = "secure-urac-jwt"
MESH_HEADER_NAME = "caller-interconnect"
REGISTRY_FILE = "getRegistry.dev.hello.after-register.response.json"


@dataclass(frozen=True)
class Inputs:
    """The header bytes and registry data, and where they came from."""

    header: bytes
    mesh_header: bytes
    registry: dict[str, Any]
    source: str


def load_inputs() -> Inputs:
    """The captured header bytes and registry reply from ``tests/fixtures/captured``."""
    headers = json.loads((CAPTURED / RAW_HEADERS).read_text(encoding="utf-8"))
    reply = json.loads((CAPTURED / REGISTRY_FILE).read_text(encoding="utf-8"))
    return Inputs(
        header=headers[HEADER_NAME].encode("latin-1"),
        mesh_header=headers[MESH_HEADER_NAME].encode("latin-1"),
        registry=reply["data"],
        source=f"captured: tests/fixtures/captured/{RAW_HEADERS} [{HEADER_NAME}]",
    )


def big_registry(base: dict[str, Any], services: int = 5000, databases: int = 1000) -> bytes:
    """A ``/getRegistry`` data object with ``services`` services and ``databases`` databases.

    Services copy the gateway's own full entry (hosts, awareness stats); databases copy the
    captured ``coreDB.provision`` entry, half in ``coreDB`` and half in ``tenantMetaDB``.
    """
    data = copy.deepcopy(base)
    template = data.get("services", {}).get("controller") or {
        "name": "controller",
        "group": "Gateway",
        "port": 4000,
    }
    database = next(iter(data.get("coreDB", {}).values()), None) or {
        "name": "core_provision",
        "prefix": "",
        "servers": [{"host": "127.0.0.1", "port": 27017}],
    }
    all_services = dict(data.get("services", {}))
    for index in range(services - len(all_services)):
        entry = copy.deepcopy(template)
        entry["name"] = f"service{index}"
        entry["port"] = 10_000 + index
        all_services[entry["name"]] = entry
    data["services"] = all_services
    core: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for index in range(databases):
        entry = copy.deepcopy(database)
        entry["name"] = f"db{index}"
        (core if index % 2 == 0 else meta)[f"db{index}"] = entry
    data["coreDB"] = core
    data["tenantMetaDB"] = meta
    return json.dumps({"result": True, "data": data}, separators=(",", ":")).encode()
