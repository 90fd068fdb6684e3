"""Settings read from the SOAJS_* environment variables."""

from __future__ import annotations

import ipaddress

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
