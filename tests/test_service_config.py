"""soajs.Config: the rules the real gateway needs, and loading from files and settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest
from fixture_paths import FIXTURES

import soajs
from soajs import Config, ConfigValidationError, Settings
from soajs.models.service_config import InterConnectTarget, Maintenance, MaintenancePort

BASE: dict[str, Any] = {"name": "my-service", "group": "my-group", "port": 4000}


def make(**changes: Any) -> Config:
    return Config(**{**BASE, **changes})


def refused(**changes: Any) -> ConfigValidationError:
    with pytest.raises(ConfigValidationError) as info:
        make(**changes)
    return info.value


class TestSeedSnippet:
    def test_readme_snippet_runs_as_written(self) -> None:
        """The README's Configuration Validation snippet builds a Config."""
        from soajs import Config

        config = Config(
            name="my-service",
            group="my-group",
            port=4000,
            version="1.0",
            type="service",
            maintenance={"port": {"type": "inherit"}, "readiness": "/heartbeat"},
        )
        assert config.maintenance is not None
        assert config.maintenance.port.type == "inherit"
        assert config.maintenance.readiness == "/heartbeat"
        assert config.version == "1.0"

    def test_exported_at_top_level(self) -> None:
        """soajs.Config is the model defined in soajs.models.service_config."""
        from soajs.models.service_config import Config as ModelConfig

        assert soajs.Config is ModelConfig

    def test_defaults(self) -> None:
        """Type defaults to service, version to 1, extKeyRequired to true, flags to None."""
        config = make()
        assert (config.type, config.version, config.ext_key_required) == ("service", "1", True)
        assert config.oauth is None
        assert config.urac_profile is None
        assert config.request_timeout is None
        assert config.maintenance is None


class TestName:
    @pytest.mark.parametrize("name", ["hello", "my-service", "a", "svc.v2", "my_svc", "4x", "a1"])
    def test_accepted(self, name: str) -> None:
        """Lowercase URL-segment names are accepted."""
        assert make(name=name).name == name

    @pytest.mark.parametrize(
        ("name", "reason"),
        [
            ("", "must not be empty"),
            ("MyService", "must be lowercase"),
            ("my service", "not a valid service name"),
            ("my/service", "not a valid service name"),
            ("-svc", "not a valid service name"),
            ("svc-", "not a valid service name"),
            ("svc?x", "not a valid service name"),
        ],
    )
    def test_refused(self, name: str, reason: str) -> None:
        """Empty, uppercase, spaces, slashes and edge punctuation are refused, naming the field."""
        error = refused(name=name)
        assert error.field == "name"
        assert str(error).startswith("invalid service config: name: ")
        assert reason in str(error)

    def test_uppercase_suggests_the_lowercase_name(self) -> None:
        """An uppercase name's error shows the lowercase spelling to use."""
        assert "'myservice'" in str(refused(name="MyService"))

    def test_missing(self) -> None:
        """A config without a name is refused, naming the field."""
        with pytest.raises(ConfigValidationError) as info:
            Config(group="g", port=1)
        assert info.value.field == "name"
        assert "name: is required" in str(info.value)


class TestGroup:
    @pytest.mark.parametrize("group", ["SOAJS Core Services", "Custom Services", "Gateway", "x"])
    def test_free_text_accepted(self, group: str) -> None:
        """Groups are free text, spaces and capitals included."""
        assert make(group=group).group == group

    @pytest.mark.parametrize("group", ["", "   "])
    def test_blank_refused(self, group: str) -> None:
        """An empty or blank group is refused, naming the field."""
        error = refused(group=group)
        assert error.field == "group"
        assert "group: is required" in str(error)


