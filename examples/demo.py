"""``make demo``: the bundled SOAJS gateway and two example services, on 127.0.0.1.

It starts the local gateway with ``examples/gateway.yaml``, then two services, each its own
process that reads the registry from the gateway and registers itself with it:

* ``hello`` (``fastapi_example.py``) under uvicorn;
* ``caller`` (``flask_example.py``) under gunicorn; it calls ``hello`` through the mesh.

Once the gateway's health checks see both, it sends requests through the gateway with the
tenant's key (and a user token), prints what each service saw, and stops everything it started,
also on failure or Ctrl-C. The exit status is 0 only when every step worked.

Ports: the configuration's (gateway 4000/5000) and 4100/4200 when they are free, other free
ports otherwise. The services' output goes to ``.demo/*.log``.

    python examples/demo.py [--config examples/gateway.yaml]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx

from soajs.errors import ConfigValidationError
from soajs.gateway import (
    GatewayConfig,
    LocalGateway,
    load_config,
    make_user_token,
    user_token_headers,
)

EXAMPLES = Path(__file__).resolve().parent
ROOT = EXAMPLES.parent
GATEWAY_CONFIG = EXAMPLES / "gateway.yaml"
LOG_DIR = ROOT / ".demo"
HOST = "127.0.0.1"
TENANT = "TTEN"
USER = "zoe"
HEALTHY_TIMEOUT = 20.0
# A short health-check period, so the gateway routes to the services soon after they start.
HEALTH_CHECK_MS = 250


class DemoFailed(Exception):
    """A step did not do what it should; the message says what."""


def say(text: str = "") -> None:
    """Write one line of the demo's report to stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def show(value: Any) -> str:
    """A JSON value as one compact line."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# -- ports ---------------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    """Whether nothing listens on, or holds, ``port`` on 127.0.0.1."""
    if not 0 < port < 65536:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers do: a port whose old connections linger in TIME_WAIT is free to listen on.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def service_port(preferred: int, maintenance_inc: int, taken: set[int]) -> int:
    """``preferred`` if it and its maintenance port are free, else another such free port.

    The gateway health-checks ``port + maintenanceInc`` before ``port`` itself, so that port
    must be free as well, or another program could answer for the service.
    """
    candidates = [preferred] + [0] * 50
    for candidate in candidates:
        port = candidate
        if port == 0:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((HOST, 0))
                port = probe.getsockname()[1]
        pair = {port, port + maintenance_inc}
        if not pair & taken and port_is_free(port) and port_is_free(port + maintenance_inc):
            taken.update(pair)
            return port
    raise DemoFailed("no free port pair found on 127.0.0.1")


def start_gateway(config: GatewayConfig) -> LocalGateway:
    """Start the gateway on the configuration's ports when free, else on free ports."""
    environment = config.environment
    wanted = environment.data_port
    if not (port_is_free(wanted) and port_is_free(wanted + environment.maintenance_inc)):
        wanted = 0
    try:
        return LocalGateway(config, port=wanted, health_check_interval=HEALTH_CHECK_MS).start()
    except OSError:
        # Taken between the check and the bind: free ports always work.
        return LocalGateway(config, port=0, health_check_interval=HEALTH_CHECK_MS).start()


# -- services ------------------------------------------------------------------------------


@dataclass
class Service:
    """An example service run as a child process, stopped by its PID."""

    name: str
    description: str
    command: list[str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, environment: dict[str, str]) -> None:
        """Start the process, its output going to the log file."""
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            self.command,
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C reaches the demo, which then stops the service in order.
            start_new_session=True,
        )

    @property
    def pid(self) -> int | None:
        """The process id, once started."""
        return self.process.pid if self.process is not None else None

    def exited(self) -> int | None:
        """The exit status if the process has ended, else None."""
        return self.process.poll() if self.process is not None else None

    def stop(self) -> None:
        """Ask the process to stop (SIGTERM), and kill it if it has not within 10 s."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the service's output."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def gunicorn_options() -> list[str]:
    """``--no-control-socket`` when gunicorn has a control socket, so it writes nothing in ~."""
    from gunicorn.config import KNOWN_SETTINGS

    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        return ["--no-control-socket"]
    return []


def example_services(maintenance_inc: int) -> list[Service]:
    """``hello`` under uvicorn and ``caller`` under gunicorn, on free ports."""
    taken: set[int] = set()
    hello_port = service_port(4100, maintenance_inc, taken)
    caller_port = service_port(4200, maintenance_inc, taken)
    python = sys.executable
    return [
        Service(
            "hello",
            "FastAPI under uvicorn",
            [
                *(python, "-m", "uvicorn", "--app-dir", str(EXAMPLES), "--factory"),
                *("fastapi_example:create_app", "--host", HOST, "--port", str(hello_port)),
            ],
            hello_port,
            LOG_DIR / "hello.log",
        ),
        Service(
            "caller",
            "Flask under gunicorn",
            [
                *(python, "-m", "gunicorn", "--chdir", str(EXAMPLES), "--workers", "1"),
                *("--bind", f"{HOST}:{caller_port}", "--graceful-timeout", "5"),
                *("--access-logfile", "-", *gunicorn_options(), "flask_example:create_app()"),
            ],
            caller_port,
            LOG_DIR / "caller.log",
        ),
    ]


def service_environment(gateway: LocalGateway, service: Service) -> dict[str, str]:
    """This process's environment without SOAJS_*, plus the variables the service reads."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SOAJS_")}
    environment.update(
        SOAJS_REGISTRY_API=gateway.registry_api,
        SOAJS_ENV=gateway.env,
        SOAJS_DEPLOY_MANUAL="true",
        SOAJS_SERVICE_PORT=str(service.port),
        PYTHONUNBUFFERED="1",
    )
    return environment


