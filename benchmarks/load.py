"""End to end under load (reported, not asserted): real servers, real sockets, a load generator.

uvicorn (1 worker) + FastAPI and gunicorn (1 gthread worker) + Flask, one server process per
configuration (:mod:`benchmarks.load_apps`), all on 127.0.0.1. Every request carries the
captured ``secure-urac-jwt`` header. The load generator is ``wrk`` when it is on the ``PATH``
(``-t1``, keep-alive), otherwise :func:`python_load`, a keep-alive generator on asyncio streams;
smoke mode always uses the Python one. Configurations are alternated in rounds (forward, then
backward), and each round's RPS, p50 and p99 are divided by the bare app's of the same round:
the table gives the median ratio and its quartiles across rounds.

gunicorn runs the ``gthread`` worker: the ``sync`` worker closes every connection after one
request, so a keep-alive client would measure connection set-up instead of the request.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from benchmarks.fixtures import REPO, Inputs
from benchmarks.harness import Reading, Report, Settings, percentile, quartiles, stop_process
from benchmarks.load_apps import CONFIG_VARIABLE, FASTAPI_CONFIGS, FLASK_CONFIGS, HEADER

CONNECTIONS = 16
"""Keep-alive connections the load generator holds open."""
WARMUP_SECONDS = 1
SMOKE_SECONDS = 0.3
READY_TIMEOUT = 60.0
"""Seconds a server may take to answer its first request."""
GUNICORN_THREADS = 4
SERVER_LINES = {
    "FastAPI": "uvicorn --workers 1 (asyncio loop, h11), handlers `async def`",
    "Flask": f"gunicorn --workers 1 --worker-class gthread --threads {GUNICORN_THREADS}",
}
"""How each server runs, for the report."""
CONTEXT_COPIES = 200
"""Contexts kept alive at once to count the garbage-collector-tracked objects of one."""


@dataclass(frozen=True)
class Sample:
    """One configuration loaded for one round."""

    rps: float
    p50_ms: float
    p99_ms: float


@dataclass
class Server:
    """One configuration's server process and what it measured."""

    framework: str
    name: str
    label: str
    port: int
    samples: list[Sample] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_command(framework: str, port: int) -> list[str]:
    python = sys.executable
    if framework == "FastAPI":
        return [
            python, "-m", "uvicorn", "--factory", "benchmarks.load_fastapi:create_fastapi_app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
    return [
        python, "-m", "gunicorn", "--workers", "1", "--worker-class", "gthread",
        "--threads", str(GUNICORN_THREADS), "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning", "benchmarks.load_apps:create_flask_app()",
    ]  # fmt: skip


@contextmanager
def _started(framework: str, name: str, port: int, log: IO[bytes]) -> Iterator[None]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOAJS_")}
    env.update(PYTHONPATH=str(REPO), SOAJS_TRUSTED_GATEWAYS="127.0.0.1", **{CONFIG_VARIABLE: name})
    process = subprocess.Popen(
        _server_command(framework, port), cwd=REPO, env=env, stdout=log, stderr=log
    )
    try:
        yield
    finally:
        stop_process(process)


def _request(path: str, port: int, header: bytes) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
        + HEADER.encode()
        + b": "
        + header
        + b"\r\n\r\n"
    )