class TestVersion:
    @pytest.mark.parametrize("version", ["1", "1.0", "2.15", "10"])
    def test_accepted(self, version: str) -> None:
        """MAJOR and MAJOR.MINOR versions are accepted."""
        assert make(version=version).version == version

    def test_integer_becomes_text(self) -> None:
        """An integer version (as in soa.json) is kept as text."""
        assert make(version=2).version == "2"

    def test_three_part_version_refused_with_the_reason(self) -> None:
        """'1.0.0' is refused with a message explaining the gateway cannot route it."""
        error = refused(version="1.0.0")
        assert error.field == "version"
        message = str(error)
        assert "'1.0.0'" in message
        assert "/<service>/v<version>/" in message
        assert "can never be addressed" in message

    @pytest.mark.parametrize("version", ["", "v1", "1.", ".1", "1.a", "latest", "1.0.0.0"])
    def test_refused(self, version: str) -> None:
        """Anything but digits with at most one dot is refused, naming the field."""
        assert refused(version=version).field == "version"

    @pytest.mark.parametrize("version", [1.5, True])
    def test_float_and_bool_refused(self, version: object) -> None:
        """Floats (which lose zeros) and booleans are refused."""
        assert refused(version=version).field == "version"


class TestPort:
    @pytest.mark.parametrize("port", [1, 4000, 65535, "4000"])
    def test_accepted(self, port: object) -> None:
        """Ports 1-65535 are accepted (digit strings from files too)."""
        assert make(port=port).port == int(str(port))

    @pytest.mark.parametrize("port", [0, -1, 65536, "http", 4000.5, True, None])
    def test_refused(self, port: object) -> None:
        """Out-of-range, non-integer and boolean ports are refused, naming the field."""
        error = refused(port=port)
        assert error.field == "port"
        assert "port: " in str(error)

    def test_missing(self) -> None:
        """A config without a port is refused, naming the field."""
        with pytest.raises(ConfigValidationError) as info:
            Config(name="a", group="g")
        assert info.value.field == "port"

    def test_port_host_range(self) -> None:
        """portHost follows the same range rule and names its wire alias."""
        error = refused(portHost=70000)
        assert error.field == "port_host"
        assert "port_host (portHost)" in str(error)


class TestMaintenance:
    @pytest.mark.parametrize("port_type", ["maintenance", "inherit"])
    def test_builtin_types_need_no_value(self, port_type: str) -> None:
        """'maintenance' and 'inherit' need no port value."""
        config = make(maintenance={"port": {"type": port_type}, "readiness": "/heartbeat"})
        assert config.maintenance is not None
        assert config.maintenance.port.value is None

    def test_custom_type_with_numeric_value(self) -> None:
        """A custom type with a numeric value (or digit string) is accepted."""
        config = make(maintenance={"port": {"type": "custom", "value": "4555"}, "readiness": "/r"})
        assert config.maintenance == Maintenance(
            readiness="/r", port=MaintenancePort(type="custom", value=4555)
        )

    def test_custom_type_needs_a_value(self) -> None:
        """A custom type without a value is refused, naming maintenance.port.value."""
        error = refused(maintenance={"port": {"type": "custom"}, "readiness": "/heartbeat"})
        assert error.field == "maintenance.port.value"
        assert "'custom'" in str(error)

    @pytest.mark.parametrize("value", ["abc", 0, 70000, True])
    def test_custom_value_must_be_a_port(self, value: object) -> None:
        """A custom type's value must be a port number."""
        error = refused(maintenance={"port": {"type": "x", "value": value}, "readiness": "/r"})
        assert error.field == "maintenance.port.value"

    def test_empty_type_refused(self) -> None:
        """An empty port type is refused, naming maintenance.port.type."""
        error = refused(maintenance={"port": {"type": ""}, "readiness": "/heartbeat"})
        assert error.field == "maintenance.port.type"

    @pytest.mark.parametrize("readiness", ["heartbeat", "", "http://x/heartbeat"])
    def test_readiness_must_be_a_path(self, readiness: str) -> None:
        """readiness must start with '/'."""
        error = refused(maintenance={"port": {"type": "inherit"}, "readiness": readiness})
        assert error.field == "maintenance.readiness"
        assert "starting with '/'" in str(error)

    def test_port_and_readiness_required(self) -> None:
        """A maintenance block without a port is refused, naming maintenance.port."""
        assert refused(maintenance={"readiness": "/heartbeat"}).field == "maintenance.port"
        assert refused(maintenance={"port": {"type": "inherit"}}).field == "maintenance.readiness"

    def test_commands(self) -> None:
        """Maintenance commands are modelled with label, path and optional icon."""
        config = make(
            maintenance={
                "port": {"type": "inherit"},
                "readiness": "/heartbeat",
                "commands": [{"label": "Reload", "path": "/reload", "icon": "fas fa-sync"}],
            }
        )
        assert config.maintenance is not None
        assert config.maintenance.commands is not None
        assert config.maintenance.commands[0].icon == "fas fa-sync"

    def test_sub_model_built_directly(self) -> None:
        """A sub-model built on its own also raises ConfigValidationError."""
        with pytest.raises(ConfigValidationError) as info:
            Maintenance(readiness="x", port=MaintenancePort(type="inherit"))
        assert info.value.field == "readiness"


