"""ServiceConnector.connect() answers a repeated (name, version) from its cache."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fixture_paths import FIXTURES

from soajs.connector import ServiceConnector
from soajs.errors import ConnectError
from soajs.inject import parse_inject_header

CALLER: dict[str, Any] = json.loads(
    (FIXTURES / "captured" / "soajsinjectobj.caller-interconnect.json").read_text()
)


def connector(awareness: dict[str, Any] | None) -> ServiceConnector:
    header = {key: value for key, value in CALLER.items() if key != "awareness"}
    if awareness is not None:
        header["awareness"] = awareness
    return ServiceConnector(parse_inject_header(json.dumps(header)))


MESH = {
    "host": "gw",
    "port": 4000,
    "interConnect": [
        {"name": "hello", "version": "1", "host": "10.0.0.7", "port": 4100, "latest": "2"},
        {"name": "hello", "version": "2", "host": "10.0.0.8", "port": 4200, "latest": "2"},
    ],
}


class TestConnectCache:
    def test_each_name_and_version_is_resolved_once(self) -> None:
        """The same (name, version) gives the same reply; another version or none, its own."""
        calls = connector(MESH)
        first = calls.connect("hello", "1")
        assert calls.connect("hello", "1") is first
        assert calls.connect("hello", "2") is not first
        assert calls.connect("hello", "2").host == "10.0.0.8:4200"
        assert first.host == "10.0.0.7:4100"
        assert calls.connect("hello") is calls.connect("hello", None)
        assert calls.connect() is calls.connect(None, None)
        assert calls.connect().mesh is False

    def test_a_refused_call_is_not_cached_and_chains_nothing(self) -> None:
        """A ConnectError is raised on every call, with no internal error as its context."""
        calls = connector(None)
        for _ in range(2):
            with pytest.raises(ConnectError) as caught:
                calls.connect("hello", "1")
            assert caught.value.__context__ is None
            assert caught.value.__cause__ is None
