"""Differential test: the same calls under snowplow-tracker 1.1.0 (from PyPI, in a separate
virtual environment) and under this package put the same requests on the wire.

Both runs execute ``scenario_every_call.py`` against the local collector with the clock and
uuid4 pinned. The requests must be identical in order, method, path, query and body, except
``tv`` (the version) and the deviations listed in docs/compatibility.md.
"""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path
from typing import Any, List, Tuple

from snowplow_tracker._version import __version__
from snowplow_tracker.collector import LocalCollector
from tests.support.reference_env import run_script

SCENARIO = Path(__file__).with_name("scenario_every_call.py")

Request = Tuple[str, str, List[Tuple[str, str]], str]


def _run(python: Any, collector: LocalCollector, version: str) -> List[Request]:
    collector.reset()
    host_port = collector.endpoint.split("://", 1)[1]
    script = SCENARIO.read_text(encoding="utf-8")
    result = run_script(python, script, host_port)
    assert result == {"done": True}
    seen: List[Request] = []
    for request in collector.requests():
        query = urllib.parse.parse_qsl(request["query"], keep_blank_values=True)
        query = [(k, "<tv>" if k == "tv" else v) for k, v in query]
        body = (
            (request["body"] or b"")
            .decode("utf-8")
            .replace(f'"tv": "py-{version}"', '"tv": "<tv>"')
        )
        seen.append((request["method"], request["path"], query, body))
    return seen


def test_every_call_puts_the_same_requests_on_the_wire_as_1_1_0(
    reference_env_python: Path,
) -> None:
    with LocalCollector(lenient=True) as collector:
        theirs = _run(reference_env_python, collector, "1.1.0")
        ours = _run(sys.executable, collector, __version__)

    assert len(theirs) > 40
    assert len(ours) == len(theirs)
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        assert mine == reference, f"request {index} differs"
