"""Settings read from the SOAJS_* environment variables."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from soajs import Settings, SettingsError

SOAJS_VARS = (
    "SOAJS_REGISTRY_API",
    "SOAJS_ENV",
    "SOAJS_DEPLOY_MANUAL",
    "SOAJS_DEPLOY_HA",
    "SOAJS_SRVIP",
    "SOAJS_SERVICE_NAME",
    "SOAJS_SERVICE_GROUP",
    "SOAJS_SERVICE_VERSION",
    "SOAJS_SERVICE_PORT",
    "SOAJS_HEADER_POLICY",
    "SOAJS_TRUSTED_GATEWAYS",
    "SOAJS_MAX_INJECT_HEADER_SIZE",
    "SOAJS_REGISTRY_TIMEOUT",
    "SOAJS_ENV_FILE",
    "SOAJS_MAX_ENV_FILE_SIZE",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SOAJS_VARS:
        monkeypatch.delenv(name, raising=False)


class TestDefaults:
    def test_defaults_need_no_variable(self) -> None:
        """With no SOAJS_* variable set, Settings loads with the documented defaults."""
        settings = Settings()
        assert settings.registry_api is None
        assert settings.env == "dev"
        assert settings.deploy_manual is False
        assert settings.srv_ip == "127.0.0.1"
        assert settings.header_policy == "ignore"
        assert settings.trusted_gateways == ()
        assert settings.max_inject_header_size == 65536

    def test_registry_url_without_registry_api_names_the_variable(self) -> None:
        """Asking for the gateway URL when SOAJS_REGISTRY_API is unset names the variable."""
        with pytest.raises(SettingsError, match="SOAJS_REGISTRY_API is not set"):
            _ = Settings().registry_url


class TestRegistryApi:
    @pytest.mark.parametrize(
        ("value", "url"),
        [
            ("localhost:5000", "http://localhost:5000"),
            ("127.0.0.1:5000", "http://127.0.0.1:5000"),
            ("[::1]:5000", "http://[::1]:5000"),
            (" gw.local:5001 ", "http://gw.local:5001"),
        ],
    )
    def test_valid_addresses(self, monkeypatch: pytest.MonkeyPatch, value: str, url: str) -> None:
        """host:port values, IPv6 in brackets included, give the maintenance API URL."""
        monkeypatch.setenv("SOAJS_REGISTRY_API", value)
        assert Settings().registry_url == url

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("http://localhost:5000", "without a scheme"),
            ("localhost", "port is missing"),
            ("localhost:", "port must be an integer"),
            ("localhost:abc", "port must be an integer"),
            ("localhost:70000", "port must be an integer"),
            (":5000", "port is missing"),
            ("::1:5000", "IPv6"),
            ("localhost:5000/x", "host:port"),
            ("gate way:5000", "host:port"),
        ],
    )
    def test_invalid_addresses(
        self, monkeypatch: pytest.MonkeyPatch, value: str, reason: str
    ) -> None:
        """A malformed SOAJS_REGISTRY_API is refused with a message naming the variable."""
        monkeypatch.setenv("SOAJS_REGISTRY_API", value)
        with pytest.raises(SettingsError, match="SOAJS_REGISTRY_API") as info:
            Settings()
        assert reason in str(info.value)


class TestEnv:
    def test_env_is_lowercased(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """SOAJS_ENV is lowercased, as the gateway and soajs core do."""
        monkeypatch.setenv("SOAJS_ENV", "DEV")
        assert Settings().env == "dev"

    def test_blank_env_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A blank SOAJS_ENV is an error naming the variable."""
        monkeypatch.setenv("SOAJS_ENV", "  ")
        with pytest.raises(SettingsError, match="SOAJS_ENV"):
            Settings()


