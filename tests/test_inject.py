"""parse_inject_header: every real header parses, and any other input is an InjectHeaderError."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inject_headers import HEADERS, SECURE_URAC_JWT, expected_wire_dict
from pydantic import ValidationError

from soajs.errors import InjectHeaderError
from soajs.inject import DEFAULT_MAX_SIZE, HEADER_NAME, parse_inject_header
from soajs.models.context import ContextData, Tenant

MINIMAL: dict[str, Any] = {
    "tenant": {"id": "t1", "code": "TTEN"},
    "key": {"config": {}, "iKey": "ikey-secret", "eKey": "ekey-secret"},
    "application": {"package": "TPROD_BASIC"},
}


def header(**changes: Any) -> str:
    """The minimal valid header, written like JSON.stringify, with top-level keys replaced.

    A None value removes the key.
    """
    data = {**MINIMAL, **changes}
    items = {key: value for key, value in data.items() if value is not None}
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))


class TestFixtureHeaders:
    def test_header_name_is_lowercase(self) -> None:
        """The header name constant matches what ASGI servers give (lowercase)."""
        assert HEADER_NAME == "soajsinjectobj"

    def test_fixtures_are_found(self) -> None:
        """The shared fixtures hold the captured and upstream headers this suite relies on."""
        assert SECURE_URAC_JWT in HEADERS
        assert len(HEADERS) >= 12

    @pytest.mark.parametrize("name", sorted(HEADERS))
    def test_every_fixture_header_parses(self, name: str) -> None:
        """Every header in the fixtures gives a context that keeps the raw text byte for byte."""
        text = HEADERS[name]
        context = parse_inject_header(text.encode("latin-1"))
        assert isinstance(context, ContextData)
        assert context.raw_header == text
        assert context.raw_header.encode("latin-1") == text.encode("latin-1")

    @pytest.mark.parametrize("name", sorted(HEADERS))
    def test_every_field_is_reachable(self, name: str) -> None:
        """Dumping a parsed header by wire names gives back all of it, names decoded."""
        text = HEADERS[name]
        context = parse_inject_header(text)
        dumped = context.model_dump(by_alias=True, exclude_unset=True)
        assert dumped == expected_wire_dict(text)

    def test_secure_urac_header_fields(self) -> None:
        """The captured logged-in request exposes user, param, config and awareness fields."""
        context = parse_inject_header(HEADERS[SECURE_URAC_JWT])
        assert context.tenant.id == "6a1e00000000000000000001"
        assert context.tenant.code == "TTEN"
        assert context.tenant.name == "Test Tenant"
        assert context.tenant.locked is False
        assert context.tenant.type == "product"
        assert context.tenant.profile == {"plan": "test"}
        assert context.key.i_key == "7d0b0c4a9d4e4b3a8f1e2d3c4b5a6978"
        assert context.key.e_key.startswith("e038c52a")
        assert context.services_config == {
            "greeting": "hello from commonFields",
            "secure": {"tier": "gold"},
        }
        assert context.application.product == "TPROD"
        assert context.application.package == "TPROD_BASIC"
        assert context.application.app_id == "6a1e00000000000000000a01"
        assert context.application.acl is None
        assert context.package.acl is not None
        assert context.package.acl["secure"]["1"]["access"] is True
        assert context.device == "curl/7.88.1"
        assert context.geo is not None
        assert context.geo.ip == "127.0.0.1"
        urac = context.urac
        assert urac is not None
        assert urac.id == "6a1e00000000000000000u01"
        assert urac.username == "zoe"
        assert urac.first_name == "Zoë"
        assert urac.last_name == "O'Brien"
        assert urac.email == "zoe@example.test"
        assert urac.groups == ["owner"]
        assert urac.tenant.id == "6a1e00000000000000000001"
        assert urac.tenant.code == "TTEN"
        assert urac.profile == {"lang": "en"}
        assert urac.acl is None
        assert urac.acl_all_env is None
        assert urac.config == {"packages": {}, "keys": {}}
        assert urac.groups_config == {"owner": {"note": "group config"}}
        assert context.param is not None
        assert context.param.urac_profile is True
        assert context.param.urac_acl is True
        assert context.awareness is not None
        assert context.awareness.host == "127.0.0.1"
        assert context.awareness.port == 4000
        assert context.awareness.inter_connect == []

    def test_interconnect_header_fields(self) -> None:
        """The captured interConnect header lists the resolved target with host, port, latest."""
        context = parse_inject_header(HEADERS["captured/raw/caller-interconnect"])
        assert context.awareness is not None
        [target] = context.awareness.inter_connect
        assert (target.name, target.version, target.host, target.port, target.latest) == (
            "hello",
            "1",
            "127.0.0.1",
            4100,
            "1",
        )
        assert context.package.acl is None
        assert context.tenant.profile is None

    def test_upstream_names_are_decoded(self) -> None:
        """The soajs core test header's percent-encoded first name is decoded like soajs core."""
        context = parse_inject_header(HEADERS["upstream/parsed/soajs-core-test"])
        assert context.urac is not None
        assert context.urac.first_name == "owner3's\u00e8\u012f"

    def test_non_gateway_param_is_kept(self) -> None:
        """The nodejs test header's hand-written param keeps its unknown key."""
        context = parse_inject_header(HEADERS["upstream/parsed/nodejs-test"])
        assert context.param is not None
        assert context.param.urac_profile is None
        assert context.param.model_extra == {"id": "5551aca9e179c39b760f7a1a"}


