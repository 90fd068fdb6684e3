"""Settings read from the ``SOAJS_*`` environment variables, and from a ``.env`` file on request.

The ``.env`` file is pydantic-settings' own: opt-in, named by ``Settings(_env_file=...)`` or
``SOAJS_ENV_FILE``; real environment variables win over it. How the file is chosen and bounded
lives in :func:`resolve_env_file`.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from soajs.errors import SettingsError

__all__ = [
    "REGISTRY_FETCH_DEADLINE",
    "REGISTRY_MAX_REPLY_SIZE",
    "HeaderPolicy",
    "Settings",
    "parse_bool",
    "parse_registry_api",
    "resolve_env_file",
    "resolve_settings",
]

REGISTRY_FETCH_DEADLINE = 30.0
"""Default of ``SOAJS_REGISTRY_FETCH_DEADLINE``, in seconds."""
# A registry of 5,000 services and 1,000 databases (benchmarks/fixtures.py big_registry) is
# 1.7 MiB of compact JSON, 3.1 MiB indented: 16 MiB leaves ten times the room.
REGISTRY_MAX_REPLY_SIZE = 16 * 1024 * 1024
"""Default of ``SOAJS_REGISTRY_MAX_REPLY_SIZE``, in bytes."""

HeaderPolicy = Literal["ignore", "reject"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_ENV_FILE_SIZE = 65536
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


def parse_bool(value: object) -> bool:
    """Parse ``true/false/1/0/yes/no/on/off`` (any case; empty is false); refuse anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError("expected one of true/false/1/0/yes/no (empty means false)")


def parse_registry_api(value: str) -> tuple[str, int]:
    """Split a ``host:port`` address (IPv6 as ``[::1]:5000``) and check it has no scheme."""
    text = value.strip()
    if "://" in text:
        raise ValueError(
            "expected host:port without a scheme (e.g. 127.0.0.1:5000); remove 'http://'"
        )
    if "/" in text or not text or any(char.isspace() for char in text):
        raise ValueError("expected host:port (e.g. 127.0.0.1:5000), the gateway maintenance port")
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError("expected host:port (e.g. 127.0.0.1:5000): the port is missing")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise ValueError("an IPv6 host must be written in brackets, e.g. [::1]:5000")
    elif ":" in host:
        raise ValueError("an IPv6 host must be written in brackets, e.g. [::1]:5000")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("the port must be an integer from 1 to 65535")
    return host, int(port)


def resolve_settings(settings: Settings | None, registry: object | None) -> Settings:
    """The settings a middleware uses: the given ones, else the registry's, else the environment's.

    The registry's are used when it has a ``settings`` attribute that is a :class:`Settings`.
    """
    if settings is not None:
        return settings
    registry_settings = getattr(registry, "settings", None)
    if isinstance(registry_settings, Settings):
        return registry_settings
    return Settings()


