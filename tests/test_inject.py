"""parse_inject_header: every real header parses, and any other input is an InjectHeaderError."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inject_headers import HEADERS, SECURE_URAC_JWT, expected_wire_dict

from soajs.errors import InjectHeaderError
from soajs.inject import DEFAULT_MAX_SIZE, HEADER_NAME, parse_inject_header
from soajs.models.context import ContextData

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
            "{}",
            header(tenant=None),
            header(key=None),
            header(application={"product": "P"}),
            header(tenant={"id": "t1"}),
            header(tenant=1),
            header(key={"iKey": "i"}),
            header(awareness={"port": "not-a-port"}),
            header(urac={"_id": "u1"}),
            header(device={"ua": "object"}),
            header(geo={"ip": 5}),
        ],
    )
    def test_wrong_shape_is_invalid(self, text: str) -> None:
        """A JSON object that is not the gateway's shape is 'invalid'."""
        with pytest.raises(InjectHeaderError) as caught:
            parse_inject_header(text)
        assert caught.value.code == "invalid"

    def test_invalid_message_names_fields_not_values(self) -> None:
        """The message names the failing field and never quotes the header's secrets."""
        text = header(application={"product": "P"}, tenant={"id": "ekey-secret"})
        with pytest.raises(InjectHeaderError) as caught:
            parse_inject_header(text)
        message = str(caught.value)
        assert "application.package" in message
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
        assert outcome(json.dumps(value)) in {"context", "malformed", "invalid"}

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
        assert outcome(json.dumps({**MINIMAL, **data})) in {"context", "invalid"}