class TestInterConnect:
    def test_targets(self) -> None:
        """interConnect entries are parsed into targets with optional versions."""
        config = make(interConnect=[{"name": "hello", "version": "1"}, {"name": "urac"}])
        assert config.inter_connect == [
            InterConnectTarget(name="hello", version="1"),
            InterConnectTarget(name="urac"),
        ]

    def test_bad_target_names_the_index(self) -> None:
        """A bad target version is refused, naming its position in the list."""
        error = refused(inter_connect=[{"name": "hello", "version": "1.0.0"}])
        assert error.field == "inter_connect.0.version"


class TestTypeAndIp:
    @pytest.mark.parametrize("value", ["", "Service", "my service"])
    def test_type_refused(self, value: str) -> None:
        """The type must be a lowercase word."""
        assert refused(type=value).field == "type"

    def test_daemon_type_accepted(self) -> None:
        """Types other than service are accepted (the gateway files them under daemons)."""
        assert make(type="daemon").type == "daemon"

    @pytest.mark.parametrize("ip", ["", "10.0.0.1 x", "10.0.0.0/8"])
    def test_ip_refused(self, ip: str) -> None:
        """A blank IP, one with spaces or a CIDR is refused."""
        assert refused(ip=ip).field == "ip"

    @pytest.mark.parametrize("ip", ["10.0.0.7", "svc.internal", "::1"])
    def test_ip_accepted(self, ip: str) -> None:
        """IP addresses and host names are accepted."""
        assert make(ip=ip).ip == ip


class TestAliasesAndFlags:
    def test_snake_case_and_wire_names_are_equivalent(self) -> None:
        """Every aliased field can be set by its snake_case name or its wire name."""
        wire = {
            "subType": "soajs",
            "extKeyRequired": False,
            "urac_Profile": True,
            "urac_ACL": True,
            "urac_Config": True,
            "urac_GroupConfig": True,
            "tenant_Profile": True,
            "provision_ACL": True,
            "requestTimeout": 30,
            "requestTimeoutRenewal": 5,
            "interConnect": [{"name": "a"}],
            "portHost": 30000,
        }
        snake = {
            "sub_type": "soajs",
            "ext_key_required": False,
            "urac_profile": True,
            "urac_acl": True,
            "urac_config": True,
            "urac_group_config": True,
            "tenant_profile": True,
            "provision_acl": True,
            "request_timeout": 30,
            "request_timeout_renewal": 5,
            "inter_connect": [{"name": "a"}],
            "port_host": 30000,
        }
        assert make(**wire) == make(**snake)
        assert make(**wire).model_dump(by_alias=True, exclude_none=True) == {
            **BASE,
            "type": "service",
            "version": "1",
            **wire,
        }

    def test_unknown_field_refused(self) -> None:
        """A misspelt flag is refused instead of being silently dropped."""
        error = refused(extkeyRequired=True)
        assert error.field == "extkeyRequired"
        assert "unknown field" in str(error)

    @pytest.mark.parametrize(
        ("field", "value"),
        [("request_timeout", 0), ("request_timeout_renewal", -1), ("request_timeout", True)],
    )
    def test_timeouts(self, field: str, value: object) -> None:
        """Timeouts must be a positive integer; renewals a non-negative integer."""
        assert refused(**{field: value}).field == field

    def test_flags_refuse_non_booleans(self) -> None:
        """A flag that is not a boolean is refused, naming the snake_case field and its alias."""
        error = refused(urac_ACL="perhaps")
        assert error.field == "urac_acl"
        assert "urac_acl (urac_ACL)" in str(error)

    def test_errors_are_not_pydantic_errors(self) -> None:
        """Validation errors are ConfigValidationError (a ValueError), never pydantic's."""
        error = refused(port=0)
        assert isinstance(error, ValueError)
        assert not isinstance(error, pydantic.ValidationError)
        assert error.__cause__ is None

    def test_every_error_is_listed(self) -> None:
        """With several bad fields, the message lists each and `field` is the first."""
        error = refused(name="Bad Name", version="1.0.0")
        assert error.field == "name"
        assert "name: " in str(error)
        assert "version: " in str(error)

    def test_frozen(self) -> None:
        """A Config cannot be changed after validation."""
        config = make()
        with pytest.raises(pydantic.ValidationError):
            config.port = 1  # type: ignore[misc]


