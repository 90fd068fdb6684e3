"""Secrets never show: not in repr/str, log records, exception messages or error replies.

The secret values come from the fixtures themselves (every ``password`` and ``secret`` in the
registries, the eKeys and iKeys of the captured headers) plus a database password and an
access token these tests add. One scenario drives everything that could print them, with the
whole ``soajs`` logger tree captured at DEBUG.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import importlib.util
import io
import json
import logging
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import wait_until
from pydantic import BaseModel, ValidationError
from tagged_registry import DB_PASSWORD, registry_reply

import soajs
from soajs import Config, Settings, current_context
from soajs.asgi import SoajsASGIMiddleware
from soajs.connector import ServiceConnector
from soajs.context import RequestContext
from soajs.errors import InjectHeaderError, SettingsError
from soajs.inject import parse_inject_header
from soajs.models import Registry
from soajs.models.context import ContextData
from soajs.registry import RegistryManager
from soajs.urac import UracDriver
from soajs.wsgi import SoajsWSGIMiddleware

from .conftest import Figures
from .faultserver import FaultServer, Mode
from .wire import FIXTURES, RAW_HEADERS

ACCESS_TOKEN = "reliability-access-token-0f9e8d"


_SECRET_NAMES = {
    "password",
    "pass",
    "secret",
    "ekey",
    "ikey",
    "extkey",
    "token",
    "accesstoken",
    "access_token",
    "refreshtoken",
    "refresh_token",
}


def _collect(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            if key.lower() in _SECRET_NAMES and isinstance(child, str):
                found.add(child)
            _collect(child, found)
    elif isinstance(value, list):
        for child in value:
            _collect(child, found)


def fixture_secrets() -> set[str]:
    """Every password, secret, token, eKey and iKey in the fixtures (registries, headers, DB)."""
    found = {DB_PASSWORD, ACCESS_TOKEN}
    for path in sorted(FIXTURES.glob("*/*.json")):
        _collect(json.loads(path.read_text(encoding="utf-8")), found)
    for text in RAW_HEADERS.values():
        _collect(json.loads(text), found)
    return {secret for secret in found if len(secret) >= 6}


SECRETS = fixture_secrets()
UPSTREAM_REGISTRIES = [
    FIXTURES / "upstream" / "getRegistry.response.nodejs-mock.json",
    FIXTURES / "upstream" / "getRegistry.response.synthesized-type-service.json",
]


def with_secrets(reply: dict[str, Any]) -> dict[str, Any]:
    """``reply`` with database credentials in every database entry, reloading every 20 ms."""
    reply = copy.deepcopy(reply)
    awareness = reply["data"]["serviceConfig"].setdefault("awareness", {})
    awareness.pop("autoReloadRegistry", None)
    awareness["autoRelaodRegistry"] = 20  # reload every 20 ms
    for group in ("coreDB", "tenantMetaDB"):
        for entry in (reply["data"].get(group) or {}).values():
            if isinstance(entry, dict):
                entry["credentials"] = {"username": "app", "password": DB_PASSWORD}
    return reply


FAULT_MODES = (
    Mode.HTTP_500,
    Mode.GARBAGE,
    Mode.RESULT_FALSE,
    Mode.NO_DATA,
    Mode.SLOW,
    Mode.RESET,
    Mode.DOWN,
)


def leaks(text: str) -> list[str]:
    """The secrets that appear in ``text``."""
    return sorted(secret for secret in SECRETS if secret in text)


class Seen:
    """Everything a user or an operator could read: reprs, strs, messages, reply bodies."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def show(self, *objects: object) -> None:
        for item in objects:
            self.texts.extend([repr(item), str(item)])
            if isinstance(item, BaseException):
                self.texts.extend(str(arg) for arg in item.args)

    def error(self, action: Callable[[], object]) -> BaseException:
        """Run ``action``; keep and return what it raised."""
        try:
            action()
        except Exception as exc:
            self.show(exc, exc.__cause__, exc.__context__)
            return exc
        raise AssertionError("expected an error")


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of the ``soajs`` logger tree, DEBUG and up."""
    caplog.set_level(logging.DEBUG, logger="soajs")
    return caplog


def test_the_fixtures_hold_the_secrets_these_tests_look_for() -> None:
    """The scan looks for the known fixture secrets, not an empty list."""
    assert {
        "soajs key lal massa",
        "test cookie secret",
        "test session secret",
        "this is a secret sentence",
        DB_PASSWORD,
    } <= SECRETS
    hello = json.loads(RAW_HEADERS["hello-get"])
    assert {hello["key"]["eKey"], hello["key"]["iKey"]} <= SECRETS


@pytest.mark.usefixtures("fast")
class TestRegistrySide:
    def test_reloads_failures_and_registration(
        self,
        gateway: FaultServer,
        make_manager: Callable[..., RegistryManager],
        captured_logs: pytest.LogCaptureFixture,
        seen: Seen,
        figures: Figures,
    ) -> None:
        """Background and explicit loads, every failure, registration: no secret anywhere."""
        replies = [with_secrets(registry_reply("a"))] + [
            with_secrets(json.loads(path.read_text(encoding="utf-8")))
            for path in UPSTREAM_REGISTRIES
        ]
        gateway.alternate(*replies)
        config = Config(name="hello", group="Tests", port=4100, version="1")
        manager = make_manager(
            gateway, config=config, settings={"deploy_manual": True, "service_name": "hello"}
        )
        assert wait_until(lambda: manager.status.reloads >= 6)  # the background thread's
        registry = manager.registry
        seen.show(
            manager,
            manager.status,
            manager.settings,
            manager.client,
            registry,
            registry.service_config,
            registry.get_all_databases(),
            registry.custom,
            registry.deployer,
            registry.services,
        )
        seen.show(*registry.get_all_databases().values())
        # A reply the models refuse, with the secrets beside the refused fields.
        refused = with_secrets(registry_reply("r"))
        refused["data"]["serviceConfig"]["awareness"] = "soajs key lal massa"
        refused["data"]["coreDB"]["main"]["servers"] = DB_PASSWORD
        faults = [*FAULT_MODES, "refused"]
        for fault in faults:
            if fault == "refused":
                gateway.reply = refused
            else:
                gateway.mode = fault
            # Failures in the background thread (logged), then one raised to the caller.
            assert wait_until(lambda: manager.status.consecutive_failures >= 2)
            seen.error(manager.reload)
            seen.show(manager.status)
            gateway.mode = Mode.OK
            gateway.alternate(*replies)
            assert wait_until(lambda: manager.status.consecutive_failures == 0)
        assert manager.register() is True
        gateway.mode = Mode.DOWN
        assert manager.register() is False
        seen.show(manager.status, manager)
        manager.stop()

        assert captured_logs.records
        assert leaks(captured_logs.text) == []
        for record in captured_logs.records:
            assert leaks(record.getMessage()) == []
        assert [(leaks(t), t[:300]) for t in seen.texts if leaks(t)] == []
        figures.record(
            "secrets/registry",
            secrets_looked_for=len(SECRETS),
            log_records=len(captured_logs.records),
            texts_scanned=len(seen.texts),
            faults_injected=len(faults),
            failed_loads=sum(c.answered is not Mode.OK for c in gateway.registry_calls()),
            leaks=0,
        )

    def test_models_refusing_a_registry_do_not_echo_it(self, seen: Seen) -> None:
        """Registry.from_wire on a bad registry raises an error free of the registry's secrets."""
        data = with_secrets(registry_reply("r"))["data"]
        data["serviceConfig"]["awareness"] = "soajs key lal massa"
        data["serviceConfig"]["key"] = ["soajs key lal massa"]
        data["coreDB"]["main"]["servers"] = DB_PASSWORD
        error = seen.error(lambda: Registry.from_wire(data))
        assert isinstance(error, ValidationError)
        assert leaks("\n".join(seen.texts)) == []

    def test_settings_errors_do_not_echo_values(
        self, monkeypatch: pytest.MonkeyPatch, seen: Seen
    ) -> None:
        """Invalid settings name the variable, never the value given."""
        secret = "soajs key lal massa"
        for values in (
            {"registry_api": f"http://app:{secret}@gateway:5000"},
            {"registry_api": secret},
            {"trusted_gateways": secret},
            {"registry_timeout": secret},
            {"header_policy": secret},
            {"deploy_manual": secret},
            {"service_port": secret},
        ):
            error = seen.error(lambda values=values: Settings(**values))
            assert isinstance(error, SettingsError)
        monkeypatch.setenv("SOAJS_REGISTRY_API", f"app:{secret}@gateway:5000")
        seen.error(Settings)
        assert leaks("\n".join(seen.texts)) == []


