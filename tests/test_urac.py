"""The urac driver: soajs core's ``req.soajs.uracDriver`` (npm soajs@4.1.22, mw/service/urac.js)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from dependency_injector import providers
from fixture_paths import FIXTURES

from soajs.container import SoajsContainer
from soajs.context import RequestContext, reset_current_request, set_current_request
from soajs.inject import parse_inject_header
from soajs.models.context import ContextData
from soajs.testing import build_inject_header, inject_header_from_file
from soajs.urac import UracDriver, UracProfile

BOTH = {"urac_Profile": True, "urac_ACL": True}

# The user of soajs core's unit test (test/unit/mw/service/urac.js), with its ACL in the record,
# where the gateway puts it (uracCheck reads user_ACL from urac.acl).
NODE_USER: dict[str, Any] = {
    "_id": "5c8d0c505653de3985aa0ffd",
    "username": "owner",
    "firstName": "owner",
    "lastName": "owner",
    "email": "me@localhost.com",
    "groups": ["owner"],
    "groupsConfig": {"allowedPackages": {"DSBRD": ["DSBRD_OWNER"]}},
    "profile": {},
    "config": {"packages": {}, "keys": {}},
    "tenant": {"id": "5c0e74ba9acc3c5a84a51259", "code": "DBTN"},
    "acl": {},
}
NODE_PROFILE = {
    "_id": "5c8d0c505653de3985aa0ffd",
    "username": "owner",
    "firstName": "owner",
    "lastName": "owner",
    "email": "me@localhost.com",
    "groups": ["owner"],
    "profile": {},
    "tenant": {"id": "5c0e74ba9acc3c5a84a51259", "code": "DBTN"},
}

CONFIG_SECRET = "urac-config-secret-5b1f"
GROUPS_SECRET = "urac-groups-config-secret-77aa"
ACCESS_TOKEN = "social-access-token-c0ffee"


def context_for(urac: Any, param: dict[str, Any] | None = None) -> ContextData:
    """The context of a gateway header carrying ``urac`` and ``param`` (both flags by default)."""
    return parse_inject_header(build_inject_header(urac=urac, param=param or BOTH))


def driver_for(urac: Any, param: dict[str, Any] | None = None) -> UracDriver:
    return UracDriver.for_context(context_for(urac, param))


def profile_of(driver: UracDriver, *, all: bool = False) -> dict[str, Any]:  # noqa: A002
    profile = driver.get_profile(all)
    assert isinstance(profile, UracProfile)
    return profile.to_node()


def social_user() -> dict[str, Any]:
    """A username user who signed in with GitHub, with secrets in every secret place."""
    user = copy.deepcopy(NODE_USER)
    user["config"] = {"keys": {"k": {"pw": CONFIG_SECRET}}}
    user["groupsConfig"] = {"allowedPackages": GROUPS_SECRET}
    user["socialLogin"] = {"strategy": "github", "id": "gh-1", "accessToken": ACCESS_TOKEN}
    return user


class TestNodeUnitCases:
    """soajs core's own unit test, case by case."""

    def test_init(self) -> None:
        """A filled driver holds the injected user record (Node's init answers it)."""
        context = context_for(NODE_USER)
        driver = UracDriver.for_context(context)
        assert driver.user is context.urac
        assert driver.user is not None
        assert driver.user.username == "owner"

    def test_get_profile(self) -> None:
        """getProfile() gives the eight profile keys and neither config nor groupsConfig."""
        assert profile_of(driver_for(NODE_USER)) == NODE_PROFILE

    def test_get_acl(self) -> None:
        """getAcl() gives the user's ACL; an empty object is an ACL (truthy in JavaScript)."""
        assert driver_for(NODE_USER).get_acl() == {}
        acl = {"urac": {"2": {"access": True}}}
        assert driver_for({**NODE_USER, "acl": acl}).get_acl() == acl

    def test_get_groups(self) -> None:
        """getGroups() gives the user's group codes."""
        assert driver_for(NODE_USER).get_groups() == ["owner"]


