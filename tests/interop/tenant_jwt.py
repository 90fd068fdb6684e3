"""HS256 tokens for a logged-in user, signed with the tenant's oauth secret (oauth.type 0).

Built with hmac and hashlib: the gateway verifies them with ``jsonwebtoken``, so this also shows
that a token made outside Node is accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from fixture_paths import CAPTURED

CAPTURED_JWT = CAPTURED / "secure.jwt.json"


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_hs256(payload: dict[str, Any], secret: str) -> str:
    """Encode ``payload`` as a compact JWS (HS256), serialised the way ``JSON.stringify`` does."""
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(
        _segment(json.dumps(part, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        for part in (header, payload)
    )
    signature = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256)
    return f"{signing_input}.{_segment(signature.digest())}"


def captured_user() -> dict[str, Any]:
    """The user payload of the captured ``secure`` call (username ``zoe``, first name ``Zoë``)."""
    captured: dict[str, Any] = json.loads(CAPTURED_JWT.read_text(encoding="utf-8"))
    payload: dict[str, Any] = captured["payload"]
    return payload


def captured_token() -> str:
    """The token that was sent in the captured call."""
    captured: dict[str, Any] = json.loads(CAPTURED_JWT.read_text(encoding="utf-8"))
    return str(captured["token"])