class TestLatin1:
    def test_latin1_byte_becomes_its_character(self) -> None:
        """A tenant name sent by Node as the Latin-1 byte 0xE9 reads as 'é'."""
        raw = header(tenant={"id": "t1", "code": "TTEN", "name": "Caf\u00e9"}).encode("latin-1")
        assert b"\xe9" in raw
        context = parse_inject_header(raw)
        assert context.tenant.name == "Café"
        assert context.raw_header.encode("latin-1") == raw

    def test_every_latin1_byte_round_trips(self) -> None:
        """All 96 high Latin-1 bytes in a tenant name parse and keep their code points."""
        name = "".join(chr(code) for code in range(0xA0, 0x100))
        raw = header(tenant={"id": "t1", "code": "TTEN", "name": name}).encode("latin-1")
        assert parse_inject_header(raw).tenant.name == name

    def test_text_with_latin1_characters_is_accepted(self) -> None:
        """A str header (as WSGI gives it) with Latin-1 characters parses."""
        text = header(device="Navigateur \u00e0 l'\u00e9cole")
        assert parse_inject_header(text).device == "Navigateur à l'école"

    def test_text_beyond_latin1_is_malformed(self) -> None:
        """A str with a character above U+00FF cannot have come from a gateway."""
        with pytest.raises(InjectHeaderError) as caught:
            parse_inject_header(header(device="\u20ac"))
        assert caught.value.code == "malformed"

    def test_utf8_bytes_are_read_as_latin1(self) -> None:
        """UTF-8 bytes are not guessed at: each byte is one Latin-1 character, as Node sends."""
        raw = header(device="é").encode("utf-8")
        assert parse_inject_header(raw).device == "Ã©"

    @pytest.mark.parametrize("name", ["TTEN", "Caf\u00e9"])
    def test_bytes_and_text_give_equal_contexts(self, name: str) -> None:
        """ASGI's bytes and WSGI's text of one header give equal contexts and raw headers."""
        text = header(tenant={"id": "t1", "code": "TTEN", "name": name})
        from_bytes = parse_inject_header(text.encode("latin-1"))
        from_text = parse_inject_header(text)
        assert from_bytes == from_text
        assert from_bytes.raw_header == from_text.raw_header == text

    @pytest.mark.parametrize("kind", [bytearray, memoryview])
    def test_bytes_like_values_are_accepted(self, kind: type) -> None:
        """A bytearray or memoryview parses like bytes."""
        raw = header().encode("latin-1")
        assert parse_inject_header(kind(raw)).tenant.code == "TTEN"


class TestPercentDecoding:
    @pytest.mark.parametrize(
        ("sent", "read"),
        [
            ("Zo%C3%AB", "Zoë"),
            ("O'Brien", "O'Brien"),
            ("%E9", "%E9"),
            ("100%", "100%"),
            ("%zz", "%zz"),
            ("a%20b", "a b"),
            ("", ""),
        ],
    )
    def test_names_are_decoded_like_soajs_core(self, sent: str, read: str) -> None:
        """urac names are percent-decoded; a malformed escape keeps the text as sent."""
        urac = {"_id": "u1", "username": "zoe", "firstName": sent, "lastName": sent}
        context = parse_inject_header(header(urac=urac))
        assert context.urac is not None
        assert context.urac.first_name == read
        assert context.urac.last_name == read


