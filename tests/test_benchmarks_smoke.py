"""Every benchmark runs once, tiny (no timing is asserted: speed is for `make bench`)."""

from __future__ import annotations

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
        reports one table row per configuration and the GC-tracked objects per context."""
        from benchmarks.load_apps import FASTAPI_CONFIGS, FLASK_CONFIGS

        report = run_all(["load"], Settings.smoke())
        (section,) = report.sections
        rows = [line for line in section.splitlines() if line.startswith(("| FastAPI", "| Flask"))]
        assert len(rows) == len(FASTAPI_CONFIGS) + len(FLASK_CONFIGS)
        assert "the Python keep-alive generator" in section
        assert "load average" in section
        (reading,) = report.rows
        assert isinstance(reading, Reading)
        assert "json.loads" in reading.value
