"""The ``soajsinjectobj`` header: what the gateway tells a service about each request.

The models are lenient on purpose: every shape the real gateway emits validates (``urac.tenant``
as ``{id, code}`` or ``{}``, oauth users without ``email``, ``interConnect`` versions that are
``null`` or numbers, ``geo.ip: null``, no ``tenant.locked``), unknown keys are kept, and only what
soajs core itself requires is required: ``tenant``, ``key`` and ``application.package``.

Python names are snake_case; the gateway's names are aliases, so both validate. ``eKey``,
``iKey`` and the key's config (which may hold passwords) never appear in ``repr()``/``str()``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Application",
    "Awareness",
    "ContextData",
    "Geo",
    "InterConnect",
    "Key",
    "Package",
    "Param",
    "Tenant",
    "TenantMain",
    "TenantRoaming",
    "Urac",
    "UracSocialLogin",
    "UracTenant",
    "attach_raw_header",
]

_RAW_HEADER = "raw_header"
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
"""Store a model's private storage (the slot's own setter: no attribute lookup)."""


class _WireModel(BaseModel):
    """Base of the header models: unknown keys kept, snake_case names and wire aliases."""

    # hide_input_in_errors: a refused header's keys must not appear in the error text.
    model_config = ConfigDict(extra="allow", populate_by_name=True, hide_input_in_errors=True)


class TenantMain(_WireModel):
    """The main tenant of a client tenant (``tenant.main``)."""

    id: str | None = None
    code: str | None = None


class TenantRoaming(_WireModel):
    """Where a roaming (sensitive-environment) token came from (``tenant.roaming``)."""

    t_id: str | None = Field(default=None, alias="tId")
    id: str | None = None
    user: Any = None
    code: str | None = None
    tenant_meta_db: Any = Field(default=None, alias="tenantMetaDB", repr=False)


class Tenant(_WireModel):
    """The tenant that owns the key the caller used (``tenant``)."""

    id: str
    code: str
    name: str | None = None
    locked: bool | None = None
    type: str | None = None
    main: TenantMain | None = None
    profile: Any = None
    roaming: TenantRoaming | None = None


class Key(_WireModel):
    """The caller's key (``key``): the merged per-service config and the internal/external keys."""

    config: dict[str, Any] = Field(default_factory=dict, repr=False)
    i_key: str = Field(alias="iKey", repr=False)
    e_key: str = Field(alias="eKey", repr=False)


class Application(_WireModel):
    """The product and package the key belongs to (``application``)."""

    product: str | None = None
    package: str
    app_id: str | None = Field(default=None, alias="appId")
    acl: Any = None
    acl_all_env: Any = None


class Package(_WireModel):
    """The package ACL (``package``); empty unless the service sets ``provision_ACL``."""

    acl: Any = None
    acl_all_env: Any = None


class Geo(_WireModel):
    """Where the request came from (``geo``); ``ip`` may be ``null``."""

    ip: str | None = None


class UracTenant(_WireModel):
    """The logged-in user's tenant (``urac.tenant``): ``{id, code}``, ``{id}`` or ``{}``."""

    id: str | None = None
    code: str | None = None


class UracSocialLogin(_WireModel):
    """How a social-login user signed in (``urac.socialLogin``)."""

    strategy: str | None = None
    id: str | None = None


class Urac(_WireModel):
    """The logged-in user (``urac``), present only for services with ``urac: true``.

    On the wire ``firstName`` and ``lastName`` are percent-encoded (the gateway's
    ``encodeHeaderValue``); :func:`soajs.inject.parse_inject_header` decodes them, as soajs core
    does, so here they are plain text.
    """

    id: str = Field(alias="_id")
    username: str
    first_name: str = Field(default="", alias="firstName")
    last_name: str = Field(default="", alias="lastName")
    email: str | None = None
    groups: list[str] | None = None
    tenant: UracTenant = Field(default_factory=UracTenant)
    profile: Any = None
    acl: Any = None
    acl_all_env: Any = Field(default=None, alias="acl_AllEnv")
    config: Any = None
    groups_config: Any = Field(default=None, alias="groupsConfig")
    social_login: UracSocialLogin | None = Field(default=None, alias="socialLogin")


class Param(_WireModel):
    """Which user extras the service asked for (``param``); sent together with ``urac``."""

    urac_profile: bool | None = Field(default=None, alias="urac_Profile")
    urac_acl: bool | None = Field(default=None, alias="urac_ACL")


class InterConnect(_WireModel):
    """One configured interConnect target, resolved by the gateway (``awareness.interConnect[]``).

    ``version`` is ``null`` when the service configured none, and a number if it used one.
    ``host`` has no port; ``latest`` is absent when the gateway does not know it.
    """

    name: str
    version: str | int | float | None = None
    host: str | None = None
    port: int | None = None
    latest: str | None = None


class Awareness(_WireModel):
    """The gateway's own address and the resolved interConnect targets (``awareness``)."""

    host: str | None = None
    port: int | None = None
    inter_connect: list[InterConnect] = Field(default_factory=list, alias="interConnect")


class ContextData(_WireModel):
    """The whole ``soajsinjectobj`` header of one request.

    Build it with :func:`soajs.inject.parse_inject_header`, which also records
    :attr:`raw_header`, the header text exactly as received, for verbatim forwarding.
    """

    tenant: Tenant
    key: Key
    application: Application
    package: Package = Field(default_factory=Package)
    device: str | None = None
    geo: Geo | None = None
    urac: Urac | None = None
    param: Param | None = None
    awareness: Awareness | None = None

    @property
    def services_config(self) -> dict[str, Any]:
        """The per-service configuration for this request (``key.config``)."""
        return self.key.config

    @property
    def raw_header(self) -> str:
        """The header as received (Latin-1 text); ``""`` when the model was built in code."""
        private = self.__pydantic_private__
        if private is None:
            return ""
        raw = private.get(_RAW_HEADER)
        return raw.decode("latin-1") if isinstance(raw, bytes) else ""


def attach_raw_header(context: ContextData, raw: bytes | str) -> None:
    """Record the header a context was parsed from (used by the parser).

    It is kept as the bytes received (text is stored as its Latin-1 bytes, so a context parsed
    from bytes equals one parsed from the same text) and decoded only when
    :attr:`ContextData.raw_header` is read. It lives in pydantic's private storage rather than
    in a declared ``PrivateAttr``: a declared one makes every validation run a Python post-init
    hook, which the per-request parse should not pay. Copies, pickles and equality still carry
    it like any private attribute.
    """
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    _set_private(context, {_RAW_HEADER: raw})
