"""The registry wire models, fed every recorded /getRegistry reply and a few hostile ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fixture_paths import FIXTURES
from pydantic import BaseModel, ValidationError

from soajs.errors import NotFound
from soajs.models import Database, Registry, Resource, Service

REGISTRY_FILES = sorted(FIXTURES.glob("*/getRegistry*.json"))
SECRET_KEYS = {"password", "secret", "credentials", "token"}


def registry_data(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["data"]
    return data


def secret_strings(node: Any, inside_secret: bool = False) -> set[str]:
    """Every non-empty string stored under a secret-looking key, however deep."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            found |= secret_strings(value, inside_secret or key in SECRET_KEYS)
    elif isinstance(node, list):
        for item in node:
            found |= secret_strings(item, inside_secret)
    elif isinstance(node, str) and inside_secret and len(node) > 3:
        found.add(node)
    return found


def every_model(node: Any) -> list[BaseModel]:
    """The model and every model nested in it."""
    models: list[BaseModel] = []
    if isinstance(node, BaseModel):
        models.append(node)
        for name in type(node).model_fields:
            models.extend(every_model(getattr(node, name)))
    elif isinstance(node, dict):
        for value in node.values():
            models.extend(every_model(value))
    elif isinstance(node, list):
        for item in node:
            models.extend(every_model(item))
    return models


def minimal(**extra: Any) -> dict[str, Any]:
    return {"environment": "dev", **extra}


HOSTILE: dict[str, Any] = {
    "environment": "prod",
    "coreDB": {
        "main": {
            "name": "main",
            "prefix": "p_",
            "cluster": "mongo_cluster",
            "servers": [{"host": "10.0.0.5", "port": 27017}],
            "credentials": {"username": "admin-user", "password": "db-password-main"},
            "uri": "mongodb://admin-user:uri-password@10.0.0.5/main",
            "sslKey": {"passphrase": "ssl-passphrase-xyz"},
        },
        "session": None,
    },
    "tenantMetaDB": {
        "urac": {"name": "#TENANT_NAME#_urac", "credentials": {"password": "tenant-db-pass"}}
    },
    "serviceConfig": {
        "key": {"algorithm": "aes256", "password": "key-password-abc"},
        "cookie": {"secret": "cookie-secret-abc"},
        "session": {"name": "soajsID", "secret": "session-secret-abc"},
        "oauth": {"secret": "oauth-secret-abc", "grants": ["password"]},
        "awareness": {"autoReloadRegistry": 2000},
    },
    "deployer": {
        "type": "container",
        "selected": "container.kubernetes.remote",
        "container": {"kubernetes": {"remote": {"auth": {"token": "k8s-token-abc"}}}},
    },
    "custom": {"payments": {"name": "payments", "value": {"apiKey": "custom-api-key-abc"}}},
    "resources": {
        "cluster": {
            "mongo_cluster": {
                "name": "mongo_cluster",
                "type": "cluster",
                "config": {"credentials": {"password": "resource-password-abc"}},
            }
        }
    },
    "services": {"billing": {"group": "Billing", "port": 4100, "apiSecret": "service-secret-abc"}},
}
HOSTILE_SECRETS = [
    "db-password-main",
    "uri-password",
    "ssl-passphrase-xyz",
    "tenant-db-pass",
    "key-password-abc",
    "cookie-secret-abc",
    "session-secret-abc",
    "oauth-secret-abc",
    "k8s-token-abc",
    "custom-api-key-abc",
    "resource-password-abc",
    "service-secret-abc",
]


def test_every_registry_fixture_is_found() -> None:
    """The captured and upstream folders hold the six recorded registries."""
    assert len(REGISTRY_FILES) == 6
    assert {path.parent.name for path in REGISTRY_FILES} == {"captured", "upstream"}


