"""The real SOAJS gateway (soajs.controller 4.3.3) on loopback, for the interop suite.

The recipe is ``docs/real-gateway.md``: a MongoDB-wire server (SecantusDB, in its own
virtualenv), the provision data of ``seed.core_provision.json``, and the npm package started with
a ``-r`` preload that keeps every listener on 127.0.0.1. Everything is installed once under
``.interop/`` at the repository root and reused; every process is started here and stopped here,
by its PID.
"""

from __future__ import annotations

import abc
import atexit
import concurrent.futures
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from helpers import free_port

CONTROLLER_PACKAGE = "soajs.controller@4.3.3"
DB_PACKAGE = "SecantusDB==0.7.0b3"
HEALTH_CHECK_INTERVAL_MS = 1000
JWT_SECRET = "tenant jwt secret"
ENV = "dev"

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
INTEROP_ROOT = REPO_ROOT / ".interop"
SEED_FILE = HERE / "seed.core_provision.json"
DB_TOOL = HERE / "dbtool.py"
PRELOAD = HERE / "loopback_preload.js"
PROFILE_TEMPLATE = HERE / "profile.template.js"

_INSTALL_MARKER = "installed.json"
_START_TIMEOUT = 45.0
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_STOP_TIMEOUT = 10.0


class InteropSetupError(RuntimeError):
    """The stack could not be installed or started; the message says which part and why."""


