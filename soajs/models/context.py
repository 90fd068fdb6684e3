"""The ``soajsinjectobj`` header: what the gateway tells a service about each request.

When a header gives a context is decided as soajs core decides it (``mw/service/index.js``):
``tenant``, ``key`` and ``application.package`` must be present and truthy; everything else is
read leniently. Numbers where text is expected read as their text (a numeric ``tenant.id`` is
``"5"``), and a field users rarely read that arrives in an unexpected shape (``geo: "x"``, an
unreadable ``urac.tenant``) reads as its default instead of losing the whole context. Unknown
keys are kept. ``tenant.id`` and ``tenant.code`` are the one deliberate exception: they are
required text, so a tenant without them is refused.

Python names are snake_case; the gateway's names are aliases, so both validate. Key material,
passwords and per-user configuration (``eKey``, ``iKey``, ``key.config``, ``urac.config``,
``urac.groupsConfig``, a roaming tenant's ``tenantMetaDB``) never appear in ``repr()``/``str()``,
and validation errors never quote the input.

Besides the wire's top level (``context.key``, ``context.application``, ``context.package``),
a parsed context has the SOAJS paths Node services and the seed's models use:
``context.tenant.key`` (the same :class:`Key`) and ``context.tenant.application`` (a read-only
:class:`TenantApplication` over the same application and package).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Final, Self
from urllib.parse import unquote_to_bytes

from msgspec.structs import astuple
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    OnErrorOmit,
    PydanticUserError,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_serializer,
)
from pydantic_core import CoreSchema, core_schema

from soajs.models.registry import WireModel
from soajs.models.sections import SECTION_NAMES, UNSET, HeaderSections, PendingSections

if TYPE_CHECKING:
    from soajs.urac import UracDriver

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
    "TenantApplication",
    "TenantMain",
    "TenantRoaming",
    "Urac",
    "UracSocialLogin",
    "UracTenant",
    "attach_raw_header",
    "attach_received_header",
    "context_from_sections",
    "decode_user_names",
    "link_tenant",
]

_RAW_HEADER = "raw_header"
_TENANT_LINKS: Final = "soajs_links"
_PENDING: Final = "soajs_pending"
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
"""Store a model's private storage (the slot's own setter: no attribute lookup)."""
_get_private = BaseModel.__dict__["__pydantic_private__"].__get__
_set_fields = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_CACHED_NAME_SIZE: Final = 128
# decodeURIComponent throws (and soajs core keeps the name as sent) on any broken escape.
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True)
class _OrDefault:
    """Field annotation: a value of another shape validates as ``default`` instead of failing.

    It is pydantic-core's own ``on_error="default"``, so reading leniently costs nothing in Python.
    """

    default: Any = None
    factory: Callable[[], Any] | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        if self.factory is not None:
            return core_schema.with_default_schema(
                handler(source), default_factory=self.factory, on_error="default"
            )
        return core_schema.with_default_schema(
            handler(source), default=self.default, on_error="default"
        )


_LENIENT = _OrDefault()

Text = Annotated[str | None, _LENIENT]
"""Text that reads as ``None`` when it is neither text nor a number."""

Flag = Annotated[StrictBool | None, _LENIENT]
"""A boolean that reads as ``None`` when it is not one (``"no"`` is not read as false)."""

PackageCode = Annotated[StrictStr, StringConstraints(min_length=1)]
"""``application.package``: soajs core gives no context when it is empty; never a number."""

Version = StrictStr | StrictInt | StrictFloat | None
"""An interConnect version as sent: text, a number or ``null``; never coerced, because soajs
core compares versions with ``===``."""


class _WireModel(WireModel):
    """Base of the header models: the registry models' wire rules, but mutable.

    Unknown keys are kept and never shown, a refused header's keys stay out of the error
    text, and numbers read as text (soajs core passes a numeric id through).
    """

    model_config = ConfigDict(frozen=False)


class TenantMain(_WireModel):
    """The main tenant of a client tenant (``tenant.main``)."""

    id: Text = None
    code: Text = None


class TenantRoaming(_WireModel):
    """Where a roaming (sensitive-environment) token came from (``tenant.roaming``)."""

    t_id: Text = Field(default=None, alias="tId")
    id: Text = None
    user: Any = None
    code: Text = None
    tenant_meta_db: Any = Field(default=None, alias="tenantMetaDB", repr=False)


class Key(_WireModel):
    """The caller's key (``key``): the merged per-service config and the internal/external keys.

    soajs core gives a context to a key without ``eKey`` (or ``iKey``): they read as ``None``.
    """

    config: Annotated[dict[str, Any], _OrDefault(factory=dict)] = Field(
        default_factory=dict, repr=False
    )
    i_key: Text = Field(default=None, alias="iKey", repr=False)
    e_key: Text = Field(default=None, alias="eKey", repr=False)


class Application(_WireModel):
    """The product and package the key belongs to (``application``)."""

    product: Text = None
    package: PackageCode
    app_id: Text = Field(default=None, alias="appId")
    acl: Any = None
    acl_all_env: Any = None


class Package(_WireModel):
    """The package ACL (``package``); empty unless the service sets ``provision_ACL``."""

    acl: Any = None
    acl_all_env: Any = None


class TenantApplication:
    """``context.tenant.application``: the application as soajs core shows it to handlers.

    A read-only view over the context's :class:`Application` and :class:`Package` (nothing is
    copied): Node's ``req.soajs.tenant.application`` with the seed's snake_case names. As in
    soajs core, an ``acl`` that is falsy reads as ``None``, and ``package_acl`` /
    ``package_acl_all_env`` come from the top-level ``package``.
    """

    __slots__ = ("_application", "_package")

    def __init__(self, application: Application, package: Package) -> None:
        self._application = application
        self._package = package

    def __repr__(self) -> str:
        return f"TenantApplication(product={self.product!r}, package={self.package!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TenantApplication):
            return NotImplemented
        return (self._application, self._package) == (other._application, other._package)

    __hash__ = None  # type: ignore[assignment]

    @property
    def product(self) -> str | None:
        """The product code (``application.product``)."""
        return self._application.product

    @property
    def package(self) -> str:
        """The package code (``application.package``)."""
        return self._application.package

    @property
    def app_id(self) -> str | None:
        """The application id (``application.appId``)."""
        return self._application.app_id

    @property
    def acl(self) -> Any:
        """The application's ACL for this environment, or ``None``."""
        return self._application.acl or None

    @property
    def acl_all_env(self) -> Any:
        """The application's ACL for every environment, or ``None``."""
        return self._application.acl_all_env or None

    @property
    def package_acl(self) -> Any:
        """The package's ACL for this environment (``package.acl``), or ``None``."""
        return self._package.acl or None

    @property
    def package_acl_all_env(self) -> Any:
        """The package's ACL for every environment (``package.acl_all_env``), or ``None``."""
        return self._package.acl_all_env or None


