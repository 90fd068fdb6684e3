"""The inputs every benchmark uses: captured headers and registry, or built stand-ins.

The captured files live in ``shared/fixtures/captured`` beside the repository (recorded from
the real soajs.controller 4.3.3). When that folder is absent, the same shapes are built with
:mod:`soajs.testing` and the report says so.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soajs.testing import DEFAULT_REGISTRY, build_inject_header

REPO = Path(__file__).resolve().parents[1]
CAPTURED = REPO.parent / "shared" / "fixtures" / "captured"

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
    """The captured inputs, or equivalents built with :mod:`soajs.testing`."""
    raw_headers = CAPTURED / RAW_HEADERS
    registry_file = CAPTURED / REGISTRY_FILE
    if raw_headers.is_file() and registry_file.is_file():
        headers = json.loads(raw_headers.read_text(encoding="utf-8"))
        reply = json.loads(registry_file.read_text(encoding="utf-8"))
        return Inputs(
            header=headers[HEADER_NAME].encode("latin-1"),
            mesh_header=headers[MESH_HEADER_NAME].encode("latin-1"),
            registry=reply["data"],
            source=f"captured: {CAPTURED / RAW_HEADERS} [{HEADER_NAME}]",
        )
    return Inputs(
        header=_built_urac_header(),
        mesh_header=build_inject_header(
            inter_connect=[
                {"name": "hello", "version": "1", "host": "127.0.0.1", "port": 4100, "latest": "1"}
            ]
        ),
        registry=copy.deepcopy(DEFAULT_REGISTRY),
        source=f"built with soajs.testing ({CAPTURED} is absent)",
    )


def _built_urac_header() -> bytes:
    """A header shaped like the captured ``secure-urac-jwt`` one (urac, param, package ACL)."""
    acl = {
        service: {"1": {"access": service == "secure", "apisPermission": "unrestricted"}}
        for service in ("hello", "caller", "secure", "nohb")
    }
    return build_inject_header(
        e_key="e038c52a36e5952343acee09d798d3dbcd195123315fb3361502207b49daef4d5558d75db82ee8"
        "2e9e97efceef31f844a301df055b6be36250cce34aadc9a02234df9e3e076f3fa2fd71ef333281931d"
        "aec3f3e68bac2047b6ea939d8b802d9e",
        i_key="7d0b0c4a9d4e4b3a8f1e2d3c4b5a6978",
        tenant_profile={"plan": "test"},
        config={"greeting": "hello from commonFields", "secure": {"tier": "gold"}},
        package_acl=acl,
        device="curl/7.88.1",
        urac={
            "_id": "6a1e00000000000000000b01",
            "username": "zoe",
            "firstName": "Zoë",
            "lastName": "O'Brien",
            "email": "zoe@example.com",
            "groups": ["owner"],
            "tenant": {"id": "6a1e00000000000000000001", "code": "TTEN"},
            "profile": {"team": "blue"},
            "acl": None,
            "acl_AllEnv": None,
            "config": {"packages": {}},
            "groupsConfig": None,
        },
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
