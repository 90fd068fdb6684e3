"""The ``data`` object of the gateway's ``GET /getRegistry`` reply (docs/protocol.md §2.3-2.5).

The models are lenient: everything the gateway may leave out or send as ``null`` is optional, and
unknown keys are kept (``model_extra``). Python names are snake_case; the wire names are aliases,
and both are accepted on input.

Secrets (database credentials, the key password, cookie and session secrets, resource configs,
custom registry values, deployer tokens) never appear in ``repr()`` or ``str()`` of any model;
unknown keys are left out of ``repr()`` too, because a cluster config spread into a database entry
can carry credentials. The values themselves stay reachable, e.g. ``database.credentials``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PrivateAttr,
    Strict,
    ValidationError,
    ValidatorFunctionWrapHandler,
)
from pydantic_core import core_schema

from soajs.errors import NotFound

__all__ = [
    "AwarenessConfig",
    "CookieConfig",
    "CustomRegistry",
    "Daemon",
    "Database",
    "Deployer",
    "GatewayAwareness",
    "KeyConfig",
    "LoggerConfig",
    "PortsConfig",
    "Registry",
    "RegistryLocation",
    "Resource",
    "Server",
    "Service",
    "ServiceConfig",
    "SessionConfig",
]


class WireModel(BaseModel):
    """Base of the wire models: lenient, immutable, unknown keys kept but never shown."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        frozen=True,
        coerce_numbers_to_str=True,
        # A refused registry's values (passwords, secrets) must not appear in the error text.
        hide_input_in_errors=True,
    )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Show the declared fields marked for repr; unknown keys may hold secrets."""
        fields = self.__dict__
        for name, field in type(self).model_fields.items():
            if field.repr:
                yield name, fields.get(name)


class _NullAsEmpty:
    """Field marker: the gateway copies some keys only when truthy; an explicit ``null`` reads
    as the empty value ``factory()``.

    An after-validator over a nullable schema, not a before-validator: pydantic-core hands a
    before-validator a Python copy of its subtree, which would decode a JSON reply twice.
    """

    __slots__ = ("factory",)

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        factory = self.factory

        def empty_if_null(value: Any) -> Any:
            return factory() if value is None else value

        return core_schema.no_info_after_validator_function(
            empty_if_null, core_schema.nullable_schema(handler(source))
        )


class Server(WireModel):
    """One database server address."""

    host: str | None = None
    port: int | None = None


class RegistryLocation(WireModel):
    """Where the gateway found a database entry (``registryLocation``)."""

    l1: str | None = None
    l2: str | None = None
    env: str | None = None
    cluster: str | None = None
    time_loaded: int | None = Field(default=None, alias="timeLoaded")


class Database(WireModel):
    """A ``coreDB`` or ``tenantMetaDB`` entry (docs/protocol.md §2.4).

    Cluster-backed entries carry every key of the cluster's config as an unknown key; only the
    identifying fields ``name``, ``prefix`` and ``cluster`` appear in ``repr()``.
    """

    name: str | None = None
    prefix: str | None = None
    cluster: str | None = None
    servers: list[Server] | None = None
    credentials: dict[str, Any] | None = None
    streaming: dict[str, Any] | None = None
    url_param: dict[str, Any] | None = Field(default=None, alias="URLParam")
    extra_param: dict[str, Any] | None = Field(default=None, alias="extraParam")
    registry_location: RegistryLocation | None = Field(default=None, alias="registryLocation")
    # coreDB.session only
    store: dict[str, Any] | None = None
    collection: str | None = None
    stringify: bool | None = None
    expire_after: int | None = Field(default=None, alias="expireAfter")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Show only what identifies the database, never connection details."""
        yield "name", self.name
        yield "prefix", self.prefix
        if self.cluster is not None:
            yield "cluster", self.cluster


class AwarenessConfig(WireModel):
    """``serviceConfig.awareness``, including both spellings of the reload interval."""

    cache_ttl: int | None = Field(default=None, alias="cacheTTL")
    health_check_interval: int | None = Field(default=None, alias="healthCheckInterval")
    auto_reload_registry: int | None = Field(default=None, alias="autoReloadRegistry")
    auto_relaod_registry: int | None = Field(default=None, alias="autoRelaodRegistry")
    max_log_count: int | None = Field(default=None, alias="maxLogCount")
    auto_register_service: bool | None = Field(default=None, alias="autoRegisterService")

    @property
    def reload_interval_ms(self) -> int | None:
        """Registry reload interval in ms, or ``None`` when neither key holds a positive number.

        Reads ``autoReloadRegistry`` and falls back to ``autoRelaodRegistry``, the misspelled key
        that real registries carry (docs/protocol.md §7).
        """
        for value in (self.auto_reload_registry, self.auto_relaod_registry):
            if value is not None and value > 0:
                return value
        return None


