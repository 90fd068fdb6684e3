"""The documentation stays true: settings listed, examples run, the site builds strictly.

Convention for examples: every fenced block whose language is ``python`` in ``docs/**/*.md`` is
executed, in page order, in one namespace per page (so a later block can use an earlier block's
names). A block that cannot run here (it needs a live SOAJS gateway or starts a server forever)
is preceded by the line ``<!-- docs-test: skip -->``. Examples run in a temporary directory with
every ``SOAJS_*`` variable cleared and ``SOAJS_REGISTRY_API`` pointing at a loopback server that
answers like the real gateway's maintenance API, from the captured fixtures.

A page that promises to work after a plain install says so with the line
``<!-- docs-test: fresh-venv extras=fastapi -->`` (the extras it names, comma-separated, or none).
Its examples run instead in a fresh virtualenv holding this checkout installed with only those
extras (no pytest, no dev tools), with no ``SOAJS_*`` variable and no gateway: one virtualenv
per set of extras, built once per test session.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixture_paths import CAPTURED
from pydantic import AliasChoices
from pytest_httpserver import HTTPServer

from soajs.settings import Settings

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient and warns once, on import;
    # importing it here keeps that warning out of the examples, which use httpx.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    with contextlib.suppress(ImportError):
        import starlette.testclient  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIP_MARKER = "<!-- docs-test: skip -->"
FRESH_VENV_MARKER = re.compile(r"^<!-- docs-test: fresh-venv extras=(?P<extras>[\w,-]*) -->$", re.M)
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced code block of a documentation page."""

    page: Path
    line: int
    language: str
    source: str
    skipped: bool


def code_blocks(page: Path) -> list[CodeBlock]:
    """Return the fenced code blocks of a Markdown page, with their first line numbers."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[CodeBlock] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = opening["info"].split()[0] if opening["info"].strip() else ""
        previous = next((text.strip() for text in reversed(lines[:index]) if text.strip()), "")
        body: list[str] = []
        index += 1
        while index < len(lines) and not (
            lines[index].strip().startswith(fence) and lines[index].strip().strip(fence[0]) == ""
        ):
            body.append(lines[index])
            index += 1
        first = index - len(body) + 1
        source = textwrap.dedent("\n".join(line.removeprefix(indent) for line in body))
        blocks.append(CodeBlock(page, first, language, source, previous == SKIP_MARKER))
        index += 1
    return blocks


def doc_pages() -> list[Path]:
    """Every Markdown page of the site."""
    return sorted(DOCS.rglob("*.md"))


def runnable_blocks(page: Path) -> list[CodeBlock]:
    """The python blocks of a page that the tests run."""
    return [
        block for block in code_blocks(page) if block.language == "python" and not block.skipped
    ]


def fresh_venv_extras(page: Path) -> str | None:
    """The extras a page's examples run with in a fresh virtualenv, or None for the dev one."""
    marker = FRESH_VENV_MARKER.search(page.read_text(encoding="utf-8"))
    return None if marker is None else marker["extras"]


def pages_with_examples() -> list[Path]:
    """The pages whose runnable Python blocks run in the development environment."""
    return [
        page for page in doc_pages() if runnable_blocks(page) and fresh_venv_extras(page) is None
    ]


def pages_for_fresh_venv() -> list[Path]:
    """The pages whose runnable Python blocks run in a fresh virtualenv."""
    return [
        page
        for page in doc_pages()
        if runnable_blocks(page) and fresh_venv_extras(page) is not None
    ]


def setting_variables(name: str) -> list[str]:
    """The environment variable names Settings reads for one field."""
    field = Settings.model_fields[name]
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        names = [str(choice) for choice in alias.choices if isinstance(choice, str)]
        return [choice.upper() for choice in names if choice.upper().startswith("SOAJS_")]
    if isinstance(alias, str):
        return [alias.upper()]
    return [f"SOAJS_{name.upper()}"]


def documented_default(default: Any) -> str:
    """How a default value is written in the settings table."""
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if default == ():
        return "empty"
    return str(default)


def settings_rows() -> dict[str, list[str]]:
    """The rows of the settings tables, keyed by the variable in their first cell."""
    rows: dict[str, list[str]] = {}
    for line in (DOCS / "settings.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `SOAJS_") and len(cells) == 5:
            rows[cells[0].strip("`")] = cells
    return rows


class TestSettingsReference:
    """docs/settings.md and soajs.settings.Settings cannot drift apart."""

    @pytest.mark.parametrize("field", sorted(Settings.model_fields))
    def test_every_setting_has_a_row(self, field: str) -> None:
        """Each Settings field's variable has a row naming the field and its default."""
        rows = settings_rows()
        for variable in setting_variables(field):
            assert variable in rows, f"{variable} is not documented in docs/settings.md"
            cells = rows[variable]
            assert cells[1] == f"`{field}`"
            default = documented_default(Settings.model_fields[field].default)
            assert cells[3].strip("`").startswith(default), (variable, cells[3], default)

    def test_every_row_is_a_setting(self) -> None:
        """Each variable in the settings tables is read by Settings."""
        read = {
            variable for field in Settings.model_fields for variable in setting_variables(field)
        }
        assert set(settings_rows()) == read


