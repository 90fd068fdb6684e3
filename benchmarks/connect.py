"""P4: a mesh ``connect()`` forwards the received header as is, against a dict lookup."""

from __future__ import annotations

import json
from typing import Any

from benchmarks.fixtures import Inputs
from benchmarks.harness import Reading, Report, Settings, comparison, statement_timer
from soajs.connector import ServiceConnector
from soajs.context import RequestContext, reset_current_request, set_current_request

LIMIT = 5.0


def run(report: Report, inputs: Inputs, settings: Settings) -> None:
    """Measure P4 inside a request whose header lists ``hello`` v1 in ``interConnect``."""
    request = RequestContext(inputs.mesh_header)
    context = request.context
    if context is None or context.awareness is None or not context.awareness.inter_connect:
        raise RuntimeError("the mesh header has no awareness.interConnect")
    target = context.awareness.inter_connect[0]
    name, version = target.name, str(target.version)
    token = set_current_request(request)
    try:
        connection = ServiceConnector().connect(name, version)
        forwarded = connection.headers["soajsinjectobj"]
        # Byte for byte what arrived: a JSON serialisation of the parsed model would differ
        # (key order, spacing, the percent-encoded names the parser decodes).
        verbatim = connection.mesh and forwarded.encode("latin-1") == inputs.mesh_header
        report.add(
            Reading(
                "P4",
                "mesh connect() forwards the received header byte for byte",
                "yes" if verbatim else "no",
                "no JSON serialisation",
                verbatim and json.loads(forwarded) is not None,
            )
        )
        cached = ServiceConnector()
        cached.connect(name, version)
        namespace: dict[str, Any] = {
            "lookup": {name: object(), "other": object()},
            "ServiceConnector": ServiceConnector,
            "cached": cached,
            "context": context,
            "name": name,
            "version": version,
        }
        baseline = statement_timer("lookup[name]", namespace)
        label = "a plain dict lookup: d[key]"
        report.add(
            comparison(
                "P4",
                "connect(name, version) again on the request's connector",
                label,
                baseline,
                statement_timer("cached.connect(name, version)", namespace),
                settings=settings,
                limit=LIMIT,
            )
        )
        report.add(
            comparison(
                "P4",
                "ServiceConnector(context).connect(...) first call: resolve",
                label,
                baseline,
                statement_timer("ServiceConnector(context).connect(name, version)", namespace),
                settings=settings,
                limit=LIMIT,
                note="builds the reply once per connector",
            )
        )
        report.add(
            comparison(
                "P4*",
                "ServiceConnector().connect(...) in a request: capture + resolve",
                label,
                baseline,
                statement_timer("ServiceConnector().connect(name, version)", namespace),
                settings=settings,
                note="reported",
            )
        )
    finally:
        reset_current_request(token)
