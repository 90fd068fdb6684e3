"""The helpers users import in their own tests: fake registry, header builders, fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from fixture_paths import FIXTURES

import soajs.testing
from soajs import pytest_plugin
from soajs.container import SoajsContainer
from soajs.errors import NotFound
from soajs.inject import parse_inject_header
from soajs.models.service_config import Config
from soajs.settings import Settings
from soajs.testing import (
    DEFAULT_REGISTRY,
    FakeRegistryManager,
    build_inject_header,
    inject_header_from_file,
)

CAPTURED_REGISTRY = FIXTURES / "captured" / "getRegistry.dev.hello.after-register.response.json"
RAW_STRINGS = FIXTURES / "captured" / "soajsinjectobj.raw-header-strings.json"


class TestBuildInjectHeader:
    def test_defaults_parse_as_a_gateway_context(self) -> None:
        """The default header parses into a context with a tenant, key and application."""
        context = parse_inject_header(build_inject_header())
        assert context.tenant.code == "TTEN"
        assert context.application.package == "TPROD_BASIC"
        assert context.awareness is not None
        assert context.awareness.port == 4000
        assert context.urac is None

    def test_is_compact_json_in_gateway_key_order(self) -> None:
        """The bytes are JSON.stringify-style compact JSON with the gateway's key order."""
        raw = build_inject_header(urac={"_id": "u1", "username": "zoe"})
        text = raw.decode("latin-1")
        assert ", " not in text
        assert ": " not in text
        assert list(json.loads(text)) == [
            "tenant",
            "key",
            "application",
            "package",
            "device",
            "geo",
            "urac",
            "param",
            "awareness",
        ]

    def test_latin1_tenant_name_is_one_byte(self) -> None:
        """A tenant name with é is sent as the single Latin-1 byte, as Node does."""
        raw = build_inject_header(tenant_name="Café")
        assert b"Caf\xe9" in raw
        assert parse_inject_header(raw).tenant.name == "Café"

    def test_urac_names_are_percent_encoded_and_decoded_back(self) -> None:
        """User names are percent-encoded like the gateway, and the parser gives them back."""
        raw = build_inject_header(
            urac={"_id": "u1", "username": "zoe", "firstName": "Zoë", "lastName": "O'Brien"}
        )
        assert b'"firstName":"Zo%C3%AB"' in raw
        assert b'"lastName":"O\'Brien"' in raw
        context = parse_inject_header(raw)
        assert context.urac is not None
        assert context.urac.first_name == "Zoë"
        assert context.param is not None
        assert context.param.urac_profile is False

    def test_inter_connect_and_config(self) -> None:
        """interConnect items and key.config land where the gateway puts them."""
        raw = build_inject_header(
            config={"hello": {"limit": 10}},
            inter_connect=[{"name": "hello", "version": "1", "host": "10.0.0.5", "port": 4100}],
        )
        context = parse_inject_header(raw)
        assert context.services_config == {"hello": {"limit": 10}}
        assert context.awareness is not None
        assert context.awareness.inter_connect[0].host == "10.0.0.5"

    def test_optional_parts_can_be_left_out(self) -> None:
        """None leaves out tenant.name, device, geo and awareness."""
        data = json.loads(
            build_inject_header(tenant_name=None, device=None, geo_ip=None, awareness_host=None)
        )
        assert "name" not in data["tenant"]
        assert not {"device", "geo", "awareness"} & set(data)

    def test_extra_keys_replace_top_level_values(self) -> None:
        """Extra keyword arguments add or replace top-level keys verbatim."""
        data = json.loads(build_inject_header(geo={"ip": None}, custom=1))
        assert data["geo"] == {"ip": None}
        assert data["custom"] == 1

    def test_package_acl(self) -> None:
        """package_acl fills package.acl, which the parser exposes."""
        context = parse_inject_header(build_inject_header(package_acl={"hello": {"1": {}}}))
        assert context.package.acl == {"hello": {"1": {}}}

    def test_beyond_latin1_is_refused(self) -> None:
        """A character Node cannot put in a header is a ValueError, not a broken header."""
        with pytest.raises(ValueError, match="Latin-1"):
            build_inject_header(tenant_name="東京")


