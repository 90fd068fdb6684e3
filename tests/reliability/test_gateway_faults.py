"""A hostile or broken gateway: every call to it is bounded in time and size.

The gateway here drips its reply a byte at a time (status line included), sends a body that
never ends, announces 100 MB, or nests its JSON 200,000 levels deep. Each test asserts the
typed error, that the caller got control back, and what it cost; elapsed times are recorded
in the figures, never asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import wait_until
from tagged_registry import registry_reply, tag_of

from soajs import Settings
from soajs.errors import (
    GatewayUnavailable,
    RegistryDeadlineExceeded,
    RegistryReplyMalformed,
    RegistryReplyTooLarge,
)
from soajs.registry import RegistryClient, RegistryManager
from soajs.settings import REGISTRY_MAX_REPLY_SIZE

from .conftest import Figures
from .faultserver import HUGE_SIZE, FaultServer, Mode

REPO = Path(__file__).resolve().parents[2]
# Peak RSS a fetch may add to its process, whatever the gateway sends: the reply is kept up to
# the size limit (16 MiB by default) and refused past it (docs/reliability.md).
RSS_BOUND_MB = 64

# A child process that loads the registry at start-up, with the documented defaults, from the
# gateway named in argv, and prints what that cost in peak RSS.
_CHILD = """
import json, resource, sys
from soajs import Settings
from soajs.registry import RegistryManager

def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def resident_kib():
    # The current RSS (the import peak may be higher): growth is measured from here.
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() // 1024

settings = Settings(registry_api=sys.argv[1])
manager = RegistryManager("hello", settings=settings, auto_reload=False, autostart=False)
baseline = resident_kib()
try:
    manager.start()
    outcome, message = "loaded", ""
except Exception as exc:
    outcome, message = type(exc).__name__, str(exc)
print(json.dumps({"baseline_kib": baseline, "peak_kib": peak_kib(), "outcome": outcome,
                  "message": message, "failures": manager.status.consecutive_failures}))
"""


@pytest.fixture
def hostile() -> Iterator[FaultServer]:
    """A gateway serving the registry tagged ``a``, dripping a byte every 50 ms when asked."""
    with FaultServer(registry_reply("a", interval_ms=200), drip_seconds=0.05) as server:
        yield server


def limits(server: FaultServer, **values: float) -> Settings:
    """Settings pointing at ``server`` with the given limits."""
    return Settings(registry_api=server.registry_api, **values)


def run_child(server: FaultServer) -> dict[str, object]:
    """Run :data:`_CHILD` against ``server``; its JSON report."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOAJS_")}
    # Started from a small interpreter, not from here: a child's ru_maxrss begins at its
    # parent's RSS at fork time (and survives exec), which for this test process is large.
    relay = (
        "import subprocess, sys; subprocess.run([sys.executable, '-c', *sys.argv[1:]], check=True)"
    )
    done = subprocess.run(
        [sys.executable, "-c", relay, _CHILD, server.registry_api],
        capture_output=True,
        check=True,
        cwd=REPO,
        env=env,
        text=True,
        timeout=120,
    )
    report: dict[str, object] = json.loads(done.stdout)
    return report


@pytest.mark.timeout(60)
class TestDeadline:
    def test_start_up_on_a_dripping_gateway_fails_at_the_deadline(
        self, hostile: FaultServer, figures: Figures
    ) -> None:
        """Start-up against a gateway that drips its reply raises RegistryDeadlineExceeded."""
        hostile.mode = Mode.DRIP
        started = time.monotonic()
        with pytest.raises(RegistryDeadlineExceeded) as caught:
            RegistryManager(
                "hello", settings=limits(hostile, registry_timeout=5, registry_fetch_deadline=1)
            )
        elapsed = time.monotonic() - started
        error = caught.value
        assert isinstance(error, GatewayUnavailable)
        assert error.url == f"http://{hostile.registry_api}/getRegistry"
        assert error.limit == 1
        assert "SOAJS_REGISTRY_FETCH_DEADLINE=1s" in str(error)
        assert hostile.registry_api in str(error)
        figures.record("deadline: start-up on a dripping gateway", deadline=1, elapsed=elapsed)

    def test_a_dripping_reload_fails_and_is_counted(
        self, hostile: FaultServer, managers: list[RegistryManager]
    ) -> None:
        """A background reload on a dripping gateway ends at the deadline and shows in status."""
        manager = RegistryManager(
            "hello",
            settings=limits(hostile, registry_timeout=5, registry_fetch_deadline=0.5),
        )
        managers.append(manager)
        hostile.mode = Mode.DRIP
        assert wait_until(lambda: manager.status.consecutive_failures >= 2)
        status = manager.status
        assert status.running
        assert status.last_error is not None
        assert "SOAJS_REGISTRY_FETCH_DEADLINE=0.5s" in status.last_error
        assert tag_of(manager.registry) == "a"

    def test_readers_status_and_reload_never_wait_on_a_dripping_fetch(
        self, hostile: FaultServer, managers: list[RegistryManager], figures: Figures
    ) -> None:
        """While a reload drips, reads give the last good copy and another reload() goes ahead."""
        manager = RegistryManager(
            "hello",
            settings=limits(hostile, registry_timeout=5, registry_fetch_deadline=30),
        )
        managers.append(manager)
        hostile.mode = Mode.DRIP
        assert wait_until(lambda: hostile.dripping >= 1)
        hostile.mode = Mode.OK
        hostile.reply = registry_reply("b", interval_ms=60_000)
        started = time.monotonic()
        assert tag_of(manager.registry) == "a"
        assert manager.status.reloads == 1
        assert manager.get_database("main").name == "main_a"
        assert tag_of(manager.reload()) == "b"
        elapsed = time.monotonic() - started
        # The dripping fetch is still in flight: nothing waited for it.
        assert hostile.dripping >= 1
        assert tag_of(manager.registry) == "b"
        figures.record("deadline: reads and reload() beside a dripping fetch", elapsed=elapsed)

    def test_stop_mid_drip_returns_and_joins_the_thread(
        self, hostile: FaultServer, figures: Figures
    ) -> None:
        """stop() in the middle of a dripping reload ends the call and joins the thread."""
        manager = RegistryManager(
            "hello",
            settings=limits(hostile, registry_timeout=5, registry_fetch_deadline=300),
        )
        (thread,) = [t for t in threading.enumerate() if t.name == "soajs-registry-hello"]
        hostile.mode = Mode.DRIP
        assert wait_until(lambda: hostile.dripping >= 1)
        started = time.monotonic()
        manager.stop()
        elapsed = time.monotonic() - started
        assert not thread.is_alive()
        assert manager.status.running is False
        # Stopping is not a failure of the gateway.
        assert manager.status.consecutive_failures == 0
        assert wait_until(lambda: hostile.dripping == 0)
        figures.record("deadline: stop() mid-drip", elapsed=elapsed)

    def test_a_dripping_registration_fails_at_the_deadline(self, hostile: FaultServer) -> None:
        """/register replies are bounded by the same deadline."""
        hostile.mode = Mode.DRIP
        with (
            RegistryClient(f"http://{hostile.registry_api}", timeout=5, deadline=0.5) as client,
            pytest.raises(RegistryDeadlineExceeded, match="/register did not complete"),
        ):
            client.register({"name": "hello"})