class PortsConfig(WireModel):
    """``serviceConfig.ports``: the gateway data port and the increments."""

    controller: int | None = None
    maintenance_inc: int | None = Field(default=None, alias="maintenanceInc")
    random_inc: int | None = Field(default=None, alias="randomInc")


class KeyConfig(WireModel):
    """``serviceConfig.key``: how tenant keys are encrypted; the password is never shown."""

    algorithm: str | None = None
    password: str | None = Field(default=None, repr=False)


class LoggerConfig(WireModel):
    """``serviceConfig.logger``."""

    src: bool | None = None
    level: str | None = None
    formatter: dict[str, Any] | None = None


class CookieConfig(WireModel):
    """``serviceConfig.cookie``; the secret is never shown."""

    secret: str | None = Field(default=None, repr=False)


class SessionConfig(WireModel):
    """``serviceConfig.session``; the secret is never shown."""

    name: str | None = None
    secret: str | None = Field(default=None, repr=False)
    # Cookie options; hidden because a cookie config may carry a signing secret.
    cookie: dict[str, Any] | None = Field(default=None, repr=False)
    resave: bool | None = None
    save_uninitialized: bool | None = Field(default=None, alias="saveUninitialized")
    rolling: bool | None = None
    unset: str | None = None


class ServiceConfig(WireModel):
    """``serviceConfig``: the environment's service settings (``cors``/``oauth`` are stripped)."""

    awareness: Annotated[AwarenessConfig, _NullAsEmpty(AwarenessConfig)] = Field(
        default_factory=AwarenessConfig
    )
    ports: Annotated[PortsConfig, _NullAsEmpty(PortsConfig)] = Field(default_factory=PortsConfig)
    key: KeyConfig | None = None
    logger: LoggerConfig | None = None
    cookie: CookieConfig | None = None
    session: SessionConfig | None = None
    agent: dict[str, Any] | None = None


class Deployer(WireModel):
    """``deployer``: how the environment is deployed; container settings (tokens) are hidden."""

    type: str | None = None
    selected: str | None = None
    manual: dict[str, Any] | None = None
    container: dict[str, Any] | None = Field(default=None, repr=False)


class CustomRegistry(WireModel):
    """A ``custom`` registry document; its ``value`` is never shown."""

    id: str | None = Field(default=None, alias="_id")
    name: str | None = None
    locked: bool | None = None
    plugged: bool | None = None
    shared: bool | None = None
    value: Any = Field(default=None, repr=False)
    created: str | None = None
    author: str | None = None
    shared_envs: dict[str, Any] | None = Field(default=None, alias="sharedEnvs")


class Resource(WireModel):
    """A ``resources[type][name]`` document; its ``config`` (credentials) is never shown."""

    id: str | None = Field(default=None, alias="_id")
    name: str | None = None
    type: str | None = None
    category: str | None = None
    created: str | None = None
    author: str | None = None
    locked: bool | None = None
    plugged: bool | None = None
    shared: bool | None = None
    config: Any = Field(default=None, repr=False)
    shared_envs: dict[str, Any] | None = Field(default=None, alias="sharedEnvs")


