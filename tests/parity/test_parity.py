"""The same header bytes to soajs core's Node service middleware and to this project.

For every fixture header and every variant of :mod:`tests.parity.cases`, both sides must agree
on whether there is a context, on every field a handler reads (``tenant`` with its ``key`` and
``application``, ``servicesConfig``, ``urac``, ``device``, ``geo``, ``param``), on each
``connect()`` result and, for headers with a user, on what the urac driver answers
(``getProfile()``, ``getProfile(true)``, ``getAcl()``, ``getGroups()``), except where a case
names one of the documented differences.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fixture_paths import FIXTURES

from soajs.connector import ServiceConnector
from soajs.errors import ConnectError, InjectHeaderError
from soajs.inject import parse_inject_header
from soajs.models.context import ContextData
from soajs.urac import UracDriver, UracProfile

from .cases import CASES, VARIANTS, Call, Case
from .differences import DIFFERENCES, explains

MIGRATION_DOC = FIXTURES.parents[1] / "docs" / "migration.md"
_NO_CONTEXT_IN_PYTHON_ONLY = {"tenant-id-and-code-required", "objects-where-objects-are-read"}


def _dump(model: Any) -> Any:
    if model is None:
        return None
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def python_view(context: ContextData) -> dict[str, Any]:
    """What a handler reads here, under soajs core's names (``req.soajs``)."""
    tenant = context.tenant
    application = tenant.application
    return {
        "tenant": {
            "id": tenant.id,
            "code": tenant.code,
            "locked": tenant.locked,
            "type": tenant.type,
            "name": tenant.name,
            "main": _dump(tenant.main),
            "profile": tenant.profile,
        },
        "key": {"iKey": tenant.key.i_key, "eKey": tenant.key.e_key},
        "application": {
            "product": application.product,
            "package": application.package,
            "appId": application.app_id,
            "acl": application.acl,
            "acl_all_env": application.acl_all_env,
            "package_acl": application.package_acl,
            "package_acl_all_env": application.package_acl_all_env,
        },
        "servicesConfig": context.services_config,
        "urac": _dump(context.urac),
        "device": context.device,
        "geo": _dump(context.geo),
        "param": _dump(context.param),
    }


def python_connect(context: ContextData, case: Case, call: Call) -> dict[str, Any]:
    """One ``connect()`` result as Node shapes it: ``{host, headers?}``, or ``{error}``."""
    connector = ServiceConnector(
        context,
        access_token=case.query.get("access_token"),
        authorization=case.headers.get("authorization"),
        trace_headers={},
    )
    try:
        response = connector.connect(*call)
    except ConnectError as exc:
        return {"error": str(exc)}
    result: dict[str, Any] = {"host": response.host}
    if response.headers:
        result["headers"] = dict(response.headers)
    return result


def _same(node: object, python: object) -> bool:
    if isinstance(node, bool) or isinstance(python, bool):
        return node is python
    return node == python


def mismatches(node: object, python: object, path: str, allowed: frozenset[str]) -> list[str]:
    """Paths where the two views differ and no allowed difference explains it."""
    if isinstance(node, dict) and isinstance(python, dict):
        found = []
        for key in sorted(set(node) | set(python)):
            found += mismatches(node.get(key), python.get(key), f"{path}.{key}", allowed)
        return found
    if isinstance(node, list) and isinstance(python, list) and len(node) == len(python):
        found = []
        for index, (left, right) in enumerate(zip(node, python, strict=True)):
            found += mismatches(left, right, f"{path}[{index}]", allowed)
        return found
    if _same(node, python) or any(explains(name, node, python) for name in allowed):
        return []
    return [f"{path}: Node {node!r} != here {python!r}"]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_same_context_and_connect(case: Case, node_answers: dict[str, dict[str, Any]]) -> None:
    """Node and this project read the header alike, but for the case's documented differences."""
    answer = node_answers[case.id]
    assert "thrown" not in answer, answer
    node_view = answer["context"]
    try:
        context: ContextData | None = parse_inject_header(case.header.encode("latin-1"))
    except InjectHeaderError as exc:
        context = None
        refusal = exc.code
    if context is None:
        if node_view is not None:
            allowed = case.differences & _NO_CONTEXT_IN_PYTHON_ONLY
            assert any(explains(name, node_view, refusal) for name in allowed), refusal
        return
    assert node_view is not None, "this project has a context where soajs core has none"
    problems = mismatches(node_view, python_view(context), "req.soajs", case.differences)
    for index, call in enumerate(case.calls):
        node_result = answer["connect"][index]
        result = python_connect(context, case, call)
        # A connect() difference explains the whole result (host and headers together).
        if not any(explains(name, node_result, result) for name in case.differences):
            problems += mismatches(node_result, result, f"connect{call}", frozenset())
    assert not problems, "\n".join(problems)


def _node_profile(profile: UracProfile | None) -> dict[str, Any] | None:
    return None if profile is None else profile.to_node()


def python_urac_driver(driver: UracDriver) -> dict[str, Any]:
    """What the urac driver answers, as soajs core's ``req.soajs.uracDriver`` shapes it."""
    return {
        "profile": _node_profile(driver.get_profile()),
        "profileAll": _node_profile(driver.get_profile(all=True)),
        "acl": driver.get_acl(),
        "groups": driver.get_groups(),
    }


URAC_CASES = [case for case in CASES if case.runs_urac_driver]
EMPTY_DRIVER = {"profile": None, "profileAll": None, "acl": None, "groups": None}


@pytest.mark.parametrize("case", URAC_CASES, ids=[case.id for case in URAC_CASES])
def test_same_urac_driver(case: Case, node_answers: dict[str, dict[str, Any]]) -> None:
    """The urac driver answers as soajs core's, but for the case's documented differences."""
    answer = node_answers[case.id]
    assert "thrown" not in answer, answer
    try:
        context = parse_inject_header(case.header.encode("latin-1"))
    except InjectHeaderError:
        assert answer["context"] is None or case.differences & _NO_CONTEXT_IN_PYTHON_ONLY
        return
    python = python_urac_driver(context.urac_driver)
    node = answer["uracDriver"]
    if node is None:
        # soajs core makes no driver without a context or a user; here it is empty.
        assert python == EMPTY_DRIVER
        return
    problems = mismatches(node, python, "req.soajs.uracDriver", case.differences)
    assert not problems, "\n".join(problems)


def test_urac_cases_cover_the_driver() -> None:
    """The driver's cases include each profile shape, a filled ACL and an empty driver."""
    assert len(URAC_CASES) >= 10
    assert {"urac-driver-oauth-user-id", "urac-driver-other-record", "urac-full"} <= {
        case.id for case in URAC_CASES
    }


def test_enough_variants() -> None:
    """Besides the fixture headers the suite feeds at least 25 variants."""
    assert len(VARIANTS) >= 25
    assert len(CASES) - len(VARIANTS) >= 12


def test_every_difference_has_a_predicate() -> None:
    """Each documented difference says exactly which pairs of values it explains."""
    for name in DIFFERENCES:
        assert explains(name, None, None) in (True, False)


def test_every_difference_is_used_and_documented() -> None:
    """Each allowed difference is named by a case and listed in docs/migration.md."""
    used = set().union(*(case.differences for case in CASES))
    assert used == set(DIFFERENCES)
    documented = set(re.findall(r"`([a-z0-9-]+)`", MIGRATION_DOC.read_text(encoding="utf-8")))
    assert set(DIFFERENCES) <= documented
