"""Every program in examples/ runs, stops by itself, and gets its events to a collector.

Each example is run as its own process, with this interpreter, from the repository root
(as the README and the docs tell users to run them). Each one prints a JSON summary of
what its local collector received as its last line; the tests check that summary.
Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"
TIMEOUT = 90


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    # Loopback only: never route the examples' requests through a proxy.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env.pop("PYTEST_ADDOPTS", None)
    return env


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, (
        f"{' '.join(args)} exited with {completed.returncode}\n"
        f"stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}"
    )
    return completed


def run_example(name: str) -> Dict[str, Any]:
    """Run examples/<name> and return the JSON object on its last output line."""
    completed = _run(str(EXAMPLES / name))
    lines = completed.stdout.strip().splitlines()
    assert lines, f"{name} printed nothing; stderr:\n{completed.stderr[-3000:]}"
    result: Dict[str, Any] = json.loads(lines[-1])
    assert result["example"] == Path(name).stem
    return result


def test_every_example_is_tested() -> None:
    tested = {
        "quickstart.py",
        "manual_setup.py",
        "multiple_emitters.py",
        "custom_emitter.py",
        "durable_store.py",
        "wsgi_app.py",
        "fault_injection.py",
        "cli_exit_drain.py",
        "prefork.py",
        "test_with_fixture.py",
    }
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


def test_quickstart() -> None:
    result = run_example("quickstart.py")
    assert (result["total"], result["good"], result["bad"]) == (4, 3, 1)
    assert result["event_types"] == ["page_view", "struct", "unstruct"]
    assert result["arrived_event_ids"] == result["tracked_event_ids"]


def test_quickstart_output_is_readable() -> None:
    """The README's first command: what a newcomer sees."""
    completed = _run(str(EXAMPLES / "quickstart.py"))
    assert "Local collector listening on http://127.0.0.1:" in completed.stdout
    assert "Arrived: {'total': 4, 'good': 3, 'bad': 1}" in completed.stdout
    assert "0 is less than the minimum of 1" in completed.stdout
    assert completed.stderr == ""


def test_manual_setup() -> None:
    result = run_example("manual_setup.py")
    assert (result["good"], result["bad"]) == (4, 0)
    assert result["user_ids"] == ["user-42", "user-42", "guest-7", "user-42"]
    assert [ts is not None for ts in result["true_timestamps"]] == [False, False, True, False]
    # batch_size=3: one request for the first three events, one for the flushed fourth.
    assert result["requests"] == 2
    assert result["on_success_events"] == 4
    assert result["report"] == {"sent": 1, "pending": 0, "complete": True}
    assert result["stats"] == {"accepted": 4, "sent": 4, "requests": 2}


def test_multiple_emitters() -> None:
    result = run_example("multiple_emitters.py")
    tracked = result["tracked_event_ids"]
    assert len(tracked) == 3
    for name in ("primary", "audit"):
        assert (result[name]["good"], result[name]["bad"]) == (3, 0)
        assert result[name]["event_ids"] == tracked
    post = ["POST", "/com.snowplowanalytics.snowplow/tp2"]
    assert result["primary"]["requests"] == [post]
    assert result["audit"]["requests"] == [["GET", "/i"]] * 3


def test_custom_emitter() -> None:
    result = run_example("custom_emitter.py")
    assert (result["good"], result["bad"]) == (2, 0)
    assert len(result["recorded_event_ids"]) == 2
    assert result["arrived_event_ids"] == result["recorded_event_ids"]
    assert result["signature_valid"] is True


def test_durable_store_survives_a_crash() -> None:
    result = run_example("durable_store.py")
    assert result["first_exit_code"] == 1  # died through os._exit(1)
    assert result["arrived_before_restart"] == 0
    assert result["found_after_restart"] == 5
    assert result["sent_after_restart"] == 5
    assert result["left_in_store"] == 0
    assert (result["good"], result["bad"]) == (5, 0)
    assert result["arrived_event_ids"] == result["tracked_event_ids"]


def test_wsgi_app_has_a_subject_per_request() -> None:
    result = run_example("wsgi_app.py")
    assert (result["good"], result["bad"]) == (4, 0)
    events: List[Dict[str, str]] = result["events"]
    assert [e["user_id"] for e in events] == ["alice", "bob", "carol", "alice"]
    assert all(e["useragent"] == f"demo-browser/{e['user_id']}" for e in events)
    assert [e["page_url"].split("/", 3)[3] for e in events] == ["", "pricing", "docs?page=2", ""]
    assert result["platforms"] == ["web"]


def test_fault_injection() -> None:
    result = run_example("fault_injection.py")
    assert (result["good"], result["bad"]) == (2, 0)
    assert result["statuses"] == [503, 200, 400, 500, 500]
    assert result["retried_after_seconds"] >= 0.9  # Retry-After: 1 was honoured
    assert result["first"] == {"sent": 2, "failed": 2, "retried": 2}
    assert result["capped"] == {"sent": 0, "failed": 1, "retried": 1}
    assert result["callbacks"][:2] == ["on_failure: 0 delivered, 2 not", "on_success: 2 delivered"]


def test_cli_exit_drain() -> None:
    result = run_example("cli_exit_drain.py")
    assert result["exit_code"] == 0
    assert len(result["tracked_event_ids"]) == 20
    assert result["arrived_event_ids"] == result["tracked_event_ids"]
    assert (result["good"], result["bad"]) == (20, 0)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs os.fork()")
def test_prefork() -> None:
    result = run_example("prefork.py")
    assert (result["good"], result["bad"]) == (11, 0)
    assert (result["from_master"], result["from_workers"]) == (2, 9)
    assert result["duplicate_event_ids"] == []
    assert result["worker_exit_codes"] == [0, 0, 0]


def test_pytest_fixture_example() -> None:
    completed = _run(
        "-m",
        "pytest",
        str(EXAMPLES / "test_with_fixture.py"),
        "-q",
        "-p",
        "no:cacheprovider",
    )
    assert "3 passed" in completed.stdout, completed.stdout[-3000:]
