"""Fork safety: under ``gunicorn --preload`` every worker's registry reloads on its own."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import wait_until
from tagged_registry import registry_reply

from .conftest import Figures
from .faultserver import FaultServer
from .services import Gunicorn

WORKERS = 2


@pytest.fixture
def pid_gateway() -> Iterator[FaultServer]:
    """A gateway that logs the PID of each caller; its registry asks for reloads every 100 ms."""
    with FaultServer(registry_reply("a", interval_ms=100), track_pids=True) as server:
        yield server


def preloaded_gunicorn(gateway: FaultServer, log: Path) -> Gunicorn:
    """``gunicorn --preload`` serving :mod:`reliability.gunicorn_app` with two workers."""
    env = {"SOAJS_REGISTRY_API": gateway.registry_api, "SOAJS_ENV": "dev"}
    options = ("--preload", "--workers", str(WORKERS), "--graceful-timeout", "5")
    return Gunicorn("reliability.gunicorn_app:app", log, *options, env=env)


def ask(server: Gunicorn) -> dict[str, Any] | None:
    """One request on a new connection, answered by whichever worker accepts it."""
    try:
        reply = httpx.get(f"http://127.0.0.1:{server.port}/", headers={"Connection": "close"})
    except httpx.TransportError:
        return None
    body: dict[str, Any] = reply.json()
    return body


class TestGunicornPreload:
    def test_each_worker_reloads_on_its_own(
        self, pid_gateway: FaultServer, tmp_path: Path, figures: Figures
    ) -> None:
        """Two forked workers each keep a running reload thread, seen in the gateway's log."""
        server = preloaded_gunicorn(pid_gateway, tmp_path / "gunicorn.log")
        answers: dict[int, list[dict[str, Any]]] = {}
        try:

            def both_workers_answered() -> bool:
                body = ask(server)
                if body is not None:
                    answers.setdefault(body["pid"], []).append(body)
                return len(answers) >= WORKERS

            assert wait_until(both_workers_answered, timeout=30), (
                tmp_path / "gunicorn.log"
            ).read_text()
            workers = set(answers)
            assert server.process.pid not in workers

            def each_worker_reloaded() -> bool:
                calls = Counter(call.pid for call in pid_gateway.registry_calls())
                return all(calls[pid] >= 3 for pid in workers)

            assert wait_until(each_worker_reloaded, timeout=20)

            def each_worker_reports_more_reloads() -> bool:
                body = ask(server)
                if body is not None and body["pid"] in workers:
                    answers[body["pid"]].append(body)
                return all(
                    answers[pid][-1]["reloads"] > answers[pid][0]["reloads"] for pid in workers
                )

            assert wait_until(each_worker_reports_more_reloads, timeout=20)
        finally:
            exit_code = server.stop()

        assert exit_code == 0
        assert all(body["running"] for bodies in answers.values() for body in bodies)
        assert {body["environment"] for bodies in answers.values() for body in bodies} == {"dev"}
        calls = Counter(call.pid for call in pid_gateway.registry_calls())
        figures.record(
            "fork/gunicorn-preload",
            workers=len(workers),
            registry_calls_per_worker=sorted(calls[pid] for pid in workers),
            registry_calls_from_master=calls[server.process.pid],
            unattributed_calls=calls[None],
            gunicorn_exit_code=exit_code,
        )