@pytest.fixture
def example_environment(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> HTTPServer:
    """A clean environment with a loopback maintenance API that answers like the real gateway."""
    for variable in list(os.environ):
        if variable.upper().startswith("SOAJS_"):
            monkeypatch.delenv(variable)
    registry = json.loads(
        (CAPTURED / "getRegistry.dev.hello.after-register.response.json").read_text("utf-8")
    )
    registered = json.loads((CAPTURED / "register.hello.response.json").read_text("utf-8"))
    heartbeat = json.loads((CAPTURED / "maintenance.heartbeat.response.json").read_text("utf-8"))
    httpserver.expect_request("/getRegistry").respond_with_json(registry)
    httpserver.expect_request("/register").respond_with_json(registered)
    httpserver.expect_request("/heartbeat").respond_with_json(heartbeat)
    monkeypatch.setenv("SOAJS_REGISTRY_API", f"127.0.0.1:{httpserver.port}")
    monkeypatch.chdir(tmp_path)
    return httpserver


class TestExamples:
    """The Python examples in the documentation run as written."""

    @pytest.mark.parametrize("page", pages_with_examples(), ids=lambda page: page.name)
    @pytest.mark.usefixtures("example_environment")
    def test_page_examples_run(self, page: Path) -> None:
        """Every unmarked python block of the page runs without an error."""
        # A real module, so `container.wire(modules=[__name__])` in an example works.
        name = f"soajs_docs_{page.stem.replace('-', '_')}"
        module = types.ModuleType(name)
        sys.modules[name] = module
        ran = 0
        try:
            for block in runnable_blocks(page):
                # Leading newlines make tracebacks point at the line in the Markdown page.
                code = compile("\n" * (block.line - 1) + block.source, str(page), "exec")
                exec(code, module.__dict__)  # noqa: S102 - the documentation's own examples
                ran += 1
        finally:
            _stop_leftovers(module.__dict__)
            del sys.modules[name]
        assert ran > 0

    @pytest.mark.parametrize("page", pages_for_fresh_venv(), ids=lambda page: page.name)
    def test_page_examples_run_after_a_plain_install(
        self, page: Path, fresh_venv: Callable[[str], Path], tmp_path: Path
    ) -> None:
        """The page's python blocks run in a virtualenv with only the extras it names."""
        blocks = [{"line": block.line, "source": block.source} for block in runnable_blocks(page)]
        (tmp_path / "blocks.json").write_text(json.dumps(blocks), encoding="utf-8")
        (tmp_path / "run_blocks.py").write_text(BLOCK_RUNNER, encoding="utf-8")
        environment = {
            variable: value
            for variable, value in os.environ.items()
            if not variable.upper().startswith(("SOAJS_", "PYTHON", "VIRTUAL_ENV"))
        }
        python = fresh_venv(fresh_venv_extras(page) or "")
        result = subprocess.run(
            [str(python), "run_blocks.py", str(page), "blocks.json"],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        assert result.stdout.split() == ["ran", str(len(blocks))]

    def test_blocks_are_found(self) -> None:
        """The block parser finds fenced blocks, their languages and skip markers."""
        page = DOCS / "settings.md"
        blocks = code_blocks(page)
        assert [block.language for block in blocks][:1] == ["python"]
        assert "Settings(" in blocks[0].source
        assert not blocks[0].skipped

    def test_getting_started_runs_in_a_fresh_virtualenv(self) -> None:
        """The getting-started page asks for a fresh virtualenv with only the fastapi extra."""
        page = DOCS / "getting-started.md"
        assert fresh_venv_extras(page) == "fastapi"
        assert page in pages_for_fresh_venv()
        assert page not in pages_with_examples()
        assert fresh_venv_extras(DOCS / "testing.md") is None


# Runs a page's blocks in the fresh virtualenv, in one module namespace, warnings as errors.
BLOCK_RUNNER = """\
import json
import sys
import types
import warnings
from pathlib import Path

warnings.simplefilter("error")
# Starlette 1.x prefers the httpx2 package for its TestClient and warns once, on import.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

page, blocks = sys.argv[1], json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
module = types.ModuleType("soajs_docs_example")
sys.modules[module.__name__] = module
for block in blocks:
    # Leading newlines make tracebacks point at the line in the Markdown page.
    code = compile("\\n" * (block["line"] - 1) + block["source"], page, "exec")
    exec(code, module.__dict__)
print("ran", len(blocks))
"""


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """Make (once per set of extras) a virtualenv with this checkout; give its python."""
    made: dict[str, Path] = {}
    folders: list[Path] = []

    def python_with(extras: str) -> Path:
        if extras not in made:
            folders.append(tmp_path_factory.mktemp("fresh-venv"))
            made[extras] = _install_checkout(folders[-1], extras)
        return made[extras]

    yield python_with
    # A virtualenv is tens of megabytes; pytest would keep the last few runs' copies.
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _install_checkout(folder: Path, extras: str) -> Path:
    """Create a virtualenv in ``folder`` and install this checkout (not editable) into it."""
    # No pip of its own (ensurepip is most of venv's time): this environment's pip installs
    # into it through --python, with the user's index and cache, so a re-run is fast.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    python = folder / ("Scripts" if os.name == "nt" else "bin") / "python"
    requirement = f"{ROOT}[{extras}]" if extras else str(ROOT)
    environment = {
        variable: value
        for variable, value in os.environ.items()
        if not variable.upper().startswith(("PYTHON", "VIRTUAL_ENV"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", requirement],
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, f"pip install {requirement} failed:\n{result.stderr[-4000:]}"
    installed = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('pytest') is None)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert installed.stdout.strip() == "True", "the fresh virtualenv must not hold pytest"
    return python


def _stop_leftovers(namespace: dict[str, Any]) -> None:
    """Stop registry managers and gateways an example left running: no thread outlives it."""
    from soajs.gateway.server import LocalGateway
    from soajs.registry.manager import RegistryManager

    for value in list(namespace.values()):
        if isinstance(value, RegistryManager | LocalGateway):
            value.stop()


class TestSite:
    """The documentation site builds."""

    def test_mkdocs_build_strict(self, tmp_path: Path) -> None:
        """`mkdocs build --strict` succeeds: no broken link, no missing page, no bad reference."""
        mkdocs = Path(sys.executable).with_name("mkdocs")
        if not mkdocs.exists():
            pytest.skip("mkdocs is not installed in this environment")
        result = subprocess.run(
            [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        assert (tmp_path / "site" / "index.html").exists()


PROTOCOL = DOCS / "protocol.md"
SECTION_HEADING = re.compile(r"^#{2,3} (?P<number>\d+(?:\.\d+)?)\.? ", re.MULTILINE)
SECTION_CITATION = re.compile(r"§(?P<first>\d+(?:\.\d+)?)(?:-(?P<last>\d+(?:\.\d+)?))?")


def files_citing_the_protocol() -> list[Path]:
    """Every source, test, benchmark, example and doc file that mentions ``protocol.md``."""
    candidates = [ROOT / "README.md", *DOCS.rglob("*.md")]
    for folder in ("soajs", "tests", "benchmarks", "examples"):
        candidates += [path for path in (ROOT / folder).rglob("*") if path.suffix in {".py", ".md"}]
    this_file = Path(__file__).resolve()
    return sorted(
        path
        for path in candidates
        if path.resolve() != this_file and "protocol.md" in path.read_text(encoding="utf-8")
    )


def nav_pages(node: Any) -> set[str]:
    """The page paths named anywhere in the mkdocs ``nav`` tree."""
    if isinstance(node, str):
        return {node}
    if isinstance(node, list):
        return set().union(*(nav_pages(item) for item in node))
    if isinstance(node, dict):
        return set().union(*(nav_pages(value) for value in node.values()))
    return set()


class TestProtocolPage:
    """docs/protocol.md is the protocol every citation points at, and the site shows it."""

    def test_citations_name_the_page_in_the_repository(self) -> None:
        """Code and tests cite the protocol as docs/protocol.md, never a file outside the clone."""
        bare = re.compile(r"(?<![/\w])protocol\.md")
        offenders = [
            str(path.relative_to(ROOT))
            for path in files_citing_the_protocol()
            if path.suffix == ".py" and bare.search(path.read_text(encoding="utf-8"))
        ]
        assert offenders == []

    def test_cited_sections_exist(self) -> None:
        """Every §n cited next to the protocol (or in the page itself) is a section of the page."""
        sections = set(SECTION_HEADING.findall(PROTOCOL.read_text(encoding="utf-8")))
        assert {"2.3", "3.1", "7"} <= sections
        missing = {
            f"{path.relative_to(ROOT)}: §{number}"
            for path in files_citing_the_protocol()
            for match in SECTION_CITATION.finditer(path.read_text(encoding="utf-8"))
            for number in (match["first"], match["last"])
            if number is not None and number not in sections
        }
        assert missing == set()

    def test_every_page_is_in_the_nav(self) -> None:
        """Each Markdown page under docs/ is reachable from the mkdocs navigation."""
        yaml = pytest.importorskip("yaml")
        config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
        pages = {str(page.relative_to(DOCS)) for page in doc_pages()}
        assert "protocol.md" in pages
        assert pages - nav_pages(config["nav"]) == set()