@pytest.mark.parametrize("path", REGISTRY_FILES, ids=lambda path: path.name)
class TestRecordedRegistries:
    def test_loads_and_keeps_the_raw_dict(self, path: Path) -> None:
        """A recorded registry loads and its raw dict is the one received."""
        data = registry_data(path)
        registry = Registry.from_wire(data)
        assert registry.environment == "dev"
        assert registry.name == "dev"
        assert registry.raw is data
        assert registry.time_loaded == data["timeLoaded"]

    def test_top_level_fields(self, path: Path) -> None:
        """domain, prefixes, protocol, port and awareness read the wire keys."""
        data = registry_data(path)
        registry = Registry.from_wire(data)
        assert registry.domain == data.get("domain")
        assert registry.site_prefix == data.get("sitePrefix")
        assert registry.api_prefix == data.get("apiPrefix")
        assert registry.protocol == data.get("protocol")
        assert registry.port == data.get("port")
        assert registry.awareness is not None
        # before the first health check the gateway does not know its own host yet
        assert registry.awareness.host == data["awareness"]["host"]
        assert registry.awareness.port == 4000

    def test_databases(self, path: Path) -> None:
        """Every coreDB and tenantMetaDB entry answers get_database and get_all_databases."""
        data = registry_data(path)
        registry = Registry.from_wire(data)
        expected = {**data["tenantMetaDB"], **data["coreDB"]}
        assert set(registry.get_all_databases()) == set(expected)
        for name, raw in expected.items():
            database = registry.get_database(name)
            assert isinstance(database, Database)
            assert database.prefix == raw.get("prefix")
            assert database.name == raw.get("name")
            assert database.credentials == raw.get("credentials")
        provision = registry.get_database("provision")
        assert provision.servers is not None
        assert provision.servers[0].host == "127.0.0.1"
        assert provision.registry_location is not None
        assert provision.registry_location.l1 == "coreDB"
        with pytest.raises(NotFound, match="'main'"):
            registry.get_database("main")

    def test_services(self, path: Path) -> None:
        """Every services entry answers get_service; the controller entry is complete."""
        data = registry_data(path)
        registry = Registry.from_wire(data)
        for name, raw in data["services"].items():
            service = registry.get_service(name)
            assert isinstance(service, Service)
            assert (service.group, service.port) == (raw["group"], raw["port"])
        controller = registry.get_service("controller")
        assert controller.version == "1"
        assert controller.latest_version == "1"
        assert controller.host_list() == ["127.0.0.1"]
        assert controller.host_list("2") == []
        assert controller.request_timeout == 30
        with pytest.raises(NotFound, match="'nope'"):
            registry.get_service("nope")

    def test_service_config(self, path: Path) -> None:
        """serviceConfig exposes the reload interval, ports, key, logger and session."""
        data = registry_data(path)
        config = Registry.from_wire(data).service_config
        raw = data["serviceConfig"]
        assert config.awareness.reload_interval_ms == raw["awareness"]["autoRelaodRegistry"]
        assert config.awareness.health_check_interval == raw["awareness"]["healthCheckInterval"]
        assert config.ports.controller == 4000
        assert config.ports.maintenance_inc == 1000
        assert config.ports.random_inc == 100
        assert config.key is not None
        assert config.key.algorithm == "aes256"
        assert config.key.password == "soajs key lal massa"
        assert config.logger is not None
        assert config.logger.level == "debug"
        assert config.cookie is not None
        assert config.cookie.secret == raw["cookie"]["secret"]
        assert config.session is not None
        assert config.session.name == "soajsID"
        assert config.session.secret == raw["session"]["secret"]

    def test_deployer(self, path: Path) -> None:
        """The deployer is typed and keeps its container section reachable."""
        data = registry_data(path)
        deployer = Registry.from_wire(data).deployer
        assert (deployer.type, deployer.selected) == ("manual", "manual")
        assert deployer.manual == {"nodes": "127.0.0.1"}
        assert deployer.container == data["deployer"].get("container")

    def test_resources(self, path: Path) -> None:
        """Resources answer by name and by type."""
        data = registry_data(path)
        registry = Registry.from_wire(data)
        expected = {name for by_name in data["resources"].values() for name in by_name}
        assert {resource.name for resource in registry.get_resources()} == expected
        for type_name, by_name in data["resources"].items():
            assert {res.name for res in registry.get_resources(type_name)} == set(by_name)
            for name, raw in by_name.items():
                resource = registry.get_resource(name)
                assert isinstance(resource, Resource)
                assert resource.type == type_name
                assert resource.config == raw["config"]
        assert registry.get_resources("no-such-type") == []
        with pytest.raises(NotFound, match="'nope'"):
            registry.get_resource("nope")

    def test_custom(self, path: Path) -> None:
        """get_custom() gives them all; get_custom(name) gives one or raises NotFound."""
        data = registry_data(path)
        registry = Registry.from_wire(data)
        assert set(registry.get_custom()) == set(data["custom"])
        for name, raw in data["custom"].items():
            entry = registry.get_custom(name)
            assert entry.value == raw["value"]
            assert entry.id == raw["_id"]
        with pytest.raises(NotFound, match="'nope'"):
            registry.get_custom("nope")

    def test_daemons(self, path: Path) -> None:
        """Daemons are present only when the gateway sent them."""
        data = registry_data(path)
        registry = Registry.from_wire(data)
        if "daemons" in data:
            assert registry.daemons is not None
            for name, raw in data["daemons"].items():
                assert registry.get_daemon(name).name == raw["name"]
        else:
            assert registry.daemons is None
        with pytest.raises(NotFound, match="'nope'"):
            registry.get_daemon("nope")

    def test_repr_hides_every_secret(self, path: Path) -> None:
        """No secret of the recorded registry shows in repr() or str() of any model."""
        data = registry_data(path)
        registry = Registry.from_wire(data)
        secrets = secret_strings(data) | {"soajs key lal massa"}
        assert any("secret" in secret for secret in secrets)
        for model in every_model(registry):
            for text in (repr(model), str(model)):
                for secret in secrets:
                    assert secret not in text

    def test_round_trip_by_alias(self, path: Path) -> None:
        """Dumping by alias gives the wire keys back, unknown keys included."""
        data = registry_data(path)
        dumped = Registry.from_wire(data).model_dump(by_alias=True, exclude_none=True)
        assert dumped["coreDB"]["provision"]["URLParam"] == data["coreDB"]["provision"]["URLParam"]
        assert (
            dumped["serviceConfig"]["awareness"]["autoRelaodRegistry"]
            == (data["serviceConfig"]["awareness"]["autoRelaodRegistry"])
        )


