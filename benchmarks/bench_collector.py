"""The benchmarks' collector: the package's own ``LocalCollector`` (validation off), plus tags.

One process running ``snowplow_tracker.collector.LocalCollector(validate=False)`` (its asyncio
HTTP/1.1 keep-alive server, its request parsing, event extraction and storage), extended with
what the harness needs: every event is counted per *tag*, with a duplicate check. It accepts:

* ``POST /r/<tag>/com.snowplowanalytics.snowplow/tp2``: Snowplow ``payload_data`` (``eid``),
  handled by the collector exactly like ``POST /com.snowplowanalytics.snowplow/tp2``;
* ``GET /r/<tag>/i?...&eid=...``: a Snowplow GET event, handled like ``GET /i``;
* ``POST /r/<tag>/v1/batch``: a Segment batch (``messageId``), for the peer row (parsed here,
  the collector knows nothing of Segment).

The tag (any path segment) keeps the counts of separate benchmark runs apart, so a run that
is cut short cannot pollute the next one. Control endpoints (all ``GET``, JSON answers):

* ``/_bench/stats?tag=T``: counts of tag ``T`` and the collector's CPU time;
* ``/_bench/wait?tag=T&n=N&timeout=S``: answers once ``N`` unique ids of ``T`` arrived;
* ``/_bench/config?tag=T&delay=S``: delay every answer to tag ``T`` by ``S`` seconds;
* ``/_bench/forget?tag=T``: drop the state of ``T`` (frees its id set);
* ``/_bench/health``: liveness and CPU time.

The collector keeps only the last few thousand events and requests (nobody reads them here).

Run: ``python bench_collector.py [--port 0]``; prints ``{"port": N, "pid": P}`` once ready.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import sys
import threading
import time
import types
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple
from urllib.parse import parse_qs

REPO = Path(__file__).resolve().parents[1]
if "snowplow_tracker" not in sys.modules:
    # Only the collector subpackage is needed: register the package without running its
    # ``__init__`` (the tracker), so that work in progress on the tracker cannot stop the
    # benchmarks' collector from starting.
    _package = types.ModuleType("snowplow_tracker")
    _package.__path__ = [str(REPO / "snowplow_tracker")]
    sys.modules["snowplow_tracker"] = _package

from snowplow_tracker.collector import LocalCollector  # noqa: E402
from snowplow_tracker.collector.server_async import (  # noqa: E402
    AsyncHttpServer,
    _Connection,
    _Request,
)
from snowplow_tracker.collector.store import RequestRecord  # noqa: E402
from snowplow_tracker.collector.validation import RequestContext  # noqa: E402

MAX_BODY = 64 * 1024 * 1024
JSON_TYPE = "application/json"
TP2_SUFFIX = "/com.snowplowanalytics.snowplow/tp2"


class TagState:
    """Counts for one tag."""

    __slots__ = ("bad", "delay", "events", "first_at", "ids", "last_at", "requests", "waiters")

    def __init__(self) -> None:
        self.events = 0
        self.ids: Set[str] = set()
        self.requests = 0
        self.bad = 0
        self.delay = 0.0
        self.first_at: Optional[float] = None
        self.last_at: Optional[float] = None
        self.waiters: List[Tuple[int, Callable[[], None]]] = []

    def summary(self) -> Dict[str, Any]:
        return {
            "events": self.events,
            "unique": len(self.ids),
            "duplicates": self.events - len(self.ids),
            "requests": self.requests,
            "bad_requests": self.bad,
            "delay": self.delay,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }

    def add(self, ids: Sequence[str]) -> None:
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.events += len(ids)
        self.ids.update(ids)
        if self.waiters:
            unique = len(self.ids)
            ready = [w for w in self.waiters if w[0] <= unique]
            if ready:
                self.waiters = [w for w in self.waiters if w[0] > unique]
                for _, wake in ready:
                    wake()


class BenchCollector(LocalCollector):
    """``LocalCollector`` that remembers the events of the request it just ingested."""

    _connection_class = None  # set below, once BenchConnection exists

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            host,
            port,
            validate=False,
            max_body_bytes=MAX_BODY,
            max_events=5_000,
            max_requests=100,
            max_request_log_bytes=1024 * 1024,
            idle_timeout=3600.0,
            body_read_timeout=60.0,
        )
        self.tags: Dict[str, TagState] = {}
        self.last_received: Sequence[Mapping[str, Any]] = ()
        self.last_bad = False

    def tag(self, name: str) -> TagState:
        state = self.tags.get(name)
        if state is None:
            state = self.tags[name] = TagState()
        return state

    def _ingest(
        self,
        ctx: RequestContext,
        body: Optional[bytes],
        *,
        store: bool,
        entry: Optional[RequestRecord] = None,
    ) -> Sequence[Mapping[str, Any]]:
        bad_before = self._store.bad_received
        received = super()._ingest(ctx, body, store=store, entry=entry)
        self.last_received = received
        self.last_bad = self._store.bad_received != bad_before
        return received


def _segment_ids(body: bytes, encoding: str) -> List[str]:
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    return [str(message["messageId"]) for message in json.loads(body)["batch"]]


class BenchConnection(_Connection):
    """A collector connection that also serves ``/_bench/...`` and ``/r/<tag>/...``."""

    collector: BenchCollector

    def __init__(self, server: AsyncHttpServer) -> None:
        super().__init__(server)
        self.tag_state: Optional[TagState] = None

    # -- routing -----------------------------------------------------------------------

    def _dispatch(self, request: _Request, target: str) -> None:
        self.tag_state = None
        if target.startswith("/_bench/"):
            path, _, query = target.partition("?")
            self._control(path[len("/_bench/") :], parse_qs(query))
            return
        if not target.startswith("/r/"):
            super()._dispatch(request, target)
            return
        tag_name, _, rest = target[3:].partition("/")
        state = self.collector.tag(tag_name)
        state.requests += 1
        rest = "/" + rest
        path = rest.partition("?")[0]
        method = request.method
        if method == "POST" and path == "/v1/batch":
            encoding = (request.headers.get("Content-Encoding") or "").lower()
            self._read_body(None, lambda body: self._segment(state, body, encoding))
        elif (method == "POST" and path == TP2_SUFFIX) or (method == "GET" and path == "/i"):
            self.tag_state = state
            super()._dispatch(request, rest)  # the collector's own handling
        else:
            state.bad += 1
            self._later(state.delay, lambda: self._answer(404, b"{}", content_type=JSON_TYPE))

    def _answer_ok(self, request: _Request, ctx: RequestContext) -> None:
        state, self.tag_state = self.tag_state, None
        if state is None:
            super()._answer_ok(request, ctx)
            return
        collector = self.collector
        if collector.last_bad:
            state.bad += 1
        ids = [eid for eid in (e.get("eid") for e in collector.last_received) if eid]
        state.add([str(eid) for eid in ids])
        self._later(state.delay, lambda: super(BenchConnection, self)._answer_ok(request, ctx))

    def _segment(self, state: TagState, body: bytes, encoding: str) -> None:
        try:
            ids = _segment_ids(body, encoding)
        except (ValueError, KeyError, TypeError, OSError):
            state.bad += 1
            self._later(state.delay, lambda: self._answer(400, b"{}", content_type=JSON_TYPE))
            return
        state.add(ids)
        self._later(state.delay, lambda: self._answer(200, b"{}", content_type=JSON_TYPE))

    def _later(self, delay: float, answer: Callable[[], None]) -> None:
        """Answer now, or after ``delay`` seconds (later requests on the connection wait)."""
        if delay <= 0:
            answer()
            return

        def deferred() -> None:
            self.delay_handle = None
            if self.transport is None or self.transport.is_closing():
                return
            answer()
            self._resume()

        self.delay_handle = self.loop.call_later(delay, deferred)

    def _resume(self) -> None:
        if self.buf:
            self._process()

    # -- control endpoints -------------------------------------------------------------

    def _reply(self, document: Dict[str, Any]) -> None:
        document["collector_cpu_s"] = time.process_time()
        document["collector_pid"] = os.getpid()
        self._answer(200, json.dumps(document).encode(), content_type=JSON_TYPE)

    def _control(self, action: str, query: Dict[str, List[str]]) -> None:
        def arg(name: str, default: str = "") -> str:
            return query.get(name, [default])[0]

        collector = self.collector
        if action == "health":
            self._reply({"ok": True, "tags": len(collector.tags)})
        elif action == "stats":
            self._reply(collector.tag(arg("tag")).summary())
        elif action == "config":
            state = collector.tag(arg("tag"))
            state.delay = float(arg("delay", "0"))
            self._reply(state.summary())
        elif action == "forget":
            collector.tags.pop(arg("tag"), None)
            self._reply({"ok": True})
        elif action == "wait":
            self._wait(collector.tag(arg("tag")), int(arg("n", "0")), float(arg("timeout", "60")))
        else:
            self._answer(404, b"{}", content_type=JSON_TYPE)

    def _wait(self, state: TagState, wanted: int, timeout: float) -> None:
        """Long poll: answer once ``wanted`` unique ids arrived, or after ``timeout``."""
        if len(state.ids) >= wanted:
            self._reply(state.summary())
            return
        answered = False

        def answer(timed_out: bool) -> None:
            nonlocal answered
            if answered:
                return
            answered = True
            timer.cancel()
            if self.transport is None or self.transport.is_closing():
                return
            summary = state.summary()
            summary["timed_out"] = timed_out
            self._reply(summary)
            self._resume()

        timer = self.loop.call_later(timeout, lambda: answer(True))
        state.waiters.append((wanted, lambda: answer(False)))


BenchCollector._connection_class = BenchConnection


def serve(host: str, port: int) -> int:
    collector = BenchCollector(host, port)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        # Logged so that a harness finding its collector gone can tell who stopped it.
        sys.stderr.write(f"bench_collector: stopped by signal {signum}\n")
        sys.stderr.flush()
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    collector.start()
    sys.stdout.write(json.dumps({"port": collector.port, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    parent = os.getppid()
    while not stop.wait(0.5):
        # Exit with the harness, so a crashed run never leaves a collector behind.
        if os.getppid() != parent:
            sys.stderr.write("bench_collector: the harness is gone; stopping\n")
            break
    collector.stop()
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Counting collector for the benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    return serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
