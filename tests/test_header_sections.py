"""The header's short path (split into sections, three validated at once) against the whole one.

``parse_inject_header`` splits an ASCII header with msgspec and validates ``tenant``, ``key`` and
``application`` at once, the other sections on first read; anything it cannot vouch for goes
through the whole pydantic validation. Both must give the same context or the same error, for
any input: these tests send the same bytes both ways.
"""

from __future__ import annotations

import copy
import gc
import json
import pickle
import sys
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz import (
    FIELDS,
    RAW_HEADERS,
    SENTINEL,
    VALID,
    deep_nesting,
    huge_numbers,
    json_values,
    replaced,
)

from soajs.errors import InjectHeaderError
from soajs.inject import _validate_whole, parse_inject_header
from soajs.models.context import ContextData

CAPTURED_BYTES = [text.encode("latin-1") for text in RAW_HEADERS.values()]
SECTIONS = ("tenant", "key", "application", "package", "device", "geo", "urac", "param")


def ascii_json(data: Any, raw: str | None = None) -> bytes:
    """``data`` as compact ASCII JSON; ``raw`` replaces the sentinel string."""
    text = json.dumps(data, separators=(",", ":"))
    if raw is not None:
        text = text.replace(json.dumps(SENTINEL), raw)
    return text.encode("ascii")


def read_everything(context: ContextData) -> dict[str, Any]:
    """Every public view of a context, read the way handlers read it."""
    application = context.tenant.application
    return {
        "dump": context.model_dump(mode="json", by_alias=True),
        "unset": context.model_dump(mode="json", by_alias=True, exclude_unset=True),
        "fields_set": sorted(context.model_fields_set),
        "extra": context.model_extra,
        "raw": context.raw_header,
        "repr": repr(context),
        "sections": [repr(getattr(context, name)) for name in SECTIONS],
        "awareness": repr(context.awareness),
        "tenant_key": context.tenant.key is context.key,
        "application": (application.package, application.acl, application.package_acl),
        "package_shared": application.package_acl_all_env is (context.package.acl_all_env or None),
        "urac_names": None
        if context.urac is None
        else (context.urac.first_name, context.urac.last_name),
    }


def outcome(parse: Any, value: bytes) -> tuple[Any, ...]:
    """What ``parse`` makes of ``value``: every view of the context, or the error."""
    try:
        context = parse(value)
    except InjectHeaderError as exc:
        return ("error", exc.code, str(exc))
    return ("context", read_everything(context))


def whole(value: bytes) -> ContextData:
    """The whole validation alone, as ``parse_inject_header`` runs it for ASCII bytes."""
    return _validate_whole(value, value)


def assert_same(value: bytes) -> None:
    """The short path and the whole validation agree on ``value``."""
    assert outcome(parse_inject_header, value) == outcome(whole, value)


class TestSameAsTheWholeValidation:
    @pytest.mark.parametrize("value", CAPTURED_BYTES, ids=list(RAW_HEADERS))
    def test_every_captured_header(self, value: bytes) -> None:
        """Each header the real gateway sent reads the same both ways."""
        assert_same(value)
        assert parse_inject_header(value) == whole(value)

    @given(field=st.sampled_from(FIELDS), value=json_values, delete=st.booleans())
    def test_any_field_of_any_shape(
        self, field: tuple[int, tuple[Any, ...]], value: Any, delete: bool
    ) -> None:
        """Any one field of a captured header replaced by any JSON value, or removed."""
        index, path = field
        assert_same(ascii_json(replaced(index, path, value, delete=delete)))

    @given(field=st.sampled_from(FIELDS), raw=st.one_of(huge_numbers, deep_nesting))
    def test_huge_numbers_and_deep_nesting(
        self, field: tuple[int, tuple[Any, ...]], raw: str
    ) -> None:
        """Numbers and nesting beyond what pydantic-core reads, in any field."""
        index, path = field
        assert_same(ascii_json(replaced(index, path, SENTINEL), raw))

    @given(
        index=st.integers(min_value=0, max_value=len(VALID) - 1),
        name=st.sampled_from([*SECTIONS, "awareness", "futureKey", "", "Tenant"]),
        value=json_values,
    )
    def test_top_level_keys_added_or_repeated(self, index: int, name: str, value: Any) -> None:
        """A top-level key added, unknown or repeated (``JSON.parse`` keeps the last one)."""
        text = ascii_json(VALID[index]).decode("ascii")
        fragment = json.dumps(name) + ":" + json.dumps(value)
        assert_same(("{" + fragment + "," + text[1:]).encode("ascii"))
        assert_same((text[:-1] + "," + fragment + "}").encode("ascii"))

    @given(value=st.binary(max_size=512).map(lambda data: bytes(byte & 0x7F for byte in data)))
    def test_random_ascii_bytes(self, value: bytes) -> None:
        """Random ASCII bytes, which take the short path first."""
        assert_same(value)

    @pytest.mark.parametrize(
        "value",
        [
            b' {"tenant":{"id":"t","code":"C"},"key":{},"application":{"package":"P"}} ',
            b'{"\\u0074enant":{"id":"t","code":"C"},"key":{},"application":{"package":"P"}}',
            b'{"tenant":{"id":"t","code":"C"},"key":{},"application":{"package":"P"},"urac":NaN}',
            b'{"tenant":{"id":"t","code":"C"},"key":{},"application":{"package":"P"}}x',
            b'{"tenant":{"id":5,"code":"C"},"key":"k","application":{"package":"P"}}',
            b'{"tenant":{"id":"t","code":"C"},"key":{},"application":{"package":""}}',
            b'{"tenant":{"id":"t","code":"C"},"key":{},"application":{"package":"P"},"device":1e400}',
            b'{"tenant":{"id":"t","code":"C"},"key":{},"application":{"package":"P"},"geo":"\\ud800"}',
            b"[]",
            b"",
            b"null",
        ],
    )
    def test_edges(self, value: bytes) -> None:
        """Whitespace, escaped keys, NaN, trailing bytes, odd types, lone surrogates."""
        assert_same(value)

    @pytest.mark.parametrize("digits", [639, 641, 4301])
    def test_a_lower_int_digit_limit(self, digits: int) -> None:
        """Under a lower int digit limit, numbers around it read the same both ways."""
        data = json.loads(RAW_HEADERS["secure-urac-jwt"])
        data["device"] = SENTINEL
        limit = sys.get_int_max_str_digits()
        sys.set_int_max_str_digits(640)
        try:
            assert_same(ascii_json(data, "9" * digits))
        finally:
            sys.set_int_max_str_digits(limit)