class TestReloadInterval:
    def test_correct_spelling(self) -> None:
        """autoReloadRegistry is read."""
        registry = Registry.from_wire(
            minimal(serviceConfig={"awareness": {"autoReloadRegistry": 2500}})
        )
        assert registry.service_config.awareness.reload_interval_ms == 2500

    def test_real_misspelling(self) -> None:
        """autoRelaodRegistry, the key real registries carry, is the fallback."""
        registry = Registry.from_wire(
            minimal(serviceConfig={"awareness": {"autoRelaodRegistry": 1500}})
        )
        assert registry.service_config.awareness.reload_interval_ms == 1500

    def test_correct_spelling_wins(self) -> None:
        """With both keys, autoReloadRegistry wins."""
        awareness = {"autoReloadRegistry": 7000, "autoRelaodRegistry": 1500}
        registry = Registry.from_wire(minimal(serviceConfig={"awareness": awareness}))
        assert registry.service_config.awareness.reload_interval_ms == 7000

    def test_non_positive_falls_back(self) -> None:
        """A zero autoReloadRegistry falls back to the misspelled key."""
        awareness = {"autoReloadRegistry": 0, "autoRelaodRegistry": 1500}
        registry = Registry.from_wire(minimal(serviceConfig={"awareness": awareness}))
        assert registry.service_config.awareness.reload_interval_ms == 1500

    @pytest.mark.parametrize(
        "service_config",
        [None, {}, {"awareness": None}, {"awareness": {"autoRelaodRegistry": -5}}],
    )
    def test_unset(self, service_config: Any) -> None:
        """Without a positive value in either key there is no interval."""
        registry = Registry.from_wire(minimal(serviceConfig=service_config))
        assert registry.service_config.awareness.reload_interval_ms is None