def _headers() -> dict[str, bytes]:
    """Valid, invalid, oversized and non-JSON headers, all carrying the captured keys."""
    valid = RAW_HEADERS["hello-get"]
    data = json.loads(valid)
    wrong_type = copy.deepcopy(data)
    wrong_type["tenant"]["id"] = {"eKey": data["key"]["eKey"]}
    wrong_type["key"]["iKey"] = [data["key"]["iKey"]]
    key_as_text = copy.deepcopy(data)
    key_as_text["key"] = f"{data['key']['eKey']} {data['key']['iKey']}"
    oversized = copy.deepcopy(data)
    oversized["tenant"]["profile"] = {"pad": "x" * 70_000}
    return {
        "valid": valid.encode("latin-1"),
        "wrong-type": json.dumps(wrong_type).encode(),
        "key-as-text": json.dumps(key_as_text).encode(),
        "oversized": json.dumps(oversized).encode(),
        "truncated": valid[: len(valid) // 2].encode("latin-1"),
        "array": json.dumps([data]).encode(),
    }


async def call_asgi(app: Any, value: bytes) -> bytes:
    """One request through an ASGI app, with the header and an access token; the body."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://hello") as client:
        reply = await client.get(
            f"/x?access_token={ACCESS_TOKEN}",
            headers=[(b"soajsinjectobj", value), (b"access_token", ACCESS_TOKEN.encode())],
        )
    return reply.content


def call_wsgi(app: Any, value: bytes) -> bytes:
    """The same request through a WSGI app; the body."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/x",
        "QUERY_STRING": f"access_token={ACCESS_TOKEN}",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_SOAJSINJECTOBJ": value.decode("latin-1"),
        "HTTP_ACCESS_TOKEN": ACCESS_TOKEN,
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
    }
    return b"".join(app(environ, lambda status, headers, exc_info=None: None))