class Service(WireModel):
    """A ``services`` entry.

    With ``type=service`` the gateway sends the full entry only for ``controller``; the
    requester's own entry is just ``{group, port}`` (docs/protocol.md §2.5).
    """

    name: str | None = None
    group: str | None = None
    port: int | None = None
    version: str | None = None
    type: str | None = None
    sub_type: str | None = Field(default=None, alias="subType")
    src: Any = None
    hosts: dict[str, Any] | None = None
    versions: dict[str, dict[str, Any]] | None = None
    ext_key_required: bool | None = Field(default=None, alias="extKeyRequired")
    oauth: bool | None = None
    oport: int | None = None
    max_pool_size: int | None = Field(default=None, alias="maxPoolSize")
    authorization: bool | None = None
    request_timeout: int | None = Field(default=None, alias="requestTimeout")
    request_timeout_renewal: int | None = Field(default=None, alias="requestTimeoutRenewal")
    maintenance: dict[str, Any] | None = None
    awareness_stats: dict[str, dict[str, Any]] | None = Field(default=None, alias="awarenessStats")

    @property
    def latest_version(self) -> str | None:
        """``hosts.latest``: the version the gateway routes to by default."""
        latest = (self.hosts or {}).get("latest")
        return None if latest is None else str(latest)

    def host_list(self, version: str | None = None) -> list[str]:
        """The registered IPs of ``version`` (default: the latest), or ``[]``."""
        wanted = version if version is not None else self.latest_version
        if wanted is None:
            return []
        ips = (self.hosts or {}).get(wanted)
        return [str(ip) for ip in ips] if isinstance(ips, list) else []


class Daemon(WireModel):
    """A ``daemons`` entry (sent only for request types other than ``service``)."""

    name: str | None = None
    group: str | None = None
    port: int | None = None
    version: str | None = None
    versions: dict[str, dict[str, Any]] | None = None
    hosts: dict[str, Any] | None = None


class GatewayAwareness(WireModel):
    """Top-level ``awareness``: where the gateway's data port is."""

    host: str | None = None
    port: int | None = None


def _keep_raw(data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate a Python input and keep the dict it came from as :attr:`Registry.raw`."""
    model = handler(data)
    if isinstance(data, dict):
        model._raw = data
    return model


class _ReplyJson:
    """A ``/getRegistry`` reply's JSON bytes, kept in place of :attr:`Registry.raw` until read.

    Equal to the ``data`` dict it holds, so a registry compares as it did when ``raw`` was
    decoded up front.
    """

    __slots__ = ("_data", "body")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._data: dict[str, Any] | None = None

    def data(self) -> dict[str, Any]:
        """The reply's ``data`` object, decoded once (under a lock, so every reader shares it)."""
        with _DECODE_LOCK:
            if self._data is None:
                self._data = json.loads(self.body)["data"]
            return self._data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _ReplyJson):
            return self.body == other.body or self.data() == other.data()
        if isinstance(other, dict):
            return self.data() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


_DECODE_LOCK = threading.Lock()


