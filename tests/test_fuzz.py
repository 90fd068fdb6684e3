"""Fuzzing the soajsinjectobj header through the ASGI and WSGI middlewares.

Every generated value goes through both middlewares, in process, under both header policies:
ASGI by calling the wrapped app with a hand-built scope, WSGI with a hand-built environ (the
Latin-1 text PEP 3333 servers put there). Neither may raise or answer 500, and both must reach
the same outcome: the same context, or the same rejection.

``make fuzz`` runs this file with the "fuzz" hypothesis profile (10,000 examples per test).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fixture_paths import CAPTURED
from hypothesis import given
from hypothesis import strategies as st

from soajs import Settings, current_context
from soajs.asgi import SoajsASGIMiddleware
from soajs.context import REQUEST_KEY, WSGI_CONTEXT_KEY, current_request
from soajs.errors import InjectHeaderError
from soajs.inject import DEFAULT_MAX_SIZE, parse_inject_header
from soajs.wsgi import SoajsWSGIMiddleware

RAW_HEADERS: dict[str, str] = json.loads(
    (CAPTURED / "soajsinjectobj.raw-header-strings.json").read_text(encoding="utf-8")
)
# The captured headers, parsed: the starting points for wrong-typed fields.
VALID: list[dict[str, Any]] = [json.loads(text) for text in RAW_HEADERS.values()]
POLICIES = ("ignore", "reject")
# Stands for a raw JSON fragment (a huge number, deep nesting) that json.dumps cannot write.
SENTINEL = "\x00fuzz-raw\x00"
QUOTED_SENTINEL = json.dumps(SENTINEL)
PEER = ("127.0.0.1", 40000)


@dataclass(frozen=True)
class Outcome:
    """What one middleware did with one request."""

    status: int
    body: bytes
    context: dict[str, Any] | None
    raw_header: str | None
    error_code: str | None


def _describe_request() -> tuple[dict[str, Any] | None, str | None, str | None]:
    context = current_context()
    request = current_request()
    error = None if request is None else request.error
    if context is None:
        return None, None, None if error is None else error.code
    dumped = context.model_dump(mode="json", by_alias=True)
    return dumped, context.raw_header, None


class _Recorder:
    """The app behind the middlewares: it reads the context as a handler would."""

    def __init__(self) -> None:
        self.seen: tuple[dict[str, Any] | None, str | None, str | None] | None = None

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.seen = _describe_request()
        from_scope = scope[REQUEST_KEY].context
        assert (from_scope is None) == (self.seen[0] is None)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.seen = _describe_request()
        from_environ = environ.get(WSGI_CONTEXT_KEY)
        assert (from_environ is None) == (self.seen[0] is None)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


class Paths:
    """Both middlewares under one policy, and a way to send them one header value."""

    def __init__(self, policy: str, runner: asyncio.Runner) -> None:
        settings = Settings(header_policy=policy)
        self.recorder = _Recorder()
        self.asgi_app = SoajsASGIMiddleware(self.recorder.asgi, settings=settings, heartbeat=False)
        self.wsgi_app = SoajsWSGIMiddleware(self.recorder.wsgi, settings=settings, heartbeat=False)
        self.runner = runner

    def asgi(self, value: bytes) -> Outcome:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/hello",
            "raw_path": b"/hello",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"hello"), (b"soajsinjectobj", value)],
            "client": PEER,
            "server": ("127.0.0.1", 4010),
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        self.recorder.seen = None
        self.runner.run(self.asgi_app(scope, receive, send))
        return self._outcome(sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]))

    def wsgi(self, value: str) -> Outcome:
        environ = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": "/hello",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "4010",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": PEER[0],
            "HTTP_HOST": "hello",
            "HTTP_SOAJSINJECTOBJ": value,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        statuses: list[str] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            statuses.append(status)
            return lambda data: None

        self.recorder.seen = None
        body = b"".join(self.wsgi_app(environ, start_response))
        return self._outcome(int(statuses[0].split(" ", 1)[0]), body)

    def _outcome(self, status: int, body: bytes) -> Outcome:
        seen = self.recorder.seen
        if seen is None:  # refused before the app ran
            return Outcome(status, body, None, None, None)
        return Outcome(status, body, *seen)


@pytest.fixture(scope="module")
def paths() -> Iterator[dict[str, Paths]]:
    """Both middlewares under each policy, sharing one event loop."""
    with asyncio.Runner() as runner:
        yield {policy: Paths(policy, runner) for policy in POLICIES}


def check(paths: dict[str, Paths], value: bytes) -> None:
    """Send ``value`` through every path; assert no 500 and that ASGI and WSGI agree."""
    text = value.decode("latin-1")  # what a PEP 3333 server puts in the environ
    try:
        expected: Any = parse_inject_header(value).model_dump(mode="json", by_alias=True)
    except InjectHeaderError as exc:
        expected = exc.code
    for policy, pair in paths.items():
        asgi, wsgi = pair.asgi(value), pair.wsgi(text)
        assert asgi == wsgi, policy
        assert asgi.status in {200, 400, 403, 431}, asgi
        if isinstance(expected, dict):
            assert asgi.status == 200
            assert asgi.context == expected
            assert asgi.raw_header == text
        elif policy == "ignore":
            assert (asgi.status, asgi.context, asgi.error_code) == (200, None, expected)
        else:
            assert asgi.status != 200
            assert json.loads(asgi.body)["result"] is False


def encode(data: Any, raw: str | None = None) -> bytes:
    """JSON.stringify-like text; ``raw`` replaces the sentinel; Latin-1 bytes when possible."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if raw is not None:
        text = text.replace(QUOTED_SENTINEL, raw)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")  # characters no gateway can send, as a client could


