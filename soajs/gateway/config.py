"""The local gateway's configuration: its model and loading it from a mapping or a file.

The file is YAML or JSON. Its shape follows the records the real gateway reads from MongoDB
(``environment``, ``products``, ``tenants``), flattened where that helps a person write it by
hand. MongoDB records themselves are converted by :mod:`soajs.gateway.seed`; a ready
development configuration is in :mod:`soajs.gateway.dev_config`. Both stay importable from here.

External keys (``extKey``) are opaque strings here. The real gateway derives them from the
internal key with AES (``serviceConfig.key``); this gateway only looks them up verbatim, so a
key copied from a real deployment works unchanged and any string can be configured for tests.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from soajs._lazy import lazy_attributes
from soajs.config_file import MAX_CONFIG_FILE_SIZE, read_config_file
from soajs.errors import ConfigValidationError
from soajs.validation import describe_validation_error, dotted_location, validation_errors

__all__ = [
    "ApplicationConfig",
    "ControllerConfig",
    "EnvironmentConfig",
    "ExtKeyConfig",
    "GatewayConfig",
    "GatewayConfigError",
    "GatewayOptions",
    "InterConnectTarget",
    "KeyConfig",
    "PackageConfig",
    "ProductConfig",
    "StaticService",
    "TenantConfig",
    "TenantOAuth",
    "default_core_db",
    "load_config",
    "maintenance_problem",
]


class GatewayConfigError(ConfigValidationError):
    """The local gateway's configuration is invalid; the message names the field."""


class _Model(BaseModel):
    # hide_input_in_errors: the ValidationError stays as the GatewayConfigError's __context__,
    # and the file holds keys and secrets.
    model_config = ConfigDict(populate_by_name=True, extra="forbid", hide_input_in_errors=True)


def _default_service_config() -> dict[str, Any]:
    return {
        "key": {"algorithm": "aes256", "password": "soajs key lal massa"},
        "logger": {
            "src": False,
            "level": "debug",
            "formatter": {"levelInString": True, "outputMode": "short"},
        },
        "cors": {
            "enabled": True,
            "origin": "*",
            "credentials": "true",
            "methods": "GET,HEAD,PUT,PATCH,POST,DELETE",
            "headers": "key,soajsauth,Keep-Alive,User-Agent,X-Requested-With,"
            "If-Modified-Since,Cache-Control,Content-Type,Authorization",
            "maxage": 1728000,
        },
        "oauth": {
            "grants": ["password", "refresh_token"],
            "debug": False,
            "accessTokenLifetime": 7200,
            "refreshTokenLifetime": 1209600,
        },
        "cookie": {"secret": "local gateway cookie secret"},
        "session": {
            "name": "soajsID",
            "secret": "local gateway session secret",
            "cookie": {"path": "/", "httpOnly": True, "secure": False, "maxAge": None},
            "resave": False,
            "saveUninitialized": False,
            "rolling": False,
            "unset": "keep",
        },
    }


def default_core_db() -> dict[str, Any]:
    """The ``coreDB`` section an environment gets when the file gives none."""
    # registryLocation placeholders keep the real key order; the gateway fills them in.
    return {
        "provision": {
            "name": "core_provision",
            "prefix": "",
            "servers": [{"host": "127.0.0.1", "port": 27017}],
            "credentials": None,
            "streaming": {},
            "extraParam": {},
            "URLParam": {},
            "registryLocation": None,
        },
        "session": {
            "prefix": "",
            "registryLocation": None,
            "servers": None,
            "credentials": None,
            "URLParam": None,
            "extraParam": None,
        },
    }


def _default_deployer() -> dict[str, Any]:
    return {"type": "manual", "selected": "manual", "manual": {"nodes": "127.0.0.1"}}


class ControllerConfig(_Model):
    """The gateway's own registry entry (``environment.services.controller`` in MongoDB)."""

    max_pool_size: int = Field(default=100, alias="maxPoolSize")
    authorization: bool = True
    request_timeout: int = Field(default=30, alias="requestTimeout", ge=1)
    request_timeout_renewal: int = Field(default=0, alias="requestTimeoutRenewal", ge=0)


