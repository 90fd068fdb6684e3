"""P2: reading the context (Latin-1 decode, parse and validate) against ``json.loads``."""

from __future__ import annotations

import json

from benchmarks.fixtures import Inputs
from benchmarks.harness import Report, Settings, comparison, statement_timer
from soajs.context import RequestContext
from soajs.inject import _validate_whole, parse_inject_header
from soajs.models.context import ContextData

LIMIT = 1.0


def read_every_section(context: ContextData) -> ContextData:
    """Read each section of ``context``, as a handler using all of them would; give it back."""
    for name in ContextData.model_fields:
        getattr(context, name)
    return context


def run(report: Report, inputs: Inputs, settings: Settings) -> None:
    """Measure P2, and beside it the full read, the whole validation and its floor (reported)."""
    namespace = {
        "json": json,
        "raw": inputs.header,
        "parse_inject_header": parse_inject_header,
        "validate_json": ContextData.__pydantic_validator__.validate_json,
        "RequestContext": RequestContext,
        "read_every_section": read_every_section,
        "validate_whole": _validate_whole,
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
            "parse_inject_header(raw), then every section read",
            label,
            baseline,
            statement_timer("read_every_section(parse_inject_header(raw))", namespace),
            settings=settings,
            note="reported",
        )
    )
    report.add(
        comparison(
            "P2*",
            "the whole validation (headers the short path does not take: non-ASCII, odd keys)",
            label,
            baseline,
            statement_timer("validate_whole(raw, raw)", namespace),
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
