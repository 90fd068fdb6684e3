"""P3: registry and context reads against a plain dict lookup, idle and under reloads."""

from __future__ import annotations

import threading
import time
from typing import Any

from benchmarks.fixtures import Inputs
from benchmarks.harness import Reading, Report, Settings, comparison, percentile, statement_timer
from soajs.context import (
    RequestContext,
    current_context,
    reset_current_request,
    set_current_request,
)
from soajs.testing import FakeRegistryManager

LIMIT = 3.0
P99_LIMIT = 1.5
_BATCH = 1


def run(report: Report, inputs: Inputs, settings: Settings) -> None:
    """Measure P3: the three reads, then their p99 idle and with back-to-back reloads."""
    manager = FakeRegistryManager(inputs.registry, service_name="hello")
    try:
        database = next(iter(manager.registry.core_db))
        service = next(iter(manager.registry.services))
        request = RequestContext(inputs.header)
        if request.context is None:
            raise RuntimeError("the benchmark header does not parse")
        token = set_current_request(request)
        try:
            _ratios(report, manager, database, service, settings)
            _under_reload(report, manager, database, service, settings)
        finally:
            reset_current_request(token)
    finally:
        manager.stop()


def _ratios(
    report: Report, manager: FakeRegistryManager, database: str, service: str, settings: Settings
) -> None:
    namespace: dict[str, Any] = {
        "lookup": {database: object(), service: object(), "other": object()},
        "manager": manager,
        "current_context": current_context,
        "database": database,
        "service": service,
    }
    baseline = statement_timer("lookup[database]", namespace)
    for name, stmt in (
        ("manager.get_database(name)", "manager.get_database(database)"),
        ("manager.get_service(name)", "manager.get_service(service)"),
        ("current_context() (already parsed)", "current_context()"),
    ):
        report.add(
            comparison(
                "P3",
                name,
                "a plain dict lookup: d[key]",
                baseline,
                statement_timer(stmt, namespace),
                settings=settings,
                limit=LIMIT,
            )
        )


def _reader_latencies(
    manager: FakeRegistryManager, database: str, service: str, batches: int
) -> list[float]:
    """Nanoseconds per read, timed in small batches of the three reads."""
    clock = time.perf_counter_ns
    get_database = manager.get_database
    get_service = manager.get_service
    samples = []
    for _ in range(batches):
        start = clock()
        for _ in range(_BATCH):
            get_database(database)
            get_service(service)
            current_context()
        samples.append((clock() - start) / (_BATCH * 3))
    return samples


def _under_reload(
    report: Report, manager: FakeRegistryManager, database: str, service: str, settings: Settings
) -> None:
    reloading = threading.Event()
    done = threading.Event()
    reloads = 0

    def reloader() -> None:
        nonlocal reloads
        while not done.is_set():
            if reloading.wait(0.05):
                manager.reload()
                reloads += 1

    thread = threading.Thread(target=reloader, name="bench-reloader", daemon=True)
    thread.start()
    idle: list[float] = []
    busy: list[float] = []
    phases = 2 if settings.quick else 20
    batches = 50 if settings.quick else 2000
    try:
        for phase in range(phases):
            # ABAB phases: idle, then reloading, then idle...
            if phase % 2:
                reloading.set()
                busy += _reader_latencies(manager, database, service, batches)
                reloading.clear()
            else:
                idle += _reader_latencies(manager, database, service, batches)
    finally:
        done.set()
        reloading.clear()
        thread.join()
    idle_p99 = percentile(idle, 0.99)
    busy_p99 = percentile(busy, 0.99)
    ratio = busy_p99 / idle_p99
    report.add(
        Reading(
            "P3",
            "reads' p99 under back-to-back reloads / idle p99",
            f"{ratio:.2f}x ({busy_p99:.0f} vs {idle_p99:.0f} ns/read)",
            f"<= {P99_LIMIT}x",
            ratio <= P99_LIMIT,
            note=f"{reloads} reloads during {len(busy)} batches of {_BATCH * 3} reads",
        )
    )