def wait_until_healthy(gateway: LocalGateway, services: list[Service]) -> float:
    """Wait until the gateway's health checks find every service; returns the seconds waited."""
    started = time.monotonic()
    deadline = started + HEALTHY_TIMEOUT
    waiting = {service.name: service for service in services}
    while waiting:
        for name, service in list(waiting.items()):
            status = service.exited()
            if status is not None:
                raise DemoFailed(
                    f"{name} exited with status {status} before it was healthy:\n"
                    + service.log_tail()
                )
            if gateway.healthy_hosts(name):
                del waiting[name]
        if not waiting:
            break
        if time.monotonic() > deadline:
            raise DemoFailed(
                f"the gateway did not see {', '.join(sorted(waiting))} healthy within "
                f"{HEALTHY_TIMEOUT:.0f} s"
            )
        time.sleep(0.05)
    return time.monotonic() - started


# -- the requests --------------------------------------------------------------------------


def user_token(config: GatewayConfig) -> str:
    """A user token for ``zoe``, signed with the tenant's secret as its OAuth server would."""
    tenant = next(item for item in config.tenants if item.code == TENANT)
    if tenant.oauth is None or tenant.oauth.secret is None:
        raise DemoFailed(f"tenant {TENANT} has no oauth.secret in the gateway configuration")
    payload = {
        "_id": "6a1e00000000000000000u01",
        "username": USER,
        "firstName": "Zoe",
        "lastName": "Example",
        "email": "zoe@example.test",
        "groups": ["owner"],
        "tenant": {"id": tenant.id, "code": TENANT},
        "env": config.environment.code.lower(),
        "user": {"loginMode": "urac"},
        "exp": int(time.time()) + 600,
    }
    token: str = make_user_token(payload, tenant.oauth.secret.get_secret_value())
    return token


def expect(condition: bool, message: str) -> None:
    """Fail the step with ``message`` unless ``condition`` holds."""
    if not condition:
        raise DemoFailed(message)


