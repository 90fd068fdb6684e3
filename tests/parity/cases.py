"""The parity cases: every fixture header, and variants of odd types, missing fields and versions.

A case is the header text (Latin-1, as Node's HTTP parser gives it), the ``connect()`` calls to
make, the incoming query (for ``access_token``) and headers (lowercase names, as Node's HTTP
parser gives them), and the documented differences it may show
(names from :data:`tests.parity.differences.DIFFERENCES`; none means "identical").
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from inject_headers import HEADERS

Call = tuple[str | None, ...]
"""``()`` connects to the gateway itself, ``(name,)`` without a version, ``(name, version)``."""

DEFAULT_CALLS: tuple[Call, ...] = ((), ("urac",), ("urac", "2"), ("urac", "1.2"), ("controller",))


@dataclass(frozen=True)
class Case:
    """One header fed to both middlewares."""

    id: str
    header: str
    calls: tuple[Call, ...] = DEFAULT_CALLS
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    differences: frozenset[str] = frozenset()

    @property
    def runs_urac_driver(self) -> bool:
        """Whether soajs core's uracCheck can run on it: a truthy ``urac`` and any ``param``.

        With the service's ``uracDriver`` option, soajs core reads ``param.urac_Profile`` and
        throws on a ``urac`` without ``param``, which the gateway never sends.
        """
        try:
            data = json.loads(self.header)
        except ValueError:
            return False
        if not isinstance(data, dict):
            return False
        return data.get("urac") not in (None, False, 0, "") and data.get("param") is not None


def _stringify(data: Any) -> str:
    """``JSON.stringify``: compact, non-ASCII characters as themselves."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


BASE: dict[str, Any] = {
    "tenant": {"id": "6a1e0001", "name": "Test Tenant", "code": "TTEN", "locked": False},
    "key": {
        "config": {"svc": {"limit": 10}, "greeting": "hi"},
        "iKey": "parity-ikey-secret",
        "eKey": "parity-ekey-secret",
    },
    "application": {"product": "TPROD", "package": "TPROD_BASIC", "appId": "app1"},
    "package": {},
    "device": "curl/8.5.0",
    "geo": {"ip": "127.0.0.1"},
    "awareness": {"host": "10.0.0.1", "port": 4000},
}


def variant(**changes: Any) -> str:
    """:data:`BASE` with top-level keys replaced (``None`` removes one), as JSON.stringify."""
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return _stringify(data)


def with_tenant(**changes: Any) -> dict[str, Any]:
    """BASE's tenant with keys replaced (``None`` removes one)."""
    tenant = {**BASE["tenant"], **changes}
    return {key: value for key, value in tenant.items() if value is not None}


def entry(name: str = "urac", **fields: Any) -> dict[str, Any]:
    """An interConnect entry with a host and port; fields given as ``...`` are left out."""
    item: dict[str, Any] = {"name": name, "version": "1", "host": "10.0.0.2", "port": 4001}
    item.update(fields)
    return {key: value for key, value in item.items() if value is not ...}


def mesh(*entries: dict[str, Any]) -> dict[str, Any]:
    """An awareness with the gateway address and these interConnect entries."""
    return {"host": "10.0.0.1", "port": 4000, "interConnect": list(entries)}


MESH_CALLS: tuple[Call, ...] = (("urac",), ("urac", "1"), ("urac", "2"), ("other",), ())

