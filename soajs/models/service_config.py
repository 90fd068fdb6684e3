"""The service's own configuration: who it is, and what it asks the gateway to do for it.

Field names are snake_case; the gateway's wire names (``subType``, ``urac_Profile``,
``extKeyRequired``, ...) are aliases, and either spelling is accepted. So is the ``soa.json``
of a Node SOAJS service: its ``serviceName``, ``serviceGroup``, ``servicePort`` and
``serviceVersion`` are ``name``, ``group``, ``port`` and ``version``, and its console-only keys
(:data:`NODE_ONLY_KEYS`) are read and ignored. One field given under two spellings is an error
naming both. The rules are the ones the real gateway needs (docs/protocol.md §8.3), stricter than
upstream where upstream lets broken values through and looser where upstream rejects real ones
(groups with spaces):

* ``name``: lowercase letters, digits, ``.``, ``_`` and ``-``, starting and ending with a letter
  or digit. It is the first URL segment the gateway routes on (``/<name>/...``) and the registry
  key, which soajs core lowercases.
* ``group``: free text, not blank (``"SOAJS Core Services"`` is a real group).
* ``version``: ``^\\d+(\\.\\d+)?$``. The gateway's URL version routing (``/<name>/v<version>/``)
  and its ``parseFloat`` comparison cannot address ``"1.0.0"``.
* ``port``: an integer from 1 to 65535.
* ``maintenance.port.type``: ``"maintenance"`` (port + maintenanceInc), ``"inherit"`` (the
  service port) or any other type, which then needs a numeric ``value`` (the port probed).
  ``maintenance.readiness`` is a path starting with ``/`` that must answer HTTP 200.

Unknown keys are refused so a typo (``extkeyRequired``) cannot silently drop a flag.

:meth:`Config.from_file` loads a file (docs/protocol.md §8), read by the rule of
:mod:`soajs.config_file`; the ``soajs config validate`` command calls it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from soajs.config_file import MAX_CONFIG_FILE_SIZE, read_config_file
from soajs.errors import ConfigValidationError
from soajs.validation import describe_validation_error, validation_errors, validator_message

if TYPE_CHECKING:
    from os import PathLike

    from soajs.settings import Settings

__all__ = [
    "NODE_ONLY_KEYS",
    "NODE_SPELLINGS",
    "Config",
    "InterConnectTarget",
    "Maintenance",
    "MaintenanceCommand",
    "MaintenancePort",
    "field_spellings",
]

NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
VERSION_PATTERN = re.compile(r"^\d+(?:\.\d+)?$")
MAINTENANCE_PORT_TYPES = ("maintenance", "inherit")

# How a Node service's soa.json/config.js spells the four identity fields (docs/protocol.md §8.1).
NODE_SPELLINGS = {
    "name": "serviceName",
    "group": "serviceGroup",
    "port": "servicePort",
    "version": "serviceVersion",
}
# Keys of a Node soa.json/config.js that describe the service to the SOAJS console or to the Node
# framework itself (catalogue tab, swagger, error codes, input schema). The gateway never reads
# them from a registration (docs/protocol.md §3.1), so they are accepted and dropped.
NODE_ONLY_KEYS = frozenset(
    {
        "attributes",
        "documentation",
        "errors",
        "program",
        "schema",
        "swagger",
        "swaggerFilename",
        "tab",
        "tags",
    }
)
_SPELLING_CONFLICT = "spelling_conflict"


def _check_name(value: str) -> str:
    if not value:
        raise ValueError("is required and must not be empty")
    if value != value.lower() and NAME_PATTERN.match(value.lower()):
        raise ValueError(
            f"must be lowercase ({value!r} -> {value.lower()!r}): it is the registry key and "
            "the first URL segment the gateway routes on"
        )
    if not NAME_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not a valid service name: use lowercase letters, digits, '.', '_' and "
            "'-', starting and ending with a letter or digit (it is a URL segment, /<name>/...)"
        )
    return value


def _coerce_version(value: object) -> object:
    """Accept integer versions (``"serviceVersion": 1``) as text; refuse lossy floats."""
    if isinstance(value, bool):
        # Pydantic reports only ValueError from validators as a field error, never TypeError.
        raise ValueError("must be text such as '1' or '1.2', not a boolean")  # noqa: TRY004
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError("write the version as text, e.g. '1.2' (a float loses zeros)")  # noqa: TRY004
    return value


def _check_version(value: str) -> str:
    if not VERSION_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not a SOAJS version: use MAJOR or MAJOR.MINOR digits such as '1' or "
            "'1.2'; the gateway routes versions in URLs as /<service>/v<version>/ and compares "
            "them as numbers, so a version like '1.0.0' can never be addressed"
        )
    return value


def _refuse_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")  # noqa: TRY004
    return value


# Pydantic calls a nested model's custom __init__ while validating its parent; only the outermost
# call converts the error, so the parent's error keeps the full location (maintenance.port.value).
_VALIDATING: ContextVar[bool] = ContextVar("soajs_config_validating", default=False)


@contextmanager
def _outermost(model: type[BaseModel], given: object) -> Iterator[None]:
    if _VALIDATING.get():
        yield
        return
    token = _VALIDATING.set(True)
    try:
        yield
    except ValidationError as exc:
        raise _config_error(model, exc, given) from None
    finally:
        _VALIDATING.reset(token)


ServiceName = Annotated[str, AfterValidator(_check_name)]
Version = Annotated[str, BeforeValidator(_coerce_version), AfterValidator(_check_version)]
PortNumber = Annotated[int, BeforeValidator(_refuse_bool), Field(ge=1, le=65535)]


class _ConfigPart(BaseModel):
    """Base of the configuration models: invalid input raises ``ConfigValidationError``."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        loc_by_alias=False,
        str_strip_whitespace=True,
    )

    def __init__(self, **data: Any) -> None:
        with _outermost(type(self), data):
            super().__init__(**data)

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> Self:
        """Validate a mapping; errors are :class:`~soajs.errors.ConfigValidationError`."""
        with _outermost(cls, obj):
            return super().model_validate(obj, **options)


