"""The one-pass /getRegistry path: reply bytes straight to the models, raw decoded late."""

from __future__ import annotations

import copy
import json
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest
from fixture_paths import FIXTURES
from pytest_httpserver import HTTPServer

from soajs.errors import RegistryReplyMalformed
from soajs.models.registry import Registry, parse_registry_reply
from soajs.registry import RegistryClient

REGISTRY_FILES = sorted(FIXTURES.glob("*/getRegistry*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def minimal_reply(**data: Any) -> dict[str, Any]:
    return {"result": True, "data": {"environment": "dev", **data}}


def as_bytes(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply).encode()


@pytest.fixture
def client(maintenance_server: HTTPServer) -> Any:
    with RegistryClient(f"http://127.0.0.1:{maintenance_server.port}", timeout=2.0) as fetcher:
        yield fetcher


@pytest.mark.parametrize("path", REGISTRY_FILES, ids=lambda path: path.name)
class TestSameAsTheDictPath:
    def test_validated_bytes_equal_the_validated_dict(self, path: Path) -> None:
        """A recorded reply validated from its bytes equals the registry built from its dict."""
        reply = load(path)
        registry = parse_registry_reply(path.read_bytes())
        assert registry is not None
        assert registry == Registry.from_wire(reply["data"])
        assert registry.model_dump() == Registry.from_wire(reply["data"]).model_dump()

    def test_raw_is_the_received_data(self, path: Path) -> None:
        """raw decodes the kept bytes to the reply's data object, once."""
        registry = parse_registry_reply(path.read_bytes())
        assert registry is not None
        assert registry.raw == load(path)["data"]
        assert registry.raw is registry.raw


class TestParseRegistryReply:
    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b'{"result": false, "data": {"environment": "dev"}}',
            b'{"result": 1, "data": {"environment": "dev"}}',
            b'{"result": "true", "data": {"environment": "dev"}}',
            b'{"result": true}',
            b'{"result": true, "data": {"name": "dev"}}',
            b'{"result": true, "data": []}',
            b'\xef\xbb\xbf{"result": true, "data": {"environment": "dev"}}',
        ],
    )
    def test_anything_but_a_plain_success_is_left_to_the_caller(self, body: bytes) -> None:
        """A body that is not a success the models accept gives None, never a registry."""
        assert parse_registry_reply(body) is None

    def test_null_groups_read_as_empty(self) -> None:
        """Explicit nulls in the JSON read as empty groups, as they do from a dict."""
        nulls = {
            "coreDB": None,
            "tenantMetaDB": None,
            "services": None,
            "custom": None,
            "resources": None,
            "deployer": None,
            "serviceConfig": {"awareness": None, "ports": None},
        }
        registry = parse_registry_reply(as_bytes(minimal_reply(**nulls)))
        assert registry is not None
        assert registry == Registry.from_wire(minimal_reply(**nulls)["data"])
        assert registry.services == {}
        assert registry.service_config.ports.controller is None

    def test_equal_to_another_reply_with_the_same_data(self) -> None:
        """Two registries from differently spaced bytes of the same data compare equal."""
        reply = minimal_reply(services={"s": {"group": "g", "port": 4001}})
        compact = parse_registry_reply(json.dumps(reply, separators=(",", ":")).encode())
        spaced = parse_registry_reply(json.dumps(reply, indent=2).encode())
        changed = parse_registry_reply(as_bytes(minimal_reply(services={"s": {"port": 4002}})))
        assert compact is not None
        assert spaced is not None
        assert compact == spaced
        assert compact != changed

    def test_copies_and_pickles_keep_raw(self) -> None:
        """A copied or pickled registry still reads the received data as raw."""
        reply = minimal_reply(coreDB={"main": {"prefix": "p"}})
        registry = parse_registry_reply(as_bytes(reply))
        assert registry is not None
        assert copy.deepcopy(registry).raw == reply["data"]
        assert pickle.loads(pickle.dumps(registry)).raw == reply["data"]  # noqa: S301
        assert registry.raw == reply["data"]

    def test_concurrent_first_reads_share_one_dict(self) -> None:
        """Threads reading raw for the first time at once all get the same dict."""
        registry = parse_registry_reply(as_bytes(minimal_reply(services={"s": {"port": 1}})))
        assert registry is not None
        seen: list[dict[str, Any]] = []
        start = threading.Barrier(8)

        def read() -> None:
            start.wait()
            seen.append(registry.raw)

        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(seen) == 8
        assert all(raw is seen[0] for raw in seen)


class TestFetchFallsBackToTheDictPath:
    def test_a_string_only_the_stdlib_decodes_still_loads(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """A reply pydantic-core cannot read (a lone surrogate escape) still loads as before."""
        body = b'{"result": true, "data": {"environment": "dev", "domain": "a\\ud800b"}}'
        maintenance_server.expect_request("/getRegistry").respond_with_data(
            body, content_type="application/json"
        )
        registry = client.fetch("dev", "hello")
        assert registry.domain == "a\ud800b"
        assert registry.raw == json.loads(body)["data"]

    def test_a_numeric_result_is_still_malformed(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """result: 1 is not the gateway's true: the reply is refused as before."""
        maintenance_server.expect_request("/getRegistry").respond_with_json(
            {"result": 1, "data": {"environment": "dev"}}
        )
        with pytest.raises(RegistryReplyMalformed, match="boolean result"):
            client.fetch("dev", "hello")