VARIANTS: list[Case] = [
    Case("minimal", variant()),
    Case("query-access-token", variant(), query={"access_token": "parity-token-1"}),
    Case("key-without-ekey", variant(key={"config": {"a": 1}, "iKey": "parity-ikey-2"})),
    Case("key-empty-object", variant(key={}), differences=frozenset({"typed-default"})),
    Case(
        "numeric-tenant-id-and-code",
        variant(tenant={"id": 5, "code": 12, "name": 2.5}),
        differences=frozenset({"numbers-as-text"}),
    ),
    Case(
        "numeric-product-and-app-id",
        variant(application={"product": 7, "package": "P", "appId": 99}),
        differences=frozenset({"numbers-as-text"}),
    ),
    Case(
        "integer-beyond-2-53",
        variant(tenant={"id": 12345678901234567890, "code": "C"}),
        differences=frozenset({"numbers-as-text", "big-numbers"}),
    ),
    Case("urac-without-username-or-email", variant(urac={"_id": "u1"})),
    Case("urac-empty-object", variant(urac={})),
    Case(
        "urac-full",
        variant(
            urac={
                "_id": "u1",
                "username": "zoe",
                "firstName": "Zo%C3%AB",
                "lastName": "O%27Brien",
                "email": "zoe@example.test",
                "groups": ["owner"],
                "tenant": {"id": "6a1e0001", "code": "TTEN"},
                "profile": {"lang": "fr"},
                "acl": None,
                "acl_AllEnv": None,
                "config": {"packages": {"P": {"acl": {}}}},
                "groupsConfig": {"allowedPackages": {}},
                "socialLogin": {"strategy": "github", "id": "gh1"},
            },
            param={"urac_Profile": True, "urac_ACL": True},
        ),
    ),
    Case(
        "url-encoded-names-malformed-escape",
        variant(urac={"_id": "u1", "username": "x", "firstName": "a%C3%A9%zz", "lastName": "100%"}),
    ),
    Case(
        "url-encoded-names-not-utf8",
        variant(urac={"_id": "u1", "username": "x", "firstName": "%E9t%E9", "lastName": "%C3"}),
    ),
    Case("object-device", variant(device={"ua": "curl", "os": "linux"})),
    Case("geo-ip-null", variant(geo={"ip": None})),
    Case("geo-as-text", variant(geo="127.0.0.1"), differences=frozenset({"typed-default"})),
    Case("urac-as-text", variant(urac="zoe"), differences=frozenset({"typed-default"})),
    Case(
        "odd-types-in-rare-fields",
        variant(
            tenant=with_tenant(locked="no", main=[1], type=3),
            urac={"_id": "u1", "groups": [{"code": "g"}], "tenant": "TTEN", "socialLogin": 1},
            param={"urac_Profile": "yes"},
        ),
        differences=frozenset({"typed-default", "numbers-as-text"}),
    ),
    Case(
        "falsy-optional-values",
        variant(tenant=with_tenant(name="", profile=0), device=""),
        differences=frozenset({"falsy-kept"}),
    ),
    Case(
        "acl-values",
        variant(
            application={"product": "P", "package": "P_B", "acl": {"svc": {}}, "acl_all_env": ""},
            package={"acl": {"svc": {"1": {"access": True}}}, "acl_all_env": {"dev": {}}},
        ),
    ),
    Case("package-as-text", variant(package="P")),
    Case("unknown-keys", variant(futureField={"x": [1]}, tenant=with_tenant(extra={"y": 1}))),
    Case("duplicate-keys", variant().replace('"code":"TTEN"', '"code":"AAAA","code":"TTEN"')),
    Case("latin-1-tenant-name", variant(tenant=with_tenant(name="Caf\xe9 \xfc\xdf"))),
    Case("utf-8-bytes-read-as-latin-1", variant(tenant=with_tenant(name="Caf\xc3\xa9"))),
    Case("roaming-tenant", variant(tenant=with_tenant(roaming={"tId": "t9", "code": "RT"}))),
    # The urac driver (uracCheck and mw/service/urac.js): the three shapes, all, ACL, groups.
    Case(
        "urac-driver-social-login",
        variant(
            urac={
                "_id": "u2",
                "username": "gh-user",
                "firstName": "Jos%C3%A9",
                "groups": [],
                "tenant": {"id": "6a1e0001", "code": "TTEN"},
                "profile": {},
                "acl": {},
                "config": {"keys": {"k": {"svc": {"limit": 1}}}},
                "groupsConfig": {"owner": {"note": "x"}},
                "socialLogin": {"strategy": "github", "id": "gh2", "accessToken": "parity-tok"},
            },
            param={"urac_Profile": True, "urac_ACL": True},
        ),
    ),
    Case(
        "urac-driver-oauth-user-id",
        variant(
            urac={"_id": "tok1", "userId": "client-7", "tId": "t9", "acl": {"svc": {}}},
            param={"urac_Profile": True, "urac_ACL": True},
        ),
    ),
    Case(
        "urac-driver-user-id-without-tid",
        variant(urac={"userId": "client-8"}, param={"urac_Profile": True, "urac_ACL": True}),
    ),
    Case(
        "urac-driver-other-record",
        variant(
            urac={"user": "someone", "scope": ["read"], "groups": ["g1"]},
            param={"urac_Profile": True, "urac_ACL": True},
        ),
    ),
    Case(
        "urac-driver-other-record-secrets",
        variant(
            urac={
                "user": "someone",
                "config": {"keys": {}},
                "groupsConfig": {"g": {}},
                "socialLogin": {"strategy": "x", "accessToken": "parity-tok-2"},
            },
            param={"urac_Profile": True, "urac_ACL": True},
        ),
        differences=frozenset({"urac-record-secrets-only-with-all"}),
    ),
    Case(
        "urac-driver-acl-flag-off",
        variant(
            urac={"_id": "u3", "username": "zoe", "acl": {"svc": {}}, "groups": ["g"]},
            param={"urac_Profile": True, "urac_ACL": False},
        ),
    ),
    Case(
        "urac-driver-falsy-acl",
        variant(
            urac={"_id": "u4", "username": "zoe", "acl": ""},
            param={"urac_Profile": True, "urac_ACL": True},
        ),
    ),
    Case("urac-driver-param-without-user", variant(param={"urac_Profile": True, "urac_ACL": True})),
    # No context in either.
    Case("package-empty-string", variant(application={"product": "P", "package": ""})),
    Case("package-zero", variant(application={"product": "P", "package": 0})),
    Case("package-missing", variant(application={"product": "P"})),
    Case("application-as-text", variant(application="TPROD_BASIC")),
    Case("key-missing", variant(key=None)),
    Case("key-false", variant(key=False)),
    Case("tenant-missing", variant(tenant=None)),
    Case("empty-object", "{}"),
    Case("json-array", "[1,2]"),
    Case("not-json", "{tenant:"),
    Case("nan", variant().replace('"greeting":"hi"', '"greeting":NaN')),
    Case("infinity", variant().replace('"limit":10', '"limit":-Infinity')),
    # A context in Node only: this project's documented refusals.
    Case(
        "tenant-without-code",
        variant(tenant={"id": "t1"}),
        differences=frozenset({"tenant-id-and-code-required"}),
    ),
    Case(
        "tenant-as-array",
        variant(tenant=["t1"]),
        differences=frozenset({"tenant-id-and-code-required"}),
    ),
    Case(
        "key-as-text",
        variant(key="ekey"),
        differences=frozenset({"objects-where-objects-are-read"}),
    ),
    Case(
        "package-as-number",
        variant(application={"package": 5}),
        differences=frozenset({"objects-where-objects-are-read"}),
    ),
    # connect(): versions, null and missing keys, gateway fallbacks.
    Case("mesh-version-equals-latest", variant(awareness=mesh(entry(latest="1"))), MESH_CALLS),
    Case("mesh-version-not-latest", variant(awareness=mesh(entry(latest="2"))), MESH_CALLS),
    Case("mesh-null-version", variant(awareness=mesh(entry(version=None))), MESH_CALLS),
    Case(
        "mesh-null-version-with-latest",
        variant(awareness=mesh(entry(version=None, latest="1"))),
        MESH_CALLS,
    ),
    Case("mesh-no-version-no-latest", variant(awareness=mesh(entry(version=...))), MESH_CALLS),
    Case(
        "mesh-no-version-with-latest",
        variant(awareness=mesh(entry(version=..., latest="1"))),
        MESH_CALLS,
    ),
    Case(
        "mesh-numeric-version",
        variant(awareness=mesh(entry(version=1, latest="1"), entry(name="other", version=2.5))),
        (*MESH_CALLS, ("other", "2.5")),
    ),
    Case(
        "mesh-first-match-wins",
        variant(
            awareness=mesh(
                entry(version="2", latest="3", host="10.0.0.3"),
                entry(version="3", latest="3", host="10.0.0.4"),
                entry(version="3", latest="3", host="10.0.0.5"),
            )
        ),
        (("urac",), ("urac", "2"), ("urac", "3")),
    ),
    Case(
        "mesh-with-access-token",
        variant(awareness=mesh(entry(latest="1"))),
        MESH_CALLS,
        query={"access_token": "parity-token-2"},
    ),
    Case(
        "authorization-header",
        variant(awareness=mesh(entry(latest="1"))),
        MESH_CALLS,
        headers={"authorization": "Bearer parity-jwt-1"},
        differences=frozenset({"authorization-forwarded"}),
    ),
    Case(
        "authorization-header-with-access-token",
        variant(),
        headers={"authorization": "Bearer parity-jwt-2"},
        query={"access_token": "parity-token-3"},
        differences=frozenset({"authorization-forwarded"}),
    ),
    Case(
        "url-encoded-service-names",
        variant(awareness=mesh(entry(name="ur%61c", latest="1"))),
        (("ur%61c",), ("urac",), ("caf%C3%A9", "1"), ("Controller",), ("CONTROLLER", "1")),
    ),
    Case(
        "non-numeric-versions",
        variant(),
        (("urac", "latest"), ("urac", "v1"), ("urac", " 2"), ("urac", "0x1A"), ("urac", "1.0.0")),
        differences=frozenset({"non-numeric-version"}),
    ),
    Case("no-awareness", variant(awareness=None), differences=frozenset({"connect-error"})),
    Case(
        "awareness-without-host",
        variant(awareness={"port": 4000, "interConnect": [entry(latest="1")]}),
        MESH_CALLS,
        differences=frozenset({"connect-error"}),
    ),
    Case(
        "awareness-without-port",
        variant(awareness={"host": "10.0.0.1", "interConnect": [entry(latest="1")]}),
        MESH_CALLS,
        differences=frozenset({"connect-error"}),
    ),
    Case(
        "unreadable-interconnect-entries",
        variant(
            awareness=mesh(
                {"name": 5, "host": "h", "port": 1},
                {"name": "urac", "version": True, "latest": True, "host": "h", "port": 2},
                entry(host=...),
                entry(latest="1"),
            )
        ),
        MESH_CALLS,
        differences=frozenset({"unreadable-entries-skipped"}),
    ),
    Case(
        "interconnect-not-a-list",
        variant(awareness={"host": "10.0.0.1", "port": 4000, "interConnect": "urac"}),
        MESH_CALLS,
        differences=frozenset({"typed-default"}),
    ),
]


def fixture_cases() -> list[Case]:
    """Every soajsinjectobj header of the fixtures (captured and upstream)."""
    calls: tuple[Call, ...] = (*DEFAULT_CALLS, ("hello",), ("hello", "1"), ("secure",))
    return [Case(f"fixture/{name}", text, calls) for name, text in sorted(HEADERS.items())]


CASES: list[Case] = fixture_cases() + VARIANTS