class Tenant(_WireModel):
    """The tenant that owns the key the caller used (``tenant``).

    In a :class:`ContextData`, :attr:`key` and :attr:`application` give the SOAJS paths
    ``context.tenant.key`` and ``context.tenant.application``.
    """

    id: str
    code: str
    name: Text = None
    locked: Flag = None
    type: Text = None
    main: Annotated[TenantMain | None, _LENIENT] = None
    profile: Any = None
    roaming: Annotated[TenantRoaming | None, _LENIENT] = None

    @property
    def key(self) -> Key:
        """The context's key (``context.key``, the same object), as soajs core's ``tenant.key``.

        Raises:
            AttributeError: this tenant is not part of a :class:`ContextData`.
        """
        return self._links()[0]

    @property
    def application(self) -> TenantApplication:
        """The context's application and package ACL, as soajs core's ``tenant.application``.

        Raises:
            AttributeError: this tenant is not part of a :class:`ContextData`.
        """
        _, application, package = self._links()
        return TenantApplication(application, package)

    def _links(self) -> tuple[Key, Application, Package]:
        private = self.__pydantic_private__
        links = private.get(_TENANT_LINKS) if private is not None else None
        if links is None:
            raise AttributeError(
                "this Tenant is not part of a ContextData: read the key and application from "
                "the context (context.key, context.application)"
            )
        key, application, package = links
        if type(package) is PendingSections:
            # The context's key and package are validated on first read (see ContextData).
            key, package = _read_key(package), _read_package(package)
        return key, application, package