class TestLenientShapes:
    def test_urac_tenant_may_be_empty(self) -> None:
        """A token type whose urac.tenant is {} still gives a context."""
        urac = {"_id": "u1", "username": "svc", "firstName": "", "lastName": "", "tenant": {}}
        context = parse_inject_header(header(urac=urac))
        assert context.urac is not None
        assert context.urac.tenant.id is None

    def test_oauth_client_user_without_email_or_groups(self) -> None:
        """An oauth-client user ({_id, username, tenant:{id}}) gives a context."""
        urac = {"_id": "u1", "username": "client", "tenant": {"id": "t1"}}
        context = parse_inject_header(header(urac=urac))
        assert context.urac is not None
        assert context.urac.email is None
        assert context.urac.groups is None
        assert context.urac.first_name == ""

    @pytest.mark.parametrize("version", [None, 1, 2.5, "1.2"])
    def test_interconnect_version_may_be_null_or_number(self, version: object) -> None:
        """interConnect versions arrive as null, numbers or strings and all validate."""
        awareness = {"host": "h", "port": 4000, "interConnect": [{"name": "x", "version": version}]}
        context = parse_inject_header(header(awareness=awareness))
        assert context.awareness is not None
        assert context.awareness.inter_connect[0].version == version

    def test_geo_ip_may_be_null(self) -> None:
        """geo.ip null (no client address) validates."""
        context = parse_inject_header(header(geo={"ip": None}))
        assert context.geo is not None
        assert context.geo.ip is None

    def test_package_device_geo_awareness_may_be_absent(self) -> None:
        """Only tenant, key and application.package are required."""
        context = parse_inject_header(header())
        assert context.package.acl is None
        assert (context.device, context.geo, context.urac, context.param) == (None,) * 4
        assert context.awareness is None

    def test_client_tenant_and_roaming(self) -> None:
        """A client tenant's main and a roaming token's origin are modelled."""
        tenant = {
            "id": "t1",
            "code": "CLNT",
            "type": "client",
            "main": {"id": "t0", "code": "MAIN"},
            "roaming": {"tId": "t9", "id": "r1", "user": {"_id": "u"}, "code": "RT"},
        }
        context = parse_inject_header(header(tenant=tenant))
        assert context.tenant.main is not None
        assert context.tenant.main.code == "MAIN"
        assert context.tenant.roaming is not None
        assert context.tenant.roaming.t_id == "t9"

    def test_key_without_ekey(self) -> None:
        """A key without eKey gives a context (soajs core's only test is a truthy key)."""
        context = parse_inject_header(header(key={"iKey": "i"}))
        assert (context.key.i_key, context.key.e_key, context.key.config) == ("i", None, {})

    def test_empty_key_object(self) -> None:
        """An empty key object is truthy in JavaScript: still a context."""
        assert parse_inject_header(header(key={})).key.i_key is None

    @pytest.mark.parametrize(
        ("sent", "read"), [(5, "5"), (0, "0"), (-7, "-7"), ("0", "0"), (2.5, "2.5")]
    )
    def test_numeric_tenant_id_and_code_read_as_text(self, sent: object, read: str) -> None:
        """Ids and codes that arrive as numbers are their text, as String(x) gives in Node."""
        context = parse_inject_header(header(tenant={"id": sent, "code": sent}))
        assert (context.tenant.id, context.tenant.code) == (read, read)

    def test_numeric_ids_elsewhere_read_as_text(self) -> None:
        """appId, product and urac._id given as numbers read as text too."""
        urac = {"_id": 42, "username": 7}
        application = {"package": "P", "product": 3, "appId": 9}
        context = parse_inject_header(header(application=application, urac=urac))
        assert (context.application.product, context.application.app_id) == ("3", "9")
        assert context.urac is not None
        assert (context.urac.id, context.urac.username) == ("42", "7")

    @pytest.mark.parametrize("urac", [{"_id": "u1"}, {"username": "n"}, {}, {"email": "e@x"}])
    def test_urac_without_username_or_email(self, urac: dict[str, Any]) -> None:
        """A urac without username or email (or anything) still gives a context."""
        context = parse_inject_header(header(urac=urac))
        assert context.urac is not None
        assert context.urac.username == urac.get("username")
        assert context.urac.email == urac.get("email")

    def test_object_device(self) -> None:
        """An object device is kept as sent."""
        context = parse_inject_header(header(device={"ua": "curl", "os": "linux"}))
        assert context.device == {"ua": "curl", "os": "linux"}

    @pytest.mark.parametrize(
        ("changes", "field", "read"),
        [
            ({"geo": "127.0.0.1"}, "geo", None),
            ({"geo": {"ip": {"v4": "1"}}}, "geo.ip", None),
            ({"geo": {"ip": 5}}, "geo.ip", "5"),
            ({"device": ["curl"]}, "device", None),
            ({"param": "x"}, "param", None),
            ({"param": {"urac_Profile": "yes"}}, "param.urac_profile", None),
            ({"param": {"urac_ACL": 1}}, "param.urac_acl", None),
            ({"package": "P"}, "package.acl", None),
            ({"urac": "zoe"}, "urac", None),
            ({"urac": {"_id": "u", "tenant": "t"}}, "urac.tenant.id", None),
            ({"urac": {"_id": "u", "groups": [{"code": "g"}]}}, "urac.groups", None),
            ({"urac": {"_id": "u", "socialLogin": 1}}, "urac.social_login", None),
            ({"urac": {"_id": "u", "firstName": {"x": 1}}}, "urac.first_name", ""),
            ({"tenant": {"id": "t", "code": "C", "locked": "no"}}, "tenant.locked", None),
            ({"tenant": {"id": "t", "code": "C", "main": []}}, "tenant.main", None),
            ({"tenant": {"id": "t", "code": "C", "name": {"en": "x"}}}, "tenant.name", None),
            ({"key": {"iKey": "i", "config": [1]}}, "key.config", {}),
            ({"awareness": {"host": "h", "port": "not-a-port"}}, "awareness.port", None),
            ({"awareness": {"host": "h", "port": "4000"}}, "awareness.port", 4000),
            ({"awareness": {"host": "h", "interConnect": "urac"}}, "awareness.inter_connect", []),
        ],
    )
    def test_unknown_shapes_in_rarely_read_fields(
        self, changes: dict[str, Any], field: str, read: object
    ) -> None:
        """A rarely read field in an unknown shape reads as its default; the context stays."""
        value: Any = parse_inject_header(header(**changes))
        for part in field.split("."):
            value = getattr(value, part)
        assert value == read

    def test_unreadable_interconnect_entries_are_left_out(self) -> None:
        """interConnect entries that are not objects with a text name are dropped, not fatal."""
        entries = [None, "urac", {"name": 5}, {"version": "1"}, {"name": "ok", "version": True}]
        entries.append({"name": "urac", "version": "1", "host": "h", "port": 1})
        awareness = {"host": "h", "port": 4000, "interConnect": entries}
        context = parse_inject_header(header(awareness=awareness))
        assert context.awareness is not None
        assert [item.name for item in context.awareness.inter_connect] == ["urac"]

    def test_interconnect_records_null_and_missing_versions(self) -> None:
        """An entry records whether version and latest were sent, null included."""
        entries = [{"name": "a", "version": None}, {"name": "b", "latest": "1"}, {"name": "c"}]
        awareness = {"host": "h", "port": 4000, "interConnect": entries}
        context = parse_inject_header(header(awareness=awareness))
        assert context.awareness is not None
        seen = [(i.has_version, i.has_latest) for i in context.awareness.inter_connect]
        assert seen == [(True, False), (False, True), (False, False)]


