"""The documentation site builds with ``mkdocs build --strict`` (any warning fails).

Also checks what strict mode cannot see: every public constructor parameter that the
configuration reference renders is documented in a docstring, and every example program
is described in docs/examples.md.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, List

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs"

_DOC_TOOLS = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def _missing_doc_tools() -> List[str]:
    missing = []
    for name in _DOC_TOOLS:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = _missing_doc_tools()
    if missing:
        pytest.skip(
            f"documentation tools not installed ({', '.join(missing)}); "
            "install them with: pip install -e '.[dev]'"
        )
    site_dir = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(REPO_ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site_dir),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, (
        "mkdocs build --strict failed:\n" + completed.stdout[-5000:] + completed.stderr[-5000:]
    )
    return site_dir


def _page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


def test_site_builds_strict(site: Path) -> None:
    assert (site / "index.html").is_file()
    for page in (
        "quickstart",
        "concepts",
        "tracking-events",
        "configuration",
        "delivery",
        "testing",
        "deploying",
        "migrating",
        "examples",
        "benchmarks",
        "compatibility",
        "reference/emitters",
    ):
        assert (site / page / "index.html").is_file(), page


def test_reference_pages_render_docstrings(site: Path) -> None:
    emitters = _page(site, "reference/emitters")
    for name in ("force_flush", "shutdown", "http_post", "send_events", "stats"):
        assert f'id="snowplow_tracker.emitters.Emitter.{name}"' in emitters, name
    assert 'id="snowplow_tracker.emitters.AsyncEmitter"' in emitters


def test_configuration_reference_shows_defaults(site: Path) -> None:
    text = re.sub(r"<[^>]+>", " ", _page(site, "configuration"))
    text = re.sub(r"\s+", " ", text)
    for fragment in ("buffer_capacity", "overflow_policy", "exit_timeout", "max_events"):
        assert fragment in text, fragment
    assert "&#39;drop_newest&#39;" in text or "'drop_newest'" in text


# Classes whose constructor parameters the configuration reference lists.
DOCUMENTED_CLASSES = [
    "snowplow_tracker.tracker.Tracker",
    "snowplow_tracker.emitters.Emitter",
    "snowplow_tracker.emitters.AsyncEmitter",
    "snowplow_tracker.emitter_configuration.EmitterConfiguration",
    "snowplow_tracker.tracker_configuration.TrackerConfiguration",
    "snowplow_tracker.event_store.InMemoryEventStore",
    "snowplow_tracker.event_store.SQLiteEventStore",
    "snowplow_tracker.retry.RetryPolicy",
    "snowplow_tracker.events.PageView",
    "snowplow_tracker.events.PagePing",
    "snowplow_tracker.events.ScreenView",
    "snowplow_tracker.events.StructuredEvent",
    "snowplow_tracker.events.SelfDescribing",
    "snowplow_tracker.self_describing_json.SelfDescribingJson",
    "snowplow_tracker.collector.LocalCollector",
]


def _load(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _documented_text(cls: type) -> str:
    """The docstrings of ``cls`` and its bases, where its parameters may be described."""
    return "\n".join(inspect.getdoc(klass) or "" for klass in cls.__mro__ if klass is not object)


@pytest.mark.parametrize("path", DOCUMENTED_CLASSES)
def test_every_constructor_parameter_is_documented(path: str) -> None:
    cls = _load(path)
    doc = _documented_text(cls)
    parameters = [
        name
        for name, parameter in inspect.signature(cls).parameters.items()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    undocumented = [name for name in parameters if not re.search(rf"\b{name}\b", doc)]
    assert not undocumented, f"{path}: parameters missing from the docstring: {undocumented}"


def test_every_example_is_described_in_the_docs() -> None:
    page = (DOCS / "examples.md").read_text(encoding="utf-8")
    for example in sorted((REPO_ROOT / "examples").glob("*.py")):
        assert f"examples/{example.name}" in page, example.name


def test_every_docs_page_is_in_the_nav() -> None:
    config = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted(DOCS.rglob("*.md")):
        relative = page.relative_to(DOCS).as_posix()
        assert f": {relative}" in config, f"{relative} is not in mkdocs.yml's nav"


def _python_blocks(path: Path) -> List[str]:
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(r"^( *)```python\n(.*?)^\1```", re.S | re.M)
    return [textwrap.dedent(match.group(2)) for match in pattern.finditer(text)]


@pytest.mark.parametrize(
    "page",
    sorted(
        [p.relative_to(REPO_ROOT).as_posix() for p in DOCS.rglob("*.md")]
        + ["CHANGELOG.md", "CONTRIBUTING.md"]
    ),
)
def test_python_snippets_in_the_docs_compile(page: str) -> None:
    for number, code in enumerate(_python_blocks(REPO_ROOT / page), start=1):
        try:
            compile(code, f"{page} (python block {number})", "exec")
        except SyntaxError as error:
            pytest.fail(f"{page}: python block {number} does not compile: {error}")