def field_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (objects and arrays included), the root excepted."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict | list):
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in children:
            found.append((*prefix, key))
            found.extend(field_paths(child, (*prefix, key)))
    return found


FIELDS = [(index, path) for index, data in enumerate(VALID) for path in field_paths(data)]


def replaced(index: int, path: tuple[Any, ...], value: Any, *, delete: bool = False) -> Any:
    """A copy of valid header ``index`` with the field at ``path`` set to ``value`` (or removed)."""
    data = json.loads(json.dumps(VALID[index]))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "é", "\u20ac", "\U0001f600", "%E9%", "%C3%A9", "null", "{}"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
huge_numbers = st.one_of(
    st.integers(min_value=300, max_value=6000).map(lambda n: "9" * n),
    st.integers(min_value=300, max_value=6000).map(lambda n: "-1" + "0" * n),
    st.integers(min_value=-99999, max_value=99999).map(lambda e: f"1e{e}"),
    st.sampled_from(["1e308", "1.7976931348623157e309", "-0", "0.0000000001e-400"]),
)
deep_nesting = st.integers(min_value=1, max_value=5000).flatmap(
    lambda depth: st.sampled_from(
        ['{"a":' * depth + "1" + "}" * depth, "[" * depth + "]" * depth, "[" * depth]
    )
)


class TestHeaderFuzzing:
    @given(value=st.binary(max_size=4096))
    def test_random_bytes(self, paths: dict[str, Paths], value: bytes) -> None:
        """Random bytes: no crash, no 500, and ASGI and WSGI agree."""
        check(paths, value)

    @given(field=st.sampled_from(FIELDS), value=json_values, delete=st.booleans())
    def test_wrong_types_at_every_field(
        self, paths: dict[str, Paths], field: tuple[int, tuple[Any, ...]], value: Any, delete: bool
    ) -> None:
        """A captured header with any one field replaced by any JSON value, or removed."""
        index, path = field
        check(paths, encode(replaced(index, path, value, delete=delete)))

    @given(field=st.sampled_from(FIELDS), raw=st.one_of(huge_numbers, deep_nesting))
    def test_huge_numbers_and_deep_nesting(
        self, paths: dict[str, Paths], field: tuple[int, tuple[Any, ...]], raw: str
    ) -> None:
        """Huge numbers and deep nesting at any field of a captured header."""
        index, path = field
        check(paths, encode(replaced(index, path, SENTINEL), raw))

    @given(raw=st.one_of(huge_numbers, deep_nesting))
    def test_huge_numbers_and_deep_nesting_alone(self, paths: dict[str, Paths], raw: str) -> None:
        """A header that is only a huge number or a deep structure."""
        check(paths, raw.encode("latin-1"))

    @given(
        field=st.sampled_from(FIELDS),
        text=st.text(
            alphabet=st.characters(
                min_codepoint=0x100, max_codepoint=0x10FFFF, exclude_categories=["Cs"]
            ),
            min_size=1,
            max_size=20,
        ),
    )
    def test_characters_beyond_latin1(
        self, paths: dict[str, Paths], field: tuple[int, tuple[Any, ...]], text: str
    ) -> None:
        """Characters beyond Latin-1 (sent as UTF-8 bytes) in any field of a captured header."""
        index, path = field
        check(paths, encode(replaced(index, path, text)))

    @given(
        field=st.sampled_from(FIELDS),
        padding=st.one_of(
            st.integers(min_value=0, max_value=3 * DEFAULT_MAX_SIZE),
            st.integers(min_value=DEFAULT_MAX_SIZE - 6000, max_value=DEFAULT_MAX_SIZE),
        ),
    )
    def test_oversized(
        self, paths: dict[str, Paths], field: tuple[int, tuple[Any, ...]], padding: int
    ) -> None:
        """A captured header padded to around and far beyond the 64 KiB limit."""
        index, path = field
        check(paths, encode(replaced(index, path, "x" * padding)))

    @given(text=st.text(min_size=1, max_size=200))
    def test_non_latin1_text_in_a_wsgi_environ(self, paths: dict[str, Paths], text: str) -> None:
        """A WSGI server that breaks PEP 3333 and passes any text: no crash and no 500."""
        for pair in paths.values():
            outcome = pair.wsgi(text)
            assert outcome.status in {200, 400, 403, 431}
            if any(ord(char) > 0xFF for char in text):
                assert outcome.context is None
