"""``make demo`` end to end: examples/demo.py as a subprocess, as the Makefile runs it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo.py"


def demo_command(*args: str) -> list[str]:
    """The demo run with this interpreter (the virtualenv's under ``make``)."""
    return [sys.executable, str(DEMO), *args]


def demo_environment() -> dict[str, str]:
    """The environment, with unbuffered output so lines arrive as they are written."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the demo to the end (bounded at 90 s); its output as text."""
    return subprocess.run(
        demo_command(*args),
        cwd=ROOT,
        env=demo_environment(),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def reported_pids(output: str) -> list[int]:
    """The PIDs of the services the demo says it started."""
    return [int(pid) for pid in re.findall(r", pid (\d+), log ", output)]


def is_running(pid: int) -> bool:
    """Whether a process with this PID still exists (the demo reaps its children)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class TestDemo:
    def test_every_step_works(self):
        """The demo exits 0 and reports tenant TTEN, the user and a direct (mesh) call."""
        result = run_demo()
        output = result.stdout
        assert result.returncode == 0, output + result.stderr
        assert "hello saw tenant TTEN (Test Tenant), no user" in output
        assert 'its config {"feature": "on", "limit": 10}' in output
        assert 'hello got the body {"message": "hi from the demo"} for tenant TTEN' in output
        assert "hello saw tenant TTEN (Test Tenant), user zoe" in output
        assert "caller called hello directly (mesh), not through the gateway" in output
        assert "hello, called by caller, saw tenant TTEN (Test Tenant), user zoe" in output
        assert "HTTP 403, code 132" in output
        assert "all 5 steps worked" in output
        assert "FAILED" not in output
        pids = reported_pids(output)
        assert len(pids) == 2
        assert not any(is_running(pid) for pid in pids)

    def test_a_failed_step_exits_1(self, tmp_path):
        """With caller left out of the package ACL, the mesh step fails and the demo exits 1."""
        config = yaml.safe_load((ROOT / "examples" / "gateway.yaml").read_text())
        acl = config["products"][0]["packages"][0]["acl"]["dev"]
        del acl["caller"]
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        result = run_demo("--config", str(path))
        output = result.stdout
        assert result.returncode == 1, output + result.stderr
        assert "4. GET /caller/hello-via-mesh" in output
        assert "FAILED: expected HTTP 200, got 403" in output
        assert "1 of 5 steps FAILED" in output
        assert not any(is_running(pid) for pid in reported_pids(output))

    def test_ctrl_c_stops_everything_started(self):
        """Ctrl-C while the services start stops them all and exits 130."""
        with subprocess.Popen(
            demo_command(),
            cwd=ROOT,
            env=demo_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as process:
            assert process.stdout is not None
            lines: list[str] = []
            try:
                while not any(line.lstrip().startswith("caller ") for line in lines):
                    line = process.stdout.readline()
                    assert line, "the demo ended before starting caller: " + "".join(lines)
                    lines.append(line)
                process.send_signal(signal.SIGINT)
                rest = process.stdout.read()
                process.wait(30)
            finally:
                if process.poll() is None:
                    process.kill()
        output = "".join(lines) + rest
        assert process.returncode == 130
        assert "interrupted: stopped everything the demo started" in output
        pids = reported_pids(output)
        assert len(pids) == 2
        assert not any(is_running(pid) for pid in pids)