class TestRequestSide:
    @pytest.mark.parametrize("policy", ["ignore", "reject"])
    def test_middlewares_with_valid_and_invalid_headers(
        self,
        policy: str,
        captured_logs: pytest.LogCaptureFixture,
        seen: Seen,
        figures: Figures,
    ) -> None:
        """ASGI and WSGI middlewares, trusted and untrusted, leave no key or token behind."""
        contexts: list[ContextData | None] = []
        connector_views: list[str] = []

        def read() -> None:
            context = current_context()
            contexts.append(context)
            if context is not None:
                connector = ServiceConnector()
                response = connector.connect("hello")
                connector_views.extend([repr(connector), repr(response), str(response)])
                seen.show(context, context.key, context.tenant, context.application)

        async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            read()
            seen.show(scope["soajs.request"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            read()
            seen.show(environ["soajs.request"])
            start_response("200 OK", [])
            return [b"ok"]

        bodies: list[bytes] = []
        requests = 0
        for trusted in ("127.0.0.1/32", "10.9.9.9/32"):
            settings = Settings(header_policy=policy, trusted_gateways=trusted)
            asgi = SoajsASGIMiddleware(asgi_app, settings=settings)
            wsgi = SoajsWSGIMiddleware(wsgi_app, settings=settings)
            for value in _headers().values():
                bodies.append(asyncio.run(call_asgi(asgi, value)))
                bodies.append(call_wsgi(wsgi, value))
                requests += 2

        # The parser's own errors, raised directly.
        for value in _headers().values():
            try:
                parse_inject_header(value)
            except InjectHeaderError as exc:
                seen.show(exc)
        seen.show(RequestContext(RAW_HEADERS["hello-get"], access_token=ACCESS_TOKEN))

        assert any(context is not None for context in contexts)
        assert connector_views
        assert leaks(captured_logs.text) == []
        assert leaks("\n".join(seen.texts + connector_views)) == []
        assert leaks(b"\n".join(bodies).decode("latin-1")) == []
        figures.record(
            f"secrets/middleware-{policy}",
            requests=requests,
            log_records=len(captured_logs.records),
            texts_scanned=len(seen.texts) + len(connector_views),
            leaks=0,
        )


# Every other fixture document the models could be given, with the secrets these tests add.
URAC_CONFIG_SECRET = "reliability-urac-config-secret"
URAC_GROUPS_CONFIG_SECRET = "reliability-urac-groups-config-secret"
ROAMING_DB_SECRET = "reliability-roaming-tenant-meta-db"
MODEL_SECRETS = SECRETS | {URAC_CONFIG_SECRET, URAC_GROUPS_CONFIG_SECRET, ROAMING_DB_SECRET}


def _fixture_documents() -> list[Any]:
    """Every JSON fixture, the captured headers, and registries and a header with secrets added."""
    documents: list[Any] = [
        json.loads(path.read_text(encoding="utf-8")) for path in sorted(FIXTURES.glob("*/*.json"))
    ]
    documents += [json.loads(text) for text in RAW_HEADERS.values()]
    documents += [with_secrets(registry_reply("s"))["data"]]
    documents += [
        with_secrets(json.loads(path.read_text(encoding="utf-8"))) for path in UPSTREAM_REGISTRIES
    ]
    header = json.loads(RAW_HEADERS["secure-urac-jwt"])
    header["urac"]["config"] = {"keys": {"k": {"config": {"svc": {"pw": URAC_CONFIG_SECRET}}}}}
    header["urac"]["groupsConfig"] = {"allowedPackages": URAC_GROUPS_CONFIG_SECRET}
    header["tenant"]["roaming"] = {"tId": "t", "tenantMetaDB": {"password": ROAMING_DB_SECRET}}
    header["urac"]["futureToken"] = {"accessToken": URAC_CONFIG_SECRET}
    documents.append(header)
    return documents


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside ``value``, ``value`` itself included."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _objects(child)
    elif isinstance(value, list):
        for child in value:
            yield from _objects(child)


# Importing soajs.django needs configured Django settings; it defines no model (checked below).
_NOT_IMPORTABLE_ALONE = {"soajs.django"}


def _model_classes() -> list[type[BaseModel]]:
    """Every pydantic model defined in the soajs package, found by walking its modules."""
    found: dict[str, type[BaseModel]] = {}
    for module_info in pkgutil.walk_packages(soajs.__path__, "soajs."):
        if module_info.name in _NOT_IMPORTABLE_ALONE:
            continue
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__.startswith("soajs")
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


MODEL_CLASSES = _model_classes()
OBJECTS = [item for document in _fixture_documents() for item in _objects(document)]


def test_every_model_class_is_found() -> None:
    """The walk finds the context, registry, service config and gateway config models."""
    for name in _NOT_IMPORTABLE_ALONE:
        spec = importlib.util.find_spec(name)
        assert spec is not None
        assert spec.origin is not None
        assert "BaseModel" not in Path(spec.origin).read_text(encoding="utf-8")
    names = {model.__name__ for model in MODEL_CLASSES}
    assert {
        "ContextData",
        "Urac",
        "Key",
        "Registry",
        "Database",
        "Config",
        "GatewayConfig",
        "UracProfile",
    } <= names
    assert len(OBJECTS) > 500


@pytest.mark.parametrize("model", MODEL_CLASSES, ids=lambda model: model.__qualname__)
def test_no_model_shows_a_secret(model: type[BaseModel]) -> None:
    """Validated from any object of any fixture, no model's repr, str or error shows a secret."""
    texts: list[str] = []
    validated = 0
    for data in OBJECTS:
        try:
            instance = model.model_validate(data)
        except ValidationError as exc:
            texts += [str(exc), repr(exc)]
            continue
        except ValueError as exc:  # a model validator's own error (the gateway config's)
            texts.append(str(exc))
            continue
        validated += 1
        texts += [repr(instance), str(instance)]
        for value in vars(instance).values():
            texts += [repr(value), str(value)] if isinstance(value, BaseModel) else []
        if isinstance(instance, ContextData):
            texts += [repr(instance.tenant.application), repr(instance.tenant.key)]
    leaked = sorted({secret for secret in MODEL_SECRETS for text in texts if secret in text})
    assert leaked == []
    assert texts


def test_urac_driver_shows_no_secret() -> None:
    """No urac driver or profile, even with all, shows a secret in repr or str."""
    texts: list[str] = []
    profiles = 0
    for data in OBJECTS:
        try:
            context = ContextData.model_validate(data)
        except ValidationError:
            continue
        if context.urac is None:
            continue
        # Filled whatever the header's param says: every user record is scanned.
        driver = UracDriver(context.urac)
        for profile in (driver.get_profile(), driver.get_profile(all=True)):
            assert profile is not None
            profiles += 1
            texts += [repr(profile), str(profile), repr(profile.social_login)]
        texts += [repr(driver), str(driver), repr(context.urac_driver)]
    assert profiles >= 10
    leaked = sorted({secret for secret in MODEL_SECRETS for text in texts if secret in text})
    assert leaked == []