class EnvironmentConfig(_Model):
    """The environment the gateway serves, and what ``/getRegistry`` reports about it.

    ``serviceConfig`` holds the registry's ``serviceConfig`` extras (``key``, ``logger``,
    ``cors``, ``oauth``, ``cookie``, ``session``, ...). Its ``awareness`` and ``ports`` come from
    the typed fields here; values given only inside ``serviceConfig`` are taken as defaults.
    """

    code: str = Field(default="DEV", min_length=1)
    description: str | None = None
    domain: str | None = "localhost"
    site_prefix: str | None = Field(default="site", alias="sitePrefix")
    api_prefix: str | None = Field(default="api", alias="apiPrefix")
    protocol: str | None = "http"
    port: int | None = Field(
        default=None, description="The environment's public port (registry `port`)."
    )
    data_port: int = Field(default=4000, alias="dataPort", ge=0, le=65535)
    maintenance_inc: int = Field(default=1000, alias="maintenanceInc", ge=1, le=65535)
    random_inc: int = Field(default=100, alias="randomInc", ge=0)
    health_check_interval: int = Field(default=2000, alias="healthCheckInterval", ge=10)
    auto_reload_registry: int = Field(
        default=3600000,
        validation_alias=AliasChoices(
            "autoRelaodRegistry", "autoReloadRegistry", "auto_reload_registry"
        ),
        serialization_alias="autoRelaodRegistry",
        ge=0,
        description="Milliseconds between automatic registry rebuilds; 0 never rebuilds.",
    )
    cache_ttl: int = Field(default=3600000, alias="cacheTTL", ge=0)
    max_log_count: int = Field(default=5, alias="maxLogCount", ge=0)
    auto_register_service: bool = Field(default=True, alias="autoRegisterService")
    controller: ControllerConfig = Field(default_factory=ControllerConfig)
    # Key password, cookie/session secrets, database credentials: never in repr().
    service_config: dict[str, Any] = Field(
        default_factory=_default_service_config, alias="serviceConfig", repr=False
    )
    core_db: dict[str, Any] = Field(default_factory=default_core_db, alias="coreDB", repr=False)
    tenant_meta_db: dict[str, Any] = Field(default_factory=dict, alias="tenantMetaDB", repr=False)
    custom: dict[str, Any] = Field(default_factory=dict, repr=False)
    resources: dict[str, Any] = Field(default_factory=dict, repr=False)
    deployer: dict[str, Any] = Field(default_factory=_default_deployer, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _lift_service_config(cls, data: Any) -> Any:
        """Take awareness and ports given inside ``serviceConfig`` when not given directly."""
        if not isinstance(data, dict) or not isinstance(data.get("serviceConfig"), dict):
            return data
        lifted = dict(data)
        extras = data["serviceConfig"]
        names = {
            "awareness": (
                "healthCheckInterval",
                "autoRelaodRegistry",
                "cacheTTL",
                "maxLogCount",
                "autoRegisterService",
            ),
            "ports": ("maintenanceInc", "randomInc"),
        }
        for section, keys in names.items():
            values = extras.get(section)
            if not isinstance(values, dict):
                continue
            for key in keys:
                if key in values and key not in lifted:
                    lifted[key] = values[key]
            if section == "awareness" and "autoReloadRegistry" in values:
                lifted.setdefault("autoRelaodRegistry", values["autoReloadRegistry"])
        ports = extras.get("ports")
        if isinstance(ports, dict) and "controller" in ports and "dataPort" not in lifted:
            lifted["dataPort"] = ports["controller"]
        return lifted

    @property
    def env(self) -> str:
        """The environment code as the registry and the URLs use it (lowercase)."""
        return self.code.lower()


class ExtKeyConfig(_Model):
    """One external key, configured verbatim (the real gateway derives it with AES)."""

    ext_key: SecretStr = Field(alias="extKey")
    env: str | None = Field(default=None, description="The environment the key is for.")
    device: dict[str, Any] | None = None
    geo: dict[str, Any] | None = None
    dashboard_access: bool = Field(default=False, alias="dashboardAccess")
    exp_date: Any = Field(default=None, alias="expDate")

    @field_validator("ext_key", mode="after")
    @classmethod
    def _non_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("the external key must not be empty")
        return value


class KeyConfig(_Model):
    """An application key: the internal key, its per-environment config and its extKeys."""

    i_key: str = Field(
        validation_alias=AliasChoices("key", "iKey", "i_key"),
        serialization_alias="key",
        min_length=1,
        repr=False,
    )
    config: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per environment (lowercase code): commonFields and one entry per service.",
        repr=False,
    )
    ext_keys: list[ExtKeyConfig] = Field(default_factory=list, alias="extKeys")


