"""Fork safety: under ``gunicorn --preload`` every worker's registry reloads on its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import free_port, wait_until
from tagged_registry import registry_reply

from .conftest import Figures
from .faultserver import FaultServer

TESTS_DIR = Path(__file__).resolve().parents[1]
WORKERS = 2


@pytest.fixture
def pid_gateway() -> Iterator[FaultServer]:
    """A gateway that logs the PID of each caller; its registry asks for reloads every 100 ms."""
    with FaultServer(registry_reply("a", interval_ms=100), track_pids=True) as server:
        yield server


class Gunicorn:
    """``gunicorn --preload`` serving :mod:`reliability.gunicorn_app` with two workers."""

    def __init__(self, gateway: FaultServer, log: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "SOAJS_REGISTRY_API": gateway.registry_api, "SOAJS_ENV": "dev"}
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--preload",
                "--workers",
                str(WORKERS),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--pythonpath",
                str(TESTS_DIR),
                "--graceful-timeout",
                "5",
                "reliability.gunicorn_app:app",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def ask(self) -> dict[str, Any] | None:
        """One request on a new connection, answered by whichever worker accepts it."""
        try:
            reply = httpx.get(f"http://127.0.0.1:{self.port}/", headers={"Connection": "close"})
        except httpx.TransportError:
            return None
        body: dict[str, Any] = reply.json()
        return body

    def stop(self) -> int:
        """SIGTERM, a bounded wait, then SIGKILL; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log.close()
        return self.process.returncode


class TestGunicornPreload:
    def test_each_worker_reloads_on_its_own(
        self, pid_gateway: FaultServer, tmp_path: Path, figures: Figures
    ) -> None:
        """Two forked workers each keep a running reload thread, seen in the gateway's log."""
        server = Gunicorn(pid_gateway, tmp_path / "gunicorn.log")
        answers: dict[int, list[dict[str, Any]]] = {}
        try:

            def both_workers_answered() -> bool:
                body = server.ask()
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
                body = server.ask()
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