class TestSoajsShape:
    def test_tenant_key_is_the_context_key(self) -> None:
        """context.tenant.key is context.key: i_key, e_key and config, no copy."""
        context = parse_inject_header(HEADERS[SECURE_URAC_JWT])
        assert context.tenant.key is context.key
        assert context.tenant.key.i_key == context.key.i_key
        assert context.tenant.key.e_key == context.key.e_key
        assert context.tenant.key.config is context.services_config

    def test_tenant_application_reads_application_and_package(self) -> None:
        """context.tenant.application has the seed's names over application and package."""
        acl = {"hello": {"1": {"access": False}}}
        context = parse_inject_header(
            header(
                application={"product": "P", "package": "P_B", "appId": "a1", "acl": {"x": 1}},
                package={"acl": acl, "acl_all_env": {"dev": acl}},
            )
        )
        application = context.tenant.application
        assert (application.product, application.package, application.app_id) == ("P", "P_B", "a1")
        assert application.acl == {"x": 1}
        assert application.acl_all_env is None
        assert application.package_acl is context.package.acl
        assert application.package_acl_all_env == {"dev": acl}

    def test_falsy_acl_reads_as_none_like_soajs_core(self) -> None:
        """soajs core turns a falsy acl into null; so does the tenant.application view."""
        context = parse_inject_header(header(application={"package": "P", "acl": ""}))
        assert context.application.acl == ""
        assert context.tenant.application.acl is None

    def test_soajs_paths_are_read_only(self) -> None:
        """The SOAJS paths cannot be assigned, and neither can the objects they share."""
        context = parse_inject_header(header())
        with pytest.raises(AttributeError):
            context.tenant.key = context.key  # type: ignore[misc]
        with pytest.raises(AttributeError):
            context.tenant.application.package = "X"  # type: ignore[misc]
        with pytest.raises(ValidationError):
            context.key = context.key  # type: ignore[misc]

    def test_contexts_built_in_code_have_the_paths(self) -> None:
        """ContextData(...), model_validate and model_validate_json link tenant.key too."""
        data = json.loads(header())
        for context in (
            ContextData(**data),
            ContextData.model_validate(data),
            ContextData.model_validate_json(header()),
        ):
            assert context.tenant.key is context.key
            assert context.tenant.application.package == "TPROD_BASIC"

    def test_copies_keep_the_paths_on_their_own_objects(self) -> None:
        """A deep copy's tenant.key is the copy's key, not the original's."""
        context = parse_inject_header(header())
        clone = copy.deepcopy(context)
        assert clone.tenant.key is clone.key
        assert pickle.loads(pickle.dumps(context)).tenant.key.i_key == "ikey-secret"  # noqa: S301

    def test_a_lone_tenant_says_where_to_look(self) -> None:
        """A Tenant outside a context has no key path, and the error says where to read it."""
        with pytest.raises(AttributeError, match=r"context\.key"):
            _ = Tenant(id="t", code="C").key