class TestDeployManual:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("true", True),
            ("TRUE", True),
            ("1", True),
            ("yes", True),
            ("false", False),
            ("0", False),
            ("no", False),
            ("", False),
        ],
    )
    def test_accepted_values(
        self, monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
    ) -> None:
        """true/false/1/0/yes/no are read in any case, and empty means false."""
        monkeypatch.setenv("SOAJS_DEPLOY_MANUAL", value)
        assert Settings().deploy_manual is expected

    @pytest.mark.parametrize("value", ["maybe", "2", "enabled"])
    def test_other_values_are_errors(self, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
        """Anything else is an error naming the variable and not echoing the value."""
        monkeypatch.setenv("SOAJS_DEPLOY_MANUAL", value)
        with pytest.raises(SettingsError, match="SOAJS_DEPLOY_MANUAL") as info:
            Settings()
        assert value not in str(info.value).split(":", 1)[1].replace("true/false/1/0/yes/no", "")


class TestOtherVariables:
    def test_trusted_gateways_parse_ips_and_cidrs(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """SOAJS_TRUSTED_GATEWAYS is a comma-separated list of IPs and CIDR networks."""
        monkeypatch.setenv("SOAJS_TRUSTED_GATEWAYS", "127.0.0.1, 10.0.0.0/8,::1")
        networks = Settings().trusted_gateways
        assert networks == (
            ipaddress.ip_network("127.0.0.1/32"),
            ipaddress.ip_network("10.0.0.0/8"),
            ipaddress.ip_network("::1/128"),
        )

    def test_bad_trusted_gateway_is_an_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A value that is not an IP or network names SOAJS_TRUSTED_GATEWAYS."""
        monkeypatch.setenv("SOAJS_TRUSTED_GATEWAYS", "gateway.local")
        with pytest.raises(SettingsError, match="SOAJS_TRUSTED_GATEWAYS"):
            Settings()

    def test_bad_port_names_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A non-numeric SOAJS_SERVICE_PORT is an error naming the variable."""
        monkeypatch.setenv("SOAJS_SERVICE_PORT", "http")
        with pytest.raises(SettingsError, match="SOAJS_SERVICE_PORT"):
            Settings()

    def test_bad_header_policy(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """SOAJS_HEADER_POLICY accepts only ignore or reject."""
        monkeypatch.setenv("SOAJS_HEADER_POLICY", "drop")
        with pytest.raises(SettingsError, match="SOAJS_HEADER_POLICY"):
            Settings()

    def test_srv_ip_with_space_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """SOAJS_SRVIP must be an address or host name."""
        monkeypatch.setenv("SOAJS_SRVIP", "127.0.0.1 x")
        with pytest.raises(SettingsError, match="SOAJS_SRVIP"):
            Settings()

    def test_blank_service_name_is_unset(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An empty SOAJS_SERVICE_NAME counts as unset."""
        monkeypatch.setenv("SOAJS_SERVICE_NAME", " ")
        assert Settings().service_name is None

    def test_keyword_arguments_override(self) -> None:
        """Settings can be built in code, and errors still name the variable."""
        assert Settings(registry_api="127.0.0.1:5000", env="QA").env == "qa"
        with pytest.raises(SettingsError, match="SOAJS_REGISTRY_API"):
            Settings(registry_api="http://x:1")

    def test_settings_errors_are_value_errors(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """SettingsError is a SoajsError and a ValueError, so generic handlers catch it."""
        monkeypatch.setenv("SOAJS_REGISTRY_TIMEOUT", "-1")
        with pytest.raises(ValueError, match="SOAJS_REGISTRY_TIMEOUT"):
            Settings()


class TestSrvIp:
    def test_srv_ip_reads_the_gateway_spelling(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The service IP comes from SOAJS_SRVIP, the name the gateway and soajs core use."""
        monkeypatch.setenv("SOAJS_SRVIP", "10.1.2.3")
        assert Settings().srv_ip == "10.1.2.3"
        assert Settings(srv_ip="10.9.9.9").srv_ip == "10.9.9.9"

    def test_unprefixed_variables_are_ignored(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Only the SOAJS_SRVIP spelling is read: SRV_IP and SOAJS_SRV_IP are not."""
        monkeypatch.setenv("SRV_IP", "10.0.0.9")
        monkeypatch.setenv("SOAJS_SRV_IP", "10.0.0.8")
        assert Settings().srv_ip == "127.0.0.1"


def write_env(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


class TestEnvFile:
    """A .env file, the pydantic-settings way: opt-in, and real variables win."""

    def test_no_file_is_read_unless_named(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A .env in the working directory is ignored when nothing names it."""
        write_env(tmp_path / ".env", "SOAJS_ENV=qa")
        monkeypatch.chdir(tmp_path)
        settings = Settings()
        assert (settings.env, settings.env_file) == ("dev", None)

    def test_named_by_the_pydantic_settings_argument(self, tmp_path: Path) -> None:
        """Settings(_env_file=...) reads SOAJS_* lines, the gateway's SOAJS_SRVIP spelling too."""
        path = write_env(
            tmp_path / "dev.env",
            "# development settings",
            "SOAJS_ENV=QA",
            "SOAJS_SRVIP=10.0.0.9",
            "SOAJS_SERVICE_PORT=4100",
            'SOAJS_SERVICE_GROUP="Custom Services"',
            "UNRELATED=1",
        )
        settings = Settings(_env_file=path)
        assert (settings.env, settings.srv_ip, settings.service_port) == ("qa", "10.0.0.9", 4100)
        assert settings.service_group == "Custom Services"
        assert settings.env_file == path

    def test_named_by_soajs_env_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """SOAJS_ENV_FILE names the file, relative to the working directory."""
        write_env(tmp_path / "dev.env", "SOAJS_SERVICE_NAME=hello")
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("SOAJS_ENV_FILE", "dev.env")
        settings = Settings()
        assert settings.service_name == "hello"
        assert settings.env_file == Path("dev.env")

    def test_real_variables_win(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A variable set in the environment beats the same one in the file."""
        path = write_env(tmp_path / ".env", "SOAJS_ENV=qa", "SOAJS_SERVICE_NAME=from-file")
        monkeypatch.setenv("SOAJS_ENV", "prod")
        settings = Settings(_env_file=path)
        assert (settings.env, settings.service_name) == ("prod", "from-file")

    def test_keywords_win_over_the_file(self, tmp_path: Path) -> None:
        """A keyword argument beats the file, as it beats the environment."""
        path = write_env(tmp_path / ".env", "SOAJS_ENV=qa")
        assert Settings(_env_file=path, env="staging").env == "staging"

    def test_the_argument_beats_soajs_env_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The argument wins over SOAJS_ENV_FILE, and _env_file=None reads no file."""
        monkeypatch.setenv("SOAJS_ENV_FILE", str(write_env(tmp_path / "a.env", "SOAJS_ENV=aa")))
        assert Settings().env == "aa"
        assert Settings(_env_file=write_env(tmp_path / "b.env", "SOAJS_ENV=bb")).env == "bb"
        assert Settings(env_file=tmp_path / "b.env").env == "bb"
        assert Settings(_env_file=None).env == "dev"

    def test_the_file_cannot_name_another_file_or_its_bound(self, tmp_path: Path) -> None:
        """SOAJS_ENV_FILE and SOAJS_MAX_ENV_FILE_SIZE inside the file have no effect."""
        other = write_env(tmp_path / "other.env", "SOAJS_ENV=other")
        path = write_env(tmp_path / ".env", f"SOAJS_ENV_FILE={other}", "SOAJS_MAX_ENV_FILE_SIZE=1")
        settings = Settings(_env_file=path)
        assert (settings.env, settings.env_file, settings.max_env_file_size) == (
            "dev",
            path,
            65536,
        )

    def test_a_bad_value_names_the_variable_not_the_value(self, tmp_path: Path) -> None:
        """An invalid value in the file is reported by variable; the value never appears."""
        path = write_env(tmp_path / ".env", "SOAJS_SERVICE_PORT=s3cr3t-in-the-wrong-line")
        with pytest.raises(SettingsError) as info:
            Settings(_env_file=path)
        assert "SOAJS_SERVICE_PORT" in str(info.value)
        assert "s3cr3t" not in str(info.value)
        assert "s3cr3t" not in repr(info.value.__context__)

    @pytest.mark.parametrize("how", ["argument", "variable"])
    def test_a_missing_file_is_an_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
    ) -> None:
        """A file named explicitly must exist; the error names where it was named and its path."""
        missing = tmp_path / "missing.env"
        if how == "variable":
            monkeypatch.setenv("SOAJS_ENV_FILE", str(missing))
        with pytest.raises(SettingsError) as info:
            Settings(_env_file=missing) if how == "argument" else Settings()
        message = str(info.value)
        assert "does not exist" in message
        assert str(missing) in message
        assert ("SOAJS_ENV_FILE" in message) is (how == "variable")

    def test_an_empty_variable_reads_no_file(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """SOAJS_ENV_FILE set to an empty string counts as unset."""
        monkeypatch.setenv("SOAJS_ENV_FILE", "")
        assert Settings().env_file is None

    @pytest.mark.parametrize("target", ["directory", "device"])
    def test_only_a_regular_file_is_read(self, tmp_path: Path, target: str) -> None:
        """A directory or a device (which has no size to bound) is refused."""
        path = tmp_path if target == "directory" else Path(os.devnull)
        with pytest.raises(SettingsError, match="not a regular file"):
            Settings(_env_file=path)

    def test_the_size_is_bounded(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A file larger than SOAJS_MAX_ENV_FILE_SIZE is refused before it is read."""
        path = write_env(tmp_path / ".env", "SOAJS_ENV=qa")  # 13 bytes
        assert Settings(_env_file=path, max_env_file_size=13).env == "qa"
        with pytest.raises(
            SettingsError, match=r"13 bytes, more than SOAJS_MAX_ENV_FILE_SIZE \(12\)"
        ):
            Settings(_env_file=path, max_env_file_size=12)
        monkeypatch.setenv("SOAJS_MAX_ENV_FILE_SIZE", "12")
        with pytest.raises(SettingsError, match="SOAJS_MAX_ENV_FILE_SIZE"):
            Settings(_env_file=path)

    @pytest.mark.parametrize("bound", ["0", "-1", "1.5", "lots", "²"])
    def test_a_bad_bound_names_its_variable(
        self, monkeypatch: pytest.MonkeyPatch, bound: str
    ) -> None:
        """SOAJS_MAX_ENV_FILE_SIZE must be a positive whole number."""
        monkeypatch.setenv("SOAJS_MAX_ENV_FILE_SIZE", bound)
        with pytest.raises(SettingsError, match="SOAJS_MAX_ENV_FILE_SIZE: expected a whole"):
            Settings()

    def test_both_arguments_are_an_error(self, tmp_path: Path) -> None:
        """_env_file and env_file together are refused rather than one silently winning."""
        path = write_env(tmp_path / ".env", "SOAJS_ENV=qa")
        with pytest.raises(SettingsError, match="given twice"):
            Settings(_env_file=path, env_file=path)

    def test_the_container_reads_soajs_env_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The container's settings come from the file SOAJS_ENV_FILE names."""
        from soajs.container import SoajsContainer

        monkeypatch.setenv("SOAJS_ENV_FILE", str(write_env(tmp_path / ".env", "SOAJS_ENV=qa")))
        assert SoajsContainer().settings().env == "qa"
