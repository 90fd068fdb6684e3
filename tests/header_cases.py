"""Bad soajsinjectobj headers and what each header policy makes of them, in every middleware.

One table per policy, so the ASGI and WSGI middlewares are held to the same rule. A value is
the header as text (as Node writes it, Latin-1); ``None`` means no header at all.
"""

from __future__ import annotations

__all__ = ["IGNORED", "REFUSED"]

_OVERSIZED = "{" + " " * 70000 + "}"

IGNORED: list[tuple[str | None, str | None]] = [
    (None, None),
    ("", "missing"),
    ("null", "malformed"),
    ("[1,2]", "malformed"),
    ("{not json", "malformed"),
    ('{"tenant":1}', "missing"),
    ('{"tenant":1,"key":{},"application":{"package":"P"}}', "invalid"),
    ('{"tenant":{"id":"t"},"key":{"iKey":"i"},"application":{"package":"P"}}', "invalid"),
    (_OVERSIZED, "too_large"),
]
"""Under ``header_policy="ignore"``: each header, and the error the request carries (no context)."""

REFUSED: list[tuple[str | None, int, int]] = [
    (None, 403, 132),
    ("", 403, 132),
    ("null", 400, 135),
    ("[]", 400, 135),
    ("{not json", 400, 135),
    ('{"tenant":{"id":"t","code":"C"}}', 403, 132),
    ('{"tenant":{"id":"t"},"key":{},"application":{"package":"P"}}', 400, 135),
    (_OVERSIZED, 431, 135),
]
"""Under ``header_policy="reject"``: each header, the HTTP status and the gateway error code."""
