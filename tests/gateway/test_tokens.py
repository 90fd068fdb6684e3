"""User tokens at the local gateway: the real gateway's answers (tests/token_cases.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from token_cases import (
    NO_OAUTH,
    OAUTH_LOGIN,
    OAUTH_PUBLIC,
    PAYLOAD_FIELDS_THE_GATEWAY_READS,
    USERNAME,
    Answer,
    TokenRequest,
    captured_user,
    cases,
    sign_hs256,
)

from soajs.errors import SoajsError
from soajs.gateway import GatewayConfig, LocalGateway, UserTokenPayloadError, make_user_token
from soajs.gateway.access import (
    USER_TOKEN_FIELDS,
    GatewayError,
    TokenError,
    authenticate_user,
    read_user_token,
)
from soajs.gateway.config import TenantOAuth

from .conftest import CURL_HEADERS, register
from .echo_service import EchoService

SECRET = "tenant jwt secret"
# Each kind of service is a service of the captured seed, registered with these flags.
SERVICES = {
    OAUTH_PUBLIC: ("caller", {"oauth": True, "urac": True}),
    OAUTH_LOGIN: ("secure", {}),
    NO_OAUTH: ("hello", {"oauth": False, "urac": True}),
}


def signed(payload: dict[str, Any]) -> str:
    """A token signed with the tenant's secret, without make_user_token's checks."""
    return sign_hs256(payload, SECRET)


@pytest.fixture(scope="module")
def services_gateway(seed_config: GatewayConfig) -> Iterator[LocalGateway]:
    """One local gateway with a service of each kind registered and healthy."""
    echoes = [EchoService() for _ in SERVICES]
    with LocalGateway(seed_config, port=0, health_check_interval=200) as gateway:
        for echo in echoes:
            echo.__enter__()
        try:
            for echo, (name, flags) in zip(echoes, SERVICES.values(), strict=True):
                assert register(gateway, name, echo.port, **flags)["result"] is True
            gateway.check_health()
            yield gateway
        finally:
            for echo in echoes:
                echo.__exit__(None, None, None)


def answer(response: httpx.Response) -> Answer:
    """The status, error code and user of a reply from the gateway or the echo service."""
    body = response.json()
    if response.status_code != 200:
        return Answer(response.status_code, body["errors"]["codes"][0])
    headers = {name.lower(): value for name, value in body["data"]["headers"]}
    inject = json.loads(headers.get("soajsinjectobj") or "{}")
    return Answer(200, username=(inject.get("urac") or {}).get("username"))


def send(gateway: LocalGateway, kind: str, request: TokenRequest, token: str) -> httpx.Response:
    name = SERVICES[kind][0]
    return httpx.get(
        f"{gateway.data_url}/{name}/echo{request.query(token)}",
        headers={**CURL_HEADERS, "key": gateway.ext_key, **request.headers(token)},
    )


@pytest.mark.parametrize(
    ("kind", "request_", "expected"), cases(), ids=lambda value: getattr(value, "name", None)
)
def test_answers_like_the_real_gateway(
    services_gateway: LocalGateway, kind: str, request_: TokenRequest, expected: Answer
) -> None:
    """Each way of sending a token gets the real gateway's status, code and user."""
    token = make_user_token(captured_user(), SECRET)
    assert answer(send(services_gateway, kind, request_, token)) == expected


@pytest.mark.parametrize("field", PAYLOAD_FIELDS_THE_GATEWAY_READS)
def test_a_payload_without_a_field_the_gateway_reads_is_164(
    services_gateway: LocalGateway, field: str
) -> None:
    """A verified token without env, user or tenant answers 500/164, as the real one fails."""
    payload = {key: value for key, value in captured_user().items() if key != field}
    response = httpx.get(
        f"{services_gateway.data_url}/secure/echo",
        headers={"key": services_gateway.ext_key, "authorization": f"Bearer {signed(payload)}"},
    )
    assert answer(response) == Answer(500, 164)
    assert response.json()["errors"]["details"][0]["message"] == "Unknown error @ rest core!"


