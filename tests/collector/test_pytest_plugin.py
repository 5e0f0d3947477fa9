"""The pytest plugin (entry point ``snowplow_collector``), exercised with pytester."""

from __future__ import annotations

from pathlib import Path

import pytest

from snowplow_tracker.collector import LocalCollector

from .helpers import TP2, body, link_click, page_view

pytest_plugins = ["pytester"]

USES_FIXTURE = """
import json

import requests

SP = "iglu:com.snowplowanalytics.snowplow/"
TP2 = "/com.snowplowanalytics.snowplow/tp2"
PV = {"e": "pv", "p": "web", "tv": "t", "aid": "plugin"}
CLICK = {"schema": SP + "link_click/jsonschema/1-0-1", "data": {"targetUrl": "https://x.example"}}
UE = {"schema": SP + "unstruct_event/jsonschema/1-0-0", "data": CLICK}
LC = {"e": "ue", "p": "web", "tv": "t", "ue_pr": json.dumps(UE)}
BODY = {"schema": SP + "payload_data/jsonschema/1-0-4", "data": [PV, LC]}


def test_first(snowplow_collector):
    assert snowplow_collector.endpoint.startswith("http://127.0.0.1:")
    snowplow_collector.fail_next(5, status=503)
    requests.get(snowplow_collector.endpoint + "/i", params=PV, timeout=5)
    assert snowplow_collector.requests_received == 1


def test_second_starts_clean(snowplow_collector):
    assert snowplow_collector.summary() == {"total": 0, "good": 0, "bad": 0}
    assert snowplow_collector.requests() == []
    response = requests.post(snowplow_collector.endpoint + TP2, json=BODY, timeout=5)
    assert response.status_code == 200
    assert snowplow_collector.wait_for(2)
    errors = [b["errors"] for b in snowplow_collector.bad()]
    print("VERDICT", snowplow_collector.summary(), errors)


def test_same_server_for_the_session(snowplow_collector):
    assert snowplow_collector.running
"""


def test_fixture_yields_a_running_collector_reset_between_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(USES_FIXTURE)
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*VERDICT {'total': 2, 'good': 1, 'bad': 1}*not found*"])


def test_iglu_dir_option_makes_schemas_known(
    pytester: pytest.Pytester, shared_iglu_dir: Path
) -> None:
    pytester.makepyfile(USES_FIXTURE)
    result = pytester.runpytest("-s", "--snowplow-iglu-dir", str(shared_iglu_dir))
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*VERDICT {'total': 2, 'good': 2, 'bad': 0} []*"])


def test_ini_options_configure_iglu_dirs_and_lenient_mode(
    pytester: pytest.Pytester, shared_iglu_dir: Path
) -> None:
    pytester.makeini(f"[pytest]\nsnowplow_iglu_dirs =\n    {shared_iglu_dir}\n")
    pytester.makepyfile(USES_FIXTURE)
    pytester.runpytest("-s").stdout.fnmatch_lines(["*VERDICT {'total': 2, 'good': 2, 'bad': 0}*"])
    pytester.makeini("[pytest]\nsnowplow_lenient = true\n")
    pytester.runpytest("-s").stdout.fnmatch_lines(["*VERDICT {'total': 2, 'good': 2, 'bad': 0}*"])


def test_lenient_command_line_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_FIXTURE)
    result = pytester.runpytest("-s", "--snowplow-lenient")
    result.stdout.fnmatch_lines(["*VERDICT {'total': 2, 'good': 2, 'bad': 0}*"])


def test_factory_fixture_starts_extra_collectors_that_are_stopped(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import requests

        SEEN = []

        def test_factory(snowplow_collector_factory):
            tiny = snowplow_collector_factory(max_body_bytes=10)
            SEEN.append(tiny)
            url = tiny.endpoint + "/com.snowplowanalytics.snowplow/tp2"
            response = requests.post(url, data=b"x" * 100, timeout=5)
            assert response.status_code == 413

        def test_stopped_afterwards():
            assert not SEEN[0].running
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_plugin_is_registered_as_an_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--snowplow-iglu-dir*", "*--snowplow-lenient*"])


def test_fixture_is_available_in_this_repository(snowplow_collector: LocalCollector) -> None:
    import requests

    requests.post(snowplow_collector.url(TP2), json=body(page_view(), link_click()), timeout=5)
    assert snowplow_collector.wait_for(2)
    assert snowplow_collector.summary()["total"] == 2
