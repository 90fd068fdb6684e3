"""The soajsinjectobj models: names, aliases, required fields, secrets and the raw header."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from inject_headers import HEADERS, SECURE_URAC_JWT
from pydantic import ValidationError

import soajs
import soajs.models
from soajs.inject import parse_inject_header
from soajs.models.context import (
    Application,
    Awareness,
    ContextData,
    InterConnect,
    Key,
    Tenant,
    TenantRoaming,
    Urac,
    attach_raw_header,
)

E_KEY = "e038c52a36e5952343acee09d798d3dbcd195123315fb3361502207b49daef4d"
I_KEY = "7d0b0c4a9d4e4b3a8f1e2d3c4b5a6978"


def build_context(**extra: Any) -> ContextData:
    """A context built in code with snake_case names."""
    return ContextData(
        tenant=Tenant(id="t1", code="TTEN"),
        key=Key(config={"mail": {"pass": "smtp-password"}}, i_key=I_KEY, e_key=E_KEY),
        application=Application(package="TPROD_BASIC"),
        **extra,
    )


class TestNames:
    def test_seed_names_are_exported(self) -> None:
        """soajs.models exports the seed names Tenant, Urac and ContextData."""
        assert soajs.models.Tenant is Tenant
        assert soajs.models.Urac is Urac
        assert soajs.models.ContextData is ContextData
        assert soajs.ContextData is ContextData

    def test_snake_case_and_wire_names_both_validate(self) -> None:
        """A field validates from its Python name and from the gateway's name."""
        by_name = Key(i_key="i", e_key="e")
        by_alias = Key.model_validate({"iKey": "i", "eKey": "e"})
        assert (by_name.i_key, by_name.e_key) == (by_alias.i_key, by_alias.e_key) == ("i", "e")

    def test_dump_by_alias_gives_wire_names(self) -> None:
        """Dumping by alias writes the gateway's names back."""
        urac = Urac(id="u1", username="zoe", first_name="Zoë", acl_all_env={"dev": {}})
        dumped = urac.model_dump(by_alias=True, exclude_unset=True)
        assert dumped == {
            "_id": "u1",
            "username": "zoe",
            "firstName": "Zoë",
            "acl_AllEnv": {"dev": {}},
        }

    def test_unknown_keys_are_kept(self) -> None:
        """Keys the models do not know survive validation as extras."""
        tenant = Tenant.model_validate({"id": "t", "code": "C", "futureField": [1]})
        assert tenant.model_extra == {"futureField": [1]}

    def test_services_config_is_key_config(self) -> None:
        """services_config is the key's merged per-service config."""
        context = build_context()
        assert context.services_config is context.key.config


class TestRequiredFields:
    @pytest.mark.parametrize(
        "data",
        [
            {"id": "t1"},
            {"code": "C"},
        ],
    )
    def test_tenant_needs_id_and_code(self, data: dict[str, Any]) -> None:
        """A tenant without id or code is not a tenant."""
        with pytest.raises(ValidationError):
            Tenant.model_validate(data)

    def test_application_needs_package(self) -> None:
        """application.package is what soajs core requires for a context."""
        with pytest.raises(ValidationError):
            Application.model_validate({"product": "P", "appId": "a"})

    def test_interconnect_needs_a_name(self) -> None:
        """An interConnect item without a name cannot be addressed."""
        with pytest.raises(ValidationError):
            InterConnect.model_validate({"version": "1"})

    def test_awareness_defaults(self) -> None:
        """An empty awareness has no host, no port and no interConnect targets."""
        awareness = Awareness.model_validate({})
        assert (awareness.host, awareness.port, awareness.inter_connect) == (None, None, [])

    def test_urac_tenant_defaults_to_empty(self) -> None:
        """A urac without a tenant gets an empty UracTenant."""
        urac = Urac.model_validate({"_id": "u", "username": "n"})
        assert urac.tenant.id is None
        assert urac.tenant.code is None


class TestSecrets:
    def test_keys_and_key_config_are_not_in_repr_or_str(self) -> None:
        """eKey, iKey and the key config (which may hold passwords) never show in repr/str."""
        context = build_context()
        for text in (repr(context), str(context), repr(context.key), str(context.key)):
            assert E_KEY not in text
            assert I_KEY not in text
            assert "smtp-password" not in text
        assert "TTEN" in repr(context)

    def test_parsed_header_repr_has_no_keys_or_raw_header(self) -> None:
        """A parsed context's repr shows neither the keys nor the raw header carrying them."""
        context = parse_inject_header(HEADERS[SECURE_URAC_JWT])
        text = repr(context)
        assert context.key.e_key not in text
        assert context.key.i_key not in text
        assert "zoe@example.test" in text

    def test_roaming_tenant_meta_db_is_not_in_repr(self) -> None:
        """A roaming tenant's meta DB (connection details) is not printed."""
        roaming = TenantRoaming.model_validate({"tId": "t", "tenantMetaDB": {"password": "pw-x"}})
        assert "pw-x" not in repr(roaming)
        assert roaming.tenant_meta_db == {"password": "pw-x"}


class TestRawHeader:
    def test_built_in_code_has_empty_raw_header(self) -> None:
        """A context built in code has no raw header."""
        assert build_context().raw_header == ""

    def test_attached_raw_header_is_readable(self) -> None:
        """The parser's raw text is exposed read-only as raw_header."""
        context = build_context()
        attach_raw_header(context, '{"tenant":{}}')
        assert context.raw_header == '{"tenant":{}}'
        with pytest.raises(AttributeError):
            context.raw_header = "x"  # type: ignore[misc]

    def test_raw_header_survives_copy_deepcopy_and_pickle(self) -> None:
        """Copies and pickles keep the raw header for verbatim forwarding."""
        context = parse_inject_header(HEADERS[SECURE_URAC_JWT])
        for clone in (
            copy.copy(context),
            copy.deepcopy(context),
            context.model_copy(),
            pickle.loads(pickle.dumps(context)),  # noqa: S301 - our own object
        ):
            assert clone.raw_header == context.raw_header
            assert clone == context

    def test_raw_header_not_in_dump(self) -> None:
        """model_dump gives the header's data, not the raw text."""
        context = parse_inject_header(HEADERS[SECURE_URAC_JWT])
        assert "raw_header" not in context.model_dump()
        assert "_raw_header" not in context.model_dump()


class TestUracNames:
    def test_model_keeps_names_as_given(self) -> None:
        """The model stores names as given; decoding the wire encoding is the parser's job."""
        urac = Urac.model_validate({"_id": "u", "username": "n", "firstName": "100%25"})
        assert urac.first_name == "100%25"

    def test_parser_decodes_names_once(self) -> None:
        """A name the gateway encoded twice over ('%25') is decoded exactly once."""
        context = parse_inject_header(
            '{"tenant":{"id":"t","code":"C"},"key":{"iKey":"i","eKey":"e"},'
            '"application":{"package":"P"},'
            '"urac":{"_id":"u","username":"n","firstName":"100%25","lastName":"%C3%A9"}}'
        )
        assert context.urac is not None
        assert (context.urac.first_name, context.urac.last_name) == ("100%", "é")