class Settings(BaseSettings):
    """The ``SOAJS_*`` environment variables, validated.

    Every field can also be passed as a keyword argument. A ``.env`` file is read when named by
    ``_env_file=`` (pydantic-settings' argument) or ``SOAJS_ENV_FILE``; keyword arguments and
    real environment variables win over it (see :func:`resolve_env_file`). Invalid values raise
    :class:`~soajs.errors.SettingsError`, whose message names the variable and never its value.
    """

    model_config = SettingsConfigDict(
        env_prefix="SOAJS_",
        extra="ignore",
        frozen=True,
        validate_default=True,
        # The SettingsError raised from a ValidationError still carries it as __context__.
        hide_input_in_errors=True,
    )

    registry_api: str | None = Field(
        default=None,
        description="Gateway maintenance API as host:port, e.g. 127.0.0.1:5000.",
    )
    env: str = Field(default="dev", description="Environment code (SOAJS_ENV), lowercased.")
    deploy_manual: bool = Field(
        default=False, description="Register with the gateway at start-up (SOAJS_DEPLOY_MANUAL)."
    )
    deploy_ha: str | None = Field(
        default=None, description="HA deployment (kubernetes/swarm): no self-registration."
    )
    srv_ip: str = Field(
        default="127.0.0.1",
        validation_alias="SOAJS_SRVIP",
        description="The IP registered with the gateway (SOAJS_SRVIP).",
    )

    service_name: str | None = Field(default=None, description="SOAJS_SERVICE_NAME")
    service_group: str | None = Field(default=None, description="SOAJS_SERVICE_GROUP")
    service_version: str | None = Field(default=None, description="SOAJS_SERVICE_VERSION")
    service_type: str = Field(default="service", description="SOAJS_SERVICE_TYPE")
    service_port: int | None = Field(default=None, ge=1, le=65535, description="SOAJS_SERVICE_PORT")

    registry_timeout: float = Field(
        default=5.0, gt=0, le=300, description="Seconds allowed for one call to the gateway."
    )
    registry_fetch_deadline: float = Field(
        default=REGISTRY_FETCH_DEADLINE,
        gt=0,
        le=3600,
        description="Seconds one call to the gateway may take in all, however it trickles.",
    )
    registry_max_reply_size: int = Field(
        default=REGISTRY_MAX_REPLY_SIZE,
        ge=1024,
        description="Largest reply accepted from the gateway maintenance API, in bytes.",
    )
    registry_startup_wait: float = Field(
        default=0.0,
        ge=0,
        le=3600,
        description="Seconds to wait for the gateway at start-up; 0 fails at once.",
    )
    gc_freeze: bool = Field(
        default=True,
        description="Freeze the objects alive after app start-up out of the garbage collector.",
    )
    register_strict: bool = Field(
        default=False, description="Raise instead of warning when /register answers result:false."
    )
    reregister_interval: float = Field(
        default=60.0, ge=0, description="Seconds between re-registrations; 0 registers once."
    )

    header_policy: HeaderPolicy = Field(
        default="ignore",
        description="What to do with a missing, malformed or untrusted soajsinjectobj header.",
    )
    trusted_gateways: Annotated[tuple[IPNetwork, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated IPs/CIDRs allowed to send soajsinjectobj; empty trusts all.",
    )
    max_inject_header_size: int = Field(
        default=65536, ge=2, description="Largest soajsinjectobj accepted, in bytes."
    )

    env_file: Path | None = Field(
        default=None,
        description="A .env file to read SOAJS_* settings from; real variables win over it.",
    )
    max_env_file_size: int = Field(
        default=DEFAULT_MAX_ENV_FILE_SIZE, ge=1, description="Largest .env file read, in bytes."
    )

    def __init__(self, **values: Any) -> None:
        if "srv_ip" in values:
            # The variable's spelling (SOAJS_SRVIP) is the field's alias; accept the field name.
            values["SOAJS_SRVIP"] = values.pop("srv_ip")
        env_file, max_size = resolve_env_file(values)
        # The file chosen and the bound applied are recorded as given, whatever the file says.
        values.update(env_file=env_file, max_env_file_size=max_size, _env_file=env_file)
        values.setdefault("_env_file_encoding", "utf-8")
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None

    @property
    def registry_address(self) -> tuple[str, int]:
        """``(host, port)`` of the gateway maintenance API.

        Raises:
            SettingsError: ``SOAJS_REGISTRY_API`` is not set.
        """
        if self.registry_api is None:
            raise SettingsError(
                "SOAJS_REGISTRY_API is not set: give the gateway maintenance API as host:port, "
                "e.g. SOAJS_REGISTRY_API=127.0.0.1:5000"
            )
        return parse_registry_api(self.registry_api)

    @property
    def registry_url(self) -> str:
        """Base URL of the gateway maintenance API, e.g. ``http://127.0.0.1:5000``."""
        host, port = self.registry_address
        return f"http://{host}:{port}"

    @field_validator("registry_api", mode="after")
    @classmethod
    def _check_registry_api(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parse_registry_api(value)
        return value.strip()

    @field_validator("env", mode="after")
    @classmethod
    def _lower_env(cls, value: str) -> str:
        text = value.strip().lower()
        if not text:
            raise ValueError("the environment code must not be empty")
        return text

    @field_validator("deploy_manual", "register_strict", mode="before")
    @classmethod
    def _parse_bool(cls, value: object) -> bool:
        return parse_bool(value)

    @field_validator("deploy_ha", "service_name", "service_group", "service_version", mode="after")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip()

    @field_validator("srv_ip", mode="after")
    @classmethod
    def _check_srv_ip(cls, value: str) -> str:
        text = value.strip()
        if not text or any(ch.isspace() for ch in text) or "/" in text:
            raise ValueError("expected an IP address or host name, e.g. 127.0.0.1")
        return text

    @field_validator("trusted_gateways", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> tuple[IPNetwork, ...]:
        if isinstance(value, str):
            items: list[object] = [part.strip() for part in value.split(",") if part.strip()]
        elif isinstance(value, list | tuple | set | frozenset):
            items = list(value)
        else:
            # pydantic turns ValueError (not TypeError) into a validation error.
            raise ValueError(  # noqa: TRY004
                "expected a comma-separated list of IP addresses or CIDR networks"
            )
        networks: list[IPNetwork] = []
        for item in items:
            try:
                network = ipaddress.ip_network(str(item), strict=False)
            except ValueError:
                raise ValueError(
                    "expected IP addresses or CIDR networks such as 127.0.0.1 or 10.0.0.0/8"
                ) from None
            networks.append(_unmapped(network))
        return tuple(networks)


def _unmapped(network: IPNetwork) -> IPNetwork:
    """An IPv4-mapped IPv6 network (``::ffff:10.0.0.0/104``) as the IPv4 one it stands for."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def _environment(name: str) -> str | None:
    """A real environment variable, matched without regard to case as pydantic-settings does."""
    for key, value in os.environ.items():
        if key.upper() == name:
            return value
    return None


def resolve_env_file(values: dict[str, Any]) -> tuple[Path | None, int]:
    """Choose the ``.env`` file ``Settings`` reads, and check it against the size bound.

    The file is the ``_env_file`` (pydantic-settings' own) or ``env_file`` keyword, else
    ``SOAJS_ENV_FILE``; ``None`` or an empty value reads no file. The bound is the
    ``max_env_file_size`` keyword, else ``SOAJS_MAX_ENV_FILE_SIZE``, else 65536 bytes: it is
    applied before the file is read, so the file cannot set it. ``values`` loses both keywords.

    Returns:
        The file (or ``None``) and the bound in bytes.

    Raises:
        SettingsError: both keywords are given, the bound is not a positive integer, or the named
            file is missing, not a regular file, unreadable or larger than the bound. The message
            names the variable and the file's path, never the file's content.
    """
    source, way_out = "SOAJS_ENV_FILE", "unset SOAJS_ENV_FILE"
    if "_env_file" in values and "env_file" in values:
        raise SettingsError(
            "the .env file is given twice, as _env_file and env_file: pass one of them"
        )
    if "_env_file" in values or "env_file" in values:
        given = values.pop("_env_file", None) if "_env_file" in values else values.pop("env_file")
        source, way_out = "the env_file argument", "pass _env_file=None"
    else:
        given = _environment("SOAJS_ENV_FILE")
    max_size = _env_file_bound(values.pop("max_env_file_size", None))
    if given is None or str(given).strip() == "":
        return None, max_size
    if not isinstance(given, str | os.PathLike):
        raise SettingsError(f"{source}: expected the path of a .env file")
    path = Path(given)
    problem = _env_file_problem(path, max_size)
    if problem is not None:
        raise SettingsError(
            f"{source}: {problem}; fix the file or {way_out} (path {str(path.absolute())!r})"
        )
    return path, max_size


def _env_file_bound(given: object) -> int:
    value = _environment("SOAJS_MAX_ENV_FILE_SIZE") if given is None else given
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_MAX_ENV_FILE_SIZE
    text = str(value).strip()
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise SettingsError("SOAJS_MAX_ENV_FILE_SIZE: expected a whole number of bytes, at least 1")
    return int(text)


def _env_file_problem(path: Path, max_size: int) -> str | None:
    """Why ``path`` cannot be read as a .env file, or ``None``."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "the .env file does not exist"
    except OSError as exc:
        return f"cannot read the .env file ({exc.strerror or type(exc).__name__})"
    if not path.is_file():
        return "not a regular file"
    if info.st_size > max_size:
        return (
            f"the .env file has {info.st_size} bytes, more than SOAJS_MAX_ENV_FILE_SIZE "
            f"({max_size})"
        )
    if not os.access(path, os.R_OK):
        return "cannot read the .env file (permission denied)"
    return None


def _describe(exc: ValidationError) -> str:
    """Turn a pydantic error into lines that name the variable and omit the value."""
    # Imported here: the pytest plugin imports this module at start-up, and only an invalid
    # setting needs the formatter.
    from soajs.validation import describe_validation_error

    return "invalid SOAJS settings: " + describe_validation_error(exc, label=_variable)


def _variable(error: ErrorDetails) -> str:
    """The environment variable a setting is read from (``SOAJS_`` and the field, upper case)."""
    field = str(error["loc"][0]).upper() if error["loc"] else "?"
    return field if field.startswith("SOAJS_") else f"SOAJS_{field}"