def _get(port: int, path: str, header: bytes) -> tuple[int, bytes]:
    """One request on a new connection: the status and the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            _request(path, port, header).replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _wait_ready(server: Server, header: bytes, deadline: float, log: Path) -> None:
    """Wait for ``GET /hello`` to answer the tenant read from the header."""
    while time.monotonic() < deadline:
        try:
            status, body = _get(server.port, "/hello", header)
        except OSError:
            time.sleep(0.2)
            continue
        if status == 200 and json.loads(body) == {"tenant": "TTEN"}:
            return
        raise RuntimeError(
            f"{server.framework} {server.name} answered {status} {body[:200]!r}; "
            f"server log: {log.read_text(errors='replace')[-2000:]}"
        )
    raise RuntimeError(
        f"{server.framework} {server.name} did not answer within {READY_TIMEOUT:.0f} s; "
        f"server log: {log.read_text(errors='replace')[-2000:]}"
    )


async def _connection(port: int, request: bytes, stop_at: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        clock = time.perf_counter
        while (start := clock()) < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, close = _parse_head(head)
            await reader.readexactly(length)
            latencies.append(clock() - start)
            if status != 200:
                raise RuntimeError(f"127.0.0.1:{port} answered {status}")
            if close:
                writer.close()
                await writer.wait_closed()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """Status, ``Content-Length`` and whether the server closes the connection."""
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    if length is None:
        raise RuntimeError("the load generator reads Content-Length bodies only")
    return status, length, close


def python_load(port: int, path: str, header: bytes, seconds: float) -> Sample:
    """Keep ``CONNECTIONS`` keep-alive connections busy for ``seconds``; RPS and latencies."""
    request = _request(path, port, header)
    latencies: list[float] = []

    async def drive() -> float:
        start = time.perf_counter()
        stop_at = start + seconds
        await asyncio.wait_for(
            asyncio.gather(
                *(_connection(port, request, stop_at, latencies) for _ in range(CONNECTIONS))
            ),
            seconds + 30,
        )
        return time.perf_counter() - start

    elapsed = asyncio.run(drive())
    return Sample(
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
    )


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk_load(port: int, path: str, header: bytes, seconds: float) -> Sample:
    """Run ``wrk -t1`` with ``CONNECTIONS`` connections for ``seconds`` (whole seconds)."""
    command = [
        "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency",
        "--timeout", "10s", "-H", f"{HEADER}: {header.decode('latin-1')}",
        f"http://127.0.0.1:{port}{path}",
    ]  # fmt: skip
    output = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    errors = re.search(r"Socket errors: connect (\d+), read \d+, write \d+, timeout (\d+)", output)
    # Read errors can happen as wrk closes its connections at the end; a refused connection or
    # a timed-out request would leave the latencies without the slowest requests.
    if "Non-2xx or 3xx responses" in output or (
        errors is not None and errors.group(1, 2) != ("0", "0")
    ):
        raise RuntimeError(f"wrk got errors from 127.0.0.1:{port}: {output}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"\s50%\s+([\d.]+)(us|ms|s)\b", output)
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", output)
    if rps is None or p50 is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output: {output}")
    return Sample(
        rps=float(rps.group(1)),
        p50_ms=float(p50.group(1)) * _UNITS[p50.group(2)],
        p99_ms=float(p99.group(1)) * _UNITS[p99.group(2)],
    )


def tracked_objects_per(make: Callable[[], object], copies: int = CONTEXT_COPIES) -> float:
    """Objects tracked by the garbage collector that one result of ``make()`` keeps alive."""
    gc.collect()
    before = len(gc.get_objects())
    kept = [make() for _ in range(copies)]
    gc.collect()
    after = len(gc.get_objects())
    # The list holding them is one more tracked object.
    return (after - before - 1) / len(kept)


def _ratio_cell(server: Server, bare: Server, attribute: str) -> str:
    """Median [quartiles] of the per-round ratios of ``attribute`` to the bare app's."""
    ratios = [
        getattr(mine, attribute) / getattr(base, attribute)
        for mine, base in zip(server.samples, bare.samples, strict=True)
    ]
    low, high = quartiles(ratios)
    return f"{statistics.median(ratios):.2f}x [{low:.2f}-{high:.2f}]"


