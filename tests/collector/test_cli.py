"""The command line: ``python -m snowplow_tracker.collector`` as a real subprocess."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Iterator, List

import pytest
import requests

from .helpers import TP2, body, link_click, page_view

ENDPOINT = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


class Cli:
    """A running collector subprocess whose stdout lines are collected by a reader thread."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "snowplow_tracker.collector", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, pattern: str, timeout: float = 10.0) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s") from None
            if re.search(pattern, line):
                return line

    def stop(self, signum: int = signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=5)
        finally:
            self._reader.join(2)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def cli_factory() -> Iterator[List[Cli]]:
    started: List[Cli] = []
    yield started
    for cli in started:
        cli.kill()


def start(cli_factory: List[Cli], *args: str) -> tuple[Cli, str]:
    cli = Cli(*args)
    cli_factory.append(cli)
    match = ENDPOINT.search(cli.next_line("listening on"))
    assert match is not None
    return cli, match.group(1)


def test_cli_prints_one_line_per_event_and_stops_on_sigint(
    cli_factory: List[Cli], shared_iglu_dir: Path
) -> None:
    cli, endpoint = start(cli_factory, "--iglu-dir", str(shared_iglu_dir))
    with requests.Session() as http:
        assert (
            http.get(endpoint + "/i", params=page_view(aid="cli-get"), timeout=5).status_code == 200
        )
        line = cli.next_line("page_view")
        assert line.startswith("GOOD page_view iglu:com.snowplowanalytics.snowplow/page_view/")
        assert "app_id=cli-get" in line and "valid" in line
        events = [link_click(aid="cli-post"), page_view(aid="cli-bad", eid="nope")]
        assert http.post(endpoint + TP2, json=body(*events), timeout=5).text == "ok"
        good = cli.next_line("cli-post")
        assert good.startswith("GOOD unstruct iglu:com.snowplowanalytics.snowplow/link_click/")
        bad = cli.next_line("cli-bad")
        assert bad.startswith("BAD ") and "invalid: field 'eid' is not a valid UUID" in bad
        assert http.get(endpoint + "/micro/all", timeout=5).json() == {
            "total": 3,
            "good": 2,
            "bad": 1,
        }
    assert cli.stop(signal.SIGINT) == 0
    cli.next_line("Stopped: 2 good, 1 bad")


def test_cli_stops_cleanly_on_sigterm_and_reports_unknown_schemas(cli_factory: List[Cli]) -> None:
    cli, endpoint = start(cli_factory)
    cli.next_line("Iglu schemas: none")
    requests.get(endpoint + "/i", params=link_click(aid="unknown-schema"), timeout=5)
    line = cli.next_line("unknown-schema")
    assert "not found" in line and line.startswith("BAD ")
    assert cli.stop(signal.SIGTERM) == 0


def test_cli_lenient_mode_accepts_unknown_schemas(cli_factory: List[Cli]) -> None:
    cli, endpoint = start(cli_factory, "--lenient")
    requests.get(endpoint + "/i", params=link_click(aid="lenient-app"), timeout=5)
    line = cli.next_line("app_id=lenient-app")
    assert line.startswith("GOOD ") and "accepted (lenient mode)" in line
    assert cli.stop() == 0


def test_cli_reports_a_busy_port(cli_factory: List[Cli]) -> None:
    _, endpoint = start(cli_factory)
    port = endpoint.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "snowplow_tracker.collector", "--port", port],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "cannot listen" in result.stderr
