"""End to end (reported, not asserted): the FastAPI example vs a bare FastAPI app, both under
uvicorn behind the bundled gateway, driven by an httpx load generator. Loopback only; each
side gets a bounded number of requests, in alternating chunks."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.fixtures import REPO, Inputs
from benchmarks.harness import Reading, Report, Settings, stop_process

CONCURRENCY = 16
READY_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _gateway_config(bare_port: int) -> tuple[dict[str, Any], str]:
    """examples/gateway.yaml, with the bare app declared and allowed; and its external key."""
    config = yaml.safe_load((REPO / "examples" / "gateway.yaml").read_text(encoding="utf-8"))
    for product in config["products"]:
        for package in product["packages"]:
            package["acl"]["dev"]["bare"] = {
                "1": {"access": False, "apisPermission": "unrestricted"}
            }
    config["services"] = [
        {
            "name": "bare",
            "group": "Bench",
            "port": bare_port,
            "version": "1",
            # The same flags as the example, so both receive the same soajsinjectobj.
            "extKeyRequired": True,
            "oauth": True,
            "urac": True,
        }
    ]
    key = config["tenants"][0]["applications"][0]["keys"][0]["extKeys"][0]["extKey"]
    return config, str(key)


@contextmanager
def _process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield process
    finally:
        stop_process(process)


def _wait_ok(url: str, key: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers={"key": key}, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer 200 within {READY_TIMEOUT:.0f}s")


async def _load(url: str, key: str, total: int) -> float:
    """Send ``total`` GETs with ``CONCURRENCY`` workers; requests per second."""
    remaining = total
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(headers={"key": key}, limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                reply = await client.get(url)
                if reply.status_code != 200:
                    raise RuntimeError(f"{url} answered {reply.status_code}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return total / (time.perf_counter() - start)


def run(report: Report, inputs: Inputs, settings: Settings) -> None:
    """Start the gateway and both apps, load them in alternating chunks, report the RPS."""
    data_port, maintenance_port = _free_port(), _free_port()
    hello_port, bare_port = _free_port(), _free_port()
    config, key = _gateway_config(bare_port)
    python = sys.executable
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in list(env):
        if name.startswith("SOAJS_"):
            del env[name]
    with tempfile.TemporaryDirectory() as folder:
        config_file = Path(folder) / "gateway.json"
        config_file.write_text(json.dumps(config), encoding="utf-8")
        soajs = str(Path(python).with_name("soajs"))
        gateway_cmd = [soajs, "gateway", "--config", str(config_file)]
        gateway_cmd += ["--port", str(data_port), "--maintenance-port", str(maintenance_port)]
        gateway_cmd += ["--log-level", "warning"]
        hello_env = {
            **env,
            "SOAJS_REGISTRY_API": f"127.0.0.1:{maintenance_port}",
            "SOAJS_ENV": "dev",
            "SOAJS_DEPLOY_MANUAL": "true",
            "SOAJS_SERVICE_PORT": str(hello_port),
        }
        uvicorn = [python, "-m", "uvicorn", "--log-level", "warning", "--no-access-log"]
        hello_cmd = [*uvicorn, "--app-dir", "examples", "--factory", "fastapi_example:create_app"]
        bare_cmd = [*uvicorn, "--factory", "benchmarks.bare_app:create_app"]
        with (
            _process(gateway_cmd, env),
            _process([*hello_cmd, "--port", str(hello_port)], hello_env),
            _process([*bare_cmd, "--port", str(bare_port)], env),
        ):
            deadline = time.monotonic() + READY_TIMEOUT
            hello_url = f"http://127.0.0.1:{data_port}/hello/echo"
            bare_url = f"http://127.0.0.1:{data_port}/bare/echo"
            _wait_ok(hello_url, key, deadline)
            _wait_ok(bare_url, key, deadline)
            chunks = 2 if settings.quick else 8
            per_chunk = 50 if settings.quick else 500
            hello_rps: list[float] = []
            bare_rps: list[float] = []
            for index in range(chunks):
                order = [(bare_url, bare_rps), (hello_url, hello_rps)]
                for url, results in order if index % 2 == 0 else order[::-1]:
                    results.append(asyncio.run(_load(url, key, per_chunk)))
    hello = statistics.median(hello_rps)
    bare = statistics.median(bare_rps)
    report.add(
        Reading(
            "E2E",
            "FastAPI example GET /hello/echo vs bare FastAPI GET /bare/echo, via the gateway",
            f"{hello / bare:.2f}x the bare RPS ({hello:.0f} vs {bare:.0f} req/s)",
            "reported",
            None,
            note=f"{chunks}x{per_chunk} requests each, {CONCURRENCY} concurrent, httpx client",
        )
    )
