"""RegistryManager.get_database/get_service answer as the loaded registry itself does."""

from __future__ import annotations

from typing import Any

import pytest

from soajs.errors import NotFound, RegistryError
from soajs.models.registry import Registry
from soajs.testing import FakeRegistryManager


def registry_data(**data: Any) -> dict[str, Any]:
    return {"environment": "dev", "coreDB": {}, "tenantMetaDB": {}, "services": {}, **data}


def fake(managers: list[FakeRegistryManager], data: dict[str, Any], **options: Any) -> Any:
    manager = FakeRegistryManager(data, service_name="hello", **options)
    managers.append(manager)
    return manager


class TestLookups:
    def test_core_db_wins_over_tenant_meta_db(self, managers: list[FakeRegistryManager]) -> None:
        """A name in both groups answers the coreDB entry, as Registry.get_database does."""
        data = registry_data(
            coreDB={"main": {"prefix": "core"}}, tenantMetaDB={"main": {"prefix": "meta"}}
        )
        manager = fake(managers, data)
        assert manager.get_database("main").prefix == "core"
        assert manager.get_database("main") == Registry.from_wire(data).get_database("main")

    def test_a_null_core_entry_falls_back_to_tenant_meta_db(
        self, managers: list[FakeRegistryManager]
    ) -> None:
        """A coreDB entry sent as null leaves the tenantMetaDB entry of that name visible."""
        data = registry_data(coreDB={"main": None}, tenantMetaDB={"main": {"prefix": "meta"}})
        manager = fake(managers, data)
        assert manager.get_database("main").prefix == "meta"

    def test_a_null_entry_alone_is_not_found(self, managers: list[FakeRegistryManager]) -> None:
        """A database whose only entry is null is not found, with the registry's message."""
        manager = fake(managers, registry_data(coreDB={"session": None}))
        with pytest.raises(NotFound) as caught:
            manager.get_database("session")
        assert str(caught.value) == str(_not_found(manager.registry.get_database, "session"))

    def test_misses_raise_the_registry_message(self, managers: list[FakeRegistryManager]) -> None:
        """An unknown name raises NotFound with the same text as the snapshot's own lookup."""
        manager = fake(managers, registry_data(services={"hello": {"port": 4001}}))
        for lookup, own in (
            (manager.get_database, manager.registry.get_database),
            (manager.get_service, manager.registry.get_service),
        ):
            with pytest.raises(NotFound) as caught:
                lookup("absent")
            assert str(caught.value) == str(_not_found(own, "absent"))

    def test_nothing_loaded_is_a_registry_error(self, managers: list[FakeRegistryManager]) -> None:
        """Before the first load both lookups say the registry is not loaded yet."""
        manager = fake(managers, registry_data(), autostart=False)
        for lookup in (manager.get_database, manager.get_service):
            with pytest.raises(RegistryError, match="not loaded yet"):
                lookup("main")

    def test_a_kept_bound_method_sees_later_reloads(
        self, managers: list[FakeRegistryManager]
    ) -> None:
        """manager.get_database kept in a variable answers from each newly loaded snapshot."""
        manager = fake(managers, registry_data(coreDB={"main": {"prefix": "a"}}))
        get_database = manager.get_database
        get_service = manager.get_service
        assert get_database("main").prefix == "a"
        manager.set_registry(
            registry_data(coreDB={"main": {"prefix": "b"}}, services={"hello": {"port": 4002}})
        )
        manager.reload()
        assert get_database("main").prefix == "b"
        assert get_service("hello").port == 4002


def _not_found(lookup: Any, name: str) -> NotFound:
    try:
        lookup(name)
    except NotFound as exc:
        return exc
    raise AssertionError(f"{name!r} was found")
