"""A logged-in user through a tenant JWT: the gateway resolves it, the service gets ``urac``.

``TestUserOnTheNextHop`` has ``userrelay`` call ``secure`` through the gateway with
:class:`soajs.ServiceConnector` while serving a user's request: the connector forwards the
request's ``Authorization`` header, so ``secure`` sees the same user.

``TestTokenForms`` sends every way of passing a token (``tests/token_cases.py``) to services with
and without ``oauth`` behind both gateways: each must give the status, code and user the table
records for soajs.controller 4.3.3.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from token_cases import (
    NO_OAUTH,
    OAUTH_LOGIN,
    OAUTH_PUBLIC,
    PAYLOAD_FIELDS_THE_GATEWAY_READS,
    Answer,
    TokenRequest,
    cases,
)

from .apps import RunningService, run_service
from .realgateway import GatewayUnderTest
from .servers import wait_until_routable
from .tenant_jwt import captured_user, sign_hs256

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def secure(gateway: GatewayUnderTest) -> Iterator[RunningService]:
    """``secure``: a FastAPI service that asks the gateway for the user and its extras."""
    with run_service(
        gateway,
        "fastapi",
        "secure",
        oauth=True,
        urac=True,
        urac_profile=True,
        urac_acl=True,
        urac_config=True,
        urac_group_config=True,
    ) as service:
        yield service


@pytest.fixture(scope="module")
def token_services(
    gateway: GatewayUnderTest, secure: RunningService
) -> Iterator[dict[str, RunningService]]:
    """A service of each kind in tests/token_cases.py, routable through the gateway."""
    with (
        run_service(gateway, "fastapi", "tokenpub", oauth=True, urac=True) as public,
        run_service(gateway, "fastapi", "tokenoff", oauth=False, urac=True) as no_oauth,
    ):
        services = {OAUTH_PUBLIC: public, OAUTH_LOGIN: secure, NO_OAUTH: no_oauth}
        for service in services.values():
            reply = wait_until_routable(f"{gateway.data_url}/{service.name}/echo", _bearer(gateway))
            assert reply.status_code in (200, 500), reply.text
        yield services


@pytest.fixture(scope="module")
def userrelay(gateway: GatewayUnderTest, secure: RunningService) -> Iterator[RunningService]:
    """``userrelay`` (Flask, no interConnect): it calls ``secure`` through the gateway."""
    with run_service(gateway, "flask", "userrelay") as service:
        reply = wait_until_routable(f"{gateway.data_url}/userrelay/echo", _bearer(gateway))
        assert reply.status_code == 200, reply.text
        yield service


def _answer(reply: httpx.Response) -> Answer:
    """The status, error code and user of a reply from the gateway or the service."""
    body: dict[str, Any] = reply.json()
    if reply.status_code != 200:
        return Answer(reply.status_code, body["errors"]["codes"][0])
    urac = body.get("urac") or {}
    return Answer(200, username=urac.get("username"))


def _bearer(gateway: GatewayUnderTest) -> dict[str, str]:
    token = sign_hs256(captured_user(), gateway.jwt_secret)
    return {"key": gateway.ext_key, "authorization": f"Bearer {token}"}


class TestLoggedInUser:
    def test_tenant_jwt_gives_user_with_decoded_names(
        self, gateway: GatewayUnderTest, secure: RunningService
    ) -> None:
        """A Bearer JWT signed with the tenant secret reaches the service as urac, names decoded."""
        reply = wait_until_routable(f"{gateway.data_url}/secure/echo", _bearer(gateway))
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["tenant"] == "TTEN"
        assert body["config"] == {"tier": "gold"}
        assert body["urac"] == {"username": "zoe", "first_name": "Zoë", "last_name": "O'Brien"}
        assert secure.received()[-1] == body

    def test_missing_token_is_refused_by_gateway(
        self, gateway: GatewayUnderTest, secure: RunningService
    ) -> None:
        """Without a token the gateway refuses the call (code 143) and the service sees nothing."""
        wait_until_routable(f"{gateway.data_url}/secure/echo", _bearer(gateway))
        seen = len(secure.received())
        reply = httpx.get(
            f"{gateway.data_url}/secure/echo", headers={"key": gateway.ext_key}, timeout=10
        )
        assert reply.status_code == 500
        assert reply.json()["errors"]["codes"] == [143]
        assert len(secure.received()) == seen

    def test_token_signed_with_another_secret_is_refused(
        self, gateway: GatewayUnderTest, secure: RunningService
    ) -> None:
        """A token the tenant did not sign never reaches the service."""
        wait_until_routable(f"{gateway.data_url}/secure/echo", _bearer(gateway))
        seen = len(secure.received())
        forged = sign_hs256(captured_user(), "not the tenant secret")
        reply = httpx.get(
            f"{gateway.data_url}/secure/echo",
            headers={"key": gateway.ext_key, "authorization": f"Bearer {forged}"},
            timeout=10,
        )
        assert reply.status_code != 200
        assert reply.json()["result"] is False
        assert len(secure.received()) == seen


class TestUserOnTheNextHop:
    def test_the_user_reaches_the_service_called_through_the_gateway(
        self, gateway: GatewayUnderTest, secure: RunningService, userrelay: RunningService
    ) -> None:
        """The connector forwards the Bearer header, so the oauth service sees the same urac."""
        reply = httpx.get(
            f"{gateway.data_url}/userrelay/call/secure", headers=_bearer(gateway), timeout=10
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["mesh"] is False
        assert body["host"] == f"127.0.0.1:{gateway.data_port}/secure"
        assert body["status"] == 200, body
        assert body["reply"]["urac"] == {
            "username": "zoe",
            "first_name": "Zoë",
            "last_name": "O'Brien",
        }
        assert secure.received()[-1] == body["reply"]

    def test_without_a_user_the_next_hop_is_refused(
        self, gateway: GatewayUnderTest, secure: RunningService, userrelay: RunningService
    ) -> None:
        """A request without a token gives the connector nothing to forward: 500/143."""
        reply = httpx.get(
            f"{gateway.data_url}/userrelay/call/secure",
            headers={"key": gateway.ext_key},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["status"] == 500
        assert body["reply"]["errors"]["codes"] == [143]


class TestTokenForms:
    @pytest.mark.parametrize(
        ("kind", "request_", "expected"), cases(), ids=lambda value: getattr(value, "name", None)
    )
    def test_answer_matches_the_real_gateway_table(
        self,
        gateway: GatewayUnderTest,
        token_services: dict[str, RunningService],
        kind: str,
        request_: TokenRequest,
        expected: Answer,
    ) -> None:
        """Each token form gets the status, code and user soajs.controller 4.3.3 gives it."""
        token = sign_hs256(captured_user(), gateway.jwt_secret)
        service = token_services[kind]
        reply = httpx.get(
            f"{gateway.data_url}/{service.name}/echo{request_.query(token)}",
            headers={"key": gateway.ext_key, **request_.headers(token)},
            timeout=10,
        )
        assert _answer(reply) == expected, reply.text

    @pytest.mark.parametrize("field", PAYLOAD_FIELDS_THE_GATEWAY_READS)
    def test_a_token_without_a_field_the_gateway_reads_is_164(
        self, gateway: GatewayUnderTest, token_services: dict[str, RunningService], field: str
    ) -> None:
        """A verified token without env, user or tenant: the gateway fails with 500/164."""
        payload = {key: value for key, value in captured_user().items() if key != field}
        reply = httpx.get(
            f"{gateway.data_url}/{token_services[OAUTH_LOGIN].name}/echo",
            headers={
                "key": gateway.ext_key,
                "authorization": f"Bearer {sign_hs256(payload, gateway.jwt_secret)}",
            },
            timeout=10,
        )
        assert _answer(reply) == Answer(500, 164), reply.text