class TestFromFile:
    def test_json(self, tmp_path: Path) -> None:
        """A JSON file with the gateway's field names loads."""
        path = tmp_path / "config.json"
        path.write_text(
            json.dumps(
                {
                    "name": "hello",
                    "group": "SOAJS Core Services",
                    "port": 4100,
                    "version": "1.2",
                    "extKeyRequired": True,
                    "urac_Profile": True,
                    "maintenance": {"port": {"type": "maintenance"}, "readiness": "/heartbeat"},
                }
            ),
            encoding="utf-8",
        )
        config = Config.from_file(path)
        assert (config.name, config.group, config.version) == (
            "hello",
            "SOAJS Core Services",
            "1.2",
        )
        assert config.urac_profile is True

    @pytest.mark.parametrize("suffix", [".yaml", ".yml"])
    def test_yaml(self, tmp_path: Path, suffix: str) -> None:
        """A YAML file loads when PyYAML is installed."""
        path = tmp_path / f"config{suffix}"
        path.write_text(
            "name: hello\n"
            "group: Custom Services\n"
            "port: 4100\n"
            'version: "1"\n'
            "interConnect:\n"
            "  - name: urac\n"
            '    version: "3"\n'
            "maintenance:\n"
            "  port: {type: inherit}\n"
            "  readiness: /heartbeat\n",
            encoding="utf-8",
        )
        config = Config.from_file(str(path))
        assert config.inter_connect == [InterConnectTarget(name="urac", version="3")]
        assert config.maintenance is not None
        assert config.maintenance.port.type == "inherit"

    def test_yaml_without_pyyaml(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without PyYAML, a YAML file is refused with a message saying what to install."""
        monkeypatch.setitem(sys.modules, "yaml", None)
        path = tmp_path / "config.yaml"
        path.write_text("name: hello\n", encoding="utf-8")
        with pytest.raises(ConfigValidationError, match="needs PyYAML"):
            Config.from_file(path)

    def test_invalid_content_names_file_and_field(self, tmp_path: Path) -> None:
        """A file with a bad value names both the file and the field."""
        path = tmp_path / "config.json"
        path.write_text(json.dumps({**BASE, "version": "1.0.0"}), encoding="utf-8")
        with pytest.raises(ConfigValidationError) as info:
            Config.from_file(path)
        assert info.value.field == "version"
        assert str(path) in str(info.value)

    def test_bad_json(self, tmp_path: Path) -> None:
        """A file that is not JSON is refused with the position of the error."""
        path = tmp_path / "config.json"
        path.write_text('{"name": ', encoding="utf-8")
        with pytest.raises(ConfigValidationError, match="not valid JSON"):
            Config.from_file(path)

    def test_bad_yaml(self, tmp_path: Path) -> None:
        """A file that is not YAML is refused."""
        path = tmp_path / "config.yaml"
        path.write_text("name: [unclosed\n", encoding="utf-8")
        with pytest.raises(ConfigValidationError, match="not valid YAML"):
            Config.from_file(path)

    def test_not_an_object(self, tmp_path: Path) -> None:
        """A JSON list is refused."""
        path = tmp_path / "config.json"
        path.write_text("[1, 2]", encoding="utf-8")
        with pytest.raises(ConfigValidationError, match="expected an object"):
            Config.from_file(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file raises the usual OSError."""
        with pytest.raises(FileNotFoundError):
            Config.from_file(tmp_path / "absent.json")


NODE_SOA_JSON = FIXTURES / "upstream" / "service-config.nodejs-test-soa.json"


class TestNodeSoaJson:
    """A Node SOAJS service's soa.json loads as it is."""

    def test_the_upstream_soa_json_loads(self) -> None:
        """The Node test service's soa.json (serviceName, numeric serviceVersion) loads."""
        config = Config.from_file(NODE_SOA_JSON)
        assert (config.name, config.group, config.port, config.version) == (
            "express",
            "Custom Services",
            4381,
            "1",
        )
        assert (config.request_timeout, config.request_timeout_renewal) == (30, 5)
        assert (config.ext_key_required, config.oauth, config.urac) == (True, True, True)
        assert (config.urac_profile, config.urac_acl, config.provision_acl) == (False,) * 3
        assert config.inter_connect == [InterConnectTarget(name="urac", version="3")]
        assert config.maintenance is not None
        assert config.maintenance.port.type == "inherit"
        assert config.prerequisites == {"cpu": " ", "memory": " "}

    def test_same_config_as_the_current_format(self) -> None:
        """The soa.json gives the Config its current-format translation gives."""
        data = json.loads(NODE_SOA_JSON.read_text(encoding="utf-8"))
        current = {
            "name": data["serviceName"],
            "group": data["serviceGroup"],
            "port": data["servicePort"],
            "version": str(data["serviceVersion"]),
            **{
                key: value
                for key, value in data.items()
                if not key.startswith("service") and key not in ("tab", "swaggerFilename")
            },
        }
        assert Config.from_file(NODE_SOA_JSON) == Config.model_validate(current)

    @pytest.mark.parametrize(
        ("node_key", "field", "value"),
        [
            ("serviceName", "name", "orders"),
            ("serviceGroup", "group", "SOAJS Core Services"),
            ("servicePort", "port", 4300),
            ("serviceVersion", "version", "2.1"),
        ],
    )
    def test_each_identity_key(self, node_key: str, field: str, value: object) -> None:
        """Each soa.json identity key sets the same field as its current name."""
        current = {**BASE, field: value}
        node = {**{k: v for k, v in BASE.items() if k != field}, node_key: value}
        assert Config.model_validate(node) == Config.model_validate(current)
        assert getattr(Config.model_validate(node), field) == value

    def test_spellings_can_mix_across_fields(self) -> None:
        """A soa.json may use current names for some fields and Node names for others."""
        config = Config.model_validate(
            {"type": "service", "name": "express", "group": "Custom", "port": 4381,
             "serviceVersion": 1, "extKeyRequired": True}
        )  # fmt: skip
        assert (config.name, config.version) == ("express", "1")

    @pytest.mark.parametrize(
        ("first", "second", "field"),
        [
            ("name", "serviceName", "name"),
            ("group", "serviceGroup", "group"),
            ("port", "servicePort", "port"),
            ("version", "serviceVersion", "version"),
            ("sub_type", "subType", "sub_type"),
            ("ext_key_required", "extKeyRequired", "ext_key_required"),
        ],
    )
    def test_both_spellings_of_one_field_is_an_error(
        self, first: str, second: str, field: str
    ) -> None:
        """One field given under two spellings is refused, naming both, even if they agree."""
        value: object = {"port": 4000, "ext_key_required": True}.get(field, "same-value")
        data = {**BASE, first: value, second: value}
        with pytest.raises(ConfigValidationError) as info:
            Config.model_validate(data)
        assert info.value.field == field
        assert f"given twice, as {first!r} and {second!r}" in str(info.value)

    def test_both_spellings_in_a_file_name_the_file(self, tmp_path: Path) -> None:
        """In a file, the conflict error names the file and both keys."""
        path = tmp_path / "soa.json"
        path.write_text(json.dumps({**BASE, "serviceName": "other"}), encoding="utf-8")
        with pytest.raises(ConfigValidationError) as info:
            Config.from_file(path)
        assert str(path) in str(info.value)
        assert "'name' and 'serviceName'" in str(info.value)

    def test_console_only_keys_are_ignored(self) -> None:
        """The keys a Node soa.json keeps for the SOAJS console are read and dropped."""
        extras = {
            "tab": {"label": "x"},
            "swaggerFilename": "swagger.json",
            "swagger": True,
            "tags": ["a"],
            "attributes": {"a": ["b"]},
            "program": ["soajs"],
            "documentation": {"readme": "/README.md"},
            "errors": {"400": "bad"},
            "schema": {"get": {}},
        }
        assert Config.model_validate({**BASE, **extras}) == make()

    def test_an_unknown_key_is_still_refused(self) -> None:
        """A soa.json typo is refused like any other unknown field."""
        with pytest.raises(ConfigValidationError) as info:
            Config.model_validate({"serviceName": "x", "serviceGroup": "g", "servicePort": 1,
                                   "extkeyRequired": True})  # fmt: skip
        assert info.value.field == "extkeyRequired"

    def test_an_error_names_the_soa_json_spelling(self) -> None:
        """A bad serviceVersion is reported as version (serviceVersion)."""
        with pytest.raises(ConfigValidationError) as info:
            Config.model_validate({**BASE, "serviceVersion": "1.0.0"})
        assert info.value.field == "version"
        assert "version (serviceVersion): '1.0.0' is not a SOAJS version" in str(info.value)

    @pytest.mark.parametrize("version", [1.0, 1.2])
    def test_numeric_versions_follow_the_version_rules(self, version: float) -> None:
        """An integer serviceVersion is text; a float is refused, as for the version field."""
        assert Config.model_validate({**BASE, "serviceVersion": 3}).version == "3"
        with pytest.raises(ConfigValidationError) as info:
            Config.model_validate({**BASE, "serviceVersion": version})
        assert info.value.field == "version"
        assert "write the version as text" in str(info.value)

    def test_from_settings_overrides_by_soa_json_name(self) -> None:
        """Config.from_settings accepts an override under its soa.json spelling."""
        settings = Settings(service_name="hello", service_group="g", service_port=4100)
        assert Config.from_settings(settings, serviceName="other").name == "other"


class TestFromSettings:
    @pytest.fixture
    def service_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOAJS_SERVICE_NAME", "hello")
        monkeypatch.setenv("SOAJS_SERVICE_GROUP", "SOAJS Core Services")
        monkeypatch.setenv("SOAJS_SERVICE_PORT", "4100")
        monkeypatch.setenv("SOAJS_SERVICE_VERSION", "2")
        monkeypatch.setenv("SOAJS_SERVICE_TYPE", "service")

    @pytest.mark.usefixtures("service_env")
    def test_from_environment(self) -> None:
        """The SOAJS_SERVICE_* variables give the identity."""
        config = Config.from_settings(Settings())
        assert (config.name, config.group, config.port, config.version, config.type) == (
            "hello",
            "SOAJS Core Services",
            4100,
            "2",
            "service",
        )

    @pytest.mark.usefixtures("service_env")
    def test_default_settings_read_the_environment(self) -> None:
        """Without settings, the environment is read."""
        assert Config.from_settings().name == "hello"

    @pytest.mark.usefixtures("service_env")
    def test_overrides_win(self) -> None:
        """Keyword overrides, by snake_case or wire name, take precedence over settings."""
        config = Config.from_settings(Settings(), version="3", requestTimeout=30, oauth=True)
        assert (config.version, config.request_timeout, config.oauth) == ("3", 30, True)

    def test_missing_identity_names_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a service name anywhere, the error names SOAJS_SERVICE_NAME."""
        for var in ("NAME", "GROUP", "PORT", "VERSION", "TYPE"):
            monkeypatch.delenv(f"SOAJS_SERVICE_{var}", raising=False)
        with pytest.raises(ConfigValidationError) as info:
            Config.from_settings(Settings(), group="g", port=1)
        assert info.value.field == "name"
        assert "SOAJS_SERVICE_NAME" in str(info.value)

    def test_invalid_value_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A bad version from the environment is refused by the Config rules."""
        monkeypatch.setenv("SOAJS_SERVICE_VERSION", "1.0.0")
        with pytest.raises(ConfigValidationError) as info:
            Config.from_settings(Settings(), name="a", group="g", port=1)
        assert info.value.field == "version"
