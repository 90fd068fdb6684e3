"""The `soajs` console script: help, exit codes, config validation, registry and gateway."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from soajs.cli import main, redact
from soajs.gateway import LocalGateway

from .conftest import EXAMPLE, gateway_command

GOOD_SERVICE = {"name": "hello", "group": "test", "port": 4100, "version": "1"}


@pytest.fixture
def runner(no_soajs_env):
    """A CLI runner with no SOAJS_* variables inherited from the machine."""
    return CliRunner()


class TestHelp:
    @pytest.mark.parametrize(
        "args",
        [[], ["gateway"], ["registry"], ["registry", "show"], ["config"], ["config", "validate"]],
    )
    def test_every_command_has_help(self, runner, args):
        """--help works on every command and exits 0."""
        result = runner.invoke(main, [*args, "--help"])
        assert result.exit_code == 0
        assert "Usage:" in result.output

    def test_wrong_usage_exits_2(self, runner):
        """An unknown command or a missing argument is a usage error."""
        assert runner.invoke(main, ["nope"]).exit_code == 2
        assert runner.invoke(main, ["config", "validate"]).exit_code == 2
        assert runner.invoke(main, ["gateway"]).exit_code == 2


class TestConfigValidate:
    def test_a_good_file_exits_0(self, runner, tmp_path):
        """A valid service configuration is reported valid."""
        path = tmp_path / "service.json"
        path.write_text(json.dumps(GOOD_SERVICE))
        result = runner.invoke(main, ["config", "validate", str(path)])
        assert result.exit_code == 0, result.output
        assert "valid: hello v1" in result.output

    def test_a_bad_file_exits_1_naming_the_field(self, runner, tmp_path):
        """An invalid version is reported with the field and exit code 1."""
        path = tmp_path / "service.json"
        path.write_text(json.dumps({**GOOD_SERVICE, "version": "1.0.0"}))
        result = runner.invoke(main, ["config", "validate", str(path)])
        assert result.exit_code == 1
        assert "version" in result.output

    def test_a_node_soa_json_is_valid(self, runner):
        """A Node service's soa.json (serviceName, numeric serviceVersion) is reported valid."""
        soa_json = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
        path = soa_json / "service-config.nodejs-test-soa.json"
        result = runner.invoke(main, ["config", "validate", str(path)])
        assert result.exit_code == 0, result.output
        assert "valid: express v1 (service, port 4381)" in result.output

    def test_both_spellings_exit_1_naming_both(self, runner, tmp_path):
        """A file with name and serviceName exits 1 and names both keys."""
        path = tmp_path / "soa.json"
        path.write_text(json.dumps({**GOOD_SERVICE, "serviceName": "hello"}))
        result = runner.invoke(main, ["config", "validate", str(path)])
        assert result.exit_code == 1
        assert "given twice, as 'name' and 'serviceName'" in result.output

    def test_a_missing_file_is_a_usage_error(self, runner, tmp_path):
        """A path that does not exist exits 2."""
        result = runner.invoke(main, ["config", "validate", str(tmp_path / "none.json")])
        assert result.exit_code == 2


