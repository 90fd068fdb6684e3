"""``python -m benchmarks``: run every benchmark and print the table of ratios."""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from collections.abc import Callable

from benchmarks import connect, lookups, middleware, parsing, registry
from benchmarks.fixtures import Inputs, load_inputs
from benchmarks.harness import Comparison, Reading, Report, Settings

Benchmark = Callable[[Report, Inputs, Settings], None]

BENCHMARKS: dict[str, Benchmark] = {
    "p1": middleware.run,
    "p2": parsing.run,
    "p3": lookups.run,
    "p4": connect.run,
    "p5": registry.run,
}

END_TO_END = ("e2e", "load")
"""Benchmarks through real servers, imported only when run."""


def run_all(names: list[str], settings: Settings) -> Report:
    """Run the named benchmarks (``p1``..``p5``, ``e2e``, ``load``) into one report."""
    inputs = load_inputs()
    report = Report()
    report.notes.append(f"header: {inputs.source} ({len(inputs.header)} bytes)")
    for name in names:
        if name == "e2e":
            from benchmarks import e2e

            e2e.run(report, inputs, settings)
        elif name == "load":
            from benchmarks import load

            load.run(report, inputs, settings)
        else:
            BENCHMARKS[name](report, inputs, settings)
    return report


def format_report(report: Report, settings: Settings, seconds: float) -> str:
    """The report as a Markdown table, then the notes."""
    lines = [
        "| target | measured | baseline | ratio [p25-p75] | ns/op cand / base | limit | |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        if isinstance(row, Comparison):
            limit = "-" if row.limit is None else f"<= {row.limit:g}x"
            lines.append(
                f"| {row.target} | {row.name} | {row.baseline} | "
                f"{row.ratio:.3f}x [{row.low:.3f}-{row.high:.3f}] | "
                f"{row.candidate_ns:,.0f} / {row.baseline_ns:,.0f} | {limit} | {row.verdict} |"
            )
        else:
            assert isinstance(row, Reading)
            lines.append(
                f"| {row.target} | {row.name} | {row.note or '-'} | {row.value} | - | "
                f"{row.limit} | {row.verdict} |"
            )
    lines.append("")
    lines.extend(f"- {note}" for note in report.notes)
    lines.append(
        f"- {settings.rounds} interleaved rounds per ratio (ABAB), ~{settings.round_seconds:g} s "
        f"each; Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"took {seconds:.0f} s"
    )
    for section in report.sections:
        lines.extend(["", section])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run, print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset of p1,p2,p3,p4,p5,e2e,load (default: all)",
    )
    parser.add_argument(
        "--no-e2e", action="store_true", help="skip the end-to-end runs (e2e and load)"
    )
    parser.add_argument("--rounds", type=int, default=41, help="rounds per ratio (default 41)")
    parser.add_argument(
        "--round-seconds", type=float, default=0.02, help="length of one round (default 0.02)"
    )
    parser.add_argument(
        "--load-servers",
        default="fastapi,flask",
        help="comma-separated servers the load benchmark runs: fastapi,flask (default: both)",
    )
    parser.add_argument(
        "--load-rounds", type=int, default=5, help="rounds per load configuration (default 5)"
    )
    parser.add_argument(
        "--load-round-seconds",
        type=float,
        default=3.0,
        help="seconds of one load round (default 3)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="run everything once, tiny; numbers mean nothing"
    )
    args = parser.parse_args(argv)
    names = [*BENCHMARKS, *END_TO_END]
    if args.only:
        names = [name.strip().lower() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(names) - {*BENCHMARKS, *END_TO_END})
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    if args.no_e2e:
        names = [name for name in names if name not in END_TO_END]
    servers = {"fastapi": "FastAPI", "flask": "Flask"}
    wanted = [name.strip().lower() for name in args.load_servers.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(servers))
    if unknown or not wanted:
        parser.error(f"--load-servers: expected fastapi and/or flask, got {args.load_servers!r}")
    load_servers = tuple(label for name, label in servers.items() if name in wanted)
    settings = (
        dataclasses.replace(Settings.smoke(), load_servers=load_servers)
        if args.smoke
        else Settings(
            rounds=args.rounds,
            round_seconds=args.round_seconds,
            load_servers=load_servers,
            load_rounds=args.load_rounds,
            load_round_seconds=args.load_round_seconds,
        )
    )
    start = time.perf_counter()
    report = run_all(names, settings)
    print(format_report(report, settings, time.perf_counter() - start))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