class ApplicationConfig(_Model):
    """A tenant application: which product package its keys use."""

    product: str
    package: str
    app_id: str = Field(alias="appId")
    description: str | None = None
    acl: dict[str, Any] | None = Field(
        default=None, description="Per-environment ACL overriding the package's."
    )
    keys: list[KeyConfig] = Field(default_factory=list)


class TenantOAuth(_Model):
    """The tenant's OAuth settings; ``type: 0`` means user tokens are HS256 JWTs."""

    secret: SecretStr | None = None
    type: int = 0
    disabled: bool = False
    login_mode: str | None = Field(default="urac", alias="loginMode")


class TenantConfig(_Model):
    """A tenant and its applications."""

    id: str = Field(min_length=1)
    code: str = Field(min_length=1)
    name: str | None = None
    type: str | None = "product"
    description: str | None = None
    locked: bool = False
    profile: dict[str, Any] = Field(default_factory=dict)
    main: dict[str, Any] | None = Field(
        default=None, description="For client tenants: the main tenant's {id, code}."
    )
    oauth: TenantOAuth | None = None
    applications: list[ApplicationConfig] = Field(default_factory=list)


class PackageConfig(_Model):
    """A product package and its per-environment ACL (``acl.<env>.<service>.<version>``)."""

    code: str = Field(min_length=1)
    name: str | None = None
    description: str | None = None
    acl: dict[str, Any] = Field(default_factory=dict)


class ProductConfig(_Model):
    """A product and its packages."""

    code: str = Field(min_length=1)
    name: str | None = None
    description: str | None = None
    packages: list[PackageConfig] = Field(default_factory=list)


class InterConnectTarget(_Model):
    """A service this service calls directly (``interConnect``)."""

    name: str
    version: str | None = None