class TestInjectHeaderFromFile:
    def test_parsed_fixture_round_trips(self) -> None:
        """A parsed-header file gives bytes that parse back to the same data."""
        path = FIXTURES / "captured" / "soajsinjectobj.secure-urac-jwt.json"
        context = parse_inject_header(inject_header_from_file(path))
        assert context.urac is not None
        assert context.urac.first_name == "Zoë"
        assert json.loads(context.raw_header) == json.loads(path.read_text(encoding="utf-8"))

    def test_raw_string_is_verbatim(self) -> None:
        """A named raw header comes back byte for byte."""
        raw = json.loads(RAW_STRINGS.read_text(encoding="utf-8"))["hello-get"]
        assert inject_header_from_file(RAW_STRINGS, "hello-get") == raw.encode("latin-1")

    def test_raw_strings_need_a_name(self) -> None:
        """A raw-strings file without a name says which names exist."""
        with pytest.raises(ValueError, match="hello-get"):
            inject_header_from_file(RAW_STRINGS)

    def test_unknown_name(self) -> None:
        """An unknown name is a ValueError naming the file."""
        with pytest.raises(ValueError, match="no raw header named 'nope'"):
            inject_header_from_file(RAW_STRINGS, "nope")


class TestFakeRegistryManager:
    def test_default_registry_reads_like_the_real_one(self) -> None:
        """The default fake answers the read API without a network."""
        registry = FakeRegistryManager()
        assert registry.registry.environment == "dev"
        assert registry.get_service("controller").port == 4000
        assert registry.awareness is not None
        assert registry.fetches == 1
        with pytest.raises(NotFound):
            registry.get_database("main")

    def test_from_a_captured_reply_file(self) -> None:
        """A whole /getRegistry reply file is accepted; its data is the registry."""
        registry = FakeRegistryManager(CAPTURED_REGISTRY, service_name="hello")
        assert registry.get_service("hello").port == 4100
        assert registry.env_code == "dev"
        assert registry.registry.raw == json.loads(CAPTURED_REGISTRY.read_text())["data"]

    def test_reload_sees_a_new_registry(self) -> None:
        """set_registry then reload swaps the snapshot, as a gateway reload would."""
        registry = FakeRegistryManager()
        data = json.loads(json.dumps(DEFAULT_REGISTRY))
        data["services"]["hello"] = {"group": "test", "port": 4100}
        registry.set_registry(data)
        assert "hello" not in registry.registry.services
        registry.reload()
        assert registry.get_service("hello").group == "test"
        assert registry.status.reloads == 2

    def test_register_records_the_body(self) -> None:
        """register() records the gateway body with mw: true and returns True."""
        config = Config(name="hello", group="test", port=4100, version="1")
        registry = FakeRegistryManager(config=config, settings=Settings())
        assert registry.register() is True
        (body,) = registry.registrations
        assert body["name"] == "hello"
        assert body["port"] == 4100
        assert body["mw"] is True

    def test_refused_registration_is_false(self) -> None:
        """A refusing fake makes register() return False, as result:false does."""
        config = Config(name="hello", group="test", port=4100, version="1")
        registry = FakeRegistryManager(config=config, accept_registrations=False)
        assert registry.register() is False
        assert len(registry.registrations) == 1

    def test_registry_without_environment_is_refused(self) -> None:
        """A dict that is not a registry is a ValueError."""
        with pytest.raises(ValueError, match="environment"):
            FakeRegistryManager({"services": {}})


