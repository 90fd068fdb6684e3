"""The pytest fixtures that give users' tests a running local gateway."""

from __future__ import annotations

import httpx

from soajs.gateway.fixtures import gateway_fixture

from .conftest import CAPTURED

seeded_gateway = gateway_fixture(CAPTURED / "db.seed.core_provision.json", scope="module")


def test_local_gateway_serves_the_dev_config(local_gateway):
    """The soajs plugin's local_gateway fixture yields a started gateway with the dev key."""
    reply = httpx.get(f"{local_gateway.maintenance_url}/getRegistry?env=dev").json()
    assert reply["result"] is True
    assert reply["data"]["awareness"]["port"] == local_gateway.data_port
    assert local_gateway.registry_api == f"127.0.0.1:{local_gateway.maintenance_port}"
    assert len(local_gateway.ext_keys) == 1


def test_a_fixture_can_serve_a_file(seeded_gateway):
    """gateway_fixture builds a fixture from a configuration file."""
    assert seeded_gateway.config.tenants[0].code == "TTEN"
    response = httpx.get(f"{seeded_gateway.data_url}/nosuch/x", headers={"key": "k"})
    assert response.status_code == 404