class TestProfileShapes:
    def test_username_user_typed_fields(self) -> None:
        """The username shape reads as typed fields, with the names percent-decoded."""
        profile = driver_for({**NODE_USER, "firstName": "Zoë"}).get_profile()
        assert profile is not None
        assert profile.id == "5c8d0c505653de3985aa0ffd"
        assert profile.first_name == "Zoë"
        assert profile.tenant.code == "DBTN"
        assert profile.groups == ["owner"]
        assert profile.config is None
        assert profile.social_login is None

    def test_all_adds_config_and_groups_config(self) -> None:
        """getProfile(true) adds config and groupsConfig to the username shape."""
        profile = profile_of(driver_for(NODE_USER), all=True)
        assert profile == {
            **NODE_PROFILE,
            "config": NODE_USER["config"],
            "groupsConfig": NODE_USER["groupsConfig"],
        }

    def test_social_login_token_only_with_all(self) -> None:
        """socialLogin shows strategy and id; its access token only with all."""
        driver = driver_for(social_user())
        assert profile_of(driver)["socialLogin"] == {"strategy": "github", "id": "gh-1"}
        full = driver.get_profile(all=True)
        assert full is not None
        assert full.social_login is not None
        assert full.social_login.access_token == ACCESS_TOKEN
        assert full.to_node()["socialLogin"] == {
            "strategy": "github",
            "id": "gh-1",
            "accessToken": ACCESS_TOKEN,
        }

    def test_missing_keys_are_left_out_as_undefined_is(self) -> None:
        """A username user without names, email or groups has none of those keys."""
        profile = profile_of(driver_for({"_id": "u1", "username": "zoe"}), all=True)
        assert profile == {"_id": "u1", "username": "zoe"}

    def test_oauth_user_id_shape(self) -> None:
        """An oauth user (userId, tId) reads as {_id, username: userId, tenant: {id: tId}}."""
        urac = {"_id": "tok-1", "userId": "client-7", "tId": "t-9", "config": {"x": CONFIG_SECRET}}
        driver = driver_for(urac)
        expected = {"_id": "tok-1", "username": "client-7", "tenant": {"id": "t-9"}}
        assert profile_of(driver) == expected
        assert profile_of(driver, all=True) == expected
        assert driver.get_groups() is None

    def test_any_other_record_shape(self) -> None:
        """Any other record reads as {_id: id, username: user, tenant: {}, profile: record}."""
        urac = {"id": "r-1", "user": "someone", "scope": ["read"]}
        assert profile_of(driver_for(urac)) == {
            "_id": "r-1",
            "username": "someone",
            "tenant": {},
            # The record model reads ``id`` as its ``_id`` field and writes it back so.
            "profile": {"_id": "r-1", "user": "someone", "scope": ["read"]},
        }

    def test_other_record_id_falls_back_to_user(self) -> None:
        """Without a truthy id, _id is the record's user (Node's ``id || user``)."""
        profile = profile_of(driver_for({"id": "", "user": "someone"}))
        assert profile["_id"] == "someone"
        assert profile["username"] == "someone"

    def test_empty_record(self) -> None:
        """An empty urac object is the third shape with nothing in it."""
        assert profile_of(driver_for({})) == {"tenant": {}, "profile": {}}

    def test_other_record_secrets_only_with_all(self) -> None:
        """The third shape's record keeps config, groupsConfig and the token only with all."""
        urac = {
            "user": "someone",
            "config": {"pw": CONFIG_SECRET},
            "groupsConfig": {"g": GROUPS_SECRET},
            "socialLogin": {"strategy": "x", "accessToken": ACCESS_TOKEN},
        }
        driver = driver_for(urac)
        record = profile_of(driver)["profile"]
        assert record == {"user": "someone", "socialLogin": {"strategy": "x"}}
        assert profile_of(driver, all=True)["profile"] == urac


class TestWhenFilled:
    @pytest.mark.parametrize(
        "param",
        [
            {"urac_Profile": True, "urac_ACL": False},
            {"urac_Profile": False, "urac_ACL": True},
            {"urac_Profile": True},
            {},
        ],
    )
    def test_empty_unless_both_flags(self, param: dict[str, Any]) -> None:
        """Without both urac_Profile and urac_ACL in param every method answers None."""
        context = parse_inject_header(build_inject_header(urac=NODE_USER, param=param))
        assert context.urac is not None
        driver = context.urac_driver
        assert driver.user is None
        assert driver.get_profile() is None
        assert driver.get_profile(all=True) is None
        assert driver.get_acl() is None
        assert driver.get_groups() is None

    def test_empty_without_a_user_or_a_context(self) -> None:
        """No urac in the header, or no context at all, gives an empty driver."""
        context = parse_inject_header(build_inject_header(param=BOTH))
        assert context.urac_driver.get_profile() is None
        assert UracDriver.for_context(None).get_groups() is None
        assert UracDriver().get_acl() is None

    @pytest.mark.parametrize("acl", [None, "", 0, False])
    def test_falsy_acl_reads_as_none(self, acl: Any) -> None:
        """getAcl() answers null for a falsy ACL (null, '', 0, false)."""
        assert driver_for({**NODE_USER, "acl": acl}).get_acl() is None

    def test_empty_groups_are_groups(self) -> None:
        """An empty group list is returned as is (an array is truthy in JavaScript)."""
        assert driver_for({**NODE_USER, "groups": []}).get_groups() == []

    def test_context_property(self) -> None:
        """context.urac_driver is the driver soajs core would give this request."""
        context = context_for(NODE_USER)
        assert context.urac_driver.get_groups() == ["owner"]
        assert profile_of(context.urac_driver) == NODE_PROFILE


