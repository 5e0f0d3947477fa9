"""A minimal counting collector for the benchmarks (standard library only).

One process, one thread, an asyncio event loop speaking HTTP/1.1 with keep-alive. It does
the least a collector must do to prove delivery: parse every request body as JSON and count
the event ids in it, per *tag*, with a duplicate check. It accepts:

* ``POST /r/<tag>/com.snowplowanalytics.snowplow/tp2``: Snowplow ``payload_data`` (``eid``);
* ``GET /r/<tag>/i?...&eid=...``: a Snowplow GET event;
* ``POST /r/<tag>/v1/batch``: a Segment batch (``messageId``), for the peer row.

The tag (any path segment) keeps the counts of separate benchmark runs apart, so a run that
is cut short cannot pollute the next one. Control endpoints (all ``GET``, JSON answers):

* ``/_bench/stats?tag=T``: counts of tag ``T`` and the collector's CPU time;
* ``/_bench/wait?tag=T&n=N&timeout=S``: answers once ``N`` unique ids of ``T`` arrived;
* ``/_bench/config?tag=T&delay=S``: delay every answer to tag ``T`` by ``S`` seconds;
* ``/_bench/forget?tag=T``: drop the state of ``T`` (frees its id set);
* ``/_bench/health``: liveness and CPU time.

Run: ``python bench_collector.py [--port 0]``; prints ``{"port": N, "pid": P}`` once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import signal
import sys
import time
import zlib
from typing import Any, Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 64 * 1024 * 1024
MAX_HEADER = 64 * 1024
TP2_SUFFIX = "/com.snowplowanalytics.snowplow/tp2"


class TagState:
    """Counts for one tag."""

    __slots__ = (
        "bad",
        "delay",
        "events",
        "first_at",
        "ids",
        "last_at",
        "requests",
        "waiters",
    )

    def __init__(self) -> None:
        self.events = 0
        self.ids: Set[bytes] = set()
        self.requests = 0
        self.bad = 0
        self.delay = 0.0
        self.first_at: Optional[float] = None
        self.last_at: Optional[float] = None
        self.waiters: List[Tuple[int, asyncio.Future[None]]] = []

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

    def add(self, ids: List[bytes]) -> None:
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
                for _, future in ready:
                    if not future.done():
                        future.set_result(None)


class Collector:
    """State shared by every connection."""

    def __init__(self) -> None:
        self.tags: Dict[str, TagState] = {}

    def tag(self, name: str) -> TagState:
        state = self.tags.get(name)
        if state is None:
            state = self.tags[name] = TagState()
        return state


ID_PATTERNS = {
    "tp2": re.compile(rb'"eid"\s*:\s*"([^"]*)"'),
    "segment": re.compile(rb'"messageId"\s*:\s*"([^"]*)"'),
}
#: Every this many requests of a tag (and its first), the body is parsed as JSON as well, and
#: the ids found must match the fast scan.
FULL_PARSE_EVERY = 50
#: Long-poll tasks in progress (the event loop keeps only weak references to tasks).
PENDING_TASKS: Set[asyncio.Future[None]] = set()


def _ids_from_json(kind: str, body: bytes) -> List[bytes]:
    document = json.loads(body)
    if kind == "tp2":
        return [str(event["eid"]).encode() for event in document["data"]]
    return [str(message["messageId"]).encode() for message in document["batch"]]


def _ids_from_body(kind: str, body: bytes, full_parse: bool) -> List[bytes]:
    """The event ids in a POST body.

    A regular expression finds them (a few times cheaper than ``json.loads``, which would
    make this collector the bottleneck at batch size 100); on sampled requests the body is
    also parsed as JSON and both answers must agree.
    """
    ids: List[bytes] = ID_PATTERNS[kind].findall(body)
    if full_parse and _ids_from_json(kind, body) != ids:
        raise ValueError("the id scan and the JSON parse disagree")
    if not ids:
        raise ValueError("no event in the body")
    return ids


def _response(status: str, body: bytes, *, close: bool = False) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode("latin-1") + b"\r\n" + body


OK = _response("200 OK", b"{}")


class HttpConnection(asyncio.Protocol):
    """One client connection: parses requests in order and answers each."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.buffer = bytearray()
        self.transport: Optional[asyncio.Transport] = None
        self.closing = False
        # Answers are written in request order; a delayed answer holds back later ones.
        self.answer_not_before = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while not self.closing:
            if not self._handle_one():
                break

    # -- parsing ---------------------------------------------------------------------

    def _handle_one(self) -> bool:
        """Handle one complete request from the buffer; False if more bytes are needed."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEADER:
                self._fail("431 Request Header Fields Too Large")
            return False
        head = bytes(self.buffer[:end]).decode("latin-1")
        lines = head.split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            self._fail("400 Bad Request")
            return False
        headers: Dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parsed = self._chunked_body(start)
            if parsed is None:
                return False
            body, consumed = parsed
        else:
            length = int(headers.get("content-length", "0") or 0)
            if length > MAX_BODY:
                self._fail("413 Payload Too Large")
                return False
            if len(self.buffer) - start < length:
                if headers.get("expect", "").lower() == "100-continue" and self.transport:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    headers.pop("expect")
                return False
            body = bytes(self.buffer[start : start + length])
            consumed = start + length
        del self.buffer[:consumed]
        encoding = headers.get("content-encoding", "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        self._dispatch(method, target, body, keep_alive)
        return True

    def _chunked_body(self, start: int) -> Optional[Tuple[bytes, int]]:
        body = bytearray()
        pos = start
        while True:
            line_end = self.buffer.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(self.buffer[pos:line_end]).split(b";")[0], 16)
            pos = line_end + 2
            if size == 0:
                trailer_end = self.buffer.find(b"\r\n\r\n", pos - 2)
                if trailer_end < 0:
                    return None
                return bytes(body), trailer_end + 4
            if len(self.buffer) < pos + size + 2:
                return None
            body += self.buffer[pos : pos + size]
            pos += size + 2

    def _fail(self, status: str) -> None:
        if self.transport is not None:
            self.transport.write(_response(status, b"{}", close=True))
            self.transport.close()
        self.closing = True

    # -- routing ---------------------------------------------------------------------

    def _dispatch(self, method: str, target: str, body: bytes, keep_alive: bool) -> None:
        url = urlsplit(target)
        path = url.path
        if path.startswith("/_bench/"):
            self._control(path[len("/_bench/") :], parse_qs(url.query), keep_alive)
            return
        if not path.startswith("/r/"):
            self._answer(_response("404 Not Found", b"{}"), 0.0, keep_alive)
            return
        tag_name, _, rest = path[3:].partition("/")
        state = self.collector.tag(tag_name)
        state.requests += 1
        rest = "/" + rest
        full_parse = state.requests % FULL_PARSE_EVERY == 1
        try:
            if method == "POST" and rest == TP2_SUFFIX:
                ids = _ids_from_body("tp2", body, full_parse)
            elif method == "POST" and rest == "/v1/batch":
                ids = _ids_from_body("segment", body, full_parse)
            elif method == "GET" and rest == "/i":
                ids = [parse_qs(url.query)["eid"][0].encode()]
            else:
                state.bad += 1
                self._answer(_response("404 Not Found", b"{}"), state.delay, keep_alive)
                return
        except (ValueError, KeyError, TypeError, OSError):
            state.bad += 1
            self._answer(_response("400 Bad Request", b"{}"), state.delay, keep_alive)
            return
        state.add(ids)
        self._answer(OK, state.delay, keep_alive)

    def _control(self, action: str, query: Dict[str, List[str]], keep_alive: bool) -> None:
        def arg(name: str, default: str = "") -> str:
            return query.get(name, [default])[0]

        def reply(document: Dict[str, Any]) -> None:
            document["collector_cpu_s"] = time.process_time()
            document["collector_pid"] = os.getpid()
            self._answer(_response("200 OK", json.dumps(document).encode()), 0.0, keep_alive)

        if action == "health":
            reply({"ok": True, "tags": len(self.collector.tags)})
        elif action == "stats":
            reply(self.collector.tag(arg("tag")).summary())
        elif action == "config":
            state = self.collector.tag(arg("tag"))
            state.delay = float(arg("delay", "0"))
            reply(state.summary())
        elif action == "forget":
            self.collector.tags.pop(arg("tag"), None)
            reply({"ok": True})
        elif action == "wait":
            state = self.collector.tag(arg("tag"))
            wanted = int(arg("n", "0"))
            timeout = float(arg("timeout", "60"))
            if len(state.ids) >= wanted:
                reply(state.summary())
                return
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            state.waiters.append((wanted, future))
            task = asyncio.ensure_future(self._wait_and_reply(state, future, timeout, reply))
            PENDING_TASKS.add(task)
            task.add_done_callback(PENDING_TASKS.discard)
        else:
            self._answer(_response("404 Not Found", b"{}"), 0.0, keep_alive)

    async def _wait_and_reply(
        self,
        state: TagState,
        future: asyncio.Future[None],
        timeout: float,
        reply: Any,
    ) -> None:
        try:
            await asyncio.wait_for(future, timeout)
            timed_out = False
        except asyncio.TimeoutError:
            timed_out = True
        summary = state.summary()
        summary["timed_out"] = timed_out
        reply(summary)

    def _answer(self, response: bytes, delay: float, keep_alive: bool) -> None:
        if not keep_alive:
            response = response.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
        loop = asyncio.get_running_loop()
        now = loop.time()
        when = max(now + delay, self.answer_not_before)
        self.answer_not_before = when
        if when <= now:
            self._write(response, keep_alive)
        else:
            loop.call_at(when, self._write, response, keep_alive)

    def _write(self, response: bytes, keep_alive: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(response)
        if not keep_alive:
            self.transport.close()
            self.closing = True


async def serve(host: str, port: int) -> None:
    collector = Collector()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpConnection(collector), host, port, backlog=1024, reuse_address=True
    )
    stop = loop.create_future()

    def on_signal(signum: int) -> None:
        # Logged so that a harness finding its collector gone can tell who stopped it.
        sys.stderr.write(f"bench_collector: stopped by signal {signum}\n")
        sys.stderr.flush()
        if not stop.done():
            stop.set_result(None)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    parent = os.getppid()

    async def watch_parent() -> None:
        # Exit with the harness, so a crashed run never leaves a collector behind.
        while os.getppid() == parent:
            await asyncio.sleep(0.5)
        sys.stderr.write("bench_collector: the harness is gone; stopping\n")
        if not stop.done():
            stop.set_result(None)

    watchdog = asyncio.ensure_future(watch_parent())
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(json.dumps({"port": bound, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    async with server:
        await stop
    watchdog.cancel()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Counting collector for the benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
