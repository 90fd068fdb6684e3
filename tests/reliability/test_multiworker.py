"""Several workers behind the gateway: gunicorn with 4, uvicorn with ``--workers 2``.

Each service runs as a user would start it, in its own process group on 127.0.0.1, with
``SOAJS_DEPLOY_MANUAL=true``, behind a :class:`~soajs.gateway.LocalGateway` started from
``examples/gateway.yaml``. Requests go through the gateway's data port with the tenant's key;
each answer names the worker that served it (its PID), the tenant it read from the injected
header, and what ``orders`` (a second service) saw when the worker called it with
:class:`~soajs.ServiceConnector`.

What the tests establish (described in docs/deploy.md):

* every worker process loads its own registry and keeps its own reload thread;
* every worker registers (so the gateway gets one ``/register`` per worker, or one from the
  gunicorn master with ``--preload``), and the gateway keeps **one** host for them: a host is
  the service's name, version and IP, and the port is the service's;
* SIGTERM to the master stops every worker, with exit code 0 and no traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gunicorn
import httpx
import pytest
from helpers import free_port, wait_until

from soajs.gateway import LocalGateway
from soajs.gateway.fixtures import gateway_fixture

from .conftest import Figures

TESTS_DIR = Path(__file__).resolve().parents[1]
EXAMPLES = TESTS_DIR.parent / "examples"
APPS = "reliability.multiworker_apps"
TENANT = "TTEN"
# The tenant key's configuration of each service, in examples/gateway.yaml.
SERVICES_CONFIG = {
    "caller": {"mode": "interconnect-test"},
    "hello": {"feature": "on", "limit": 10},
    "orders": {"currency": "EUR"},
}
# Requests sent at once, and how long each holds its worker, so that they overlap; rounds of
# them until every worker has answered.
CONCURRENT = 8
HOLD = 0.2
MAX_ROUNDS = 25
# Seconds a service gets to become healthy, and its processes to end after SIGTERM.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0

multiworker_gateway = gateway_fixture(EXAMPLES / "gateway.yaml", scope="module")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path("/proc/self/task").is_dir(), reason="finds the worker processes in /proc"
    ),
]


def children(pid: int) -> set[int]:
    """The PIDs of the live child processes of ``pid`` (Linux ``/proc``)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found.update(int(child) for child in task.read_text().split())
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


class Service:
    """A service started by its server's own command; stopped by PID, as an operator would."""

    def __init__(
        self, command: list[str], gateway: LocalGateway, name: str, port: int, logs: Path
    ) -> None:
        self.name = name
        self.port = port
        self.stderr_path = logs / f"{name}.stderr"
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("SOAJS_")
        }
        environment.update(
            SOAJS_REGISTRY_API=gateway.registry_api,
            SOAJS_ENV=gateway.env,
            SOAJS_DEPLOY_MANUAL="true",
            SOAJS_TRUSTED_GATEWAYS="127.0.0.1",
            SOAJS_SERVICE_PORT=str(port),
            # Far beyond the test, so each process registers exactly once here.
            SOAJS_REREGISTER_INTERVAL="600",
            PYTHONUNBUFFERED="1",
        )
        with (logs / f"{name}.stdout").open("wb") as stdout, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                command,
                cwd=TESTS_DIR,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=err,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not gateway.healthy_hosts(name):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{name} never became healthy:\n{self.stderr()}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        """The PID of the server's master (supervisor) process."""
        return self.process.pid

    def stderr(self) -> str:
        """What the server wrote on stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM to the master and a bounded wait (SIGKILL past it); the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        return self.process.returncode


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """Where the services write their output."""
    return tmp_path


@pytest.fixture(scope="module")
def orders(
    multiworker_gateway: LocalGateway, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """``orders`` on uvicorn (one process), registered and healthy: the services' mesh target."""
    port = free_port()
    command = uvicorn_command("create_orders", port)
    logs = tmp_path_factory.mktemp("orders")
    service = Service(command, multiworker_gateway, "orders", port, logs)
    try:
        yield service
    finally:
        service.stop()


def uvicorn_command(factory: str, port: int, *options: str) -> list[str]:
    """``uvicorn`` serving ``factory`` of the test apps on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"{APPS}:{factory}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-proxy-headers",
        "--no-access-log",
        *options,
    ]


def gunicorn_command(factory: str, port: int, workers: int, *options: str) -> list[str]:
    """``gunicorn`` serving ``factory()`` of the test apps with ``workers`` sync workers."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
        *options,
    ]
    if gunicorn.version_info >= (27, 0):
        # gunicorn 27 opens a control socket under ~/.gunicorn, shared by every server on the
        # machine; these tests need none.
        command.append("--no-control-socket")
    return [*command, f"{APPS}:{factory}()"]