def free_port_pair() -> tuple[int, int]:
    """Return ``(port, increment)`` such that ``port`` and ``port + increment`` are both free."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second,
    ):
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        low, high = sorted((int(first.getsockname()[1]), int(second.getsockname()[1])))
    return low, high - low


def wait_for_port(port: int, *, timeout: float, process: subprocess.Popen[bytes] | None) -> None:
    """Wait until something accepts connections on ``127.0.0.1:port``.

    Raises:
        InteropSetupError: the process exited first, or the port stayed closed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise InteropSetupError(f"process {process.pid} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise InteropSetupError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def stop_process(process: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    """Send ``sig`` to one process by its PID, then SIGKILL it if it outlives the bound."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, sig)
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(_STOP_TIMEOUT)


@dataclass(frozen=True)
class Installation:
    """Where the gateway package and the DB virtualenv live."""

    node_dir: Path
    db_venv: Path

    @property
    def controller_entry(self) -> Path:
        """The gateway's ``index.js``."""
        return self.node_dir / "node_modules" / "soajs.controller" / "index.js"

    @property
    def db_python(self) -> Path:
        """The DB virtualenv's interpreter (has pymongo)."""
        return self.db_venv / "bin" / "python"

    @property
    def db_server(self) -> Path:
        """The ``secantusd-py`` console script."""
        return self.db_venv / "bin" / "secantusd-py"


def _run(command: list[str], *, cwd: Path, what: str) -> None:
    result = subprocess.run(
        command, check=False, cwd=cwd, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        raise InteropSetupError(
            f"{what} failed with exit code {result.returncode}: {' '.join(command)}\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def ensure_installed(root: Path = INTEROP_ROOT) -> Installation:
    """Install the gateway and the DB under ``root`` unless a finished install is there.

    A marker file written after a successful install records the pinned versions; a file lock
    keeps concurrent test runs from installing into the same folder at once.
    """
    installation = Installation(node_dir=root / "node", db_venv=root / "dbvenv")
    wanted = {"controller": CONTROLLER_PACKAGE, "db": DB_PACKAGE, "python": sys.executable}
    marker = root / _INSTALL_MARKER
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _install_is_complete(marker, wanted, installation):
            return installation
        marker.unlink(missing_ok=True)
        installation.node_dir.mkdir(exist_ok=True)
        npm = shutil.which("npm") or "npm"
        # npm and pip download at the same time: a first install takes half as long.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            npm_install = pool.submit(
                _run,
                [npm, "install", CONTROLLER_PACKAGE, "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=installation.node_dir,
                what="npm install",
            )
            if not installation.db_python.exists():
                _run(
                    [sys.executable, "-m", "venv", str(installation.db_venv)],
                    cwd=root,
                    what="creating the DB virtualenv",
                )
            _run(
                [str(installation.db_python), "-m", "pip", "install", "--quiet", DB_PACKAGE],
                cwd=root,
                what="pip install",
            )
            npm_install.result()
        marker.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
    return installation


def _install_is_complete(marker: Path, wanted: dict[str, str], inst: Installation) -> bool:
    if not marker.exists():
        return False
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except ValueError:
        return False
    return (
        recorded == wanted
        and inst.controller_entry.exists()
        and inst.db_server.exists()
        and inst.db_python.exists()
    )


def load_seed() -> dict[str, Any]:
    """The suite's provision data, as plain JSON (Extended JSON markers left as they are)."""
    seed: dict[str, Any] = json.loads(SEED_FILE.read_text(encoding="utf-8"))
    return seed


def seed_ext_key(seed: dict[str, Any]) -> str:
    """The fixed extKey of tenant TTEN for DEV."""
    return str(seed["tenants"][0]["applications"][0]["keys"][0]["extKeys"][0]["extKey"])


def run_seed(data_port: int, maintenance_inc: int) -> dict[str, Any]:
    """The suite's seed with this run's ports and a short health-check interval."""
    seed: dict[str, Any] = load_seed()
    environment = seed["environment"][0]
    environment["port"] = data_port
    config = environment["services"]["config"]
    config["ports"]["controller"] = data_port
    config["ports"]["maintenanceInc"] = maintenance_inc
    config["awareness"]["healthCheckInterval"] = HEALTH_CHECK_INTERVAL_MS
    return seed


class GatewayUnderTest(abc.ABC):
    """What the scenarios use of a gateway, whichever one it is (see the subclasses).

    Attributes:
        kind: ``"real"`` or ``"local"``.
        data_port: the gateway's data port (``ports.controller`` of the seeded environment).
        maintenance_port: ``data_port + maintenanceInc``.
        data_url / maintenance_url: ``http://127.0.0.1:<port>``.
        registry_api: ``127.0.0.1:<maintenance_port>``, the value of ``SOAJS_REGISTRY_API``.
        ext_key: the tenant's extKey (send it as the ``key`` header).
        jwt_secret: tenant TTEN's ``oauth.secret`` (HS256).
        workdir: a folder for this gateway's files and the logs of its services.
    """

    kind = "?"
    env = ENV
    jwt_secret = JWT_SECRET
    log_path: Path

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ext_key = seed_ext_key(load_seed())
        self.data_port, self.maintenance_inc = free_port_pair()
        self.maintenance_port = self.data_port + self.maintenance_inc
        self.data_url = f"http://127.0.0.1:{self.data_port}"
        self.maintenance_url = f"http://127.0.0.1:{self.maintenance_port}"
        self.registry_api = f"127.0.0.1:{self.maintenance_port}"

    @abc.abstractmethod
    def start_gateway(self) -> None:
        """Start the gateway on this object's ports (no-op when it runs)."""

    @abc.abstractmethod
    def stop_gateway(self) -> None:
        """Stop the gateway; :meth:`start_gateway` brings it back on the same ports."""

    def restart_gateway(self) -> None:
        """Stop the gateway and start it again on the same ports."""
        self.stop_gateway()
        self.start_gateway()

    def read_log(self) -> str:
        """Everything the gateway logged, across restarts."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return _ANSI_ESCAPE.sub("", text)

    def log_tail(self, lines: int = 150) -> str:
        """The last ``lines`` lines of the gateway's log."""
        return "\n".join(self.read_log().splitlines()[-lines:])

    def get_registry(self, service_name: str | None = None) -> dict[str, Any]:
        """``GET /getRegistry`` on the maintenance port, as the gateway answers it."""
        params = {"env": self.env, "type": "service"}
        if service_name is not None:
            params["serviceName"] = service_name
        return self._maintenance("/getRegistry", params)

    def awareness_stat(self) -> dict[str, Any]:
        """``GET /awarenessStat``: every service entry with its hosts' health as last probed."""
        return self._maintenance("/awarenessStat")

    def reload_registry(self) -> dict[str, Any]:
        """``GET /reloadRegistry``: the gateway rebuilds its registry (from its DB)."""
        return self._maintenance("/reloadRegistry")

    def _maintenance(self, route: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        reply = httpx.get(f"{self.maintenance_url}{route}", params=params, timeout=20)
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body


class RealGateway(GatewayUnderTest):
    """soajs.controller 4.3.3 and its DB (SecantusDB), each a process started and stopped here."""

    kind = "real"

    def __init__(self, installation: Installation, workdir: Path) -> None:
        super().__init__(workdir)
        self.installation = installation
        self.db_port = free_port()
        self.log_path = workdir / "gateway.log"
        self.db_log_path = workdir / "db.log"
        self._db: subprocess.Popen[bytes] | None = None
        self._gateway: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def gateway_pid(self) -> int | None:
        """The running gateway's PID, or ``None`` when it is stopped."""
        if self._gateway is None or self._gateway.poll() is not None:
            return None
        return self._gateway.pid

    def start(self) -> None:
        """Start the DB, seed it and start the gateway; stop what started if a step fails."""
        try:
            self._start_db()
            self._seed_db()
            self.start_gateway()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the gateway (SIGINT) and the DB (SIGTERM), each by PID."""
        self.stop_gateway()
        stop_process(self._db, signal.SIGTERM)
        self._db = None

    def stop_gateway(self) -> None:
        """Stop the gateway with SIGINT (it ignores SIGTERM), then SIGKILL after a bound."""
        stop_process(self._gateway, signal.SIGINT)
        self._gateway = None

    def start_gateway(self) -> None:
        """Start the gateway on the seeded ports and wait until its registry answers."""
        if self.gateway_pid is not None:
            return
        environ = {key: value for key, value in os.environ.items() if not key.startswith("SOAJS_")}
        environ.update(
            SOAJS_ENV=self.env,
            SOAJS_SRVIP="127.0.0.1",
            SOAJS_DEPLOY_MANUAL="1",
            SOAJS_PROFILE=str(self._write_profile()),
        )
        node = shutil.which("node") or "node"
        with self.log_path.open("ab") as log:
            log.write(f"\n===== gateway start #{self.starts + 1} =====\n".encode())
            log.flush()
            self._gateway = subprocess.Popen(
                [node, "-r", str(PRELOAD), str(self.installation.controller_entry)],
                cwd=self.installation.node_dir,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        try:
            wait_for_port(self.data_port, timeout=_START_TIMEOUT, process=self._gateway)
            wait_for_port(self.maintenance_port, timeout=_START_TIMEOUT, process=self._gateway)
            self._wait_for_registry()
        except InteropSetupError as exc:
            self.stop_gateway()
            raise InteropSetupError(
                f"the gateway did not start: {exc}\n--- gateway log ---\n{self.log_tail()}"
            ) from None

    @property
    def db_uri(self) -> str:
        """The test DB's MongoDB URI (a direct connection)."""
        return f"mongodb://127.0.0.1:{self.db_port}/?directConnection=true"

    def db_find(self, collection: str, query: dict[str, Any] | None = None) -> list[Any]:
        """The records of ``core_provision.<collection>`` matching ``query``, read from the DB."""
        result = subprocess.run(
            [
                str(self.installation.db_python),
                str(DB_TOOL),
                "find",
                self.db_uri,
                collection,
                json.dumps(query or {}),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise InteropSetupError(f"reading {collection} failed: {result.stderr[-2000:]}")
        records: list[Any] = json.loads(result.stdout)
        return records

    def _start_db(self) -> None:
        with self.db_log_path.open("ab") as log:
            self._db = subprocess.Popen(
                [
                    str(self.installation.db_server),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.db_port),
                    "--storage-path",
                    ":memory:",
                    "--standalone",
                ],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.db_port, timeout=_START_TIMEOUT, process=self._db)
        except InteropSetupError as exc:
            log_text = self.db_log_path.read_text(encoding="utf-8", errors="replace")
            raise InteropSetupError(f"the DB did not start: {exc}\n{log_text[-3000:]}") from None

    def _seed_db(self) -> None:
        seed_path = self.workdir / "seed.json"
        seed = run_seed(self.data_port, self.maintenance_inc)
        seed_path.write_text(json.dumps(seed, ensure_ascii=False), encoding="utf-8")
        _run(
            [str(self.installation.db_python), str(DB_TOOL), "seed", self.db_uri, str(seed_path)],
            cwd=self.workdir,
            what="seeding core_provision",
        )

    def _write_profile(self) -> Path:
        template = string.Template(PROFILE_TEMPLATE.read_text(encoding="utf-8"))
        profile = self.workdir / "profile.js"
        profile.write_text(template.substitute(db_port=self.db_port), encoding="utf-8")
        return profile

    def _wait_for_registry(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            if self._gateway is None or self._gateway.poll() is not None:
                raise InteropSetupError("the gateway exited while loading its registry")
            try:
                body = self.get_registry()
            except httpx.HTTPError as exc:
                last = repr(exc)
            else:
                if body.get("result") is True and "data" in body:
                    return
                last = json.dumps(body)[:300]
            time.sleep(0.1)
        raise InteropSetupError(f"/getRegistry never answered with data: {last}")


@contextlib.contextmanager
def running_gateway(workdir: Path, root: Path = INTEROP_ROOT) -> Iterator[RealGateway]:
    """Install if needed, start the whole stack, and stop every process on the way out."""
    gateway = RealGateway(ensure_installed(root), workdir)
    gateway.start()
    # Also at interpreter exit, should pytest end without running its finalizers.
    atexit.register(gateway.close)
    try:
        yield gateway
    finally:
        gateway.close()
        atexit.unregister(gateway.close)
