"""Parse the ``soajsinjectobj`` header into :class:`~soajs.models.context.ContextData`.

The gateway writes the header with ``JSON.stringify`` and Node sends header strings as Latin-1,
so bytes are decoded as Latin-1 (never UTF-8: a tenant named ``é`` arrives as the single byte
``0xE9``). The text is parsed and validated in one pass by pydantic-core; the validator is built
once, when :mod:`soajs.models.context` is imported.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from pydantic import ValidationError
from pydantic_core import from_json

from soajs.errors import InjectHeaderError
from soajs.models.context import ContextData, attach_received_header
from soajs.validation import describe_validation_error

__all__ = ["DEFAULT_MAX_SIZE", "HEADER_NAME", "parse_inject_header"]

HEADER_NAME: Final = "soajsinjectobj"
"""The header's name, lowercase as ASGI and HTTP/2 give it."""

DEFAULT_MAX_SIZE: Final = 65536
"""The gateway's own limit (``SOAJS_MAX_INJECT_HEADER_SIZE``): longer headers are refused."""

_validate_json = ContextData.__pydantic_validator__.validate_json
_NOT_AN_OBJECT: Final = frozenset({"model_type", "model_attributes_type", "dict_type"})
_MAX_REPORTED_ERRORS: Final = 3
_CACHED_NAME_SIZE: Final = 128
# What soajs core needs for a context (mw/service/index.js): tenant, key, application.package.
_CONTEXT_KEYS: Final = ("tenant", "key", "application")
# decodeURIComponent throws (and soajs core keeps the name as sent) on any broken escape.
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def parse_inject_header(value: bytes | str, *, max_size: int = DEFAULT_MAX_SIZE) -> ContextData:
    """Parse one ``soajsinjectobj`` value.

    Args:
        value: The header as received: bytes (decoded as Latin-1) or text, whose characters
            must all be Latin-1 (U+0000 to U+00FF), as Node can only send those.
        max_size: The largest value accepted, in bytes (= Latin-1 characters).

    Returns:
        The validated context; its ``raw_header`` is the text, byte for byte as received, and
        ``urac.first_name``/``last_name`` are percent-decoded.

    Raises:
        InjectHeaderError: ``code`` is ``"missing"`` (empty, or an object that soajs core gives
            no context: no truthy ``tenant``, ``key`` or ``application.package``),
            ``"too_large"``, ``"malformed"`` (not Latin-1, not JSON as Node's ``JSON.parse``
            reads it, so no ``NaN``/``Infinity``, or not a JSON object) or ``"invalid"`` (a
            ``tenant`` without text ``id`` and ``code``, or ``tenant``/``key``/``application``
            that are not objects). Messages never quote the header, which carries keys.
    """
    if type(value) is bytes:
        # What servers hand over: validated as it is when ASCII (pydantic-core reads UTF-8, which
        # ASCII is); Latin-1 bytes beyond ASCII are decoded first, every byte being a character.
        if len(value) > max_size:
            raise _too_large(len(value), max_size)
        raw = value
        source: bytes | str = value if value.isascii() else value.decode("latin-1")
    else:
        if isinstance(value, str | bytes | bytearray | memoryview) and len(value) > max_size:
            raise _too_large(len(value), max_size)
        source = _as_text(value)
        if not source.isascii() and not _is_latin1(source):
            raise InjectHeaderError(
                "the soajsinjectobj header has characters beyond Latin-1, which no gateway sends",
                code="malformed",
            )
        raw = source.encode("latin-1")
    try:
        context: ContextData = _validate_json(source)
    except ValidationError as exc:
        if not raw.decode("latin-1").strip():
            raise InjectHeaderError("the soajsinjectobj header is empty", code="missing") from None
        if _may_hold_nan(raw):
            _refuse_nan(source)
        raise _describe(exc, source) from None
    if _may_hold_nan(raw):
        _refuse_nan(source)
    urac = context.urac
    if urac is not None:
        # Checked here rather than in a validator, which every header would run; few names
        # need it. Stored past pydantic's __setattr__: a plain, non-frozen field, nothing to
        # validate or freeze, so the model cannot tell the difference.
        fields = urac.__dict__
        if "%" in urac.first_name:
            fields["first_name"] = _percent_decode(urac.first_name)
        if "%" in urac.last_name:
            fields["last_name"] = _percent_decode(urac.last_name)
    attach_received_header(context, raw)
    return context