def test_a_payload_without_a_field_is_ignored_on_a_public_api(
    services_gateway: LocalGateway,
) -> None:
    """On a public API without access_token the token is never read, whatever it holds."""
    response = httpx.get(
        f"{services_gateway.data_url}/caller/echo",
        headers={"key": services_gateway.ext_key, "authorization": f"Bearer {signed({})}"},
    )
    assert answer(response) == Answer(200)


class TestMakeUserToken:
    def test_captured_payload_is_accepted(self) -> None:
        """The captured user payload has every field make_user_token requires."""
        token = make_user_token(captured_user(), SECRET)
        assert read_user_token(token, SECRET)["username"] == USERNAME

    @pytest.mark.parametrize("field", sorted(USER_TOKEN_FIELDS))
    def test_a_missing_field_is_named(self, field: str) -> None:
        """Without a required field the error names it and says what it is for."""
        payload = {key: value for key, value in captured_user().items() if key != field}
        with pytest.raises(UserTokenPayloadError) as info:
            make_user_token(payload, SECRET)
        assert f"{field!r}" in str(info.value)
        assert isinstance(info.value, SoajsError)
        assert isinstance(info.value, ValueError)

    @pytest.mark.parametrize(
        ("field", "value"), [("_id", ""), ("username", 7), ("tenant", "TTEN"), ("user", None)]
    )
    def test_a_wrong_type_is_named(self, field: str, value: object) -> None:
        """An empty id, a numeric username, a text tenant or a null user is refused."""
        with pytest.raises(UserTokenPayloadError, match=repr(field)):
            make_user_token({**captured_user(), field: value}, SECRET)

    def test_every_missing_field_is_listed(self) -> None:
        """An empty payload names all five fields at once."""
        with pytest.raises(UserTokenPayloadError) as info:
            make_user_token({}, SECRET)
        for field in USER_TOKEN_FIELDS:
            assert repr(field) in str(info.value)


class TestReadUserToken:
    def test_expiry_is_checked_to_the_second(self) -> None:
        """Like jsonwebtoken: expired from the second of exp on, valid the second before."""
        token = make_user_token({**captured_user(), "exp": 1000}, SECRET)
        assert read_user_token(token, SECRET, now=999.9)["exp"] == 1000
        with pytest.raises(TokenError, match="expired"):
            read_user_token(token, SECRET, now=1000.0)

    def test_not_before_is_checked(self) -> None:
        """A token used before its nbf is refused."""
        token = make_user_token({**captured_user(), "nbf": 2000}, SECRET)
        with pytest.raises(TokenError, match="nbf"):
            read_user_token(token, SECRET, now=1999.0)
        assert read_user_token(token, SECRET, now=2000.0)["nbf"] == 2000

    @pytest.mark.parametrize("claim", ["exp", "nbf"])
    def test_a_claim_that_is_not_a_number_is_refused(self, claim: str) -> None:
        """jsonwebtoken refuses a textual exp or nbf."""
        token = make_user_token({**captured_user(), claim: str(int(time.time()) + 60)}, SECRET)
        with pytest.raises(TokenError, match=claim):
            read_user_token(token, SECRET)


class TestAuthenticateUser:
    OAUTH = TenantOAuth(secret=SECRET, type=0)

    def test_the_bearer_header_gives_the_user(self) -> None:
        """Authorization: Bearer <token> verifies and returns the payload."""
        token = make_user_token(captured_user(), SECRET)
        assert authenticate_user(self.OAUTH, f"Bearer {token}")["username"] == USERNAME

    @pytest.mark.parametrize("authorization", [None, "", "Basic abc", "Bearer", "Bearer garbage"])
    def test_no_usable_bearer_token_is_143(self, authorization: str | None) -> None:
        """No header, another scheme, or a token that does not verify: 143."""
        with pytest.raises(GatewayError) as info:
            authenticate_user(self.OAUTH, authorization)
        assert (info.value.code, info.value.status) == (143, 500)

    def test_another_oauth_type_is_143(self) -> None:
        """Only oauth.type 0 (JWT) tenants are emulated."""
        token = make_user_token(captured_user(), SECRET)
        with pytest.raises(GatewayError) as info:
            authenticate_user(TenantOAuth(secret=SECRET, type=2), f"Bearer {token}")
        assert info.value.code == 143
