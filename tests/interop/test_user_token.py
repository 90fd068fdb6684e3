"""A logged-in user through a tenant JWT: the gateway resolves it, the service gets ``urac``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

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
