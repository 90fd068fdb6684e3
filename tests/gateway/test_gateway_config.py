"""The local gateway's configuration file, its errors and the MongoDB seed converter."""

from __future__ import annotations

import json

import pytest

from soajs.errors import ConfigValidationError
from soajs.gateway import GatewayConfig, GatewayConfigError, config_from_seed, load_config
from soajs.gateway.config import default_dev_config

from .conftest import CAPTURED, EXAMPLE, captured


class TestLoadConfig:
    def test_the_example_file_is_valid(self):
        """examples/gateway.yaml loads, with its one external key for dev."""
        config = load_config(EXAMPLE)
        assert config.env == "dev"
        assert config.environment.data_port == 4000
        assert config.ext_keys() == [
            captured("db.seed.core_provision.json")["tenants"][0]["applications"][0]["keys"][0][
                "extKeys"
            ][0]["extKey"]
        ]

    def test_json_files_are_read_as_json(self, tmp_path):
        """A .json file is parsed as JSON."""
        path = tmp_path / "gw.json"
        path.write_text(json.dumps({"environment": {"code": "QA", "dataPort": 4100}}))
        config = load_config(path)
        assert config.env == "qa"
        assert config.environment.data_port == 4100

    def test_a_seed_file_is_converted(self):
        """A MongoDB seed (environment is a list) is recognised and converted."""
        config = load_config(CAPTURED / "db.seed.core_provision.json")
        assert config.tenants[0].code == "TTEN"

    def test_errors_name_the_field(self, tmp_path):
        """A wrong value is reported with its location in the file."""
        path = tmp_path / "gw.yaml"
        path.write_text("environment:\n  healthCheckInterval: soon\n")
        with pytest.raises(GatewayConfigError) as caught:
            load_config(path)
        assert "environment.healthCheckInterval" in str(caught.value)
        assert caught.value.field == "environment.healthCheckInterval"
        assert isinstance(caught.value, ConfigValidationError)

    def test_unknown_fields_are_refused(self, tmp_path):
        """A misspelt field is an error, not silently ignored."""
        path = tmp_path / "gw.yaml"
        path.write_text("environment:\n  helthCheckInterval: 200\n")
        with pytest.raises(GatewayConfigError, match="helthCheckInterval"):
            load_config(path)

    def test_invalid_yaml_and_json_are_reported(self, tmp_path):
        """Unparseable files raise GatewayConfigError naming the file."""
        bad_yaml = tmp_path / "bad.yaml"
        bad_yaml.write_text("environment: [\n")
        bad_json = tmp_path / "bad.json"
        bad_json.write_text("{")
        for path in (bad_yaml, bad_json):
            with pytest.raises(GatewayConfigError, match=path.name):
                load_config(path)

    def test_an_application_must_name_a_known_package(self):
        """A key's package must exist among the products."""
        data = default_dev_config().model_dump(by_alias=True)
        data["tenants"][0]["applications"][0]["package"] = "NOPE"
        with pytest.raises(GatewayConfigError, match=r"applications\[0\]\.package"):
            GatewayConfig.from_mapping(data)

    def test_the_same_external_key_twice_is_refused(self):
        """Two applications cannot share one external key."""
        data = default_dev_config().model_dump(by_alias=True)
        app = data["tenants"][0]["applications"][0]
        data["tenants"][0]["applications"].append(app)
        with pytest.raises(GatewayConfigError, match="configured twice"):
            GatewayConfig.from_mapping(data)

    def test_secrets_stay_out_of_the_repr(self):
        """External keys and the tenant secret are not shown by repr."""
        config = default_dev_config()
        text = repr(config)
        assert config.ext_keys()[0] not in text
        assert "tenant jwt secret" not in text

    def test_errors_never_show_a_given_value(self, tmp_path):
        """A secret-looking value in a refused field appears neither in the error nor its cause."""
        path = tmp_path / "gw.yaml"
        path.write_text(
            "tenants:\n"
            "  - id: t1\n"
            "    code: TTEN\n"
            "    oauth: {secret: [s3cr3t-jwt-value]}\n"
            "    applications:\n"
            "      - {product: P, package: P_BASIC, appId: a1,\n"
            "         keys: [{key: k1, extKeys: [{extKey: {value: s3cr3t-ext-key}}]}]}\n"
        )
        with pytest.raises(GatewayConfigError) as caught:
            load_config(path)
        assert caught.value.field == "tenants.0.oauth.secret"
        assert "extKeys.0.extKey" in str(caught.value)
        for shown in (str(caught.value), repr(caught.value.__context__)):
            assert "s3cr3t" not in shown

    def test_awareness_given_inside_service_config_is_used(self):
        """serviceConfig.awareness values are taken when not given directly."""
        config = GatewayConfig.from_mapping(
            {
                "environment": {
                    "serviceConfig": {
                        "awareness": {"healthCheckInterval": 500, "autoReloadRegistry": 9000}
                    }
                }
            }
        )
        assert config.environment.health_check_interval == 500
        assert config.environment.auto_reload_registry == 9000


class TestSeed:
    def test_every_collection_is_converted(self, seed_config):
        """Environment, products and tenants come from the seed, ids as hex strings."""
        seed = captured("db.seed.core_provision.json")
        environment = seed_config.environment
        assert environment.code == "DEV"
        assert environment.data_port == 4000
        assert environment.maintenance_inc == 1000
        assert environment.health_check_interval == 2000
        assert environment.controller.request_timeout_renewal == 0
        assert environment.service_config["cors"]["origin"] == "*"
        tenant = seed_config.tenants[0]
        assert tenant.id == "6a1e00000000000000000001"
        assert tenant.oauth is not None
        assert tenant.oauth.secret is not None
        assert tenant.oauth.secret.get_secret_value() == "tenant jwt secret"
        application = tenant.applications[0]
        assert application.app_id == "6a1e00000000000000000a01"
        assert (
            application.keys[0].config == seed["tenants"][0]["applications"][0]["keys"][0]["config"]
        )
        package = seed_config.package("TPROD_BASIC")
        assert package is not None
        assert package.acl == seed["products"][0]["packages"][0]["acl"]

    def test_extended_json_values_are_plain(self):
        """$date, $numberLong and $oid wrappers become numbers and strings."""
        seed = captured("db.seed.core_provision.json")
        ext = seed["tenants"][0]["applications"][0]["keys"][0]["extKeys"][0]
        ext["expDate"] = {"$date": "2030-01-01T00:00:00Z"}
        seed["environment"][0]["port"] = {"$numberLong": "4000"}
        config = config_from_seed(seed)
        assert config.tenants[0].applications[0].keys[0].ext_keys[0].exp_date == 1893456000000
        assert config.environment.port == 4000

    def test_an_environment_is_chosen_by_code(self):
        """env= picks the record; an unknown code is an error."""
        seed = captured("db.seed.core_provision.json")
        assert config_from_seed(seed, env="dev").env == "dev"
        with pytest.raises(GatewayConfigError, match="PROD"):
            config_from_seed(seed, env="prod")
