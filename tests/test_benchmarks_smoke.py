"""Every benchmark runs once, tiny (no timing is asserted: speed is for `make bench`)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from benchmarks.__main__ import BENCHMARKS, format_report, main, run_all
from benchmarks.harness import Comparison, Reading, Settings


class TestBenchmarksSmoke:
    def test_each_benchmark_runs_and_reports_rows(self) -> None:
        """Each of P1..P5 runs in smoke mode and adds at least one row to the report."""
        for name in BENCHMARKS:
            report = run_all([name], Settings.smoke())
            assert report.rows, name
            assert all(isinstance(row, Comparison | Reading) for row in report.rows)

    def test_report_is_a_table_with_the_header_source(self) -> None:
        """The printed report is a Markdown table that names where the header came from."""
        report = run_all(["p2"], Settings.smoke())
        text = format_report(report, Settings.smoke(), 0.0)
        assert text.startswith("| target | measured |")
        assert "header: captured" in text
        assert "parse_inject_header(raw)" in text

    def test_unknown_benchmark_is_a_usage_error(self) -> None:
        """Asking for a benchmark that does not exist exits with argparse's usage error."""
        with pytest.raises(SystemExit) as exc:
            main(["--only", "p9"])
        assert exc.value.code == 2

    def test_load_benchmark_serves_every_configuration(self) -> None:
        """The load benchmark starts each server, loads it with the Python generator, and
        reports one table row per configuration and the GC-tracked objects per context, unread
        and with every section read."""
        from benchmarks.load_apps import FASTAPI_CONFIGS, FLASK_CONFIGS

        report = run_all(["load"], Settings.smoke())
        (section,) = report.sections
        rows = [line for line in section.splitlines() if line.startswith(("| FastAPI", "| Flask"))]
        assert len(rows) == len(FASTAPI_CONFIGS) + len(FLASK_CONFIGS)
        assert "the Python keep-alive generator" in section
        assert "load average" in section
        unread, read = report.rows
        for reading in (unread, read):
            assert isinstance(reading, Reading)
            assert "json.loads" in reading.value
        assert "every section read" in read.name

    def test_load_benchmark_runs_only_the_servers_asked_for(self) -> None:
        """``--load-servers flask`` loads the Flask configurations only, in the rounds asked for."""
        from benchmarks.load_apps import FLASK_CONFIGS

        settings = Settings(quick=True, load_servers=("Flask",))
        report = run_all(["load"], settings)
        (section,) = report.sections
        assert "| FastAPI" not in section
        rows = [line for line in section.splitlines() if line.startswith("| Flask")]
        assert len(rows) == len(FLASK_CONFIGS)
        assert "uvicorn" not in section

    def test_unknown_load_server_is_a_usage_error(self) -> None:
        """``--load-servers`` with a name other than fastapi or flask exits with a usage error."""
        with pytest.raises(SystemExit) as exc:
            main(["--only", "load", "--load-servers", "django"])
        assert exc.value.code == 2


class _KeepAliveHandler(BaseHTTPRequestHandler):
    """Answers every GET with a small JSON body on a keep-alive connection."""

    protocol_version = "HTTP/1.1"
    headers_seen: ClassVar[list[bytes]] = []

    def do_GET(self) -> None:
        self.headers_seen.append(self.headers.get("soajsinjectobj", "").encode("latin-1"))
        body = b'{"tenant":"TTEN"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class names it)
        return None


@pytest.fixture
def keep_alive_server() -> Iterator[int]:
    _KeepAliveHandler.headers_seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class TestLoadGenerators:
    def test_python_load_sends_the_header_and_counts_requests(self, keep_alive_server: int) -> None:
        """The Python generator sends the header byte for byte and reports what it measured."""
        from benchmarks.fixtures import load_inputs
        from benchmarks.load import python_load

        header = load_inputs().header
        sample = python_load(keep_alive_server, "/hello", header, 0.2)
        assert sample.rps > 0
        assert 0 < sample.p50_ms <= sample.p99_ms
        assert _KeepAliveHandler.headers_seen
        assert set(_KeepAliveHandler.headers_seen) == {header}

    @pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
    def test_wrk_load_sends_the_header_and_reads_wrk_output(self, keep_alive_server: int) -> None:
        """wrk is driven with the header and its summary is read into RPS and percentiles."""
        from benchmarks.fixtures import load_inputs
        from benchmarks.load import wrk_load

        header = load_inputs().header
        sample = wrk_load(keep_alive_server, "/hello", header, 1)
        assert sample.rps > 0
        assert 0 < sample.p50_ms <= sample.p99_ms
        assert set(_KeepAliveHandler.headers_seen) == {header}
