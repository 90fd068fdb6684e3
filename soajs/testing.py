"""Helpers for testing a SOAJS service without a gateway.

* :class:`FakeRegistryManager`: the read API of :class:`~soajs.RegistryManager` over a fixed
  registry (a dict or a JSON file); ``register()`` records its calls; no network.
* :func:`build_inject_header` / :func:`inject_header_from_file`: a ``soajsinjectobj`` value
  exactly as the gateway sends it (compact JSON, Latin-1 bytes).

It needs only the core install: no pytest, no web framework. The pytest fixtures built on these
(``soajs_registry``, ``soajs_container``, ``soajs_header``, ``local_gateway``) live in
:mod:`soajs.pytest_plugin`, which pytest loads on its own. Importing ``soajs_registry``,
``soajs_container`` or ``soajs_header`` from here, as conftests written before the plugin do,
still works: they come from the plugin on first use, so this module never imports pytest.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from soajs.errors import RegistryRejected
from soajs.models.registry import Registry
from soajs.registry.client import RegistryClient
from soajs.registry.manager import RegistryManager
from soajs.settings import Settings

if TYPE_CHECKING:
    from soajs.models.service_config import Config

__all__ = [
    "DEFAULT_REGISTRY",
    "FakeRegistryManager",
    "build_inject_header",
    "inject_header_from_file",
]

DEFAULT_REGISTRY: dict[str, Any] = {
    "timeLoaded": 0,
    "name": "dev",
    "environment": "dev",
    "coreDB": {},
    "tenantMetaDB": {},
    "serviceConfig": {"ports": {"controller": 4000, "maintenanceInc": 1000}},
    "deployer": {},
    "custom": {},
    "resources": {},
    "services": {"controller": {"name": "controller", "group": "Gateway", "port": 4000}},
    "awareness": {"host": "127.0.0.1", "port": 4000},
}
"""A minimal registry of environment ``dev``: the gateway's own entry and nothing else."""

# What JavaScript's encodeURIComponent leaves alone (the gateway's encodeHeaderValue).
_URI_COMPONENT_SAFE = "-_.!~*'()"


class _FixedRegistryClient(RegistryClient):
    """A registry client that answers from memory and records registrations."""

    def __init__(self, data: dict[str, Any], *, accept_registrations: bool) -> None:
        super().__init__("http://soajs-fake.invalid")
        self.data = data
        self.accept_registrations = accept_registrations
        self.fetches = 0
        self.registrations: list[dict[str, Any]] = []
        self._records = threading.Lock()

    def fetch(self, env: str, service_name: str) -> Registry:
        with self._records:
            self.fetches += 1
            data = self.data
        return Registry.from_wire(data)

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._records:
            self.registrations.append(body)
        if not self.accept_registrations:
            raise RegistryRejected(
                f"the fake registry refuses {body.get('name')!r}", url=self.base_url
            )
        return {"group": body.get("group"), "port": body.get("port")}


class FakeRegistryManager(RegistryManager):
    """A :class:`~soajs.RegistryManager` over a fixed registry: no gateway, no network.

    Everything a real manager offers works (``get_database``, ``status``, ``reload``,
    ``register``, ``start_registration``...). ``register()`` records each ``/register`` body in
    :attr:`registrations` instead of sending it. Use it in tests with
    ``container.registry.override(FakeRegistryManager(...))``.

    Args:
        registry: the registry: a ``Registry``, the ``data`` dict of a ``/getRegistry`` reply
            (or the whole reply), or the path of a JSON file holding either. Defaults to
            :data:`DEFAULT_REGISTRY`.
        service_name: the service the manager acts for; by default the config's name, else
            ``SOAJS_SERVICE_NAME``, else ``"test-service"``.
        config: the service configuration registered by ``register()``.
        settings: defaults to ``Settings()`` (the ``SOAJS_*`` environment).
        accept_registrations: when false, ``register()`` gets the gateway's ``result: false``.
        autostart: load the registry at once (as the real manager does).
    """

    def __init__(
        self,
        registry: Registry | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        *,
        service_name: str | None = None,
        config: Config | None = None,
        settings: Settings | None = None,
        accept_registrations: bool = True,
        autostart: bool = True,
    ) -> None:
        data = _registry_data(registry)
        self.fake_client = _FixedRegistryClient(data, accept_registrations=accept_registrations)
        if service_name is None and config is None:
            service_name = (settings or Settings()).service_name or "test-service"
        super().__init__(
            service_name=service_name,
            env_code=str(data["environment"]),
            auto_reload=False,
            config=config,
            settings=settings,
            autostart=autostart,
            client=self.fake_client,
        )

    @property
    def registrations(self) -> list[dict[str, Any]]:
        """The ``/register`` bodies sent so far, oldest first."""
        return list(self.fake_client.registrations)

    @property
    def fetches(self) -> int:
        """How many times the registry was loaded."""
        return self.fake_client.fetches

    def set_registry(self, registry: Registry | Mapping[str, Any] | str | os.PathLike[str]) -> None:
        """Make the next load (``reload()``) return another registry."""
        self.fake_client.data = _registry_data(registry)


