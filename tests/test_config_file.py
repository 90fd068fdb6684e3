"""soajs.config_file: the one rule for reading a JSON or YAML configuration file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from soajs import Config, ConfigValidationError
from soajs.config_file import MAX_CONFIG_FILE_SIZE, read_config_file
from soajs.gateway import GatewayConfigError, load_config

SERVICE = {"name": "hello", "group": "demo", "port": 4000}


class TestSuffixRule:
    def test_yml_is_read_as_yaml(self, tmp_path: Path) -> None:
        """A .yml file is parsed as YAML."""
        path = tmp_path / "service.yml"
        path.write_text("name: hello\ngroup: demo\nport: 4000\n", encoding="utf-8")
        assert Config.from_file(path).port == 4000

    def test_json_under_another_name_loads(self, tmp_path: Path) -> None:
        """A JSON file under a name that is neither .json nor .yaml loads (YAML reads JSON)."""
        path = tmp_path / "soa.conf"
        path.write_text(json.dumps(SERVICE), encoding="utf-8")
        assert Config.from_file(path).name == "hello"

    def test_yaml_under_another_name_loads_for_the_gateway(self, tmp_path: Path) -> None:
        """A gateway file under another name is read as YAML, as the docs have always said."""
        path = tmp_path / "gateway.conf"
        path.write_text("environment:\n  code: QA\n", encoding="utf-8")
        assert load_config(path).env == "qa"

    def test_without_pyyaml_another_name_is_json(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without PyYAML, a file under another name is read as JSON."""
        monkeypatch.setitem(sys.modules, "yaml", None)
        path = tmp_path / "soa.conf"
        path.write_text(json.dumps(SERVICE), encoding="utf-8")
        assert read_config_file(path, expected="an object") == SERVICE

    def test_without_pyyaml_the_gateway_error_names_the_extra(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A YAML gateway file without PyYAML is a GatewayConfigError naming the extra."""
        monkeypatch.setitem(sys.modules, "yaml", None)
        path = tmp_path / "gateway.yaml"
        path.write_text("environment:\n  code: QA\n", encoding="utf-8")
        with pytest.raises(GatewayConfigError) as caught:
            load_config(path)
        assert "needs PyYAML, which is not installed: pip install 'soajs-python[gateway]'" in str(
            caught.value
        )
        assert str(path) in str(caught.value)


class TestSizeLimit:
    def test_the_default_limit_is_four_mebibytes(self) -> None:
        """The documented default bound is 4 MiB."""
        assert MAX_CONFIG_FILE_SIZE == 4 * 1024 * 1024

    def test_a_file_at_the_limit_loads(self, tmp_path: Path) -> None:
        """A file exactly max_size bytes long is read."""
        path = tmp_path / "service.json"
        path.write_text(json.dumps(SERVICE), encoding="utf-8")
        size = path.stat().st_size
        assert Config.from_file(path, max_size=size).name == "hello"

    def test_a_larger_service_config_is_refused(self, tmp_path: Path) -> None:
        """One byte over max_size is a ConfigValidationError naming the file and the limit."""
        path = tmp_path / "service.json"
        path.write_text(json.dumps(SERVICE), encoding="utf-8")
        size = path.stat().st_size
        with pytest.raises(ConfigValidationError, match=f"larger than {size - 1} bytes") as caught:
            Config.from_file(path, max_size=size - 1)
        assert str(path) in str(caught.value)

    def test_a_larger_gateway_config_is_refused(self, tmp_path: Path) -> None:
        """The gateway's loader applies the same bound, with its own error class."""
        path = tmp_path / "gateway.yaml"
        path.write_text("environment:\n  code: QA\n" + "#" * 100 + "\n", encoding="utf-8")
        with pytest.raises(GatewayConfigError, match="larger than 64 bytes"):
            load_config(path, max_size=64)

    def test_an_endless_file_is_refused_without_reading_it_all(self) -> None:
        """A device that never ends (/dev/zero) is refused after max_size + 1 bytes."""
        zero = Path("/dev/zero")
        if not zero.exists():
            pytest.skip("no /dev/zero on this system")
        with pytest.raises(ConfigValidationError, match="larger than 1024 bytes"):
            read_config_file(zero, expected="an object", max_size=1024)