def unread() -> ContextData:
    """A captured header with a user and a package ACL, parsed and not read yet."""
    return parse_inject_header(RAW_HEADERS["secure-urac-jwt"].encode("latin-1"))


class TestAContextNotReadYet:
    def test_copies_pickles_and_equality_see_every_section(self) -> None:
        """Copies, pickles and == of an unread context hold what a read one holds."""
        expected = read_everything(unread())
        for clone in (
            copy.copy(unread()),
            copy.deepcopy(unread()),
            unread().model_copy(),
            pickle.loads(pickle.dumps(unread())),  # noqa: S301 - our own object
        ):
            assert read_everything(clone) == expected
        assert unread() == unread()
        assert unread() == whole(RAW_HEADERS["secure-urac-jwt"].encode("latin-1"))
        assert dict(unread())["urac"] is not None

    @pytest.mark.parametrize("value", CAPTURED_BYTES, ids=list(RAW_HEADERS))
    def test_captured_headers_take_the_short_path(self, value: bytes) -> None:
        """Every captured header is parsed without validating its lazy sections yet."""
        context = parse_inject_header(value)
        assert set(context.__dict__) == {"tenant", "application"}
        context.model_dump()
        assert list(context.__dict__) == list(ContextData.model_fields)

    def test_fields_set_and_exclude_unset_before_any_read(self) -> None:
        """model_fields_set and exclude_unset, read first, name the keys the header has."""
        value = RAW_HEADERS["secure-urac-jwt"].encode("latin-1")
        expected = whole(value)
        assert unread().model_fields_set == expected.model_fields_set
        assert unread().model_dump(exclude_unset=True) == expected.model_dump(exclude_unset=True)
        minimal = b'{"tenant":{"id":"t","code":"C"},"key":{},"application":{"package":"P"}}'
        assert parse_inject_header(minimal).model_fields_set == {"tenant", "key", "application"}

    @pytest.mark.parametrize("first", ["context", "tenant"])
    def test_the_key_and_package_are_one_object_each(self, first: str) -> None:
        """context.key/.package and context.tenant.key/.application read the same objects."""
        context = unread()
        if first == "tenant":
            key, acl = context.tenant.key, context.tenant.application.package_acl
            assert key is context.key
            assert acl is context.package.acl
        else:
            key, package = context.key, context.package
            assert context.tenant.key is key
            assert context.tenant.application.package_acl is package.acl

    def test_repr_hides_the_secrets(self) -> None:
        """An unread context's repr hides keys and user configuration like a read one."""
        text = repr(unread())
        assert "eKey" not in text
        assert "e038c52a" not in text
        assert "group config" not in text
        assert "owner" in text

    def test_a_section_assigned_before_it_is_read(self) -> None:
        """A section set by the handler before it was read stays what the handler set."""
        context = unread()
        context.device = "set-by-handler"
        assert context.device == "set-by-handler"
        assert context.model_dump()["device"] == "set-by-handler"

    def test_threads_reading_at_once_see_the_same_values(self) -> None:
        """Threads reading one unread context at once all see equal sections."""
        context = unread()
        seen: list[Any] = []
        barrier = threading.Barrier(4)

        def read() -> None:
            barrier.wait()
            seen.append((context.urac, context.package, context.awareness))

        threads = [threading.Thread(target=read) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(seen) == 4
        assert all(item == seen[0] for item in seen)

    def test_the_collector_sees_fewer_objects_than_json_loads(self) -> None:
        """A parsed context keeps fewer GC-tracked objects alive than json.loads of the header."""
        value = RAW_HEADERS["secure-urac-jwt"].encode("latin-1")

        def tracked(make: Any) -> int:
            gc.collect()
            before = len(gc.get_objects())
            kept = [make(value) for _ in range(100)]
            after = len(gc.get_objects())
            assert len(kept) == 100
            return (after - before) // 100

        assert tracked(parse_inject_header) < tracked(json.loads)


def test_read_everything_reads_every_section() -> None:
    """The helper above reads each lazy section (so the comparisons cover them all)."""
    names = set(ContextData.model_fields)
    assert names == {*SECTIONS, "awareness"}