class TestLenience:
    def test_minimal_registry(self) -> None:
        """Only environment is required; maps default to empty."""
        registry = Registry.from_wire(minimal())
        assert registry.core_db == {}
        assert registry.services == {}
        assert registry.get_all_databases() == {}
        assert registry.service_config.ports.controller is None
        assert registry.deployer.type is None
        assert registry.awareness is None

    def test_environment_is_required(self) -> None:
        """A dict without environment is not a registry."""
        with pytest.raises(ValidationError, match="environment"):
            Registry.from_wire({"name": "dev"})

    def test_nulls_are_empty(self) -> None:
        """null maps (the gateway omits falsy keys; others send null) read as empty."""
        nulls = dict.fromkeys(
            ("coreDB", "tenantMetaDB", "serviceConfig", "deployer", "custom", "resources"), None
        )
        registry = Registry.from_wire(minimal(services=None, **nulls))
        assert registry.custom == {}
        assert registry.resources == {}
        assert registry.services == {}

    def test_null_database_is_not_found(self) -> None:
        """coreDB.session can be null; it is then not a database."""
        registry = Registry.from_wire(minimal(coreDB={"session": None}))
        assert registry.core_db == {"session": None}
        assert registry.get_all_databases() == {}
        with pytest.raises(NotFound, match="'session'"):
            registry.get_database("session")

    def test_core_db_wins_over_tenant_db(self) -> None:
        """A name in both maps resolves to the coreDB entry."""
        registry = Registry.from_wire(
            minimal(coreDB={"urac": {"prefix": "core"}}, tenantMetaDB={"urac": {"prefix": "t"}})
        )
        assert registry.get_database("urac").prefix == "core"
        assert registry.get_all_databases()["urac"].prefix == "core"

    def test_unknown_keys_are_kept(self) -> None:
        """Unknown keys at any level stay reachable through model_extra."""
        registry = Registry.from_wire(
            minimal(
                profileHint="x",
                services={"s": {"group": "g", "port": 1, "newKey": [1]}},
                serviceConfig={"throttling": {"a": 1}},
            )
        )
        assert registry.model_extra == {"profileHint": "x"}
        assert registry.get_service("s").model_extra == {"newKey": [1]}
        assert registry.service_config.model_extra == {"throttling": {"a": 1}}

    def test_partial_entries(self) -> None:
        """Entries missing what strict models required still load."""
        registry = Registry.from_wire(
            minimal(
                coreDB={"x": {"prefix": ""}},
                services={"s": {}},
                custom={"c": {"value": 1}},
                resources={"cluster": {"r": {}}},
            )
        )
        assert registry.get_database("x").name is None
        assert registry.get_service("s").group is None
        assert registry.get_custom("c").locked is None
        assert registry.get_resource("r").config is None

    def test_numeric_versions_become_strings(self) -> None:
        """A numeric version (older data) reads as a string, like the gateway's keys."""
        registry = Registry.from_wire(minimal(services={"s": {"version": 2}}))
        assert registry.get_service("s").version == "2"

    def test_snake_case_names_are_accepted(self) -> None:
        """Models can be built in Python with the snake_case names."""
        registry = Registry(environment="dev", core_db={"main": Database(prefix="p")})
        assert registry.get_database("main").prefix == "p"
        assert registry.raw["environment"] == "dev"

    def test_models_are_immutable(self) -> None:
        """A snapshot cannot be changed by attribute assignment."""
        registry = Registry.from_wire(minimal())
        with pytest.raises(ValidationError):
            registry.environment = "prod"  # type: ignore[misc]


class TestSecrets:
    def test_no_secret_in_any_repr(self) -> None:
        """repr() and str() of the registry and of every nested model show no secret."""
        registry = Registry.from_wire(copy.deepcopy(HOSTILE))
        models = every_model(registry)
        assert len(models) > 10
        for model in models:
            for text in (repr(model), str(model)):
                for secret in HOSTILE_SECRETS:
                    assert secret not in text, (type(model).__name__, secret)

    def test_database_repr_shows_only_identity(self) -> None:
        """A database shows its name, prefix and cluster and nothing else."""
        database = Registry.from_wire(copy.deepcopy(HOSTILE)).get_database("main")
        assert repr(database) == "Database(name='main', prefix='p_', cluster='mongo_cluster')"
        assert "10.0.0.5" not in repr(database)

    def test_secrets_stay_reachable(self) -> None:
        """The raw values are still there for code that needs them."""
        registry = Registry.from_wire(copy.deepcopy(HOSTILE))
        main = registry.get_database("main")
        assert main.credentials == {"username": "admin-user", "password": "db-password-main"}
        assert main.model_extra is not None
        assert main.model_extra["uri"].endswith("@10.0.0.5/main")
        config = registry.service_config
        assert config.key is not None
        assert config.key.password == "key-password-abc"
        assert config.cookie is not None
        assert config.cookie.secret == "cookie-secret-abc"
        assert config.session is not None
        assert config.session.secret == "session-secret-abc"
        assert registry.get_custom("payments").value == {"apiKey": "custom-api-key-abc"}
        assert registry.raw["serviceConfig"]["oauth"]["secret"] == "oauth-secret-abc"

    def test_repr_still_identifies(self) -> None:
        """Hiding secrets keeps the names a reader needs."""
        text = repr(Registry.from_wire(copy.deepcopy(HOSTILE)))
        assert "environment='prod'" in text
        assert "'main'" in text
        assert "algorithm='aes256'" in text
        assert "billing" in text
