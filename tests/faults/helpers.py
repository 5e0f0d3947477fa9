"""Helpers shared by the fault tests: events, emitters, collector queries, subprocesses."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Set

from snowplow_tracker.collector import LocalCollector
from snowplow_tracker.emitters import AsyncEmitter, Emitter
from snowplow_tracker.retry import RetryPolicy
from tests.support.payloads import event

REPO_ROOT = Path(__file__).resolve().parents[2]

#: A short backoff so retries happen within the test's time.
FAST_RETRY = RetryPolicy(max_delay=0.2)


def make_emitter(kind: str, endpoint: str, **kwargs: Any) -> Emitter:
    """An ``Emitter`` or ``AsyncEmitter`` (by name) with the test defaults.

    ``thread_count`` is ignored for ``Emitter``.
    """
    kwargs.setdefault("retry_policy", FAST_RETRY)
    if kind == "AsyncEmitter":
        return AsyncEmitter(endpoint, **kwargs)
    kwargs.pop("thread_count", None)
    return Emitter(endpoint, **kwargs)


def track(emitter: Emitter, count: int, **extra: Any) -> List[str]:
    """Track ``count`` events; return their ids in order."""
    ids = []
    for _ in range(count):
        payload = event(**extra)
        ids.append(payload["eid"])
        emitter.input(payload)
    return ids


def delivered_ids(collector: LocalCollector) -> List[str]:
    """Ids of the events the collector stored as good, arrival order, duplicates kept."""
    return [good["event"]["event_id"] for good in collector.good()]


def duplicates(ids: Iterable[str]) -> Set[str]:
    """Ids that occur more than once."""
    return {key for key, count in Counter(ids).items() if count > 1}


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def deliver_all(
    emitter: Emitter, collector: LocalCollector, expected: Iterable[str], timeout: float = 15.0
) -> bool:
    """Flush until the collector holds every expected id as good (or ``timeout``).

    The collector stores a request's events before the emitter reads the answer, so once
    they are all there this also waits (briefly) for the emitter to account for the last
    answers: its ``stats()`` are final when this returns True.
    """
    wanted = set(expected)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if wanted <= set(delivered_ids(collector)):
            wait_until(lambda: emitter.stats().pending == 0, timeout=5)
            return True
        emitter.force_flush(timeout=min(2.0, max(0.1, deadline - time.monotonic())))
        time.sleep(0.02)
    return wanted <= set(delivered_ids(collector))


def free_port() -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def blackhole() -> socket.socket:
    """A listening socket that never accepts: connections succeed, requests never answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def post_ids(request: Dict[str, Any]) -> List[str]:
    """Event ids in a logged POST request's body (empty if it has none)."""
    body = request.get("body")
    if not body:
        return []
    try:
        return [item["eid"] for item in json.loads(body)["data"]]
    except (ValueError, KeyError, TypeError):
        return []


def write_script(directory: Path, name: str, source: str) -> Path:
    """Write a child script (dedented) to ``directory``; return its path."""
    path = directory / name
    path.write_text(textwrap.dedent(source))
    return path


class Child:
    """A child Python process whose stdout lines are read by a thread (reads never hang)."""

    def __init__(self, script: Path, *args: str) -> None:
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            cwd=str(script.parent),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[Optional[str]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def line(self, prefix: str, timeout: float = 15.0) -> Optional[str]:
        """The rest of the next stdout line starting with ``prefix`` (None: EOF or timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if line is None:
                return None
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    def wait(self, timeout: float = 15.0) -> int:
        """Wait for the exit (killing the child if it takes longer); return the exit code."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise

    def stderr(self) -> str:
        """What the child wrote to stderr (call after it exited)."""
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
