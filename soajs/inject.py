"""Parse the ``soajsinjectobj`` header into :class:`~soajs.models.context.ContextData`.

The gateway writes the header with ``JSON.stringify`` and Node sends header strings as Latin-1,
so bytes are decoded as Latin-1 (never UTF-8: a tenant named ``é`` arrives as the single byte
``0xE9``).

Two paths give the same context or the same error. The short one, for ASCII headers with the
gateway's top-level keys: one msgspec pass splits the header into its sections
(:mod:`soajs.models.sections`), pydantic-core validates ``tenant`` and ``application`` (and
``key`` must be an object), and the other sections are validated on first read. Anything it
cannot vouch for (non-ASCII bytes, an unknown top-level key, JSON it refuses, a required
section that does not validate, nesting or numbers beyond pydantic-core's limits) takes the
whole path: the header parsed and validated in one pydantic-core pass, whose errors are the
ones reported.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from typing import Any, Final

from msgspec import DecodeError
from pydantic import ValidationError
from pydantic_core import from_json

from soajs.errors import InjectHeaderError
from soajs.models.context import (
    ContextData,
    attach_received_header,
    context_from_sections,
    decode_user_names,
)
from soajs.models.sections import split_sections
from soajs.validation import describe_validation_error

__all__ = ["DEFAULT_MAX_SIZE", "HEADER_NAME", "parse_inject_header"]

HEADER_NAME: Final = "soajsinjectobj"
"""The header's name, lowercase as ASGI and HTTP/2 give it."""

DEFAULT_MAX_SIZE: Final = 65536
"""The gateway's own limit (``SOAJS_MAX_INJECT_HEADER_SIZE``): longer headers are refused."""

_validate_json = ContextData.__pydantic_validator__.validate_json
_NOT_AN_OBJECT: Final = frozenset({"model_type", "model_attributes_type", "dict_type"})
_MAX_REPORTED_ERRORS: Final = 3
# pydantic-core refuses JSON nested over 200 levels; fewer brackets than this cannot nest so deep.
_MAX_SHORT_PATH_BRACKETS: Final = 190
# Python's default int digit limit (sys.get_int_max_str_digits), which pydantic-core reads by.
_DEFAULT_DIGIT_LIMIT: Final = 4300
# What soajs core needs for a context (mw/service/index.js): tenant, key, application.package.
_CONTEXT_KEYS: Final = ("tenant", "key", "application")


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
        # What servers hand over. ASCII bytes (every header a gateway sends without a non-ASCII
        # name) are read as they are; Latin-1 bytes beyond ASCII are decoded first, every byte
        # being a character.
        if len(value) > max_size:
            raise _too_large(len(value), max_size)
        raw = value
        is_ascii = value.isascii()
        source: bytes | str = value if is_ascii else value.decode("latin-1")
    else:
        if isinstance(value, str | bytes | bytearray | memoryview) and len(value) > max_size:
            raise _too_large(len(value), max_size)
        source = _as_text(value)
        is_ascii = source.isascii()
        if not is_ascii and not _is_latin1(source):
            raise InjectHeaderError(
                "the soajsinjectobj header has characters beyond Latin-1, which no gateway sends",
                code="malformed",
            )
        raw = source.encode("latin-1")
    if is_ascii:
        context = _split_and_validate(raw)
        if context is not None:
            return context
    return _validate_whole(source, raw)


def _split_and_validate(raw: bytes) -> ContextData | None:
    """The short path: one msgspec pass, then ``tenant``, ``key`` and ``application`` checked.

    ``None`` sends the header down the whole validation (:func:`_validate_whole`), which gives
    the same context or the exact error: for anything but JSON as ``JSON.parse`` reads it, a
    top-level key no model declares, or a required section that does not validate.
    """
    if raw.count(b"{") + raw.count(b"[") > _MAX_SHORT_PATH_BRACKETS:
        # Too many to rule out nesting deeper than pydantic-core reads (the whole validation
        # refuses it), which a section validated later would otherwise raise on first read.
        return None
    # pydantic-core refuses a number longer than Python's int digit limit; only a header at
    # least that long can hold one.
    digits = min(sys.get_int_max_str_digits() or _DEFAULT_DIGIT_LIMIT, _DEFAULT_DIGIT_LIMIT)
    if len(raw) > digits and _digit_run(digits).search(raw) is not None:
        return None
    try:
        sections = split_sections(raw)
    except (DecodeError, RecursionError):
        return None
    return context_from_sections(sections, raw)


@lru_cache(maxsize=4)
def _digit_run(limit: int) -> re.Pattern[bytes]:
    """A run of more than ``limit`` digits."""
    return re.compile(rb"[0-9]{%d}" % (limit + 1))


def _validate_whole(source: bytes | str, raw: bytes) -> ContextData:
    """Validate the whole header in one pydantic-core pass, or raise the error it gives."""
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
        # Checked here rather than in a validator, which every header would run.
        decode_user_names(urac)
    attach_received_header(context, raw)
    return context


def _too_large(size: int, max_size: int) -> InjectHeaderError:
    return InjectHeaderError(
        f"the soajsinjectobj header is {size} bytes, more than the {max_size} allowed",
        code="too_large",
    )


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