class TestRejections:
    @pytest.mark.parametrize("value", [b"", "", "   ", None])
    def test_empty_is_missing(self, value: bytes | str | None) -> None:
        """No value at all is the 'missing' error."""
        with pytest.raises(InjectHeaderError) as caught:
            parse_inject_header(value)  # type: ignore[arg-type]
        assert caught.value.code == "missing"

    @pytest.mark.parametrize(
        "text", ["null", "[]", "[1,2]", "1", '"tenant"', "true", "{", "{'a':1}", "nope", "[" * 5000]
    )
    def test_non_object_or_non_json_is_malformed(self, text: str) -> None:
        """JSON that is not an object, and text that is not JSON, are 'malformed'."""
        with pytest.raises(InjectHeaderError) as caught:
            parse_inject_header(text)
        assert caught.value.code == "malformed"

    @pytest.mark.parametrize(
        "text",
        [
            header(tenant={"id": "t1"}),
            header(tenant={"code": "C"}),
            header(tenant={"id": None, "code": "C"}),
            header(tenant={"id": {"oid": "t1"}, "code": "C"}),
            header(tenant=1),
            header(tenant=["t1"]),
            header(key="ekey"),
            header(application={"package": {"code": "P"}}),
            header(application={"package": True}),
            header(application={"package": 5}),
        ],
    )
    def test_wrong_shape_is_invalid(self, text: str) -> None:
        """A tenant without text id and code, or a non-object tenant or key, is 'invalid'."""
        with pytest.raises(InjectHeaderError) as caught:
            parse_inject_header(text)
        assert caught.value.code == "invalid"

    @pytest.mark.parametrize(
        "text",
        [
            "{}",
            header(tenant=None),
            header(key=None),
            header(application=None),
            header(application={"product": "P"}),
            header(application={"package": ""}),
            header(application={"package": None}),
            header(application={"package": 0}),
            header(application="TPROD_BASIC"),
            header(tenant=False),
            header(key=0),
            header(key=""),
            header(application={"product": "P"}, tenant={"id": "t1"}),
        ],
    )
    def test_no_context_as_soajs_core_decides_is_missing(self, text: str) -> None:
        """No truthy tenant, key or application.package: no context, like no header ('missing')."""
        with pytest.raises(InjectHeaderError) as caught:
            parse_inject_header(text)
        assert caught.value.code == "missing"

    @pytest.mark.parametrize(
        "text",
        [
            header(device=float("nan")),
            header(tenant={"id": "t1", "code": "C", "profile": {"limit": float("inf")}}),
            header(geo={"ip": float("-inf")}),
            '{"tenant":{"id":"t1","code":"C"},"key":NaN,"application":{"package":"P"}}',
        ],
    )
    def test_nan_and_infinity_are_malformed(self, text: str) -> None:
        """NaN and Infinity, which Node's JSON.parse refuses, make the header malformed."""
        assert "NaN" in text or "Infinity" in text
        with pytest.raises(InjectHeaderError) as caught:
            parse_inject_header(text)
        assert caught.value.code == "malformed"

    def test_nan_inside_text_is_text(self) -> None:
        """'NaN' and 'Infinity' inside strings are ordinary text."""
        context = parse_inject_header(
            header(device="NaN Infinity", tenant={"id": "N", "code": "I"})
        )
        assert context.device == "NaN Infinity"

    def test_invalid_message_names_fields_not_values(self) -> None:
        """The message names the failing field and never quotes the header's secrets."""
        text = header(tenant={"id": "ekey-secret", "name": "secret-name"})
        with pytest.raises(InjectHeaderError) as caught:
            parse_inject_header(text)
        message = str(caught.value)
        assert "tenant.code" in message
        assert "secret" not in message

    def test_size_limit_is_inclusive(self) -> None:
        """A header exactly max_size long parses; one byte more is 'too_large'."""
        padding = 200 - len(header(device=""))
        text = header(device="x" * padding)
        assert len(text) == 200
        assert parse_inject_header(text, max_size=200).device == "x" * padding
        with pytest.raises(InjectHeaderError) as caught:
            parse_inject_header(text + " ", max_size=200)
        assert caught.value.code == "too_large"

    def test_size_is_checked_before_parsing(self) -> None:
        """An oversized value is refused as too large without being read as JSON."""
        with pytest.raises(InjectHeaderError) as caught:
            parse_inject_header(b"{" * (DEFAULT_MAX_SIZE + 1))
        assert caught.value.code == "too_large"

    @pytest.mark.parametrize("value", [3, 1.5, ["{}"], {"tenant": {}}, object()])
    def test_other_types_are_malformed(self, value: object) -> None:
        """A value that is neither bytes nor str is refused as malformed."""
        with pytest.raises(InjectHeaderError) as caught:
            parse_inject_header(value)  # type: ignore[arg-type]
        assert caught.value.code == "malformed"