class TestFixtures:
    def test_container_fixture_has_the_fake(
        self, soajs_container: SoajsContainer, soajs_registry: FakeRegistryManager
    ) -> None:
        """soajs_container resolves its registry to the soajs_registry fake."""
        assert soajs_container.registry() is soajs_registry

    def test_header_fixture_parses(self, soajs_header: bytes) -> None:
        """soajs_header is a parseable gateway header."""
        assert parse_inject_header(soajs_header).tenant.code == "TTEN"

    def test_fake_is_shared_across_threads(self, soajs_container: SoajsContainer) -> None:
        """Every thread resolves the same overridden registry."""
        seen: list[object] = []
        threads = [
            threading.Thread(target=lambda: seen.append(soajs_container.registry()))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({id(item) for item in seen}) == 1

    def test_plugin_is_loaded_through_its_entry_point(self, request: pytest.FixtureRequest) -> None:
        """pytest loads soajs.pytest_plugin as plugin "soajs" from the pytest11 entry point."""
        (entry,) = entry_points(group="pytest11", name="soajs")
        assert entry.value == "soajs.pytest_plugin"
        assert request.config.pluginmanager.get_plugin("soajs") is pytest_plugin

    def test_plugin_only_offers_fixtures(self, request: pytest.FixtureRequest) -> None:
        """The plugin defines no hook and no autouse fixture: a test asking for none gets none."""
        assert [name for name in vars(pytest_plugin) if name.startswith("pytest_")] == []
        assert set(pytest_plugin.__all__).isdisjoint(request.fixturenames)

    def test_old_names_still_import_from_soajs_testing(self) -> None:
        """Conftests that import the fixtures from soajs.testing get the plugin's fixtures."""
        from soajs.testing import soajs_container, soajs_header, soajs_registry

        assert soajs_container is pytest_plugin.soajs_container
        assert soajs_header is pytest_plugin.soajs_header
        assert soajs_registry is pytest_plugin.soajs_registry
        with pytest.raises(AttributeError, match="no attribute 'local_gateway'"):
            soajs.testing.local_gateway  # noqa: B018 - the attribute lookup is the test


def run_python(code: str) -> str:
    """Run a Python script in a fresh interpreter of this environment; return its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


class TestWithTheCoreOnly:
    def test_helpers_need_neither_pytest_nor_a_framework(self) -> None:
        """soajs.testing imports and works when pytest and every framework are missing."""
        output = run_python(
            """
            import json, sys

            for missing in ("pytest", "fastapi", "starlette", "flask", "django", "uvicorn", "yaml"):
                sys.modules[missing] = None  # makes `import missing` fail as if not installed
            from soajs.testing import FakeRegistryManager, build_inject_header

            fake = FakeRegistryManager()
            fake.stop()
            try:
                from soajs.testing import soajs_header
            except ModuleNotFoundError as error:
                missing = error.name
            print(json.dumps({"env": fake.env_code, "header": len(build_inject_header()),
                              "missing": missing}))
            """
        )
        seen = json.loads(output)
        assert seen["env"] == "dev"
        assert seen["header"] > 100
        assert seen["missing"] == "pytest"

    def test_plugin_imports_nothing_until_a_fixture_is_used(self) -> None:
        """Importing the plugin loads no helper, HTTP client, gateway or framework."""
        output = run_python(
            """
            import sys

            import soajs.pytest_plugin

            roots = {"httpx", "fastapi", "starlette", "flask", "django", "uvicorn", "yaml"}
            loaded = [name for name in sys.modules if name.split(".")[0] in roots]
            loaded += [name for name in sys.modules if name.startswith("soajs.")]
            print(" ".join(sorted(loaded)))
            """
        )
        assert output.split() == ["soajs.errors", "soajs.pytest_plugin", "soajs.settings"]


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pytest in a project folder of its own, as a user's project would."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", *args],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


USER_TEST = """
from soajs.inject import parse_inject_header


def test_uses_the_fixtures(soajs_container, soajs_registry, soajs_header):
    assert soajs_container.registry() is soajs_registry
    assert parse_inject_header(soajs_header).tenant.code == "TTEN"
"""


class TestPluginInAUsersProject:
    def test_fixtures_come_without_a_conftest_until_turned_off(self, tmp_path: Path) -> None:
        """A project with no conftest gets the fixtures, and `-p no:soajs` takes them away."""
        (tmp_path / "test_user.py").write_text(USER_TEST, encoding="utf-8")
        enabled = run_pytest(tmp_path)
        assert enabled.returncode == 0, enabled.stdout[-3000:]
        assert "1 passed" in enabled.stdout
        disabled = run_pytest(tmp_path, "-p", "no:soajs")
        assert disabled.returncode == 1
        assert "fixture 'soajs_container' not found" in disabled.stdout

    def test_old_conftest_works_and_a_missing_extra_is_named(self, tmp_path: Path) -> None:
        """A conftest written for soajs.testing still works; local_gateway names its extra."""
        (tmp_path / "conftest.py").write_text(
            textwrap.dedent(
                """
                import sys

                import pytest

                from soajs.testing import soajs_header  # noqa: F401

                pytest_plugins = ["soajs.testing"]


                @pytest.fixture
                def without_uvicorn(monkeypatch):
                    monkeypatch.setitem(sys.modules, "uvicorn", None)
                """
            ),
            encoding="utf-8",
        )
        (tmp_path / "test_user.py").write_text(
            USER_TEST
            + textwrap.dedent(
                """

                def test_gateway(without_uvicorn, local_gateway):
                    pass
                """
            ),
            encoding="utf-8",
        )
        result = run_pytest(tmp_path)
        assert "1 passed, 1 error" in result.stdout, result.stdout[-3000:]
        assert "local_gateway fixture needs the gateway extra" in result.stdout
        assert "pip install 'soajs-python[gateway]'" in result.stdout