class MaintenancePort(_ConfigPart):
    """Where the gateway probes the service's readiness path."""

    type: str = Field(
        description="'maintenance' (port + maintenanceInc), 'inherit' (the service port) or a "
        "custom type with a numeric value."
    )
    value: PortNumber | None = Field(
        default=None, validate_default=True, description="Port probed for custom types."
    )

    @field_validator("type", mode="after")
    @classmethod
    def _check_type(cls, value: str) -> str:
        if not value:
            raise ValueError(
                "is required: use 'maintenance', 'inherit', or a custom type with a numeric value"
            )
        return value

    @field_validator("value", mode="after")
    @classmethod
    def _custom_needs_value(cls, value: int | None, info: ValidationInfo) -> int | None:
        port_type = info.data.get("type")
        if value is None and port_type is not None and port_type not in MAINTENANCE_PORT_TYPES:
            raise ValueError(
                f"is required because the port type {port_type!r} is neither 'maintenance' nor "
                "'inherit': give the numeric port the gateway probes"
            )
        return value


class MaintenanceCommand(_ConfigPart):
    """A maintenance command shown in the SOAJS console."""

    label: str
    path: str
    icon: str | None = None


class Maintenance(_ConfigPart):
    """The readiness probe the gateway uses instead of ``/heartbeat``."""

    # Field order is the wire order the reference services send (readiness, then port).
    readiness: str = Field(description="Path that answers HTTP 200 when the service is ready.")
    port: MaintenancePort
    commands: list[MaintenanceCommand] | None = None

    @field_validator("readiness", mode="after")
    @classmethod
    def _check_readiness(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be a path starting with '/', e.g. '/heartbeat'")
        return value


class InterConnectTarget(_ConfigPart):
    """A service this one calls; the gateway then adds it to the request's awareness."""

    name: ServiceName
    version: Version | None = None


class Config(_ConfigPart):
    """The service configuration, validated against what the real gateway needs.

    Either the snake_case names, the gateway's wire names or a Node ``soa.json``'s keys
    (``serviceName``, ...) may be passed, one spelling per field. Flags left unset stay
    ``None`` and are not sent on registration, so the gateway applies its own defaults.

    ``ext_key_required`` defaults to ``True``: the gateway builds the ``soajsinjectobj`` header
    (tenant, key, user, awareness) only for services that require a key, so without it no
    request would carry a SOAJS context. Set it to ``False`` only for a deliberately public API.

    Invalid values raise :class:`~soajs.errors.ConfigValidationError`, whose ``field`` names the
    offending field (dotted for nested ones, e.g. ``maintenance.port.value``).
    """

    name: ServiceName = Field(
        description="Service name: lowercase, a URL segment, the registry key."
    )
    group: str = Field(description="Free-text group, e.g. 'SOAJS Core Services'.")
    port: PortNumber = Field(description="The port the service listens on.")
    ip: str | None = Field(default=None, description="IP to register; default SOAJS_SRVIP.")
    type: str = Field(default="service", description="'service'; any other type is a daemon.")
    version: Version = Field(default="1", description="MAJOR or MAJOR.MINOR, e.g. '1' or '1.2'.")
    sub_type: str | None = Field(default=None, alias="subType")
    description: str | None = None
    # Without extKeyRequired the gateway treats the service as public and never builds the
    # soajsinjectobj header (tenant, key, urac, awareness), so the middleware would see no
    # context at all. Upstream Python never sent it; this default is what makes context work.
    ext_key_required: bool = Field(default=True, alias="extKeyRequired")
    oauth: bool | None = None
    urac: bool | None = None
    urac_profile: bool | None = Field(default=None, alias="urac_Profile")
    urac_acl: bool | None = Field(default=None, alias="urac_ACL")
    urac_config: bool | None = Field(default=None, alias="urac_Config")
    urac_group_config: bool | None = Field(default=None, alias="urac_GroupConfig")
    tenant_profile: bool | None = Field(default=None, alias="tenant_Profile")
    provision_acl: bool | None = Field(default=None, alias="provision_ACL")
    request_timeout: Annotated[int, BeforeValidator(_refuse_bool)] | None = Field(
        default=None, ge=1, alias="requestTimeout", description="Seconds the gateway waits."
    )
    request_timeout_renewal: Annotated[int, BeforeValidator(_refuse_bool)] | None = Field(
        default=None, ge=0, alias="requestTimeoutRenewal", description="Times the wait renews."
    )
    maintenance: Maintenance | None = None
    inter_connect: list[InterConnectTarget] | None = Field(default=None, alias="interConnect")
    prerequisites: dict[str, Any] | None = Field(
        default=None, description="Deployment hints (cpu, memory); the gateway does not read them."
    )
    port_host: PortNumber | None = Field(
        default=None,
        alias="portHost",
        description="Port the gateway stores instead of `port` (e.g. a published container port).",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_node_spellings(cls, data: Any) -> Any:
        """Read a Node ``soa.json`` too: identity keys renamed, console-only keys dropped."""
        if not isinstance(data, dict):
            return data
        values = {key: value for key, value in data.items() if key not in NODE_ONLY_KEYS}
        for name in cls.model_fields:
            given = [spelling for spelling in field_spellings(name) if spelling in values]
            if len(given) > 1:
                raise PydanticCustomError(
                    _SPELLING_CONFLICT,
                    "given twice, as {spellings}: keep one",
                    {"field": name, "spellings": " and ".join(repr(key) for key in given)},
                )
            node_spelling = NODE_SPELLINGS.get(name)
            if node_spelling in values:
                values[name] = values.pop(node_spelling)
        return values

    @classmethod
    def from_file(cls, path: str | PathLike[str], *, max_size: int = MAX_CONFIG_FILE_SIZE) -> Self:
        """Load a JSON or YAML file, read as :mod:`soajs.config_file` says (``.json`` is JSON).

        The file may use this model's names, the gateway's wire names, or a Node service's
        ``soa.json`` keys (``serviceName``, ``serviceGroup``, ``servicePort``,
        ``serviceVersion``), so a service ported from Node can point at its ``soa.json``.

        Args:
            path: the file.
            max_size: the largest file read, in bytes.

        Raises:
            ConfigValidationError: the file is too large, not a JSON/YAML object, or its content
                is invalid.
            OSError: the file cannot be read.
        """
        file = Path(path)
        data = read_config_file(
            file, expected="an object of configuration fields", max_size=max_size
        )
        try:
            return cls.model_validate(data)
        except ConfigValidationError as exc:
            raise ConfigValidationError(f"{file}: {exc}", field=exc.field) from None

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> Self:
        """Build from the ``SOAJS_SERVICE_*`` settings; keyword arguments take precedence.

        Args:
            settings: the settings to read; by default read from the environment.
            **overrides: any field, by snake_case, wire or soa.json name.
        """
        if settings is None:
            from soajs.settings import Settings

            settings = Settings()
        values: dict[str, Any] = {
            "name": settings.service_name,
            "group": settings.service_group,
            "port": settings.service_port,
            "type": settings.service_type,
            "version": settings.service_version,
        }
        values = {key: value for key, value in values.items() if value is not None}
        for key, value in overrides.items():
            values.pop(_python_name(key), None)
            values[key] = value
        given = {_python_name(key) for key in values}
        missing = [key for key in ("name", "group", "port") if key not in given]
        if missing:
            field = missing[0]
            raise ConfigValidationError(
                f"invalid service config: {field}: is required; set SOAJS_SERVICE_{field.upper()} "
                f"or pass {field}=...",
                field=field,
            )
        return cls(**values)

    @field_validator("group", mode="after")
    @classmethod
    def _check_group(cls, value: str) -> str:
        if not value:
            raise ValueError(
                "is required and must not be empty (free text such as 'Custom Services')"
            )
        return value

    @field_validator("type", mode="after")
    @classmethod
    def _check_type(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                "must be a lowercase word such as 'service' (the gateway files any other type "
                "under daemons)"
            )
        return value

    @field_validator("ip", mode="after")
    @classmethod
    def _check_ip(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(ch.isspace() or ch == "/" for ch in value)):
            raise ValueError("expected an IP address or host name, e.g. 127.0.0.1")
        return value


def field_spellings(name: str) -> tuple[str, ...]:
    """Every key a configuration may give ``Config`` field ``name`` under: its own name, its
    wire alias, its Node ``soa.json`` spelling."""
    alias = Config.model_fields[name].alias
    node_spelling = NODE_SPELLINGS.get(name)
    return tuple(key for key in (name, alias, node_spelling) if key is not None)


def _python_name(key: str) -> str:
    """Map any spelling of a field to its snake_case name (unknown keys are returned unchanged)."""
    for name in Config.model_fields:
        if key in field_spellings(name):
            return name
    return key


def _config_error(
    model: type[BaseModel], exc: ValidationError, given: object
) -> ConfigValidationError:
    """Turn a pydantic error into one that names each field the user must fix.

    A top-level field is labelled with the key the user wrote too, when that is its wire alias
    or its soa.json spelling (``version (serviceVersion)``).
    """
    keys = given if isinstance(given, dict) else {}

    def label(error: ErrorDetails) -> str:
        field = _field(error)
        top_name = field.split(".")[0]
        top = model.model_fields.get(top_name)
        node_spelling = NODE_SPELLINGS.get(top_name)
        other = node_spelling if node_spelling in keys else top.alias if top is not None else None
        # A conflict's message names both spellings already.
        named = other and "." not in field and error["type"] != _SPELLING_CONFLICT
        return f"{field} ({other})" if named else field or "config"

    errors = validation_errors(exc)
    return ConfigValidationError(
        "invalid service config: "
        + describe_validation_error(exc, label=label, message=_config_message),
        field=_field(errors[0]) if errors else None,
    )


def _field(error: ErrorDetails) -> str:
    """The dotted field an error is about; a spelling conflict names the field it concerns."""
    if error["type"] == _SPELLING_CONFLICT:
        return str((error.get("ctx") or {})["field"])
    return ".".join(str(part) for part in error["loc"])


def _config_message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (check the spelling against soajs.Config)"
    if error["type"] == "missing":
        return "is required"
    return validator_message(error)