def json_reply(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The JSON body of a reply with the expected status."""
    expect(
        response.status_code == status,
        f"expected HTTP {status}, got {response.status_code}: {response.text[:300]}",
    )
    body = response.json()
    expect(isinstance(body, dict), f"expected a JSON object, got {response.text[:300]}")
    return dict(body)


def saw(reply: dict[str, Any]) -> str:
    """What a service reported, in words."""
    tenant = reply.get("tenant") or {}
    user = reply.get("user")
    return (
        f"tenant {tenant.get('code')} ({tenant.get('name')}), "
        f"{'user ' + str(user) if user else 'no user'}, "
        f"its config {show(reply.get('config'))}"
    )


def check_tenant(reply: dict[str, Any], service: str, user: str | None) -> None:
    """The reply comes from ``service``, for tenant TTEN and the expected user."""
    expect(reply.get("service") == service, f"expected an answer from {service}: {show(reply)}")
    expect((reply.get("tenant") or {}).get("code") == TENANT, f"expected tenant {TENANT}")
    expect(reply.get("user") == user, f"expected user {user}, got {reply.get('user')}")


@dataclass
class Demo:
    """The requests sent through the gateway, each a numbered step."""

    gateway: LocalGateway
    client: httpx.Client
    token: str
    services: dict[str, Service]
    failures: list[str] = field(default_factory=list)
    count: int = 0

    def step(self, title: str, run: Callable[[], list[str]]) -> None:
        """Run one step and report its lines, or why it failed."""
        self.count += 1
        say(f"{self.count}. {title}")
        try:
            lines = run()
        except (DemoFailed, httpx.HTTPError, ValueError) as exc:
            self.failures.append(title)
            say(f"   FAILED: {exc}")
            return
        for line in lines:
            say(f"   {line}")

    def hello_get(self) -> list[str]:
        reply = json_reply(self.client.get("/hello/echo"))
        check_tenant(reply, "hello", None)
        expect(reply.get("config") is not None, "hello saw no configuration for itself")
        return [
            f"hello saw {saw(reply)}",
            f"and read the registry of environment {reply.get('environment')} from the gateway",
        ]

    def hello_post(self) -> list[str]:
        body = {"message": "hi from the demo"}
        reply = json_reply(self.client.post("/hello/v1/echo", json=body))
        check_tenant(reply, "hello", None)
        expect(reply.get("body") == body, f"hello did not get the body: {show(reply)}")
        return [f"hello got the body {show(reply['body'])} for tenant {TENANT}"]

    def hello_user(self) -> list[str]:
        reply = json_reply(self.client.get("/hello/echo", headers=user_token_headers(self.token)))
        check_tenant(reply, "hello", USER)
        return [f"hello saw {saw(reply)}"]

    def caller_mesh(self) -> list[str]:
        hello = self.services["hello"]
        reply = json_reply(
            self.client.get("/caller/hello-via-mesh", headers=user_token_headers(self.token))
        )
        check_tenant(reply, "caller", USER)
        call = reply.get("call") or {}
        expect(call.get("status") == 200, f"caller's call to hello failed: {show(call)}")
        hello_reply = call.get("reply") or {}
        check_tenant(hello_reply, "hello", USER)
        expect(
            call.get("via") == "mesh" and call.get("url") == f"http://{HOST}:{hello.port}/echo",
            f"expected a direct (mesh) call to hello on port {hello.port}: {show(call)}",
        )
        return [
            f"caller saw {saw(reply)}",
            f"caller called hello directly (mesh), not through the gateway: GET {call['url']}"
            f" -> HTTP {call['status']}",
            f"hello, called by caller, saw {saw(hello_reply)}",
            "(the gateway's soajsinjectobj header, forwarded byte for byte by ServiceConnector)",
        ]

    def no_key(self) -> list[str]:
        response = httpx.get(f"{self.gateway.data_url}/hello/echo", timeout=10)
        reply = json_reply(response, status=403)
        codes = (reply.get("errors") or {}).get("codes")
        expect(codes == [132], f"expected error code 132, got {show(reply)}")
        message = reply["errors"]["details"][0]["message"]
        return [f"the gateway refused it itself: HTTP 403, code 132 ({message})"]


# -- main ----------------------------------------------------------------------------------


@contextmanager
def stopped_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt, so everything started is stopped as on Ctrl-C."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(config_path: Path = GATEWAY_CONFIG) -> int:
    """Run the demo with a gateway configuration; returns the exit status."""
    began = time.monotonic()
    config = load_config(config_path)
    LOG_DIR.mkdir(exist_ok=True)
    say("soajs-python demo: the bundled gateway and two example services, on 127.0.0.1")
    with ExitStack() as stack:
        gateway = start_gateway(config)
        stack.callback(gateway.stop)
        services = example_services(config.environment.maintenance_inc)
        say(
            f"  gateway  data port {gateway.data_url}, maintenance API {gateway.maintenance_url}"
            f" (environment {gateway.env}, config {shown_path(config_path)})"
        )
        for service in services:
            stack.callback(service.stop)
            service.start(service_environment(gateway, service))
            say(
                f"  {service.name:<7}  {service.description}, port {service.port}, "
                f"pid {service.pid}, log {service.log_path.relative_to(ROOT)}"
            )
        try:
            waited = wait_until_healthy(gateway, services)
        except DemoFailed as exc:
            say(f"FAILED: {exc}")
            return 1
        say(f"  the gateway registered both and found them healthy after {waited:.1f} s")
        say()
        client = stack.enter_context(
            httpx.Client(base_url=gateway.data_url, headers={"key": gateway.ext_key}, timeout=10)
        )
        demo = Demo(gateway, client, user_token(config), {s.name: s for s in services})
        demo.step("GET /hello/echo through the gateway, with the tenant's key", demo.hello_get)
        demo.step("POST /hello/v1/echo with a JSON body", demo.hello_post)
        demo.step(f"GET /hello/echo with the key and a user token for {USER}", demo.hello_user)
        demo.step("GET /caller/hello-via-mesh with the key and the user token", demo.caller_mesh)
        demo.step("GET /hello/echo without a key", demo.no_key)
        say()
    say(f"stopped hello (pid {services[0].pid}), caller (pid {services[1].pid}) and the gateway")
    elapsed = time.monotonic() - began
    if demo.failures:
        say(f"{len(demo.failures)} of {demo.count} steps FAILED ({elapsed:.1f} s); logs in .demo/")
        return 1
    say(f"all {demo.count} steps worked ({elapsed:.1f} s)")
    return 0


def shown_path(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python examples/demo.py [--config FILE]``."""
    parser = argparse.ArgumentParser(
        description="The bundled SOAJS gateway and two example services, on 127.0.0.1."
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=GATEWAY_CONFIG,
        help=f"gateway configuration (default: {shown_path(GATEWAY_CONFIG)})",
    )
    args = parser.parse_args(argv)
    try:
        with stopped_on_sigterm():
            status = run(args.config)
    except KeyboardInterrupt:
        say("interrupted: stopped everything the demo started")
        status = 130
    except (DemoFailed, ConfigValidationError, OSError) as exc:
        say(f"FAILED: {exc}")
        status = 1
    raise SystemExit(status)


if __name__ == "__main__":
    main()