def outcome(value: bytes | str) -> str:
    """ "context" when the value parses, else the InjectHeaderError code (others propagate)."""
    try:
        parse_inject_header(value)
    except InjectHeaderError as exc:
        return exc.code
    return "context"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


class TestAnyInput:
    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300))
    def test_any_bytes_give_context_or_inject_error(self, raw: bytes) -> None:
        """Arbitrary bytes never raise anything but InjectHeaderError."""
        assert outcome(raw) in {"context", "missing", "malformed", "invalid"}

    @settings(max_examples=300, deadline=None)
    @given(json_values)
    def test_any_json_gives_context_or_inject_error(self, value: object) -> None:
        """Arbitrary JSON documents never raise anything but InjectHeaderError."""
        assert outcome(json.dumps(value)) in {"context", "missing", "malformed", "invalid"}

    @settings(max_examples=200, deadline=None)
    @given(
        st.fixed_dictionaries(
            {},
            optional={
                "tenant": json_values,
                "key": json_values,
                "application": json_values,
                "urac": json_values,
                "awareness": json_values,
            },
        )
    )
    def test_any_top_level_fields_give_context_or_inject_error(self, data: dict[str, Any]) -> None:
        """Objects with the gateway's keys but arbitrary values never raise anything else."""
        assert outcome(json.dumps({**MINIMAL, **data})) in {
            "context",
            "missing",
            "malformed",
            "invalid",
        }