def _table(servers: list[Server]) -> list[str]:
    lines = [
        "| server | handler | RPS vs bare [p25-p75] | p50 vs bare | p99 vs bare | "
        "RPS | p50 ms | p99 ms | full GCs | tracked objects |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    bare = {server.framework: server for server in servers if server.name == "bare"}
    for server in servers:
        base = bare[server.framework]
        rps = statistics.median(sample.rps for sample in server.samples)
        p50 = statistics.median(sample.p50_ms for sample in server.samples)
        p99 = statistics.median(sample.p99_ms for sample in server.samples)
        lines.append(
            f"| {server.framework} | {server.label} | {_ratio_cell(server, base, 'rps')} | "
            f"{_ratio_cell(server, base, 'p50_ms')} | {_ratio_cell(server, base, 'p99_ms')} | "
            f"{rps:,.0f} | {p50:.2f} | {p99:.2f} | "
            f"{server.counters.get('full_collections', '-')} | "
            f"{server.counters.get('tracked', 0):,} |"
        )
    return lines


def _rounds(settings: Settings) -> tuple[int, float]:
    """Rounds per configuration and seconds per round."""
    if settings.quick:
        return 1, SMOKE_SECONDS
    return settings.load_rounds, settings.load_round_seconds


def _measure(
    framework: str,
    servers: list[Server],
    inputs: Inputs,
    settings: Settings,
    load_averages: list[float],
) -> None:
    """Start the framework's servers, load them in alternating rounds, stop them.

    The 1-minute load average is appended to ``load_averages`` after every round.
    """
    use_wrk = not settings.quick and shutil.which("wrk") is not None
    load = wrk_load if use_wrk else python_load
    rounds, seconds = _rounds(settings)
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        logs: dict[str, Path] = {}
        for server in servers:
            logs[server.name] = Path(folder) / f"{server.name}.log"
            log = stack.enter_context(logs[server.name].open("wb"))
            stack.enter_context(_started(framework, server.name, server.port, log))
        deadline = time.monotonic() + READY_TIMEOUT
        for server in servers:
            _wait_ready(server, inputs.header, deadline, logs[server.name])
        if not settings.quick:
            for server in servers:
                load(server.port, "/hello", inputs.header, WARMUP_SECONDS)
        before = {server.name: _counters(server, inputs) for server in servers}
        for index in range(rounds):
            for server in servers if index % 2 == 0 else servers[::-1]:
                server.samples.append(load(server.port, "/hello", inputs.header, seconds))
            load_averages.append(os.getloadavg()[0])
        for server in servers:
            after = _counters(server, inputs)
            server.counters = {
                "tracked": after["tracked"],
                "full_collections": after["full_collections"]
                - before[server.name]["full_collections"],
            }


def _counters(server: Server, inputs: Inputs) -> dict[str, int]:
    status, body = _get(server.port, "/gc", inputs.header)
    if status != 200:
        raise RuntimeError(f"{server.framework} {server.name} /gc answered {status}")
    counters: dict[str, int] = json.loads(body)
    return counters


def run(report: Report, inputs: Inputs, settings: Settings) -> None:
    """Load every configuration of both servers; add the table and the GC counts."""
    from benchmarks.parsing import read_every_section
    from soajs.inject import parse_inject_header

    configs = {"FastAPI": FASTAPI_CONFIGS, "Flask": FLASK_CONFIGS}
    servers = {
        framework: [
            Server(framework, name, label, _free_port())
            for name, label in configs[framework].items()
        ]
        for framework in settings.load_servers
    }
    cpus = os.cpu_count()
    load_before = os.getloadavg()
    start = time.perf_counter()
    load_averages: list[float] = []
    for framework, framework_servers in servers.items():
        _measure(framework, framework_servers, inputs, settings, load_averages)
    elapsed = time.perf_counter() - start
    load_after = os.getloadavg()

    header = inputs.header
    context_objects = tracked_objects_per(lambda: parse_inject_header(header))
    json_objects = tracked_objects_per(lambda: json.loads(header))
    report.add(
        Reading(
            "E2E-L",
            "GC-tracked objects kept alive by one parsed context (parse_inject_header)",
            f"{context_objects:.0f} vs {json_objects:.0f} for json.loads "
            f"({context_objects / json_objects:.2f}x)",
            "reported",
            None,
            note=f"len(gc.get_objects()) delta over {CONTEXT_COPIES} kept copies",
        )
    )
    read_objects = tracked_objects_per(lambda: read_every_section(parse_inject_header(header)))
    report.add(
        Reading(
            "E2E-L",
            "GC-tracked objects kept alive by one parsed context, every section read",
            f"{read_objects:.0f} vs {json_objects:.0f} for json.loads "
            f"({read_objects / json_objects:.2f}x)",
            "reported",
            None,
            note="the sections beyond tenant and application are validated on first read",
        )
    )
    generator = (
        f"wrk -t1 -c{CONNECTIONS} (keep-alive)"
        if not settings.quick and shutil.which("wrk")
        else f"the Python keep-alive generator, {CONNECTIONS} connections"
    )
    rounds, seconds = _rounds(settings)
    section = [
        "### End to end under load",
        "",
        *_table([server for group in servers.values() for server in group]),
        "",
        f"- load generator: {generator}; {rounds} rounds x {seconds:g} s per configuration, "
        "configurations alternated (forward, backward); ratios are per round against the "
        "bare app of the same round: median [p25-p75]",
        f"- servers: {'; '.join(SERVER_LINES[name] for name in settings.load_servers)}",
        "- full GCs: generation-2 collections in the worker during the rounds; tracked "
        "objects: len(gc.get_objects()) in the worker after them",
        f"- machine: {cpus} CPUs shared with other jobs; load average (1 min) "
        f"{load_before[0]:.2f} before, {min(load_averages):.2f}-{max(load_averages):.2f} "
        f"after each round, {load_after[0]:.2f} after; took {elapsed:.0f} s",
    ]
    report.sections.append("\n".join(section))