def maintenance_problem(value: Any) -> str | None:
    """What is wrong with a service's ``maintenance`` block, or None when the probe can use it.

    The shape is ``{readiness: "/path", port: {type: "maintenance" | "inherit" | other,
    value: <port>}}``; ``value`` is needed (1-65535) only for a type other than maintenance
    and inherit.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        return "maintenance must be an object"
    readiness = value.get("readiness")
    if readiness is not None and not (isinstance(readiness, str) and readiness.startswith("/")):
        return "maintenance.readiness must be a path starting with /"
    return _probe_port_problem(value.get("port"), probed=bool(readiness))


def _probe_port_problem(port: Any, *, probed: bool) -> str | None:
    if port is None:
        return None
    if not isinstance(port, dict):
        return "maintenance.port must be an object {type, value}"
    kind = port.get("type")
    if kind is not None and not isinstance(kind, str):
        return "maintenance.port.type must be a string"
    if kind in ("maintenance", "inherit") or not probed:
        return None
    given = port.get("value")
    number = given if isinstance(given, int) and not isinstance(given, bool) else None
    if isinstance(given, str) and given.strip().isdigit():
        number = int(given)
    if number is None or not 0 < number < 65536:
        return "maintenance.port.value must be a port (1-65535)"
    return None


class StaticService(_Model):
    """A service declared in the file, as if registered with ``mw: true`` (kept on reload)."""

    name: str = Field(min_length=1)
    group: str | None = None
    port: int = Field(ge=1, le=65535)
    ip: str | None = None
    ips: list[str] = Field(default_factory=list)
    version: str = "1"
    type: str = "service"
    sub_type: str | None = Field(default=None, alias="subType")
    description: str | None = None
    ext_key_required: bool = Field(default=False, alias="extKeyRequired")
    oauth: bool = False
    urac: bool = False
    urac_profile: bool = Field(default=False, alias="urac_Profile")
    urac_acl: bool = Field(default=False, alias="urac_ACL")
    urac_config: bool = Field(default=False, alias="urac_Config")
    urac_group_config: bool = Field(default=False, alias="urac_GroupConfig")
    tenant_profile: bool = Field(default=False, alias="tenant_Profile")
    provision_acl: bool = Field(default=False, alias="provision_ACL")
    inter_connect: list[InterConnectTarget] | None = Field(default=None, alias="interConnect")
    request_timeout: int | None = Field(default=30, alias="requestTimeout")
    request_timeout_renewal: int | None = Field(default=5, alias="requestTimeoutRenewal")
    maintenance: dict[str, Any] | None = None

    @field_validator("maintenance", mode="after")
    @classmethod
    def _usable_maintenance(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        problem = maintenance_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @property
    def host_ips(self) -> list[str]:
        """Every IP the service runs on (``ip`` then ``ips``); 127.0.0.1 when none is given."""
        found = ([self.ip] if self.ip else []) + [ip for ip in self.ips if ip != self.ip]
        return found or ["127.0.0.1"]

    def registration(self) -> dict[str, Any]:
        """The ``/register`` body this declaration stands for."""
        body: dict[str, Any] = {
            "name": self.name,
            "group": self.group,
            "port": self.port,
            "type": self.type,
            "version": self.version,
            "subType": self.sub_type,
            "description": self.description,
            "extKeyRequired": self.ext_key_required,
            "oauth": self.oauth,
            "urac": self.urac,
            "urac_Profile": self.urac_profile,
            "urac_ACL": self.urac_acl,
            "urac_Config": self.urac_config,
            "urac_GroupConfig": self.urac_group_config,
            "tenant_Profile": self.tenant_profile,
            "provision_ACL": self.provision_acl,
            "requestTimeout": self.request_timeout,
            "requestTimeoutRenewal": self.request_timeout_renewal,
            "mw": True,
        }
        if self.inter_connect is not None:
            body["interConnect"] = [
                target.model_dump(exclude_none=True) for target in self.inter_connect
            ]
        if self.maintenance is not None:
            body["maintenance"] = copy.deepcopy(self.maintenance)
        return body


class GatewayOptions(_Model):
    """Behaviour switches of the local gateway itself."""

    emulate_public_no_key_bug: bool = Field(
        default=True,
        alias="emulatePublicNoKeyBug",
        description="Answer 503/135 for a public service called without a key, as 4.3.3 does.",
    )
    register_allow: list[IPvAnyNetwork] = Field(
        default_factory=list,
        alias="registerAllow",
        description="Networks (CIDR) besides loopback that may register and be registered.",
    )
    register_query_form: bool = Field(
        default=False,
        alias="registerQueryForm",
        description="Accept GET /register?name=... (a web page can send a GET with <img>).",
    )
    maintenance_hosts: list[str] = Field(
        default_factory=list,
        alias="maintenanceHosts",
        description="Host names besides IP addresses and localhost the maintenance API answers to.",
    )
    maintenance_max_body: int = Field(
        default=65536,
        alias="maintenanceMaxBody",
        ge=1,
        description="Bytes a maintenance API request body may hold; larger ones answer 413.",
    )
    maintenance_max_depth: int = Field(
        default=32,
        alias="maintenanceMaxDepth",
        ge=1,
        description="How deeply a /register body may nest objects and arrays.",
    )


class GatewayConfig(_Model):
    """Everything the local gateway serves: one environment, provisioning, static services."""

    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    products: list[ProductConfig] = Field(default_factory=list)
    tenants: list[TenantConfig] = Field(default_factory=list)
    services: list[StaticService] = Field(default_factory=list)
    gateway: GatewayOptions = Field(default_factory=GatewayOptions)

    @model_validator(mode="after")
    def _check_references(self) -> GatewayConfig:
        packages = {package.code for product in self.products for package in product.packages}
        products = {product.code for product in self.products}
        seen_keys: set[str] = set()
        for t_index, tenant in enumerate(self.tenants):
            for a_index, app in enumerate(tenant.applications):
                where = f"tenants[{t_index}].applications[{a_index}]"
                if app.product not in products:
                    raise ValueError(f"{where}.product: no product with code {app.product!r}")
                if app.package not in packages:
                    raise ValueError(f"{where}.package: no package with code {app.package!r}")
                for k_index, key in enumerate(app.keys):
                    for e_index, ext in enumerate(key.ext_keys):
                        value = ext.ext_key.get_secret_value()
                        if value in seen_keys:
                            raise ValueError(
                                f"{where}.keys[{k_index}].extKeys[{e_index}].extKey: "
                                "the same external key is configured twice"
                            )
                        seen_keys.add(value)
        names: set[tuple[str, str, str]] = set()
        for s_index, service in enumerate(self.services):
            ident = (service.name, service.version, service.type)
            if ident in names:
                raise ValueError(
                    f"services[{s_index}]: {service.name!r} version {service.version!r} "
                    "is declared twice"
                )
            names.add(ident)
        return self

    @property
    def env(self) -> str:
        """The lowercase environment code."""
        return self.environment.env

    def ext_keys(self, env: str | None = None) -> list[str]:
        """Every configured external key usable in ``env`` (default: this environment)."""
        wanted = (env or self.env).lower()
        found: list[str] = []
        for tenant in self.tenants:
            for app in tenant.applications:
                for key in app.keys:
                    for ext in key.ext_keys:
                        if ext.env is None or ext.env.lower() == wanted:
                            found.append(ext.ext_key.get_secret_value())
        return found

    def package(self, code: str) -> PackageConfig | None:
        """The package with this code, if any."""
        for product in self.products:
            for package in product.packages:
                if package.code == code:
                    return package
        return None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "config") -> GatewayConfig:
        """Validate a mapping; seed-format data (``environment`` is a list) is converted first.

        Raises:
            GatewayConfigError: the data is invalid; the message names the field.
        """
        if isinstance(data.get("environment"), list):
            # seed.py builds on this model, so it is imported when a seed is met.
            from soajs.gateway.seed import config_from_seed

            return config_from_seed(data, source=source)
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise _config_error(exc, source) from None

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> GatewayConfig:
        """Load a YAML or JSON file; see :func:`load_config`."""
        return load_config(path)


def _config_error(exc: ValidationError, source: str) -> GatewayConfigError:
    errors = validation_errors(exc)
    return GatewayConfigError(
        f"{source}: {describe_validation_error(exc)}",
        field=dotted_location(errors[0]) if errors else None,
    )


def load_config(
    path: str | PathLike[str], *, max_size: int = MAX_CONFIG_FILE_SIZE
) -> GatewayConfig:
    """Read a gateway configuration file (YAML, JSON, or a MongoDB seed in Extended JSON).

    The file is read by the rule of :mod:`soajs.config_file`: ``.json`` is JSON, ``.yaml`` and
    ``.yml`` are YAML, any other name is YAML when PyYAML is installed (YAML reads JSON too).

    Args:
        path: the file.
        max_size: the largest file read, in bytes.

    Raises:
        GatewayConfigError: the file is too large, cannot be parsed, or its content is invalid.
        OSError: the file cannot be read.
    """
    data = read_config_file(
        path,
        expected="a mapping with an 'environment' section",
        error=GatewayConfigError,
        max_size=max_size,
    )
    return GatewayConfig.from_mapping(data, source=str(Path(path)))


# Names that moved to their own modules, still importable from here (the docs, the tests and
# users' code import them from soajs.gateway.config). Loaded on first use: both modules build
# on this one.
_MOVED = {
    "DEV_EXT_KEY": "soajs.gateway.dev_config",
    "DEV_TENANT_ID": "soajs.gateway.dev_config",
    "config_from_seed": "soajs.gateway.seed",
    "default_dev_config": "soajs.gateway.dev_config",
}
__getattr__ = lazy_attributes(__name__, _MOVED)