class Geo(_WireModel):
    """Where the request came from (``geo``); ``ip`` may be ``null``."""

    ip: Text = None


class UracTenant(_WireModel):
    """The logged-in user's tenant (``urac.tenant``): ``{id, code}``, ``{id}`` or ``{}``."""

    id: Text = None
    code: Text = None


class UracSocialLogin(_WireModel):
    """How a social-login user signed in (``urac.socialLogin``)."""

    strategy: Text = None
    id: Text = None


class Urac(_WireModel):
    """The logged-in user (``urac``), present only for services with ``urac: true``.

    On the wire ``firstName`` and ``lastName`` are percent-encoded (the gateway's
    ``encodeHeaderValue``); :func:`soajs.inject.parse_inject_header` decodes them, as soajs core
    does, so here they are plain text. Every field is optional, as in soajs core (an oauth
    client user has no ``email``; other tokens may have no ``username``). ``config`` and
    ``groups_config`` (the user's key configuration) are never shown by ``repr()``.
    """

    id: Text = Field(default=None, alias="_id")
    username: Text = None
    first_name: Annotated[str, _OrDefault("")] = Field(default="", alias="firstName")
    last_name: Annotated[str, _OrDefault("")] = Field(default="", alias="lastName")
    email: Text = None
    groups: Annotated[list[str] | None, _LENIENT] = None
    tenant: Annotated[UracTenant, _OrDefault(factory=UracTenant)] = Field(
        default_factory=UracTenant
    )
    profile: Any = None
    acl: Any = None
    acl_all_env: Any = Field(default=None, alias="acl_AllEnv")
    config: Any = Field(default=None, repr=False)
    groups_config: Any = Field(default=None, alias="groupsConfig", repr=False)
    social_login: Annotated[UracSocialLogin | None, _LENIENT] = Field(
        default=None, alias="socialLogin"
    )


class Param(_WireModel):
    """Which user extras the service asked for (``param``); sent together with ``urac``."""

    urac_profile: Flag = Field(default=None, alias="urac_Profile")
    urac_acl: Flag = Field(default=None, alias="urac_ACL")


class InterConnect(_WireModel):
    """One configured interConnect target, resolved by the gateway (``awareness.interConnect[]``).

    ``version`` is ``null`` when the service configured none, and a number if it used one;
    ``latest`` is absent when the gateway does not know it. soajs core tells ``null`` from a
    missing key when it matches a call, so :attr:`has_version` and :attr:`has_latest` record
    whether the key was sent. ``host`` has no port. Values are kept as sent (``"1"`` is not
    ``1``); an entry that is not an object with a text ``name`` is left out of the list.
    """

    # Versions and names are compared with ===: no number may turn into text here.
    model_config = ConfigDict(coerce_numbers_to_str=False, allow_inf_nan=False)

    name: StrictStr
    version: Version = None
    host: Text = None
    port: Annotated[int | None, _LENIENT] = None
    latest: Version = None

    @property
    def has_version(self) -> bool:
        """Whether the entry has a ``version`` key (``null`` included)."""
        return "version" in self.__pydantic_fields_set__

    @property
    def has_latest(self) -> bool:
        """Whether the entry has a ``latest`` key (``null`` included)."""
        return "latest" in self.__pydantic_fields_set__


class Awareness(_WireModel):
    """The gateway's own address and the resolved interConnect targets (``awareness``)."""

    host: Text = None
    port: Annotated[int | None, _LENIENT] = None
    inter_connect: Annotated[list[OnErrorOmit[InterConnect]], _OrDefault(factory=list)] = Field(
        default_factory=list, alias="interConnect"
    )


