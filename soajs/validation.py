"""Pydantic validation errors as messages: each field named, no value ever echoed.

Every soajs model that refuses input (settings, the service configuration, the inject header,
the registry reply, the local gateway's configuration) reports through
:func:`describe_validation_error`, so the rule "name the field, never show what was given"
lives here once. Values are left out because they may be credentials (keys, passwords, tokens).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError
from pydantic_core import ErrorDetails

__all__ = [
    "describe_validation_error",
    "dotted_location",
    "validation_errors",
    "validator_message",
]

# Pydantic prefixes the text of a ValueError raised by a validator; the text alone reads better.
_VALUE_ERROR_PREFIX = "Value error, "


def validation_errors(exc: ValidationError) -> list[ErrorDetails]:
    """The errors of ``exc`` without their input values or documentation links."""
    return exc.errors(include_input=False, include_url=False)


def dotted_location(error: ErrorDetails, root: str = "(top level)") -> str:
    """Where the error is, as ``a.b.0.c``; ``root`` when it concerns the whole input."""
    return ".".join(str(part) for part in error["loc"]) or root


def validator_message(error: ErrorDetails) -> str:
    """Pydantic's message, or the text of the validator's ``ValueError`` without its prefix."""
    return error["msg"].removeprefix(_VALUE_ERROR_PREFIX)


def describe_validation_error(
    exc: ValidationError,
    *,
    label: Callable[[ErrorDetails], str] | None = None,
    message: Callable[[ErrorDetails], str] | None = None,
    root: str = "(top level)",
    limit: int | None = None,
) -> str:
    """Describe every refused field as ``label: message``, joined by ``"; "``.

    Args:
        exc: the pydantic error.
        label: how a field is named (default: its dotted location, ``root`` at the top level),
            e.g. the environment variable a setting is read from.
        message: what is said about it (default: pydantic's or the validator's own text).
        root: the label of an error about the whole input, for the default ``label``.
        limit: report at most this many fields, then ``and N more``.
    """
    errors = validation_errors(exc)
    shown = errors if limit is None else errors[:limit]
    name = label or (lambda error: dotted_location(error, root))
    say = message or validator_message
    text = "; ".join(f"{name(error)}: {say(error)}" for error in shown)
    if len(errors) > len(shown):
        text += f"; and {len(errors) - len(shown)} more"
    return text
