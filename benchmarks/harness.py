"""A small timeit-style harness: interleaved rounds, medians, paired ratios."""

from __future__ import annotations

import gc
import statistics
import subprocess
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Timer = Callable[[int], float]
"""Runs the measured operation ``number`` times and returns the elapsed seconds."""


@dataclass(frozen=True)
class Settings:
    """How hard to measure: rounds per comparison and the wanted length of one round."""

    rounds: int = 41
    round_seconds: float = 0.02
    quick: bool = False
    load_servers: tuple[str, ...] = ("FastAPI", "Flask")
    """The servers the load benchmark runs (``--load-servers``)."""
    load_rounds: int = 5
    """Rounds per configuration of the load benchmark (``--load-rounds``)."""
    load_round_seconds: float = 3.0
    """Seconds of one load round (``--load-round-seconds``; wrk rounds to whole seconds)."""

    @classmethod
    def smoke(cls) -> Settings:
        """One short round each: proves the code runs, measures nothing."""
        return cls(rounds=1, round_seconds=0.0005, quick=True)


@dataclass(frozen=True)
class Comparison:
    """One candidate against its baseline; times are per operation, in nanoseconds.

    ``ratio`` is the median of the per-round ratios (each round times both sides back to
    back); ``low``/``high`` are their quartiles, the spread indicator.
    """

    target: str
    name: str
    baseline: str
    baseline_ns: float
    candidate_ns: float
    ratio: float
    low: float
    high: float
    limit: float | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        """``ok``, ``MISS``, or ``-`` when there is no limit (reported only)."""
        if self.limit is None:
            return "-"
        return "ok" if self.ratio <= self.limit else "MISS"


@dataclass(frozen=True)
class Reading:
    """A measurement that is not a ratio (milliseconds, bytes, RSS): reported with a limit."""

    target: str
    name: str
    value: str
    limit: str
    passed: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        """``ok``, ``MISS``, or ``-`` when reported only."""
        if self.passed is None:
            return "-"
        return "ok" if self.passed else "MISS"


@dataclass
class Report:
    """Everything one run measured, in order."""

    rows: list[Comparison | Reading] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    """Markdown blocks printed after the table and its notes (the load benchmark's table)."""

    def add(self, row: Comparison | Reading) -> None:
        """Append a row."""
        self.rows.append(row)


def statement_timer(stmt: str, namespace: dict[str, Any], setup: str = "pass") -> Timer:
    """Time a statement as :mod:`timeit` does: inlined in a loop, the garbage collector off."""
    timer = timeit.Timer(stmt, setup=setup, globals=namespace)
    return timer.timeit


def calibrate(run: Timer, round_seconds: float) -> int:
    """The number of operations that makes one round last about ``round_seconds``."""
    number = 1
    while True:
        elapsed = run(number)
        if elapsed >= round_seconds / 4 or number >= 10_000_000:
            break
        number *= 4
    return max(1, int(number * round_seconds / max(elapsed, 1e-9)))


def compare(
    baseline: Timer,
    candidate: Timer,
    settings: Settings,
    *,
    number: int | None = None,
) -> tuple[float, float, list[float]]:
    """Time both sides in alternating rounds (AB, BA, AB, ...).

    Returns:
        The median seconds per operation of the baseline and the candidate, and the ratio
        candidate/baseline of every round.
    """
    if number is None:
        number = calibrate(baseline, settings.round_seconds)
    baseline(max(1, number // 10))
    candidate(max(1, number // 10))
    base_times: list[float] = []
    cand_times: list[float] = []
    ratios: list[float] = []
    for index in range(settings.rounds):
        if index % 2 == 0:
            base = baseline(number)
            cand = candidate(number)
        else:
            cand = candidate(number)
            base = baseline(number)
        base_times.append(base / number)
        cand_times.append(cand / number)
        ratios.append(cand / base)
    return statistics.median(base_times), statistics.median(cand_times), ratios


def comparison(
    target: str,
    name: str,
    baseline_label: str,
    baseline: Timer,
    candidate: Timer,
    *,
    settings: Settings,
    limit: float | None = None,
    number: int | None = None,
    note: str = "",
) -> Comparison:
    """Measure one comparison (see :func:`compare`) and describe it."""
    base, cand, ratios = compare(baseline, candidate, settings, number=number)
    low, high = quartiles(ratios)
    return Comparison(
        target=target,
        name=name,
        baseline=baseline_label,
        baseline_ns=base * 1e9,
        candidate_ns=cand * 1e9,
        ratio=statistics.median(ratios),
        low=low,
        high=high,
        limit=limit,
        note=note,
    )


def quartiles(values: list[float]) -> tuple[float, float]:
    """The 25th and 75th percentiles (both the value itself for a single value)."""
    if len(values) < 2:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=4, method="inclusive")
    return cuts[0], cuts[2]


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def loop_timer(operation: Callable[[], object]) -> Timer:
    """Time ``operation()`` called in a plain loop, the garbage collector off."""

    def run(number: int) -> float:
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            for _ in range(number):
                operation()
            return time.perf_counter() - start
        finally:
            if enabled:
                gc.enable()

    return run


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate a server the benchmark started; kill it if it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
