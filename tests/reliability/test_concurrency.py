"""Concurrency: readers during continuous reloads, and requests that must not share a context."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from helpers import WSGIThread
from tagged_registry import registry_reply, tag_of

from soajs import current_context
from soajs.asgi import SoajsASGIMiddleware
from soajs.context import REQUEST_KEY, WSGI_CONTEXT_KEY
from soajs.registry import RegistryManager

from .conftest import Figures
from .faultserver import FaultServer
from .wire import caller_header, caller_tenant

# Seconds the reader threads run against continuous reloads.
SECONDS = float(os.environ.get("RELIABILITY_SECONDS", "10"))
READERS = 8
TASKS = 500
ROUNDS = int(os.environ.get("RELIABILITY_ROUNDS", "4"))
WSGI_CLIENTS = 16
WSGI_REQUESTS = int(os.environ.get("RELIABILITY_WSGI_REQUESTS", "25"))


class Reloader:
    """Reloads a manager back to back from one thread; the gateway alternates two registries."""

    def __init__(self, manager: RegistryManager) -> None:
        self.manager = manager
        self.reloads = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Reloader:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.manager.reload()
                self.reloads += 1
            except BaseException as exc:
                self.errors.append(exc)
                return


@pytest.fixture
def alternating(gateway: FaultServer) -> FaultServer:
    """The gateway answering the ``a`` and ``b`` registries in turn."""
    gateway.alternate(registry_reply("a", interval_ms=1), registry_reply("b", interval_ms=1))
    return gateway


@pytest.mark.usefixtures("fast")
class TestReadersDuringReloads:
    @pytest.mark.slow
    def test_reader_threads_see_whole_snapshots(
        self,
        alternating: FaultServer,
        make_manager: Callable[..., RegistryManager],
        figures: Figures,
    ) -> None:
        """8 reader threads during continuous reloads: no error, every snapshot whole."""
        manager = make_manager(alternating, timeout=5.0)
        stop = threading.Event()
        errors: list[BaseException] = []
        reads = [0] * READERS
        seen: list[set[str]] = [set() for _ in range(READERS)]

        def read(index: int) -> None:
            last_reloads = 0
            try:
                while not stop.is_set():
                    snapshot = manager.registry
                    seen[index].add(tag_of(snapshot))
                    assert snapshot.get_all_databases()["main"].name == f"main_{tag_of(snapshot)}"
                    assert manager.get_database("main").prefix in {"a", "b"}
                    status = manager.status
                    assert status.reloads >= last_reloads
                    last_reloads = status.reloads
                    reads[index] += 1
                    # A request handler waits on I/O now and then; a pure spin loop would
                    # keep the GIL from the reload's socket calls (CPython's convoy effect).
                    time.sleep(0)
            except BaseException as exc:
                errors.append(exc)

        readers = [threading.Thread(target=read, args=(i,)) for i in range(READERS)]
        with Reloader(manager) as reloader:
            for reader in readers:
                reader.start()
            time.sleep(SECONDS)
            stop.set()
            for reader in readers:
                reader.join(10)

        assert errors == []
        assert reloader.errors == []
        assert all(tags == {"a", "b"} for tags in seen), seen
        assert reloader.reloads > 100
        assert min(reads) > 100
        figures.record(
            "concurrency/threads",
            seconds=SECONDS,
            readers=READERS,
            reads=sum(reads),
            reloads=manager.status.reloads,
            errors=len(errors),
        )

    def test_asyncio_tasks_see_their_own_context_and_whole_snapshots(
        self,
        alternating: FaultServer,
        make_manager: Callable[..., RegistryManager],
        figures: Figures,
    ) -> None:
        """500 concurrent requests through the ASGI middleware, each with its own header."""
        manager = make_manager(alternating, timeout=5.0)

        async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
            first = current_context()
            assert first is not None
            await asyncio.sleep(0)  # let the other requests run in between
            tag = tag_of(manager.registry)
            await asyncio.sleep(0)
            again = current_context()
            body = (
                f'{{"tenant":"{first.tenant.code}","again":"{again and again.tenant.code}",'
                f'"scope":"{scope[REQUEST_KEY].context.tenant.code}","tag":"{tag}"}}'
            ).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})

        app = SoajsASGIMiddleware(handler, registry=manager)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))

        async def one(client: httpx.AsyncClient, index: int) -> tuple[int, dict[str, Any]]:
            reply = await client.get("/hello", headers={"soajsinjectobj": caller_header(index)})
            return index, reply.json() if reply.status_code == 200 else {
                "status": reply.status_code
            }

        async def rounds() -> list[tuple[int, dict[str, Any]]]:
            results: list[tuple[int, dict[str, Any]]] = []
            async with httpx.AsyncClient(transport=transport, base_url="http://hello") as client:
                round_ = 0
                # ROUNDS rounds, and more (bounded) until both snapshots have been read: the
                # reloader may flip twice between two polls of the wait below.
                while round_ < ROUNDS or (
                    len({body.get("tag") for _, body in results}) < 2 and round_ < 3 * ROUNDS
                ):
                    base = round_ * TASKS
                    round_ += 1
                    results += await asyncio.gather(*(one(client, base + i) for i in range(TASKS)))
                    # A busy event loop can starve the reloader thread of the GIL; wait (bounded)
                    # for the next swap so every round after the first meets another snapshot.
                    seen = tag_of(manager.registry)
                    for _ in range(1000):  # at most ~5 s
                        if tag_of(manager.registry) != seen:
                            break
                        await asyncio.sleep(0.005)
            return results

        with Reloader(manager) as reloader:
            results = asyncio.run(rounds())

        wrong = [
            (index, body)
            for index, body in results
            if {body.get("tenant"), body.get("again"), body.get("scope")} != {caller_tenant(index)}
        ]
        assert wrong == []
        assert {body["tag"] for _, body in results} == {"a", "b"}
        assert len(results) >= TASKS * ROUNDS
        assert reloader.errors == []
        figures.record(
            "concurrency/asyncio",
            concurrent_tasks=TASKS,
            requests=len(results),
            reloads=reloader.reloads,
            wrong_context=len(wrong),
        )


class TestContextIsolationWSGI:
    def test_threads_see_their_own_context(
        self,
        alternating: FaultServer,
        make_manager: Callable[..., RegistryManager],
        figures: Figures,
    ) -> None:
        """Concurrent WSGI requests on a threaded server never see each other's context."""
        from soajs.wsgi import SoajsWSGIMiddleware

        manager = make_manager(alternating, timeout=5.0)

        def handler(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            first = current_context()
            assert first is not None
            time.sleep(0.001)  # let the other threads run in between
            tag = tag_of(manager.registry)
            again = current_context()
            body = (
                f'{{"tenant":"{first.tenant.code}","again":"{again and again.tenant.code}",'
                f'"environ":"{environ[WSGI_CONTEXT_KEY].tenant.code}","tag":"{tag}"}}'
            ).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]

        server = WSGIThread(SoajsWSGIMiddleware(handler, manager)).start()
        results: list[tuple[int, dict[str, Any]]] = []
        failures: list[BaseException] = []

        def client(worker: int) -> None:
            try:
                with httpx.Client(base_url=server.url) as http:
                    for n in range(WSGI_REQUESTS):
                        index = worker * WSGI_REQUESTS + n
                        reply = http.get("/hello", headers={"soajsinjectobj": caller_header(index)})
                        results.append((index, reply.json()))
            except BaseException as exc:
                failures.append(exc)

        try:
            with Reloader(manager) as reloader:
                clients = [threading.Thread(target=client, args=(w,)) for w in range(WSGI_CLIENTS)]
                for thread in clients:
                    thread.start()
                for thread in clients:
                    thread.join(60)
        finally:
            server.stop()

        assert failures == []
        wrong = [
            (index, body)
            for index, body in results
            if {body["tenant"], body["again"], body["environ"]} != {caller_tenant(index)}
        ]
        assert wrong == []
        assert len(results) == WSGI_CLIENTS * WSGI_REQUESTS
        assert {body["tag"] for _, body in results} == {"a", "b"}
        assert reloader.errors == []
        figures.record(
            "concurrency/wsgi",
            client_threads=WSGI_CLIENTS,
            requests=len(results),
            reloads=reloader.reloads,
            wrong_context=len(wrong),
        )
