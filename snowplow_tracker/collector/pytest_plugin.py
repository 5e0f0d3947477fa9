"""pytest plugin: a ``snowplow_collector`` fixture backed by ``LocalCollector``.

Registered as the ``snowplow_collector`` entry point, so it is active wherever this package is
installed. One collector is started per test session (lazily, on first use) and reset before
each test (events, requests, counters and pending faults).

Options (command line / ini):

* ``--snowplow-iglu-dir DIR`` (repeatable) / ini ``snowplow_iglu_dirs`` (paths, one per line)
* ``--snowplow-lenient`` / ini ``snowplow_lenient = true``: accept unknown schemas
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, List

import pytest

if TYPE_CHECKING:
    from .server import LocalCollector

__all__ = ["snowplow_collector", "snowplow_collector_factory"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the plugin's command-line and ini options."""
    group = parser.getgroup("snowplow", "Snowplow local collector")
    group.addoption(
        "--snowplow-iglu-dir",
        action="append",
        default=[],
        dest="snowplow_iglu_dirs",
        metavar="DIR",
        help="static Iglu repository used by the snowplow_collector fixture (repeatable)",
    )
    group.addoption(
        "--snowplow-lenient",
        action="store_true",
        default=None,
        dest="snowplow_lenient",
        help="snowplow_collector accepts events whose schemas are not found",
    )
    parser.addini(
        "snowplow_iglu_dirs",
        "static Iglu repositories for the snowplow_collector fixture",
        type="paths",
        default=[],
    )
    parser.addini(
        "snowplow_lenient",
        "snowplow_collector accepts events whose schemas are not found",
        type="bool",
        default=False,
    )


def _iglu_dirs(config: pytest.Config) -> List[Path]:
    dirs = [Path(d) for d in config.getoption("snowplow_iglu_dirs") or []]
    dirs.extend(Path(str(d)) for d in config.getini("snowplow_iglu_dirs") or [])
    return dirs


def _lenient(config: pytest.Config) -> bool:
    option = config.getoption("snowplow_lenient")
    if option is not None:
        return bool(option)
    return bool(config.getini("snowplow_lenient"))


@pytest.fixture(scope="session")
def _snowplow_collector_session(pytestconfig: pytest.Config) -> Iterator[LocalCollector]:
    from .server import LocalCollector

    collector = LocalCollector(iglu_dirs=_iglu_dirs(pytestconfig), lenient=_lenient(pytestconfig))
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


@pytest.fixture
def snowplow_collector(_snowplow_collector_session: LocalCollector) -> Iterator[LocalCollector]:
    """A running ``LocalCollector``, emptied and with no pending faults at the start of the test."""
    collector = _snowplow_collector_session
    collector.clear_faults()
    collector.reset()
    yield collector
    collector.clear_faults()


@pytest.fixture
def snowplow_collector_factory(
    pytestconfig: pytest.Config,
) -> Iterator[Callable[..., LocalCollector]]:
    """Start extra collectors with custom options; all are stopped after the test.

    Iglu directories and lenient mode default to the plugin options.
    """
    from .server import LocalCollector

    started: List[LocalCollector] = []

    def make(**options: Any) -> LocalCollector:
        options.setdefault("iglu_dirs", _iglu_dirs(pytestconfig))
        options.setdefault("lenient", _lenient(pytestconfig))
        collector = LocalCollector(**options)
        collector.start()
        started.append(collector)
        return collector

    try:
        yield make
    finally:
        for collector in started:
            collector.stop()
