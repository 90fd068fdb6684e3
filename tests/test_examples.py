"""The examples and the README's snippets run as written behind the bundled local gateway.

Each example runs as a real server in its own process (as a user would start it), registers
with a :class:`LocalGateway` started from ``examples/gateway.yaml``, and is called through the
gateway's data port with the tenant's key.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import UvicornThread, free_port

from soajs.gateway import LocalGateway, make_user_token, user_token_headers
from soajs.gateway.fixtures import gateway_fixture
from soajs.testing import build_inject_header

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
TENANT = {"code": "TTEN", "name": "Test Tenant"}

example_gateway = gateway_fixture(EXAMPLES / "gateway.yaml", scope="module")
fresh_gateway = gateway_fixture(EXAMPLES / "gateway.yaml")


def service_environment(gateway: LocalGateway, port: int) -> dict[str, str]:
    """The environment an example reads: the gateway's addresses, registration, its port."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SOAJS_")}
    environment.update(
        SOAJS_REGISTRY_API=gateway.registry_api,
        SOAJS_ENV=gateway.env,
        SOAJS_DEPLOY_MANUAL="true",
        SOAJS_SERVICE_PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    return environment


@contextmanager
def running(
    command: list[str],
    gateway: LocalGateway,
    name: str,
    port: int,
    log: Path,
    *,
    cwd: Path = ROOT,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a service process until the gateway finds it healthy; stop it by PID afterwards."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=service_environment(gateway, port),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 25
            while not gateway.healthy_hosts(name):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{name} never became healthy:\n{log.read_text(errors='replace')}")
                time.sleep(0.05)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def user_headers(gateway: LocalGateway, username: str = "zoe") -> dict[str, str]:
    """Headers with a user token signed with tenant TTEN's secret, as its OAuth server would."""
    tenant = next(item for item in gateway.config.tenants if item.code == "TTEN")
    assert tenant.oauth is not None
    assert tenant.oauth.secret is not None
    payload = {
        "_id": "u1",
        "username": username,
        "tenant": {"id": tenant.id, "code": "TTEN"},
        "env": gateway.env,
        "user": {"loginMode": "urac"},
    }
    token: str = make_user_token(payload, tenant.oauth.secret.get_secret_value())
    return user_token_headers(token)


def through(gateway: LocalGateway, method: str, path: str, **options: Any) -> httpx.Response:
    """A request to the gateway's data port with the tenant's key."""
    headers = {"key": gateway.ext_key, **options.pop("headers", {})}
    return httpx.request(
        method, f"{gateway.data_url}{path}", headers=headers, timeout=10, **options
    )


@pytest.fixture(scope="module")
def hello(example_gateway: LocalGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``python examples/fastapi_example.py --port P``, registered and healthy; yields P."""
    port = free_port()
    command = [sys.executable, str(EXAMPLES / "fastapi_example.py"), "--port", str(port)]
    log = tmp_path_factory.mktemp("hello") / "hello.log"
    with running(command, example_gateway, "hello", port, log):
        yield port


@pytest.fixture(scope="module")
def caller(
    example_gateway: LocalGateway, hello: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """``python examples/flask_example.py --port P`` (hello running too); yields P."""
    port = free_port()
    command = [sys.executable, str(EXAMPLES / "flask_example.py"), "--port", str(port)]
    log = tmp_path_factory.mktemp("caller") / "caller.log"
    with running(command, example_gateway, "caller", port, log):
        yield port


class TestFastapiExample:
    def test_registers_itself_with_the_gateway(self, example_gateway, hello):
        """hello registers (mw) its port, requiring a key and with oauth and urac on."""
        bodies = [call.body for call in example_gateway.calls("/register")]
        mine = next(body for body in bodies if body["name"] == "hello")
        assert mine["port"] == hello
        assert mine["mw"] is True
        assert mine["extKeyRequired"] is True
        assert (mine["oauth"], mine["urac"]) == (True, True)

    def test_get_through_the_gateway(self, example_gateway, hello):
        """GET /hello/echo with the key reports the tenant, its config and the environment."""
        reply = through(example_gateway, "GET", "/hello/echo")
        assert reply.status_code == 200
        assert reply.json() == {
            "service": "hello",
            "tenant": TENANT,
            "user": None,
            "config": {"feature": "on", "limit": 10},
            "environment": "dev",
        }

    def test_post_with_a_body_and_a_user(self, example_gateway, hello):
        """POST /hello/v1/echo with a user token reports the body and the logged-in user."""
        reply = through(
            example_gateway,
            "POST",
            "/hello/v1/echo",
            json={"message": "hi"},
            headers=user_headers(example_gateway),
        )
        assert reply.status_code == 200
        assert reply.json()["body"] == {"message": "hi"}
        assert reply.json()["user"] == "zoe"

    def test_without_the_header_the_service_refuses(self, hello):
        """Called directly, with no soajsinjectobj, hello answers the gateway's 403 / 132."""
        reply = httpx.get(f"http://127.0.0.1:{hello}/echo", timeout=10)
        assert reply.status_code == 403
        assert reply.json()["errors"]["codes"] == [132]


class TestFlaskExample:
    def test_calls_hello_through_the_mesh(self, example_gateway, hello, caller):
        """caller reaches hello directly (mesh) and hello sees the same tenant and user."""
        reply = through(
            example_gateway,
            "GET",
            "/caller/hello-via-mesh",
            headers=user_headers(example_gateway),
        )
        assert reply.status_code == 200
        body = reply.json()
        assert body["tenant"] == TENANT
        assert body["user"] == "zoe"
        assert body["config"] == {"mode": "interconnect-test"}
        call = body["call"]
        assert call["via"] == "mesh"
        assert call["url"] == f"http://127.0.0.1:{hello}/echo"
        assert call["status"] == 200
        assert call["reply"]["tenant"] == TENANT
        assert call["reply"]["user"] == "zoe"
        assert call["reply"]["config"] == {"feature": "on", "limit": 10}

    def test_echo_through_the_gateway(self, example_gateway, caller):
        """GET /caller/echo reports the tenant and caller's own configuration."""
        reply = through(example_gateway, "GET", "/caller/echo")
        assert reply.status_code == 200
        assert reply.json() == {
            "service": "caller",
            "tenant": TENANT,
            "user": None,
            "config": {"mode": "interconnect-test"},
        }

    def test_registers_its_inter_connect(self, example_gateway, caller):
        """caller registers hello as its interConnect target."""
        bodies = [call.body for call in example_gateway.calls("/register")]
        mine = next(body for body in bodies if body["name"] == "caller")
        assert mine["port"] == caller
        assert mine["interConnect"] == [{"name": "hello", "version": "1"}]

    def test_without_the_header_the_service_refuses(self, caller):
        """Called directly, with no soajsinjectobj, caller answers 403 and calls nobody."""
        reply = httpx.get(f"http://127.0.0.1:{caller}/hello-via-mesh", timeout=10)
        assert reply.status_code == 403
        assert "through the gateway" in reply.json()["error"]


class TestDjangoExample:
    def test_runserver_through_the_gateway(self, example_gateway, tmp_path):
        """manage.py runserver serves orders: tenant, user and config through the gateway."""
        port = free_port()
        command = [
            sys.executable,
            str(EXAMPLES / "django_example" / "manage.py"),
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
        ]
        with running(command, example_gateway, "orders", port, tmp_path / "orders.log"):
            reply = through(
                example_gateway,
                "GET",
                "/orders/v1/echo",
                headers=user_headers(example_gateway),
            )
            refused = httpx.get(f"http://127.0.0.1:{port}/echo", timeout=10)
        assert reply.status_code == 200
        assert reply.json() == {
            "service": "orders",
            "tenant": TENANT,
            "user": "zoe",
            "config": {"currency": "EUR"},
            "environment": "dev",
        }
        assert refused.status_code == 403
        # The request filter from settings.LOGGING names the request's tenant and user.
        log = (tmp_path / "orders.log").read_text(errors="replace")
        assert re.search(r"\[[\w.:@/+=-]+ tenant=TTEN user=zoe\] GET /echo for tenant TTEN", log)


def readme_block(language: str, containing: str) -> str:
    """The first of the README's fenced blocks in ``language`` that contains ``containing``."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    found = [block for block in blocks if containing in block]
    assert found, f"no {language} block with {containing!r} in README.md"
    return str(found[0])


class TestReadme:
    def test_quick_start_runs_as_documented(self, fresh_gateway, tmp_path):
        """The quick start, saved as hello.py and run with uvicorn, answers the README's JSON."""
        source = readme_block("python", "setup_soajs")
        port = free_port()
        assert "port=4100" in source
        (tmp_path / "hello.py").write_text(source.replace("port=4100", f"port={port}"))
        command = [sys.executable, "-m", "uvicorn", "hello:app", "--port", str(port)]
        log = tmp_path / "uvicorn.log"
        with running(command, fresh_gateway, "hello", port, log, cwd=tmp_path):
            reply = through(fresh_gateway, "GET", "/hello/echo")
        assert reply.status_code == 200
        assert reply.text == readme_block("json", '"tenant"').strip()

    def test_the_run_commands_match_the_gateway_config(self, fresh_gateway):
        """The README's commands use the example config's ports, and its awk finds the key."""
        commands = readme_block("bash", "soajs gateway --config")
        assert "soajs gateway --config examples/gateway.yaml" in commands
        assert "SOAJS_REGISTRY_API=127.0.0.1:5000" in commands
        assert "uvicorn hello:app --port 4100" in commands
        assert "http://127.0.0.1:4000/hello/echo" in commands
        config = fresh_gateway.config.environment
        assert (config.data_port, config.data_port + config.maintenance_inc) == (4000, 5000)
        awk = re.search(r"awk '([^']*)' (\S+)\)", commands)
        assert awk is not None
        found = subprocess.run(
            ["awk", awk[1], awk[2]], cwd=ROOT, capture_output=True, text=True, check=True
        )
        assert found.stdout.split() == [fresh_gateway.ext_key]

    def test_the_run_commands_use_the_virtualenv(self):
        """The quick start activates .venv first, where make install puts soajs and uvicorn."""
        commands = readme_block("bash", "soajs gateway --config").splitlines()
        assert commands[0].startswith("source .venv/bin/activate ")
        installed = readme_block("bash", "make install")
        assert installed.index("make install") < installed.index("source .venv/bin/activate")
        scripts = Path(sys.executable).parent
        assert (scripts / "soajs").exists()
        assert (scripts / "uvicorn").exists()

    def test_install_works_from_a_clone_until_published(self):
        """Install commands run from the clone; the index form is marked as not published yet."""
        clone = readme_block("bash", "git clone")
        assert "cd soajs-python" in clone
        assert "soajs-python[" not in readme_block("bash", "pip install '.[fastapi]'")
        paragraphs = README.read_text(encoding="utf-8").split("\n\n")
        from_index = [
            paragraph
            for paragraph in paragraphs
            if re.search(r"pip install '?soajs-python", paragraph)
        ]
        assert from_index, "the index form (pip install 'soajs-python[...]') is kept"
        assert all("Once the package is published" in paragraph for paragraph in from_index)

    @pytest.mark.usefixtures("no_soajs_env")
    def test_seed_api_block_runs(self, example_gateway, monkeypatch):
        """The README's seed API block serves the tenant from a gateway-shaped header."""
        monkeypatch.setenv("SOAJS_REGISTRY_API", example_gateway.registry_api)
        source = readme_block("python", "SOAJSMiddleware")
        module = types.ModuleType("readme_seed")
        exec(compile(source, "README.md:seed", "exec"), module.__dict__)  # noqa: S102
        port = free_port()
        header = build_inject_header().decode("latin-1")
        try:
            with UvicornThread(module.app, port=port, lifespan="auto"):
                seen = httpx.get(
                    f"http://127.0.0.1:{port}/", headers={"soajsinjectobj": header}, timeout=10
                )
                missing = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        finally:
            module.registry.stop()
        assert seen.json() == {"tenant": "TTEN"}
        assert missing.json() == {"error": "No context"}
