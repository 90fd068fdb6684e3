"""The logged-in user as soajs core shows it to Node handlers (``req.soajs.uracDriver``).

:class:`UracDriver` is npm ``soajs@4.1.22``'s ``mw/service/urac.js`` over a parsed
:class:`~soajs.models.context.ContextData`: :meth:`UracDriver.get_profile` projects the user
three ways, :meth:`UracDriver.get_acl` and :meth:`UracDriver.get_groups` read the ACL and groups.

**When it is filled.** Node's ``uracCheck`` (``mw/service/index.js``) fills the driver only when
the header's ``param`` has both ``urac_Profile`` and ``urac_ACL``; otherwise every method answers
``None``. ``param`` is the gateway's copy of the flags the service registered with
(``Config.urac_profile``, ``Config.urac_acl``), sent only together with ``urac``, so it is what
this request was built from; the driver reads it, as Node does, rather than the service's local
configuration, which may have changed since the gateway last read it. Node's other precondition,
the service's own ``uracDriver`` option, has no counterpart: the driver is always there (empty
when the request has no user).

**Secrets.** ``config``, ``groupsConfig`` and the social-login ``accessToken`` are returned
only by ``get_profile(all=True)``, and no ``repr()`` here shows them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from soajs.models.context import ContextData, Text, Urac, UracTenant

if TYPE_CHECKING:
    from soajs.models.context import Param

__all__ = ["UracDriver", "UracProfile", "UracProfileSocialLogin"]

_SECRET_KEYS: Final = ("config", "groupsConfig")
_ACCESS_TOKEN: Final = "accessToken"  # noqa: S105 - the key's name, not a token
_PROFILE_FIELDS: Final = (
    ("id", "_id"),
    ("username", "username"),
    ("first_name", "firstName"),
    ("last_name", "lastName"),
    ("email", "email"),
    ("groups", "groups"),
    ("profile", "profile"),
    ("tenant", "tenant"),
)
"""The record's fields a ``username`` user's profile copies: (Python name, wire name)."""


def _js_truthy(value: Any) -> bool:
    """JavaScript truthiness for a JSON value: ``{}`` and ``[]`` are true, ``0`` and ``""`` not."""
    if value is None or value is False or value == "":
        return False
    return not (isinstance(value, int | float) and value == 0)


class _ProfileModel(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, hide_input_in_errors=True)


class UracProfileSocialLogin(_ProfileModel):
    """How a social-login user signed in; ``access_token`` only in ``get_profile(all=True)``."""

    strategy: Text = None
    id: Text = None
    access_token: Any = Field(default=None, alias=_ACCESS_TOKEN, repr=False)


class UracProfile(_ProfileModel):
    """One of the three shapes of soajs core's ``getProfile()``; read :meth:`to_node` for its JSON.

    Only the keys soajs core sets for the shape are set here (``model_fields_set``); the others
    read as ``None``. ``profile``, ``config`` and ``groups_config`` never show in ``repr()``:
    for a record with neither ``username`` nor ``userId``, ``profile`` is the whole record.
    """

    id: Text = Field(default=None, alias="_id")
    username: Text = None
    first_name: Text = Field(default=None, alias="firstName")
    last_name: Text = Field(default=None, alias="lastName")
    email: Text = None
    groups: list[str] | None = None
    profile: Any = Field(default=None, repr=False)
    tenant: UracTenant = Field(default_factory=UracTenant)
    social_login: UracProfileSocialLogin | None = Field(default=None, alias="socialLogin")
    config: Any = Field(default=None, repr=False)
    groups_config: Any = Field(default=None, alias="groupsConfig", repr=False)

    def to_node(self) -> dict[str, Any]:
        """The profile as Node's ``getProfile()`` serialises: wire names, only the keys it sets."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class UracDriver:
    """soajs core's ``req.soajs.uracDriver``: the request's user, its ACL and its groups.

    Build it with :meth:`for_context` (or read ``context.urac_driver``); an empty driver (no
    user, or a service that did not ask for ``urac_Profile`` and ``urac_ACL``) answers ``None``
    everywhere.
    """

    __slots__ = ("_user",)

    def __init__(self, user: Urac | None = None) -> None:
        self._user = user

    @classmethod
    def for_context(cls, context: ContextData | None) -> UracDriver:
        """The driver for one request, filled under soajs core's conditions (module docstring)."""
        if context is None or context.urac is None or not _asks_for_user(context.param):
            return cls()
        return cls(context.urac)

    @property
    def user(self) -> Urac | None:
        """The user record the driver reads (``userRecord`` in Node), or ``None`` when empty."""
        return self._user

    def __repr__(self) -> str:
        user = self._user
        if user is None:
            return "UracDriver(user=None)"
        return f"UracDriver(id={user.id!r}, username={user.username!r})"

    def get_profile(self, all: bool = False) -> UracProfile | None:  # noqa: A002 - Node's name
        """The user's profile in soajs core's shape (``getProfile(all)``), or ``None``.

        * a user with a ``username``: ``_id, username, firstName, lastName, email, groups,
          profile, tenant`` and ``socialLogin {strategy, id}``; with ``all``, also ``config``,
          ``groupsConfig`` and ``socialLogin.accessToken``;
        * an oauth user with a ``userId``: ``{_id, username: userId, tenant: {id: tId}}``;
        * any other record: ``{_id: id or user, username: user, tenant: {}, profile: record}``
          (``id`` or ``_id``: the record model reads both as its ``id``); ``record`` keeps
          ``config``, ``groupsConfig`` and the access token only with ``all`` (Node returns
          the record whole).

        Args:
            all: also return the user's key configuration, group configuration and the
                social-login access token (Node's ``_ALL``).
        """
        user = self._user
        if user is None:
            return None
        extra = user.model_extra or {}
        wire: dict[str, Any]
        if user.username:
            wire = _username_profile(user, with_secrets=all)
        elif _js_truthy(extra.get("userId")):
            wire = {"username": extra["userId"], "tenant": _tenant_of(extra)}
            if "id" in user.model_fields_set:
                wire["_id"] = user.id
        else:
            wire = {"tenant": {}, "profile": _record(user, with_secrets=all)}
            # Node's ``id || user``. The record model reads ``id`` and ``_id`` alike (by name or
            # by alias), so either one counts here; a missing key stays out, as undefined does.
            if user.id:
                wire["_id"] = user.id
            elif "user" in extra:
                wire["_id"] = extra["user"]
            if "user" in extra:
                wire["username"] = extra["user"]
        return UracProfile.model_validate(wire)

    def get_acl(self) -> Any:
        """The user's ACL in this environment (``getAcl()``), or ``None`` when it is falsy."""
        user = self._user
        if user is None or not _js_truthy(user.acl):
            return None
        return user.acl

    def get_groups(self) -> list[str] | None:
        """The user's group codes (``getGroups()``), or ``None``."""
        user = self._user
        return None if user is None else user.groups


