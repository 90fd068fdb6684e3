"""A registry reply marked with a tag in four unrelated places, and the check that reads it.

A registry tagged ``a`` carries ``a`` in its load time, a database prefix, a service group and a
custom entry, so a reader can tell whether a snapshot is whole or mixes two replies.
"""

from __future__ import annotations

import json
from typing import Any

from fixture_paths import CAPTURED

from soajs.models import Registry

__all__ = ["DB_PASSWORD", "registry_reply", "tag_of"]

# Captured registries carry ``credentials: null``; the tagged reply adds a password to look for.
DB_PASSWORD = "tagged-registry-db-password"


def registry_reply(tag: str = "a", interval_ms: int | None = None) -> dict[str, Any]:
    """The captured ``hello`` registry reply, marked with ``tag`` in four unrelated places.

    Args:
        tag: one character, the mark.
        interval_ms: the reload interval the reply asks for (``autoRelaodRegistry``), if any.
    """
    path = CAPTURED / "getRegistry.dev.hello.after-register.response.json"
    reply: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    data = reply["data"]
    data["timeLoaded"] = ord(tag)
    data["coreDB"]["main"] = {
        "name": f"main_{tag}",
        "prefix": tag,
        "servers": [{"host": "127.0.0.1", "port": 27017}],
        "credentials": {"username": "app", "password": DB_PASSWORD},
    }
    data["services"]["hello"]["group"] = tag
    data["custom"]["tag"] = {"name": "tag", "value": tag}
    if interval_ms is not None:
        data["serviceConfig"]["awareness"]["autoRelaodRegistry"] = interval_ms
    return reply


def tag_of(registry: Registry) -> str:
    """The tag of a snapshot.

    Raises:
        AssertionError: the four marks disagree (the snapshot mixes two registries).
    """
    tags = {
        chr(registry.time_loaded or 0),
        registry.get_database("main").prefix,
        registry.get_service("hello").group,
        registry.get_custom("tag").value,
    }
    if len(tags) != 1:
        raise AssertionError(f"a snapshot mixes registries: {sorted(map(str, tags))}")
    return str(tags.pop())
