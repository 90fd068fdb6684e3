"""soajs core's service middleware (npm ``soajs@4.1.22``) run by Node, for the parity suite.

The package is fetched once into ``.parity/`` at the repository root with npm's own client
(``npm pack``), with the one dependency ``mw/service/index.js`` loads (``async``, at the version
the package pins); the full ``npm install soajs`` would add some 300 packages this middleware
never loads. One ``node harness.js`` process serves a whole test session: one JSON line per
case in, one JSON line out.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SOAJS_PACKAGE = "soajs@4.1.22"

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
PARITY_ROOT = REPO_ROOT / ".parity"
HARNESS = HERE / "harness.js"

_INSTALL_MARKER = "installed.json"
_COMMAND_TIMEOUT = 600
_STOP_TIMEOUT = 10.0


class ParitySetupError(RuntimeError):
    """The Node middleware could not be installed or started; the message says why."""


def _run(command: list[str], *, cwd: Path, what: str) -> str:
    result = subprocess.run(
        command, check=False, cwd=cwd, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT
    )
    if result.returncode != 0:
        raise ParitySetupError(
            f"{what} failed with exit code {result.returncode}: {' '.join(command)}\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def ensure_installed(root: Path = PARITY_ROOT) -> Path:
    """Fetch the package under ``root`` unless a finished install is there; return its folder.

    A marker written after a successful install records the version; a file lock keeps
    concurrent test runs from installing into the same folder at once.
    """
    package_dir = root / "package"
    marker = root / _INSTALL_MARKER
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(OSError, ValueError):
            recorded = json.loads(marker.read_text(encoding="utf-8"))
            if recorded == {"soajs": SOAJS_PACKAGE} and (package_dir / "mw").is_dir():
                return package_dir
        marker.unlink(missing_ok=True)
        shutil.rmtree(package_dir, ignore_errors=True)
        npm = shutil.which("npm") or "npm"
        tarball = _run(
            [npm, "pack", SOAJS_PACKAGE, "--silent", "--loglevel=error"], cwd=root, what="npm pack"
        ).split()[-1]
        with tarfile.open(root / tarball) as archive:
            archive.extractall(root, filter="data")
        (root / tarball).unlink()
        manifest = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
        async_version = manifest["dependencies"]["async"]
        _run(
            [npm, "install", f"async@{async_version}", "--no-audit", "--no-fund", "--no-save"],
            cwd=root,
            what="npm install async",
        )
        marker.write_text(json.dumps({"soajs": SOAJS_PACKAGE}) + "\n", encoding="utf-8")
    return package_dir


class NodeMiddleware:
    """One ``node harness.js`` process: :meth:`run` sends cases and reads the answers."""

    def __init__(self, package_dir: Path) -> None:
        node = shutil.which("node") or "node"
        self._process = subprocess.Popen(
            [node, str(HARNESS), str(package_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
        )

    def run(self, cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Send every case at once (one line each) and return the answers by case id."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        payload = "".join(json.dumps(case) + "\n" for case in cases)
        self._process.stdin.write(payload)
        self._process.stdin.flush()
        answers: dict[str, dict[str, Any]] = {}
        for _ in cases:
            line = self._process.stdout.readline()
            if not line:
                raise ParitySetupError(f"node exited with {self._process.poll()} mid-run")
            answer = json.loads(line)
            answers[answer["id"]] = answer
        return answers

    def stop(self) -> None:
        """Close the harness's input and wait for it; kill it by PID if it lingers."""
        process = self._process
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@contextlib.contextmanager
def running_middleware(package_dir: Path) -> Iterator[NodeMiddleware]:
    """The harness process for the block, stopped after it."""
    middleware = NodeMiddleware(package_dir)
    try:
        yield middleware
    finally:
        middleware.stop()