@pytest.mark.timeout(120)
class TestSize:
    def test_an_endless_body_is_cut_at_the_limit(self, hostile: FaultServer) -> None:
        """A chunked body that never ends raises RegistryReplyTooLarge naming the limit."""
        hostile.mode = Mode.ENDLESS
        with (
            RegistryClient(f"http://{hostile.registry_api}", max_reply_size=1 << 20) as client,
            pytest.raises(RegistryReplyTooLarge) as caught,
        ):
            client.fetch("dev", "hello")
        error = caught.value
        assert isinstance(error, RegistryReplyMalformed)
        assert error.limit == 1 << 20
        assert error.url == f"http://{hostile.registry_api}/getRegistry"
        assert "SOAJS_REGISTRY_MAX_REPLY_SIZE=1048576" in str(error)

    def test_a_declared_100mb_body_is_refused_unread(self, hostile: FaultServer) -> None:
        """A reply announcing 100 MB is refused on its Content-Length, before the body."""
        hostile.mode = Mode.HUGE
        with (
            RegistryClient(f"http://{hostile.registry_api}") as client,
            pytest.raises(RegistryReplyTooLarge, match="Content-Length 100000000"),
        ):
            client.fetch("dev", "hello")
        assert wait_until(lambda: len(hostile.sent) == 1)
        assert hostile.sent[0] < HUGE_SIZE

    def test_an_endless_registration_reply_is_cut_at_the_limit(self, hostile: FaultServer) -> None:
        """/register replies are bounded by the same size limit."""
        hostile.mode = Mode.ENDLESS
        with (
            RegistryClient(f"http://{hostile.registry_api}", max_reply_size=1 << 20) as client,
            pytest.raises(RegistryReplyTooLarge, match="/register answered a reply longer"),
        ):
            client.register({"name": "hello"})

    @pytest.mark.parametrize("mode", [Mode.ENDLESS, Mode.HUGE], ids=str)
    def test_peak_rss_stays_bounded(
        self, hostile: FaultServer, mode: Mode, figures: Figures
    ) -> None:
        """A process loading the registry from an endless or 100 MB reply stays under the bound."""
        hostile.mode = mode
        report = run_child(hostile)
        assert report["outcome"] == "RegistryReplyTooLarge", report
        assert f"SOAJS_REGISTRY_MAX_REPLY_SIZE={REGISTRY_MAX_REPLY_SIZE}" in str(report["message"])
        assert report["failures"] == 1
        grown_mb = (int(str(report["peak_kib"])) - int(str(report["baseline_kib"]))) / 1024
        assert grown_mb < RSS_BOUND_MB, report
        figures.record(
            f"size: peak RSS, {mode} reply",
            baseline_mb=int(str(report["baseline_kib"])) / 1024,
            grown_mb=grown_mb,
            bound_mb=RSS_BOUND_MB,
            sent_by_gateway_mb=hostile.sent[-1] / 2**20 if hostile.sent else None,
        )


@pytest.mark.timeout(60)
class TestNesting:
    def test_a_deeply_nested_reply_is_a_typed_error_at_start_up(self, hostile: FaultServer) -> None:
        """A 200,000-level reply raises RegistryReplyMalformed at start-up, not RecursionError."""
        hostile.mode = Mode.DEEP
        with pytest.raises(RegistryReplyMalformed, match="nested too deeply") as caught:
            RegistryManager("hello", settings=limits(hostile))
        assert caught.value.url == f"http://{hostile.registry_api}/getRegistry"

    def test_a_deeply_nested_registration_reply_is_a_typed_error(
        self, hostile: FaultServer
    ) -> None:
        """A 200,000-level /register reply raises RegistryReplyMalformed, not RecursionError."""
        hostile.mode = Mode.DEEP
        with (
            RegistryClient(f"http://{hostile.registry_api}") as client,
            pytest.raises(RegistryReplyMalformed, match="nested too deeply"),
        ):
            client.register({"name": "hello"})