class TestFixtures:
    def test_captured_secure_urac_jwt(self) -> None:
        """The captured JWT request: decoded names, secrets only with all, null ACL."""
        path = FIXTURES / "captured" / "soajsinjectobj.secure-urac-jwt.json"
        sent = json.loads(path.read_text(encoding="utf-8"))["urac"]
        driver = parse_inject_header(inject_header_from_file(path)).urac_driver
        profile = profile_of(driver)
        assert profile == {
            "_id": sent["_id"],
            "username": "zoe",
            "firstName": "Zoë",
            "lastName": "O'Brien",
            "email": sent["email"],
            "groups": ["owner"],
            "profile": {"lang": "en"},
            "tenant": sent["tenant"],
        }
        full = profile_of(driver, all=True)
        assert full == {**profile, "config": sent["config"], "groupsConfig": sent["groupsConfig"]}
        assert driver.get_acl() is None
        assert driver.get_groups() == ["owner"]

    def test_synthesized_gateway_shape(self) -> None:
        """The gateway-shaped header: the percent-encoded first name reads decoded."""
        path = FIXTURES / "upstream" / "soajsinjectobj.synthesized-gateway-shape.json"
        driver = parse_inject_header(inject_header_from_file(path)).urac_driver
        profile = driver.get_profile()
        assert profile is not None
        assert profile.first_name == "owner3's\u00e8\u012f"
        assert profile.to_node()["tenant"] == {"id": "5c0e74ba9acc3c5a84a51259", "code": "DBTN"}
        assert driver.get_groups() == ["owner"]

    def test_controller_test_user_record(self) -> None:
        """The controller's test user: its status, ts and locked keys stay out of the profile."""
        path = FIXTURES / "upstream" / "uracUser.controller-test.json"
        user = json.loads(path.read_text(encoding="utf-8"))
        driver = driver_for(user)
        assert profile_of(driver) == NODE_PROFILE
        full = profile_of(driver, all=True)
        assert full["config"] == user["config"]
        assert full["groupsConfig"] == user["groupsConfig"]


class TestSecrets:
    def test_no_repr_shows_a_secret(self) -> None:
        """No repr() or str() of a driver or profile shows config, groupsConfig or a token."""
        secrets = (CONFIG_SECRET, GROUPS_SECRET, ACCESS_TOKEN)
        texts = []
        for urac in (social_user(), {"user": "x", **social_user(), "username": ""}):
            driver = driver_for(urac)
            profile = driver.get_profile(all=True)
            assert profile is not None
            texts += [repr(driver), str(driver), repr(profile), str(profile)]
            assert any(secret in json.dumps(profile.to_node()) for secret in secrets)
        assert "owner" in texts[0]
        assert [text for text in texts if any(secret in text for secret in secrets)] == []


class TestContainer:
    def test_urac_provider_reads_the_current_request(self) -> None:
        """container.urac() is the current request's driver, and empty outside a request."""
        container = SoajsContainer()
        assert container.urac().get_profile() is None
        raw = build_inject_header(urac=NODE_USER, param=BOTH)
        token = set_current_request(RequestContext(raw_header=raw))
        try:
            driver = container.urac()
            assert isinstance(driver, UracDriver)
            assert driver.get_groups() == ["owner"]
        finally:
            reset_current_request(token)
        assert container.urac().get_groups() is None

    def test_urac_follows_a_context_override(self) -> None:
        """Overriding context (as tests do) is enough to give handlers a user."""
        container = SoajsContainer()
        container.context.override(providers.Object(context_for(NODE_USER)))
        try:
            profile = container.urac().get_profile()
            assert profile is not None
            assert profile.username == "owner"
        finally:
            container.reset_override()