def _registry_data(
    registry: Registry | Mapping[str, Any] | str | os.PathLike[str] | None,
) -> dict[str, Any]:
    if registry is None:
        copy: dict[str, Any] = json.loads(json.dumps(DEFAULT_REGISTRY))
        return copy
    if isinstance(registry, Registry):
        return registry.raw or registry.model_dump(by_alias=True)
    if isinstance(registry, str | os.PathLike):
        loaded = json.loads(Path(registry).read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise ValueError(f"{registry}: expected a JSON object")  # noqa: TRY004 - file content
        registry = loaded
    data = dict(registry)
    if "environment" not in data and isinstance(data.get("data"), dict):
        data = dict(data["data"])
    if "environment" not in data:
        raise ValueError("a registry needs 'environment' (the data of a /getRegistry reply)")
    return data


def build_inject_header(
    *,
    tenant_id: str = "6a1e00000000000000000001",
    tenant_code: str = "TTEN",
    tenant_name: str | None = "Test Tenant",
    tenant_type: str | None = "product",
    tenant_profile: Any = None,
    config: Mapping[str, Any] | None = None,
    i_key: str = "00000000000000000000000000000000",
    e_key: str = "test-extkey",
    product: str = "TPROD",
    package: str = "TPROD_BASIC",
    app_id: str = "6a1e00000000000000000a01",
    package_acl: Any = None,
    device: str | None = "python-test",
    geo_ip: str | None = "127.0.0.1",
    urac: Mapping[str, Any] | None = None,
    param: Mapping[str, Any] | None = None,
    awareness_host: str | None = "127.0.0.1",
    awareness_port: int = 4000,
    inter_connect: list[Mapping[str, Any]] | None = None,
    **extra: Any,
) -> bytes:
    """Build a ``soajsinjectobj`` value shaped like the gateway's, as the bytes it sends.

    Keys follow the gateway's order; the JSON is compact like ``JSON.stringify``; the bytes are
    Latin-1 like Node's headers. ``urac.firstName``/``lastName`` are percent-encoded as the
    gateway does, so write them plainly (``"Zoë"``).

    Args:
        tenant_id: ``tenant.id``.
        tenant_code: ``tenant.code``.
        tenant_name: ``tenant.name``, left out when ``None``.
        tenant_type: ``tenant.type``, left out when ``None``.
        tenant_profile: ``tenant.profile``, left out when ``None``.
        config: ``key.config``: the per-service configuration the handler reads.
        i_key: ``key.iKey``.
        e_key: ``key.eKey``, the external key forwarded on gateway calls.
        product: ``application.product``.
        package: ``application.package``.
        app_id: ``application.appId``.
        package_acl: ``package.acl`` (the ACL of the key's package); ``package`` is ``{}``
            when ``None``.
        device: the caller's User-Agent, left out when ``None``.
        geo_ip: ``geo.ip``; ``geo`` is left out when ``None``.
        urac: the logged-in user in the gateway's shape (``_id``, ``username``, ...).
        param: ``param``; with a ``urac`` it defaults to ``urac_Profile``/``urac_ACL`` flags.
        awareness_host: the gateway host; ``awareness`` is left out when ``None``.
        awareness_port: the gateway data port.
        inter_connect: ``awareness.interConnect`` items (``name, version, host, port, latest``).
        **extra: top-level keys to add or replace, in wire spelling.

    Raises:
        ValueError: a value has characters beyond Latin-1, which the gateway cannot send.
    """
    tenant: dict[str, Any] = {"id": tenant_id}
    if tenant_name is not None:
        tenant["name"] = tenant_name
    tenant["code"] = tenant_code
    tenant["locked"] = False
    if tenant_type is not None:
        tenant["type"] = tenant_type
    if tenant_profile is not None:
        tenant["profile"] = tenant_profile
    header: dict[str, Any] = {
        "tenant": tenant,
        "key": {"config": dict(config or {}), "iKey": i_key, "eKey": e_key},
        "application": {"product": product, "package": package, "appId": app_id},
        "package": {} if package_acl is None else {"acl": package_acl},
    }
    if device is not None:
        header["device"] = device
    if geo_ip is not None:
        header["geo"] = {"ip": geo_ip}
    if urac is not None:
        header["urac"] = _encode_urac(urac)
        header["param"] = dict(param) if param is not None else _urac_param(urac)
    elif param is not None:
        header["param"] = dict(param)
    if awareness_host is not None:
        awareness: dict[str, Any] = {"host": awareness_host, "port": awareness_port}
        if inter_connect is not None:
            awareness["interConnect"] = [dict(item) for item in inter_connect]
        header["awareness"] = awareness
    header.update(extra)
    return _to_wire(header)


def inject_header_from_file(path: str | os.PathLike[str], name: str | None = None) -> bytes:
    """Read a header from a JSON file, as the bytes the gateway sends.

    The file holds either one parsed header (an object with ``tenant``), or named raw header
    strings (``{"hello-get": "{\\"tenant\\": ...}"}``), from which ``name`` picks one verbatim.

    Raises:
        ValueError: the file is neither shape, or ``name`` is missing or unknown.
    """
    file = Path(path)
    data = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a JSON object")  # noqa: TRY004 - file content
    if name is None:
        if "tenant" not in data:
            raise ValueError(f"{file}: holds named raw headers; pass name= (one of {sorted(data)})")
        return _to_wire(data)
    raw = data.get(name)
    if raw is None or "tenant" in data:
        raise ValueError(f"{file}: no raw header named {name!r} (have {sorted(data)})")
    return _latin1(str(raw))


def _encode_urac(urac: Mapping[str, Any]) -> dict[str, Any]:
    encoded = dict(urac)
    for field in ("firstName", "lastName"):
        value = encoded.get(field)
        if isinstance(value, str):
            encoded[field] = quote(value, safe=_URI_COMPONENT_SAFE)
    return encoded


def _urac_param(urac: Mapping[str, Any]) -> dict[str, bool]:
    return {"urac_Profile": "profile" in urac, "urac_ACL": "acl" in urac}


def _to_wire(header: Mapping[str, Any]) -> bytes:
    return _latin1(json.dumps(header, ensure_ascii=False, separators=(",", ":")))


def _latin1(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            "the header has characters beyond Latin-1, which the gateway cannot send "
            "(only urac.firstName/lastName are percent-encoded by it)"
        ) from None


# Names of the fixtures this module held before soajs.pytest_plugin; kept importable from here.
_PLUGIN_FIXTURES = frozenset({"soajs_container", "soajs_header", "soajs_registry"})

if not TYPE_CHECKING:
    # Hidden from type checkers, which would otherwise type every unknown name here as Any;
    # for them the old names are gone, which points a conftest at the plugin.

    def __getattr__(name: str) -> Any:
        """Serve the fixtures' old names from the plugin, importing pytest only then."""
        if name not in _PLUGIN_FIXTURES:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from soajs import pytest_plugin

        return getattr(pytest_plugin, name)
