"""P2: reading the context (Latin-1 decode, parse and validate) against ``json.loads``."""

from __future__ import annotations

import json

from benchmarks.fixtures import Inputs
from benchmarks.harness import Report, Settings, comparison, statement_timer
from soajs.context import RequestContext
from soajs.inject import parse_inject_header
from soajs.models.context import ContextData

LIMIT = 1.2


def run(report: Report, inputs: Inputs, settings: Settings) -> None:
    """Measure P2, and the pydantic-core floor beneath it (reported only)."""
    namespace = {
        "json": json,
        "raw": inputs.header,
        "parse_inject_header": parse_inject_header,
        "validate_json": ContextData.__pydantic_validator__.validate_json,
        "RequestContext": RequestContext,
    }
    baseline = statement_timer("json.loads(raw)", namespace)
    label = f"json.loads of the same {len(inputs.header)} bytes"
    report.add(
        comparison(
            "P2",
            "parse_inject_header(raw)",
            label,
            baseline,
            statement_timer("parse_inject_header(raw)", namespace),
            settings=settings,
            limit=LIMIT,
        )
    )
    report.add(
        comparison(
            "P2*",
            "RequestContext(raw).context (what a handler's first read costs)",
            label,
            baseline,
            statement_timer("RequestContext(raw).context", namespace),
            settings=settings,
            note="reported",
        )
    )
    report.add(
        comparison(
            "P2*",
            "ContextData validate_json(raw) alone (the pydantic-core floor)",
            label,
            baseline,
            statement_timer("validate_json(raw)", namespace),
            settings=settings,
            note="reported",
        )
    )