def relay_until_every_worker_answered(
    gateway: LocalGateway, service: Service, workers: int
) -> tuple[dict[int, list[dict[str, Any]]], int]:
    """Send concurrent ``/relay`` requests through the gateway until ``workers`` PIDs answered.

    Returns:
        The answers by worker PID, and the number of requests sent.
    """
    by_pid: dict[int, list[dict[str, Any]]] = {}
    sent = 0

    def relay(_: int) -> dict[str, Any]:
        reply = httpx.get(
            f"{gateway.data_url}/{service.name}/relay",
            params={"hold": HOLD},
            headers={"key": gateway.ext_key},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    with ThreadPoolExecutor(CONCURRENT) as pool:
        for _ in range(MAX_ROUNDS):
            for body in pool.map(relay, range(CONCURRENT)):
                by_pid.setdefault(body["pid"], []).append(body)
            sent += CONCURRENT
            if len(by_pid) >= workers:
                break
    return by_pid, sent


def check_run(
    gateway: LocalGateway,
    service: Service,
    orders: Service,
    *,
    workers: int,
    registrations: int,
    figures: Figures,
    label: str,
) -> None:
    """Every worker answers with context and a mesh call; one host; a clean shutdown."""
    try:
        by_pid, sent = relay_until_every_worker_answered(gateway, service, workers)
        worker_pids = children(service.pid)
        # Every worker answered, and only the workers: never the master.
        assert len(by_pid) == workers, service.stderr()
        assert set(by_pid) <= worker_pids
        assert service.pid not in by_pid
        answers = [body for bodies in by_pid.values() for body in bodies]
        for body in answers:
            # The worker read the tenant from the header the gateway injected...
            assert body["tenant"] == TENANT
            assert body["config"] == SERVICES_CONFIG[service.name]
            # ...from its own registry, loaded and kept fresh by its own thread...
            assert body["environment"] == gateway.env
            assert body["registry_running"] is True
            # ...and called orders directly (mesh): no key, the same tenant, orders' own config.
            assert body["via"] == "mesh"
            assert body["url"] == f"http://127.0.0.1:{orders.port}"
            assert body["reply"]["service"] == "orders"
            assert body["reply"]["pid"] == orders.pid
            assert body["reply"]["key_header"] is False
            assert body["reply"]["tenant"] == TENANT
            assert body["reply"]["config"] == SERVICES_CONFIG["orders"]

        def mine() -> list[dict[str, Any]]:
            return [c.body for c in gateway.calls("/register") if c.body["name"] == service.name]

        assert wait_until(lambda: len(mine()) >= registrations, timeout=10)
        bodies = mine()
        assert len(bodies) == registrations
        assert all(body == bodies[0] for body in bodies)
        assert (bodies[0]["ip"], bodies[0]["port"], bodies[0]["mw"]) == (
            "127.0.0.1",
            service.port,
            True,
        )
        # What the gateway keeps: one host, whatever the number of workers and registrations.
        entry = gateway.registry()["services"][service.name]
        assert entry["port"] == service.port
        assert entry["hosts"] == {"latest": "1", "1": ["127.0.0.1"]}
        assert gateway.healthy_hosts(service.name) == ["127.0.0.1"]
    finally:
        master_and_workers = {service.pid, *children(service.pid)}
        exit_code = service.stop()
    assert exit_code == 0, service.stderr()
    assert wait_until(lambda: not any(alive(pid) for pid in master_and_workers), STOP_TIMEOUT)
    assert "Traceback" not in service.stderr()
    figures.record(
        f"multiworker/{label}",
        workers=len(by_pid),
        requests_until_every_worker_answered=sent,
        register_calls=len(bodies),
        gateway_hosts=len(entry["hosts"]["1"]),
        exit_code=exit_code,
    )


class TestGunicornWorkers:
    WORKERS = 4

    @pytest.mark.parametrize("preload", [False, True], ids=["load-in-worker", "preload"])
    def test_four_workers_behind_the_gateway(
        self,
        multiworker_gateway: LocalGateway,
        orders: Service,
        logs: Path,
        figures: Figures,
        preload: bool,
    ) -> None:
        """gunicorn's 4 workers all serve context and mesh calls; the gateway sees one host."""
        multiworker_gateway.clear_calls()
        port = free_port()
        options = ["--preload"] if preload else []
        command = gunicorn_command("create_caller", port, self.WORKERS, *options)
        service = Service(command, multiworker_gateway, "caller", port, logs)
        check_run(
            multiworker_gateway,
            service,
            orders,
            workers=self.WORKERS,
            # With --preload the app is built once, in the master, which registers for all.
            registrations=1 if preload else self.WORKERS,
            figures=figures,
            label=f"gunicorn-{'preload' if preload else 'load-in-worker'}",
        )


class TestUvicornWorkers:
    WORKERS = 2

    def test_two_workers_behind_the_gateway(
        self,
        multiworker_gateway: LocalGateway,
        orders: Service,
        logs: Path,
        figures: Figures,
    ) -> None:
        """uvicorn --workers 2 both serve context and mesh calls; the gateway sees one host."""
        multiworker_gateway.clear_calls()
        port = free_port()
        command = uvicorn_command("create_hello", port, "--workers", str(self.WORKERS))
        service = Service(command, multiworker_gateway, "hello", port, logs)
        check_run(
            multiworker_gateway,
            service,
            orders,
            workers=self.WORKERS,
            registrations=self.WORKERS,
            figures=figures,
            label="uvicorn-workers",
        )