class ContextData(_WireModel):
    """The whole ``soajsinjectobj`` header of one request.

    Build it with :func:`soajs.inject.parse_inject_header`, which also records
    :attr:`raw_header`, the header text exactly as received, for verbatim forwarding.

    A parsed context validates ``tenant`` and ``application`` at once and each other section
    (``key`` included) on its first read, then keeps it; equality, ``repr()``, copies, pickles and
    serialization read every section first, so none of them can tell. (Two threads reading a
    section first at the same moment may each validate it: they get equal values.)
    """

    # Frozen: context.tenant.key and .application are these same objects, linked at parse time.
    tenant: Tenant = Field(frozen=True)
    key: Key = Field(frozen=True)
    application: Application = Field(frozen=True)
    package: Annotated[Package, _OrDefault(factory=Package)] = Field(
        default_factory=Package, frozen=True
    )
    device: Annotated[str | dict[str, Any] | None, _LENIENT] = None
    geo: Annotated[Geo | None, _LENIENT] = None
    urac: Annotated[Urac | None, _LENIENT] = None
    param: Annotated[Param | None, _LENIENT] = None
    awareness: Annotated[Awareness | None, _LENIENT] = None

    def __init__(self, /, **data: Any) -> None:
        super().__init__(**data)
        link_tenant(self)

    # Marked as pydantic's own __init__ (as RootModel does): otherwise pydantic-core would call
    # this Python method on every validation, the per-request parse included. Safe: each entry
    # point that validates (model_validate, model_validate_json, soajs.inject) links the tenant.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate like pydantic, then link ``tenant.key`` and ``tenant.application``."""
        context = super().model_validate(obj, *args, **kwargs)
        link_tenant(context)
        return context

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate like pydantic, then link ``tenant.key`` and ``tenant.application``.

        Prefer :func:`soajs.inject.parse_inject_header`, which also checks what soajs core
        checks (Latin-1, ``NaN``, the size) and keeps the raw header for forwarding.
        """
        context = super().model_validate_json(json_data, *args, **kwargs)
        link_tenant(context)
        return context

    if not TYPE_CHECKING:
        # Hidden from type checkers, as pydantic's own: they would accept any attribute name.

        def __getattr__(self, name: str) -> Any:
            """Give a parsed header's ``model_fields_set`` on its first read, then keep it."""
            if name == "__pydantic_fields_set__":
                pending = _pending_of(self)
                if pending is not None:
                    # Left unset by the parse, which most requests never read.
                    fields_set = _present_sections(pending)
                    _set_fields_set(self, fields_set)
                    return fields_set
            return super().__getattr__(name)

    @model_serializer(mode="wrap")
    def _serialize(self, handler: Callable[[Self], Any]) -> Any:
        """Serialize every section, including those not read yet."""
        _materialize(self)
        return handler(self)

    def __eq__(self, other: object) -> bool:
        _materialize(self)
        if isinstance(other, ContextData):
            _materialize(other)
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        _materialize(self)
        return super().__repr_args__()

    def __iter__(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        _materialize(self)
        return super().__iter__()

    def __copy__(self) -> Self:
        _materialize(self)
        return super().__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        _materialize(self)
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        _materialize(self)
        return super().__getstate__()

    @property
    def services_config(self) -> dict[str, Any]:
        """The per-service configuration for this request (``key.config``)."""
        return self.key.config

    @property
    def urac_driver(self) -> UracDriver:
        """The request's user as soajs core's ``req.soajs.uracDriver`` (see :mod:`soajs.urac`).

        Filled only when the header's ``param`` has both ``urac_Profile`` and ``urac_ACL``, as
        in soajs core; otherwise its methods answer ``None``. A new driver on each read.
        """
        # Imported here: soajs.urac builds on this module.
        from soajs.urac import UracDriver

        return UracDriver.for_context(self)

    @property
    def raw_header(self) -> str:
        """The header as received (Latin-1 text); ``""`` when the model was built in code."""
        private = self.__pydantic_private__
        if private is None:
            return ""
        raw = private.get(_RAW_HEADER)
        return raw.decode("latin-1") if isinstance(raw, bytes) else ""


def link_tenant(context: ContextData) -> None:
    """Give ``context.tenant`` its :attr:`Tenant.key` and :attr:`Tenant.application`.

    The parser and the constructors call it; call it yourself only after building a context
    some other way (``model_construct``).
    """
    tenant = context.tenant
    private = tenant.__pydantic_private__
    links = (context.key, context.application, context.package)
    if private is None:
        _set_private(tenant, {_TENANT_LINKS: links})
    else:
        private[_TENANT_LINKS] = links


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


def attach_received_header(context: ContextData, raw: bytes) -> None:
    """Record the received bytes of a context just validated from them, and link its tenant.

    :func:`attach_raw_header` and :func:`link_tenant` in one step, for the parser: a freshly
    validated context has no private storage yet, so both are set outright.
    """
    _set_private(context, {_RAW_HEADER: raw})
    fields = context.__dict__
    _set_private(
        fields["tenant"], {_TENANT_LINKS: (fields["key"], fields["application"], fields["package"])}
    )


# The sections a parsed header validates on first read; tenant and application (with key,
# which must be an object, what decides whether there is a context at all) are validated by
# the parse itself.
_LAZY_SECTIONS: Final = frozenset(SECTION_NAMES) - {"tenant", "application"}
_SECTION_CONFIG: Final = ConfigDict(
    coerce_numbers_to_str=ContextData.model_config.get("coerce_numbers_to_str", False),
    hide_input_in_errors=True,
)
_validate_tenant = Tenant.__pydantic_validator__.validate_json
_validate_key = Key.__pydantic_validator__.validate_json
_validate_application = Application.__pydantic_validator__.validate_json


def _section_reader(name: str) -> Callable[[bytes], Any]:
    """Validate section ``name`` exactly as :class:`ContextData` validates its field."""
    field = ContextData.model_fields[name]
    annotation: Any = Annotated[(field.annotation, *field.metadata)]
    try:
        # The context's own rules for what is not a model (a numeric device reads as text).
        adapter: TypeAdapter[Any] = TypeAdapter(annotation, config=_SECTION_CONFIG)
    except PydanticUserError:
        # A model alone: its own configuration is the one the context uses for it.
        adapter = TypeAdapter(annotation)
    validate: Callable[[bytes], Any] = adapter.validator.validate_json
    return validate


_SECTION_READERS: Final = {name: _section_reader(name) for name in sorted(_LAZY_SECTIONS - {"key"})}


class _LazySection:
    """A section of a parsed header, validated on its first read and then kept.

    A non-data descriptor on :class:`ContextData`: once the value is in the instance's
    ``__dict__`` (always, for a context validated in one pass) the descriptor is never called.
    """

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __get__(self, context: ContextData | None, owner: type | None = None) -> Any:
        if context is None:
            return self
        name = self._name
        pending = _pending_of(context)
        if pending is None:
            raise AttributeError(f"{type(context).__name__!r} object has no attribute {name!r}")
        value = _read_section(pending, name)
        context.__dict__[name] = value
        return value


for _name in _LAZY_SECTIONS:
    setattr(ContextData, _name, _LazySection(_name))


_new_context = object.__new__


def _read_section(pending: PendingSections, name: str) -> Any:
    """The value of lazy section ``name``: validated from the header, or the field's default."""
    if name == "package":
        return _read_package(pending)
    if name == "key":
        return _read_key(pending)
    raw = getattr(pending.sections, name)
    if raw is UNSET:
        return ContextData.model_fields[name].get_default(call_default_factory=True)
    value = _SECTION_READERS[name](bytes(raw))
    if name == "urac" and value is not None:
        decode_user_names(value)
    return value


def _read_key(pending: PendingSections) -> Key:
    """The header's key, validated once and shared by the context and its tenant.

    The parse checked it is a JSON object, which :class:`Key` always reads.
    """
    key: Key | None = pending.key
    if key is None:
        raw = pending.sections.key
        if raw is UNSET:  # never: a header without a key takes the whole validation
            raise AttributeError("this context has no key")
        key = pending.key = _validate_key(bytes(raw))
    return key


def _read_package(pending: PendingSections) -> Package:
    """The header's package, validated once and shared by the context and its tenant."""
    package: Package | None = pending.package
    if package is None:
        raw = pending.sections.package
        package = Package() if raw is UNSET else _SECTION_READERS["package"](bytes(raw))
        pending.package = package
    return package


def _present_sections(pending: PendingSections) -> set[str]:
    """The top-level keys the header has: the context's ``model_fields_set``."""
    present = zip(SECTION_NAMES, astuple(pending.sections), strict=True)
    return {name for name, value in present if value is not UNSET}


def _pending_of(context: ContextData) -> PendingSections | None:
    """The sections of ``context`` still to validate, if it has any."""
    try:
        private = _get_private(context, ContextData)
    except AttributeError:  # while pickle or copy restore it
        return None
    if private is None:
        return None
    pending: PendingSections | None = private.get(_PENDING)
    return pending


def _materialize(context: ContextData) -> None:
    """Validate every section not read yet, making ``context`` an ordinary model again.

    Whole-model operations (equality, ``repr``, copies, pickles, serialization) call it first,
    so they see what a context validated in one pass would show.
    """
    pending = _pending_of(context)
    if pending is None:
        return
    context.__pydantic_fields_set__  # noqa: B018 - set from the sections while they are here
    fields = context.__dict__
    for name in _LAZY_SECTIONS.difference(fields):
        fields[name] = _read_section(pending, name)
    _set_fields(context, {name: fields[name] for name in SECTION_NAMES})
    private = context.__pydantic_private__
    if private is not None:
        private.pop(_PENDING, None)
    link_tenant(context)


def context_from_sections(sections: HeaderSections, raw: bytes) -> ContextData | None:
    """A context over a header's sections, which validates all but two on first read.

    ``tenant`` and ``application`` are validated here, and ``key`` is checked to be a JSON
    object (any object is a :class:`Key`): they decide whether the header gives a context. The
    result reads, compares, copies and serializes like a context validated in one pass.

    Args:
        sections: The header split by :func:`soajs.models.sections.split_sections`.
        raw: The received bytes, kept for :attr:`ContextData.raw_header`.

    Returns:
        The context, or ``None`` when one of the three is missing or would not validate: the
        caller then validates the whole header, for the error it would give.
    """
    tenant_raw, key_raw, application_raw = sections.tenant, sections.key, sections.application
    if tenant_raw is UNSET or key_raw is UNSET or application_raw is UNSET:
        return None
    if not bytes(key_raw).startswith(b"{"):
        # Not an object: the whole validation refuses it. Any object is a Key, read later.
        return None
    try:
        tenant: Tenant = _validate_tenant(bytes(tenant_raw))
        application: Application = _validate_application(bytes(application_raw))
    except ValidationError:
        return None
    pending = PendingSections(sections)
    context = _new_context(ContextData)
    _set_fields(context, {"tenant": tenant, "application": application})
    # __pydantic_fields_set__ is left unset: __getattr__ computes it when it is first read.
    _set_extra(context, {})
    _set_private(context, {_RAW_HEADER: raw, _PENDING: pending})
    _set_private(tenant, {_TENANT_LINKS: (pending, application, pending)})
    return context


def decode_user_names(urac: Urac) -> None:
    """Percent-decode ``urac.first_name``/``last_name`` as soajs core does (in place).

    Stored past pydantic's ``__setattr__``: plain, non-frozen fields, nothing to validate.
    """
    fields = urac.__dict__
    if "%" in urac.first_name:
        fields["first_name"] = _percent_decode(urac.first_name)
    if "%" in urac.last_name:
        fields["last_name"] = _percent_decode(urac.last_name)


def _percent_decode(value: str) -> str:
    """Undo ``encodeURIComponent`` like soajs core; a malformed escape keeps the text as sent."""
    # The same user's name comes back on every request: short names are decoded once.
    if len(value) <= _CACHED_NAME_SIZE:
        return _percent_decode_cached(value)
    return _percent_decode_uncached(value)


def _percent_decode_uncached(value: str) -> str:
    if _BROKEN_ESCAPE.search(value):
        return value
    try:
        return unquote_to_bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return value


_percent_decode_cached = lru_cache(maxsize=1024)(_percent_decode_uncached)
