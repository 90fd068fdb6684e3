"""The ``soajsinjectobj`` header split into its top-level sections, each kept as JSON text.

One msgspec pass checks the whole header's JSON (no ``NaN``/``Infinity``, as Node's
``JSON.parse``; a repeated key: the last wins, as in ``JSON.parse``) and slices it into its
sections without building them. :mod:`soajs.models.context` validates ``tenant`` and
``application`` at once and the other sections on first read. Neither struct is tracked by the
garbage collector, which is safe: they hold bytes (and, once read, the key and the package),
never a reference back to a context, so no cycle can pass through them.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

__all__ = ["SECTION_NAMES", "UNSET", "HeaderSections", "PendingSections", "split_sections"]

UNSET: Final = msgspec.UNSET
"""A section the header does not have."""

Section = msgspec.Raw | msgspec.UnsetType


class HeaderSections(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """The header's top-level keys as raw JSON; a key it does not know fails the split."""

    tenant: Section = UNSET
    key: Section = UNSET
    application: Section = UNSET
    package: Section = UNSET
    device: Section = UNSET
    geo: Section = UNSET
    urac: Section = UNSET
    param: Section = UNSET
    awareness: Section = UNSET


SECTION_NAMES: Final = HeaderSections.__struct_fields__
"""The top-level keys, in the order of :class:`~soajs.models.context.ContextData`'s fields."""


class PendingSections(msgspec.Struct, gc=False):
    """The sections of one parsed header not validated yet, and its ``key`` and ``package``
    once they are.

    The context and its tenant (``tenant.key``, ``tenant.application``) share it, so both read
    the same :class:`~soajs.models.context.Key` and :class:`~soajs.models.context.Package`.
    """

    sections: HeaderSections
    key: Any = None
    package: Any = None


split_sections = msgspec.json.Decoder(HeaderSections).decode
"""Split header bytes into :class:`HeaderSections`.

Raises:
    msgspec.DecodeError: not JSON as ``JSON.parse`` reads it, not an object, or a top-level key
        no context model declares (the caller then takes the full validation path).
"""