class TestRegistryShow:
    def test_shows_the_registry_of_a_running_gateway(self, runner, gateway):
        """The summary lists the controller and the environment."""
        env = {"SOAJS_REGISTRY_API": gateway.registry_api, "SOAJS_ENV": "dev"}
        result = runner.invoke(main, ["registry", "show", "--service", "hello"], env=env)
        assert result.exit_code == 0, result.output
        assert "environment  dev" in result.output
        assert "controller" in result.output

    def test_json_output_is_redacted(self, runner, gateway):
        """--json prints the registry with passwords and secrets replaced."""
        env = {"SOAJS_REGISTRY_API": gateway.registry_api}
        result = runner.invoke(main, ["registry", "show", "--json"], env=env)
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["serviceConfig"]["key"]["password"] == "***"
        assert data["serviceConfig"]["cookie"]["secret"] == "***"
        assert "soajs key lal massa" not in result.output

    def test_an_unreachable_gateway_exits_3(self, runner, closed_port):
        """Nothing listening on SOAJS_REGISTRY_API exits 3."""
        env = {"SOAJS_REGISTRY_API": f"127.0.0.1:{closed_port}", "SOAJS_REGISTRY_TIMEOUT": "2"}
        result = runner.invoke(main, ["registry", "show"], env=env)
        assert result.exit_code == 3
        assert "unreachable" in result.output

    def test_the_data_port_is_named_with_the_address_to_try(self, runner, httpserver):
        """A 404 for /getRegistry exits 1 saying it is the data port and which address to use."""
        httpserver.expect_request("/getRegistry").respond_with_json(
            {"result": False, "errors": {"codes": [130], "details": [{"code": 130}]}}, status=404
        )
        env = {"SOAJS_REGISTRY_API": f"127.0.0.1:{httpserver.port}"}
        result = runner.invoke(main, ["registry", "show"], env=env)
        assert result.exit_code == 1
        assert "unreachable" not in result.output
        assert "this looks like the gateway's data port" in result.output
        assert "port + maintenanceInc" in result.output
        if httpserver.port + 1000 <= 65535:
            assert f"SOAJS_REGISTRY_API=127.0.0.1:{httpserver.port + 1000}" in result.output

    def test_missing_settings_exit_1(self, runner):
        """Without SOAJS_REGISTRY_API the command explains what to set and exits 1."""
        result = runner.invoke(main, ["registry", "show"])
        assert result.exit_code == 1
        assert "SOAJS_REGISTRY_API" in result.output

    def test_redact_keeps_structure(self):
        """redact replaces secret values but keeps nested objects and other values."""
        value = {
            "key": {"password": "p", "algorithm": "aes"},
            "credentials": None,
            "servers": [{"token": "t", "host": "h"}],
        }
        assert redact(value) == {
            "key": {"password": "***", "algorithm": "aes"},
            "credentials": None,
            "servers": [{"token": "***", "host": "h"}],
        }


class TestGatewayCommand:
    def test_an_invalid_config_exits_1(self, runner, tmp_path):
        """A config file with a wrong field exits 1 naming it."""
        path = tmp_path / "gw.yaml"
        path.write_text("environment:\n  dataPort: many\n")
        result = runner.invoke(main, ["gateway", "--config", str(path)])
        assert result.exit_code == 1
        assert "environment.dataPort" in result.output

    def test_a_port_in_use_exits_1(self, runner, seed_config):
        """A data port already taken exits 1."""
        with LocalGateway(seed_config, port=0) as running:
            result = runner.invoke(
                main, ["gateway", "--config", str(EXAMPLE), "--port", str(running.data_port)]
            )
        assert result.exit_code == 1
        assert "cannot listen" in result.output

    def test_runs_until_interrupted(self):
        """The command serves, prints its addresses, and stops cleanly on Ctrl-C."""
        with gateway_command() as running:
            assert running.banner[0].startswith("data port        http://127.0.0.1:")
            rest, _ = running.interrupt()
            out = "".join(running.banner) + rest
        assert running.process.returncode == 0
        assert "SOAJS_REGISTRY_API=127.0.0.1:" in out


def run_cli_without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the soajs command in a fresh interpreter where ``module`` cannot be imported."""
    program = f"import sys; sys.modules[{module!r}] = None; from soajs.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestMissingExtra:
    @pytest.mark.parametrize(
        ("module", "shown"),
        [("yaml", "PyYAML"), ("starlette", "Starlette"), ("uvicorn", "uvicorn")],
    )
    def test_gateway_without_the_extra_says_what_to_install(self, module, shown):
        """Without a module of the gateway extra, `soajs gateway` names the extra and exits 1."""
        result = run_cli_without(module, "gateway", "--config", str(EXAMPLE), "--port", "0")
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.strip() == (
            f"error: soajs gateway needs {shown}, which is not installed: "
            "pip install 'soajs-python[gateway]'"
        )

    def test_config_validate_gives_the_same_advice(self, tmp_path):
        """`config validate` on YAML without PyYAML names the same extra, and exits 1."""
        path = tmp_path / "service.yaml"
        path.write_text("name: hello\n")
        result = run_cli_without("yaml", "config", "validate", str(path))
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert "needs PyYAML, which is not installed: pip install 'soajs-python[gateway]'" in (
            result.stderr
        )
