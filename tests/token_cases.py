"""User-token requests and what soajs.controller 4.3.3 answers to each (oauth.type 0 tenant).

``tests/interop/test_user_token.py`` sends every request to the real gateway and to the local
one and checks both against :data:`ANSWERS`; ``tests/gateway/test_tokens.py`` checks the local
gateway alone, so the table is enforced where ``node`` is missing too.

Why the real gateway answers so (``mw/url``, ``mw/mt/utils.js`` ``oauthCheck``, ``mw/oauth``):
the user comes only from ``Authorization: Bearer``; an ``access_token`` (query or header) is
never verified, it only makes the gateway run OAuth on an API the ACL makes public.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from fixture_paths import CAPTURED

GOOD = "good"
GARBAGE = "garbage"
USERNAME = "zoe"

# The three kinds of service the requests go to, by (oauth flag, package ACL).
OAUTH_PUBLIC = "oauth, public API"
OAUTH_LOGIN = "oauth, API needs a user"
NO_OAUTH = "oauth false"


@dataclass(frozen=True)
class TokenRequest:
    """One way of sending a token; ``GOOD`` stands for a token signed with the tenant secret."""

    name: str
    bearer: str | None = None
    query_token: str | None = None
    header_token: str | None = None

    def headers(self, token: str) -> dict[str, str]:
        """The token headers, with ``GOOD`` replaced by ``token``."""
        headers: dict[str, str] = {}
        if self.bearer is not None:
            headers["authorization"] = f"Bearer {_value(self.bearer, token)}"
        if self.header_token is not None:
            headers["access_token"] = _value(self.header_token, token)
        return headers

    def query(self, token: str) -> str:
        """The query string (with its ``?``), or ``""``."""
        if self.query_token is None:
            return ""
        return f"?access_token={_value(self.query_token, token)}"


def _value(given: str, token: str) -> str:
    return token if given == GOOD else given


@dataclass(frozen=True)
class Answer:
    """What the gateway answers: HTTP status, error code, and the user the service sees."""

    status: int
    code: int | None = None
    username: str | None = None


OK = Answer(200)
USER = Answer(200, username=USERNAME)
MALFORMED = Answer(500, 143)
UNKNOWN_ERROR = Answer(500, 164)

REQUESTS = (
    TokenRequest("no token"),
    TokenRequest("Bearer good", bearer=GOOD),
    TokenRequest("Bearer garbage", bearer=GARBAGE),
    TokenRequest("?access_token=garbage", query_token=GARBAGE),
    TokenRequest("?access_token=good", query_token=GOOD),
    TokenRequest("access_token header good", header_token=GOOD),
    TokenRequest("?access_token=garbage and Bearer good", bearer=GOOD, query_token=GARBAGE),
)

ANSWERS: dict[str, dict[str, Answer]] = {
    OAUTH_PUBLIC: {
        "no token": OK,
        "Bearer good": OK,
        "Bearer garbage": OK,
        "?access_token=garbage": MALFORMED,
        "?access_token=good": MALFORMED,
        "access_token header good": MALFORMED,
        "?access_token=garbage and Bearer good": USER,
    },
    OAUTH_LOGIN: {
        "no token": MALFORMED,
        "Bearer good": USER,
        "Bearer garbage": MALFORMED,
        "?access_token=garbage": MALFORMED,
        "?access_token=good": MALFORMED,
        "access_token header good": MALFORMED,
        "?access_token=garbage and Bearer good": USER,
    },
    NO_OAUTH: {request.name: OK for request in REQUESTS},
}

# A verified token without these makes the real gateway throw (500/164) once it reads them.
PAYLOAD_FIELDS_THE_GATEWAY_READS = ("env", "user", "tenant")


def captured_user() -> dict[str, Any]:
    """The captured user payload (username ``zoe``): it has every field the gateway reads."""
    captured: dict[str, Any] = json.loads(
        (CAPTURED / "secure.jwt.json").read_text(encoding="utf-8")
    )
    payload: dict[str, Any] = captured["payload"]
    return payload


def cases() -> list[tuple[str, TokenRequest, Answer]]:
    """Every (service kind, request, answer), for ``pytest.mark.parametrize``."""
    return [
        (kind, request, ANSWERS[kind][request.name]) for kind in ANSWERS for request in REQUESTS
    ]


def sign_hs256(payload: dict[str, Any], secret: str) -> str:
    """An HS256 token for any payload (``make_user_token`` refuses incomplete ones)."""

    def segment(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    signing_input = ".".join(
        segment(json.dumps(part, separators=(",", ":")).encode("utf-8"))
        for part in ({"alg": "HS256", "typ": "JWT"}, payload)
    )
    digest = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256)
    return f"{signing_input}.{segment(digest.digest())}"