def _asks_for_user(param: Param | None) -> bool:
    return param is not None and bool(param.urac_profile) and bool(param.urac_acl)


def _username_profile(user: Urac, *, with_secrets: bool) -> dict[str, Any]:
    sent = user.model_fields_set
    wire: dict[str, Any] = {
        alias: getattr(user, name) for name, alias in _PROFILE_FIELDS if name in sent
    }
    social = user.social_login
    if social is not None:
        social_wire = social.model_dump(include={"strategy", "id"}, exclude_unset=True)
        token = (social.model_extra or {}).get(_ACCESS_TOKEN)
        if with_secrets and token is not None:
            social_wire[_ACCESS_TOKEN] = token
        wire["socialLogin"] = social_wire
    if with_secrets:
        if "config" in sent:
            wire["config"] = user.config
        if "groups_config" in sent:
            wire["groupsConfig"] = user.groups_config
    return wire


def _tenant_of(extra: dict[str, Any]) -> dict[str, Any]:
    return {"id": extra["tId"]} if "tId" in extra else {}


def _record(user: Urac, *, with_secrets: bool) -> dict[str, Any]:
    """The whole record under its wire names, as Node's third shape returns it."""
    record = user.model_dump(by_alias=True, exclude_unset=True)
    if not with_secrets:
        for key in _SECRET_KEYS:
            record.pop(key, None)
        social = record.get("socialLogin")
        if isinstance(social, dict):
            social.pop(_ACCESS_TOKEN, None)
    return record