class Registry(WireModel):
    """The environment registry: the ``data`` object of a ``/getRegistry`` reply.

    Build it with :meth:`from_wire`; :attr:`raw` is the dict as received.
    """

    environment: str
    name: str | None = None
    time_loaded: int | None = Field(default=None, alias="timeLoaded")
    domain: str | None = None
    site_prefix: str | None = Field(default=None, alias="sitePrefix")
    api_prefix: str | None = Field(default=None, alias="apiPrefix")
    protocol: str | None = None
    port: int | None = None
    core_db: Annotated[dict[str, Database | None], _NullAsEmpty(dict)] = Field(
        default_factory=dict, alias="coreDB"
    )
    tenant_meta_db: Annotated[dict[str, Database | None], _NullAsEmpty(dict)] = Field(
        default_factory=dict, alias="tenantMetaDB"
    )
    service_config: Annotated[ServiceConfig, _NullAsEmpty(ServiceConfig)] = Field(
        default_factory=ServiceConfig, alias="serviceConfig"
    )
    deployer: Annotated[Deployer, _NullAsEmpty(Deployer)] = Field(default_factory=Deployer)
    custom: Annotated[dict[str, CustomRegistry], _NullAsEmpty(dict)] = Field(default_factory=dict)
    resources: Annotated[dict[str, dict[str, Resource]], _NullAsEmpty(dict)] = Field(
        default_factory=dict
    )
    services: Annotated[dict[str, Service], _NullAsEmpty(dict)] = Field(default_factory=dict)
    daemons: dict[str, Daemon] | None = None
    awareness: GatewayAwareness | None = None

    # The dict as received, or the reply's JSON bytes until ``raw`` is first read.
    _raw: dict[str, Any] | _ReplyJson = PrivateAttr(default_factory=dict)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Keep a Python input dict as ``raw``; JSON input is validated in one pass, as is."""
        schema = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=schema,
            python_schema=core_schema.no_info_wrap_validator_function(_keep_raw, schema),
        )

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Registry:
        """Validate the ``data`` object of a ``/getRegistry`` reply.

        Raises:
            pydantic.ValidationError: ``data`` is not a registry (e.g. no ``environment``).
        """
        return cls.model_validate(data)

    @property
    def raw(self) -> dict[str, Any]:
        """The registry dict exactly as received (treat it as read-only)."""
        raw = self._raw
        if isinstance(raw, _ReplyJson):
            raw = raw.data()
            self._raw = raw
        return raw

    def get_database(self, name: str) -> Database:
        """The database ``name``, from ``coreDB`` first, then ``tenantMetaDB``.

        Raises:
            NotFound: no such database, or its entry is ``null``.
        """
        for group in (self.core_db, self.tenant_meta_db):
            database = group.get(name)
            if database is not None:
                return database
        raise NotFound(
            f"database {name!r} is not in the {self.environment!r} registry "
            f"(coreDB: {sorted(self.core_db)}, tenantMetaDB: {sorted(self.tenant_meta_db)})"
        )

    def get_all_databases(self) -> dict[str, Database]:
        """Every database, ``coreDB`` winning over ``tenantMetaDB`` on a shared name."""
        merged = {name: db for name, db in self.tenant_meta_db.items() if db is not None}
        merged.update({name: db for name, db in self.core_db.items() if db is not None})
        return merged

    def get_service(self, name: str) -> Service:
        """The ``services`` entry ``name``.

        Raises:
            NotFound: the gateway sent no entry for ``name``.
        """
        service = self.services.get(name)
        if service is None:
            raise NotFound(
                f"service {name!r} is not in the {self.environment!r} registry "
                f"(a type=service registry lists only the controller and the requester)"
            )
        return service

    def get_daemon(self, name: str) -> Daemon:
        """The ``daemons`` entry ``name``.

        Raises:
            NotFound: no such daemon (``type=service`` registries carry no daemons).
        """
        daemon = (self.daemons or {}).get(name)
        if daemon is None:
            raise NotFound(f"daemon {name!r} is not in the {self.environment!r} registry")
        return daemon

    def get_resource(self, name: str) -> Resource:
        """The resource ``name``, whatever its type.

        Raises:
            NotFound: no resource of any type has that name.
        """
        for by_name in self.resources.values():
            resource = by_name.get(name)
            if resource is not None:
                return resource
        raise NotFound(f"resource {name!r} is not in the {self.environment!r} registry")

    def get_resources(self, type: str | None = None) -> list[Resource]:  # noqa: A002
        """The resources of one ``type`` (e.g. ``"cluster"``), or all of them."""
        if type is not None:
            return list(self.resources.get(type, {}).values())
        return [resource for by_name in self.resources.values() for resource in by_name.values()]

    # A str variable that happens to be "" gets the dict at run time; the overlap is the seed API.
    @overload
    def get_custom(  # type: ignore[overload-overlap]
        self, name: Literal[""] = ""
    ) -> dict[str, CustomRegistry]: ...

    @overload
    def get_custom(self, name: str) -> CustomRegistry: ...

    def get_custom(self, name: str = "") -> CustomRegistry | dict[str, CustomRegistry]:
        """The custom registry entry ``name``, or all of them when ``name`` is ``""``.

        Raises:
            NotFound: no custom registry entry has that name.
        """
        if not name:
            return dict(self.custom)
        entry = self.custom.get(name)
        if entry is None:
            raise NotFound(f"custom registry {name!r} is not in the {self.environment!r} registry")
        return entry


class _RegistryReply(BaseModel):
    """A successful ``/getRegistry`` reply: ``{"result": true, "data": {...}}``."""

    model_config = ConfigDict(hide_input_in_errors=True)

    result: Annotated[bool, Strict()]
    data: Registry


_REPLY_VALIDATOR = _RegistryReply.__pydantic_validator__


def parse_registry_reply(body: bytes) -> Registry | None:
    """Validate a ``/getRegistry`` reply body in one pass, JSON bytes straight to the models.

    :attr:`Registry.raw` keeps ``body`` and decodes it on first read.

    Returns:
        The registry, or ``None`` when ``body`` is anything but a success whose ``data`` the
        models accept (not JSON, ``result`` not ``true``, a refused field): the caller decodes
        it again to say why.
    """
    try:
        reply = _REPLY_VALIDATOR.validate_json(body)
    except ValidationError:
        return None
    if reply.result is not True:
        return None
    registry: Registry = reply.data
    registry._raw = _ReplyJson(body)
    return registry