def _too_large(size: int, max_size: int) -> InjectHeaderError:
    return InjectHeaderError(
        f"the soajsinjectobj header is {size} bytes, more than the {max_size} allowed",
        code="too_large",
    )


def _percent_decode(value: str) -> str:
    """Undo ``encodeURIComponent`` like soajs core; a malformed escape keeps the text as sent."""
    # The same user's name comes back on every request: short names are decoded once.
    if len(value) <= _CACHED_NAME_SIZE:
        return _percent_decode_cached(value)
    return _percent_decode_uncached(value)


def _percent_decode_uncached(value: str) -> str:
    if _BROKEN_ESCAPE.search(value):
        return value
    try:
        return unquote_to_bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return value


_percent_decode_cached = lru_cache(maxsize=1024)(_percent_decode_uncached)


def _as_text(value: object) -> str:
    """Give the header as text, decoding bytes as Latin-1."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    if value is None:
        raise InjectHeaderError("there is no soajsinjectobj header", code="missing")
    raise InjectHeaderError(
        f"the soajsinjectobj header must be bytes or str, not {type(value).__name__}",
        code="malformed",
    )


def _is_latin1(text: str) -> bool:
    """Tell whether every character of ``text`` fits in one Latin-1 byte."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _may_hold_nan(raw: bytes) -> bool:
    """Tell whether ``raw`` may hold ``NaN`` or ``Infinity``, which pydantic-core reads.

    Two ``memchr`` scans rule most headers out; a capital ``N`` or ``I`` is then looked at.
    """
    find = raw.find
    at = find(b"N")
    while at >= 0:
        if raw.startswith(b"aN", at + 1):
            return True
        at = find(b"N", at + 1)
    at = find(b"I")
    while at >= 0:
        if raw.startswith(b"nfinity", at + 1):
            return True
        at = find(b"I", at + 1)
    return False


def _refuse_nan(source: bytes | str) -> None:
    """Refuse ``NaN``/``Infinity`` outside strings: Node's ``JSON.parse`` does."""
    try:
        from_json(source, allow_inf_nan=False)
    except ValueError:
        raise InjectHeaderError(
            "the soajsinjectobj header is not valid JSON (NaN and Infinity are not JSON)",
            code="malformed",
        ) from None


def _gives_no_context(source: bytes | str) -> bool:
    """Tell whether soajs core would give this JSON object no context at all."""
    try:
        data: Any = from_json(source)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    if not all(_truthy(data.get(name)) for name in _CONTEXT_KEYS):
        return True
    # A truthy application that is not an object has no package either.
    application = data["application"]
    return not isinstance(application, dict) or not _truthy(application.get("package"))


def _truthy(value: object) -> bool:
    """JavaScript's truthiness of a JSON value (``{}`` and ``[]`` are true, ``0`` is not)."""
    # NaN never gets here: it is refused before.
    return isinstance(value, dict | list) or bool(value)


def _describe(exc: ValidationError, source: bytes | str) -> InjectHeaderError:
    """Turn a validation failure into an error naming the fields, never their values."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    first = errors[0] if errors else None
    if first is not None and first["type"] == "json_invalid":
        return InjectHeaderError(
            f"the soajsinjectobj header is not valid JSON ({first['msg']})", code="malformed"
        )
    if first is not None and not first["loc"] and first["type"] in _NOT_AN_OBJECT:
        return InjectHeaderError("the soajsinjectobj header is not a JSON object", code="malformed")
    if _gives_no_context(source):
        return InjectHeaderError(
            "the soajsinjectobj header gives no context: soajs core needs a tenant, a key and "
            "an application.package",
            code="missing",
        )
    problems = describe_validation_error(exc, root="(root)", limit=_MAX_REPORTED_ERRORS)
    return InjectHeaderError(
        f"the soajsinjectobj header is not the gateway's shape: {problems}", code="invalid"
    )
