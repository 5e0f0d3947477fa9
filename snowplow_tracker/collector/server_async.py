"""The HTTP/1.1 core of the local collector: one asyncio event loop in a background thread.

Every connection is an ``asyncio.Protocol`` with a small incremental parser (request line,
headers, ``Content-Length`` or chunked bodies; pipelined requests are answered in order).
A request that arrived whole is handled synchronously in ``data_received`` without any task
or timer. Slow clients only hold their own connection: body reads are bounded by
``body_read_timeout`` (then 408), idle keep-alive connections by ``idle_timeout``, and
injected delays are loop timers, so nothing blocks the other connections.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
)
from urllib.parse import urlsplit

from .._version import __version__
from .faults import NO_FAULT, FaultDecision
from .micro_api import handle_micro
from .protocol import ANONYMOUS_NUID, TP2_PATH, ProtocolError, decode_query, short_repr
from .store import RequestRecord
from .validation import RequestContext

if TYPE_CHECKING:  # pragma: no cover
    from .server import LocalCollector

__all__ = ["PIXEL_GIF", "AsyncHttpServer"]

logger = logging.getLogger("snowplow_tracker.collector.server")

SERVER_VERSION = "snowplow-tracker-local-collector/" + __version__
_TEXT = "text/plain; charset=utf-8"
_DRAIN_CAP = 64 * 1024 * 1024
_MAX_REQUEST_LINE = 65536
_MAX_HEAD = 256 * 1024
_MAX_HEADERS = 100
_READ_BUFFER = 128 * 1024  # bytes read from a connection at most at once
_METHODS = frozenset(("GET", "HEAD", "POST", "OPTIONS", "PUT", "DELETE"))
_LINGER_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"
_NO_CACHE = ("Cache-Control", "no-cache, no-store, must-revalidate")
_TP2 = ("com.snowplowanalytics.snowplow", "tp2")

# States of a connection.
_HEAD, _BODY, _CHUNKED, _DRAIN, _WAIT, _CLOSED = range(6)

#: A transparent 1x1 GIF89a (43 bytes): header, screen descriptor with a 2-colour table,
#: graphic control extension marking colour 0 transparent, one-pixel image, trailer.
PIXEL_GIF = (
    b"GIF89a"
    + b"\x01\x00\x01\x00\x80\x00\x00"
    + b"\x00\x00\x00\xff\xff\xff"
    + b"\x21\xf9\x04\x01\x00\x00\x00\x00"
    + b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00"
    + b"\x02\x02\x44\x01\x00"
    + b"\x3b"
)

_date_cache: List[Any] = [0, ""]


def _http_date() -> str:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = formatdate(now, usegmt=True)
    return str(_date_cache[1])


_REASONS = {int(status): status.phrase for status in HTTPStatus}
_random_bits = random.Random().getrandbits  # network user ids: no syscall per request
_expiry_cache: List[Any] = [0, ""]


def _reason(status: int) -> str:
    return _REASONS.get(status, "Status")


def _cookie_expiry() -> str:
    now = int(time.time())
    if _expiry_cache[0] != now:
        _expiry_cache[0] = now
        _expiry_cache[1] = formatdate(now + 365 * 24 * 3600, usegmt=True)
    return str(_expiry_cache[1])


class Headers:
    """Request headers in arrival order, with case-insensitive lookups (first value wins)."""

    __slots__ = ("_first", "_items")

    def __init__(self, items: List[Tuple[str, str]]) -> None:
        self._items = items
        first: Dict[str, str] = {}
        for name, value in items:
            first.setdefault(name.lower(), value)
        self._first = first

    @classmethod
    def from_parsed(cls, items: List[Tuple[str, str]], first: Dict[str, str]) -> Headers:
        """Headers from pairs and the matching lower-case-name -> first-value dict."""
        headers: Headers = object.__new__(cls)
        headers._items = items
        headers._first = first
        return headers

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value of header ``name`` (any case)."""
        return self._first.get(name.lower(), default)

    def get_all(self, name: str) -> List[str]:
        """Every value of header ``name``."""
        lowered = name.lower()
        return [value for key, value in self._items if key.lower() == lowered]

    def items(self) -> List[Tuple[str, str]]:
        """``(name, value)`` pairs in arrival order."""
        return list(self._items)


class _Request:
    __slots__ = ("close", "head", "headers", "method", "path", "query", "request_line")

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: Headers,
        request_line: str,
        close: bool,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.request_line = request_line
        self.close = close
        self.head = method == "HEAD"


class _Connection(asyncio.BufferedProtocol):
    """One client connection: incremental HTTP/1.1 parsing and the collector's routes.

    A buffered protocol: the transport reads into one buffer per connection, so that no
    large receive buffer is allocated (and, being large, mapped and unmapped by the C
    allocator) for every read.
    """

    def __init__(self, server: AsyncHttpServer) -> None:
        self.server = server
        self.collector = server.collector
        self.loop = server.loop
        self.transport: Optional[asyncio.Transport] = None
        self.client = ("", 0)
        self.buf = b""
        self.pending: List[bytes] = []  # body pieces not yet joined into ``buf``
        self.pending_len = 0
        self.state = _HEAD
        self.request: Optional[_Request] = None
        self.entry: Optional[RequestRecord] = None
        self.body_unread = False
        self.on_body: Optional[Callable[[bytes], None]] = None
        self.expected = 0  # body bytes (Content-Length) or bytes left to drain
        self.deadline = 0.0
        self.timer: Optional[asyncio.TimerHandle] = None
        self.delay_handle: Optional[asyncio.TimerHandle] = None
        self.paused = False
        self.eof = False
        self.logged_entry: Optional[RequestRecord] = None
        self.read_view = memoryview(bytearray(_READ_BUFFER))

    # -- plumbing ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.client = (str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.server.connections.add(self)
        self._arm(self.collector.idle_timeout)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        state = self.state
        self.state = _CLOSED
        self.server.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.delay_handle is not None:
            self.delay_handle.cancel()
            self.delay_handle = None
        if state in (_BODY, _CHUNKED) and self.entry is not None:
            if state == _BODY:
                got = len(self.buf) + self.pending_len
                reason = f"client closed the connection after {got} of {self.expected} body bytes"
            else:
                reason = "client closed the connection mid-body"
            self._fail_read(None, reason)

    def _arm(self, seconds: float) -> None:
        """(Re)set the deadline of the current state; one lazily moved timer per connection."""
        self.deadline = deadline = self.loop.time() + seconds
        timer = self.timer
        if timer is not None:
            if timer.when() <= deadline:
                return  # it fires first and moves itself to the new deadline
            timer.cancel()
        self.timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.state in (_CLOSED, _WAIT):
            return
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._on_timer)
            return
        if self.state in (_BODY, _CHUNKED):
            if self.state == _BODY:
                got = len(self.buf) + self.pending_len
                reason = (
                    f"timed out reading the request body: got {got} of {self.expected} bytes "
                    f"in {self.collector.body_read_timeout:g} s"
                )
            else:
                reason = "timed out reading the chunked request body"
            self._fail_read(408, reason)
            return
        self._close()  # idle keep-alive connection, stalled headers or an unfinished drain

    def _close(self) -> None:
        if self.state != _CLOSED and self.transport is not None:
            self.state = _CLOSED
            self.transport.close()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and self.state != _CLOSED:
            self.transport.write(data)

    def respond(
        self,
        status: int,
        body: bytes = b"",
        content_type: Optional[str] = _TEXT,
        headers: Sequence[Tuple[str, str]] = (),
        *,
        close: bool = False,
        keep_open: bool = False,
    ) -> None:
        """Send a whole response in one write (always with Content-Length)."""
        request = self.request
        head = request.head if request is not None else False
        parts = [
            f"HTTP/1.1 {status} {_reason(status)}\r\nServer: {SERVER_VERSION}\r\n"
            f"Date: {_http_date()}\r\n"
        ]
        if content_type is not None:
            parts.append(f"Content-Type: {content_type}\r\n")
        parts.append(f"Content-Length: {len(body)}\r\n")
        for name, value in headers:
            parts.append(f"{name}: {value}\r\n")
        if close or self.body_unread or request is None or request.close:
            close = True
            parts.append("Connection: close\r\n")
        parts.append("\r\n")
        data = "".join(parts).encode("latin-1", "replace")
        self._write(data if head else data + body)
        if request is not None and logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s - %r %s %s", self.client[0], request.request_line, status, len(body))
        if close and not keep_open:
            self._close()

    def send_error(self, code: int, message: Optional[str] = None) -> None:
        """Short plain-text error, then close the connection."""
        text = f"{code} {message or _reason(code)}\n"
        self.respond(code, text.encode("utf-8", "replace"), close=True)

    # -- parsing ----------------------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.read_view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        if self.state == _CLOSED:
            return
        if self.state == _BODY and len(self.buf) + self.pending_len + len(data) < self.expected:
            self.pending.append(data)  # a large body: join once when complete
            self.pending_len += len(data)
            return
        if self.pending:
            data = b"".join([self.buf, *self.pending, data])
            self.pending = []
            self.pending_len = 0
            self.buf = data
        else:
            self.buf += data
        self._process()

    def eof_received(self) -> Optional[bool]:
        if self.state == _WAIT:  # a delayed answer is pending: send it, then close
            self.eof = True
            return True
        return None  # close our side too (connection_lost reports a truncated body)

    def _process(self) -> None:
        while True:
            state = self.state
            if state == _HEAD:
                if not self.buf or not self._parse_head():
                    return
            elif state == _BODY:
                if len(self.buf) < self.expected:
                    return
                buf, length = self.buf, self.expected
                body, self.buf = buf[:length], buf[length:]
                self._body_done(body)
            elif state == _CHUNKED:
                if not self._parse_chunked():
                    return
            elif state == _DRAIN:
                take = min(self.expected, len(self.buf))
                self.buf = self.buf[take:]
                self.expected -= take
                if self.expected <= 0:
                    self._close()
                return
            else:  # _WAIT (a delayed request) or _CLOSED
                transport = self.transport
                if state == _WAIT and len(self.buf) > _MAX_HEAD and transport is not None:
                    transport.pause_reading()
                    self.paused = True
                return

    def _body_done(self, body: bytes) -> None:
        self.state = _WAIT
        callback = self.on_body
        self.on_body = None
        assert callback is not None
        callback(body)

    def _parse_head(self) -> bool:
        """Parse one request head from the buffer and route it; False when more is needed."""
        buf = self.buf
        if buf[:1] in (b"\r", b"\n"):  # blank lines between requests
            buf = self.buf = buf.lstrip(b"\r\n")
        end = buf.find(b"\r\n\r\n")
        skip = 4
        if end < 0 or buf.find(b"\n\n", 0, end) >= 0:
            bare = buf.find(b"\n\n")
            if bare >= 0 and (end < 0 or bare < end):
                end, skip = bare, 2
        if end < 0:
            line_end = buf.find(b"\n")
            if (line_end < 0 and len(buf) > _MAX_REQUEST_LINE) or line_end > _MAX_REQUEST_LINE:
                self.request = None
                self.send_error(414)
            elif len(buf) > _MAX_HEAD:
                self.request = None
                self.send_error(431)
            return False
        head = buf[:end].decode("latin-1")
        self.buf = buf[end + skip :]
        lines = (
            [line.rstrip("\r") for line in head.split("\n")] if skip == 2 else head.split("\r\n")
        )
        request_line = lines[0]
        if len(request_line) > _MAX_REQUEST_LINE:
            self.request = None
            self.send_error(414)
            return False
        self.request = None
        words = request_line.split()
        if not words:
            self._close()
            return False
        version = "HTTP/0.9"
        if len(words) == 3 and words[2] == "HTTP/1.1":
            version = "HTTP/1.1"
        elif len(words) >= 3:
            version = words[-1]
            try:
                if not version.startswith("HTTP/"):
                    raise ValueError(version)
                major_minor = version.split("/", 1)[1].split(".")
                if len(major_minor) != 2:
                    raise ValueError(version)
                number = (int(major_minor[0]), int(major_minor[1]))
            except (ValueError, IndexError):
                self.send_error(400, f"Bad request version ({version!r})")
                return False
            if number >= (2, 0):
                self.send_error(505, f"Invalid HTTP version ({version})")
                return False
        if len(words) != 3:
            self.send_error(400, f"Bad request syntax ({request_line!r})")
            return False
        method, target = words[0], words[1]
        items: List[Tuple[str, str]] = []
        first: Dict[str, str] = {}
        folded = False
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and items:
                name, value = items[-1]
                items[-1] = (name, (value + " " + line.strip()).strip())
                folded = True
                continue
            name, sep, value = line.partition(":")
            if sep:
                name, value = name.strip(), value.strip()
                items.append((name, value))
                lowered = name.lower()
                if lowered not in first:
                    first[lowered] = value
        if len(items) > _MAX_HEADERS:
            self.send_error(431, "Too many headers")
            return False
        headers = Headers(items) if folded else Headers.from_parsed(items, first)
        connection = (headers.get("Connection") or "").lower()
        keep_alive = version == "HTTP/1.1" or "keep-alive" in connection
        close = "close" in connection or not keep_alive
        if target.startswith("//"):
            target = "/" + target.lstrip("/")
        request = _Request(method, "", "", headers, request_line, close)
        self.request = request
        encoding = headers.get("Transfer-Encoding")
        length = headers.get("Content-Length")
        self.body_unread = encoding is not None or (
            length is not None and length.strip() not in ("", "0")
        )
        if method not in _METHODS:
            self.send_error(501, f"Unsupported method ({method!r})")
            return False
        self.state = _WAIT
        self._dispatch(request, target)
        return self.state in (_HEAD, _BODY, _CHUNKED, _DRAIN)

    def _finish(self) -> None:
        """The current request is answered: wait for the next one (unless closing)."""
        if self.state == _CLOSED:
            return
        if self.eof:
            self._close()
            return
        self.state = _HEAD
        self.request = None
        self.entry = None
        if self.paused and self.transport is not None:
            self.transport.resume_reading()
            self.paused = False
        self._arm(self.collector.idle_timeout)

    # -- bodies -----------------------------------------------------------------------------

    def _read_body(self, entry: Optional[RequestRecord], then: Callable[[bytes], None]) -> None:
        """Read the request body, then call ``then(body)`` (maybe later, maybe never)."""
        request = self.request
        assert request is not None
        self.body_unread = False
        self.entry = entry
        self.on_body = then
        limit = self.collector.max_body_bytes
        encoding = request.headers.get("Transfer-Encoding")
        if encoding is not None and "chunked" in encoding.lower():
            self.expected = 0
            self.state = _CHUNKED
            self._continue_expected(request)
            self._arm(self.collector.body_read_timeout)
            return
        declared = request.headers.get("Content-Length")
        if declared is None:
            self._body_done(b"")
            return
        try:
            length = int(declared.strip())
            if length < 0:
                raise ValueError(declared)
        except ValueError:
            self._fail_read(400, f"invalid Content-Length {short_repr(declared)}")
            return
        if length > limit:
            self._reject_oversized(length, limit, drain=length)
            return
        self.expected = length
        buf = self.buf
        if len(buf) >= length:
            body, self.buf = buf[:length], buf[length:]
            self._body_done(body)
            return
        self.state = _BODY
        self._continue_expected(request)
        self._arm(self.collector.body_read_timeout)

    def _continue_expected(self, request: _Request) -> None:
        expect = request.headers.get("Expect")
        if expect is not None and expect.lower() == "100-continue" and not self.buf:
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _parse_chunked(self) -> bool:
        """Parse the whole chunked body from the buffer when it is complete."""
        buf = self.buf
        pos = 0
        total = 0
        limit = self.collector.max_body_bytes
        chunks: List[bytes] = []
        while True:
            line_end = buf.find(b"\n", pos)
            if line_end < 0:
                if len(buf) - pos > 1024:
                    self._fail_read(400, "malformed chunked body")
                return False
            try:
                size = int(buf[pos:line_end].split(b";", 1)[0].strip(), 16)
                if size < 0:
                    raise ValueError(size)
            except ValueError:
                self._fail_read(400, "malformed chunked body")
                return False
            pos = line_end + 1
            if size == 0:
                while True:  # trailers up to the blank line
                    line_end = buf.find(b"\n", pos)
                    if line_end < 0:
                        return False
                    line = buf[pos : line_end + 1]
                    pos = line_end + 1
                    if line in (b"\r\n", b"\n"):
                        break
                self.buf = buf[pos:]
                self._body_done(b"".join(chunks))
                return True
            total += size
            if total > limit:
                self._reject_oversized(total, limit, drain=0)
                return False
            if len(buf) < pos + size + 2:
                return False
            chunks.append(buf[pos : pos + size])
            pos += size + 2

    def _fail_read(self, status: Optional[int], reason: str) -> None:
        entry = self.entry
        self.on_body = None
        if entry is not None:
            entry.status = status
            entry.error = reason
            self._log(entry)
        self.entry = None
        if status is not None and self.state != _CLOSED:
            self.state = _WAIT
            self.respond(status, (reason + "\n").encode("utf-8"), close=True)
        else:
            self._close()

    def _reject_oversized(self, size: int, limit: int, *, drain: int) -> None:
        request = self.request
        assert request is not None
        entry = self.entry
        self.on_body = None
        reason = f"request body of {size} bytes is over the limit of {limit} bytes"
        if entry is not None:
            entry.status = 413
            entry.error = reason
            self._log(entry)
            self.collector._store_size_violation(
                self._context(entry), request.request_line, size, limit
            )
        self.entry = None
        self.body_unread = False
        amount = min(drain, _DRAIN_CAP)
        # Drain what the client still sends (bounded), so that it reads the answer; then close.
        self.respond(
            413, f"Payload Too Large: {reason}\n".encode(), close=True, keep_open=amount > 0
        )
        if amount > 0 and self.state != _CLOSED:
            self.state = _DRAIN
            self.expected = amount
            self._arm(self.collector.body_read_timeout)

    # -- routing ----------------------------------------------------------------------------

    def _cors(self) -> List[Tuple[str, str]]:
        assert self.request is not None
        origin = self.request.headers.get("Origin")
        return [
            ("Access-Control-Allow-Origin", origin if origin else "*"),
            ("Access-Control-Allow-Credentials", "true"),
        ]

    def _answer(self, status: int, body: bytes = b"", **kwargs: Any) -> None:
        self.respond(status, body, **kwargs)
        self._finish()

    def _dispatch(self, request: _Request, target: str) -> None:
        method = request.method
        if target == TP2_PATH and method in ("POST", "GET", "HEAD"):
            request.path = target
            self._track(request, _TP2)
            return
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        path, _, query = target.partition("?")
        path = path.split("#", 1)[0] or "/"
        request.path, request.query = path, query
        if method == "OPTIONS":
            self._answer(
                200,
                content_type=None,
                headers=[
                    *self._cors(),
                    ("Access-Control-Allow-Headers", "Content-Type, SP-Anonymous"),
                    ("Access-Control-Max-Age", "3600"),
                ],
            )
            return
        get_or_head = method in ("GET", "HEAD")
        if path in ("/health", "/sink-health") and get_or_head:
            self._answer(200, b"ok")
            return
        if path == "/robots.txt" and get_or_head:
            self._answer(200, b"User-agent: *\nDisallow: /\n")
            return
        if path == "/micro" or path.startswith("/micro/"):
            self._micro(request)
            return
        if path in ("/i", "/ice.png"):
            if get_or_head:
                self._track(request, ("com.snowplowanalytics.snowplow", "tp1"))
            else:
                self._answer(404, b"not found\n")
            return
        segments = path.strip("/").split("/")
        if len(segments) == 2 and all(segments) and not path.startswith("//"):
            vendor, version = segments
            if vendor == "r":
                self._answer(404, b"redirects disabled")
            elif method in ("GET", "HEAD", "POST"):
                self._track(request, (vendor, version))
            else:
                self._answer(405, b"method not allowed\n", headers=[("Allow", "GET, HEAD, POST")])
            return
        self._answer(404, b"not found\n")

    def _micro(self, request: _Request) -> None:
        def answer(body: bytes) -> None:
            collector = self.collector
            reply = handle_micro(
                collector._store, collector.registry, request.method, request.path, body
            )
            self._answer(reply.status, reply.body, content_type=reply.content_type)

        if request.method == "POST":
            self._read_body(None, answer)
        else:
            answer(b"")

    # -- tracking requests ------------------------------------------------------------------

    def _log(self, entry: RequestRecord) -> None:
        """Add the request to the collector's request log (once)."""
        if self.logged_entry is not entry:
            self.logged_entry = entry
            self.collector._store.record_request(entry)

    def _context(self, entry: RequestRecord) -> RequestContext:
        collector = self.collector
        request = self.request
        assert request is not None
        headers = request.headers
        first = headers._first
        anonymous = "sp-anonymous" in first
        cookie = (
            _cookie_value(headers.get_all("Cookie"), collector.cookie_name)
            if "cookie" in first
            else None
        )
        if anonymous:
            nuid: str = ANONYMOUS_NUID
            ip: Optional[str] = "unknown"
        else:
            query = entry.query
            query_nuid = _query_value(query, "nuid") if query else None
            nuid = query_nuid or cookie or _new_uuid()
            forwarded = first.get("x-forwarded-for")
            ip = forwarded.split(",")[0].strip() if forwarded else self.client[0]
        host = first.get("host")
        content_type = first.get("content-type") if entry.method == "POST" else None
        if content_type is not None:
            content_type = content_type.strip().lower()
        api = entry.api
        return RequestContext.from_header_items(
            entry.timestamp_ms,
            api[0],
            api[1],
            entry.query,
            content_type,
            entry.header_items,
            ip,
            first.get("user-agent"),
            first.get("referer"),
            host.rsplit(":", 1)[0] if host and not host.endswith("]") else host,
            nuid,
            anonymous,
        )

    def _track(self, request: _Request, api: Tuple[str, str]) -> None:
        entry = RequestRecord(
            request.method,
            request.path,
            request.query,
            request.headers._items,
            time.time(),
            self.client[0],
            api,
        )
        decision = self.collector._faults.decide()
        if request.method == "POST":
            self._read_body(entry, lambda body: self._tracked(request, entry, decision, body))
        else:
            self._tracked(request, entry, decision, None)

    def _tracked(
        self,
        request: _Request,
        entry: RequestRecord,
        decision: FaultDecision,
        body: Optional[bytes],
    ) -> None:
        entry.body = body
        ctx = self._context(entry)
        if decision is NO_FAULT:
            # The common case: log, ingest and store under one lock, answer at once.
            self.delay_handle = None
            if self.server.stopping:
                return
            self.logged_entry = entry
            entry.status = 200
            self.collector._ingest(ctx, body, store=True, entry=entry)
            self._answer_ok(request, ctx)
            return
        if decision.delay > 0:
            entry.fault = "delay"
        if decision.active:
            entry.fault = f"drop:{decision.drop}" if decision.drop else f"status:{decision.status}"
        self._log(entry)
        if decision.delay > 0:
            self.delay_handle = self.loop.call_later(
                decision.delay, self._after_delay, request, entry, decision, ctx, body
            )
            return
        self._respond_tracked(request, entry, decision, ctx, body)

    def _after_delay(
        self,
        request: _Request,
        entry: RequestRecord,
        decision: FaultDecision,
        ctx: RequestContext,
        body: Optional[bytes],
    ) -> None:
        self._respond_tracked(request, entry, decision, ctx, body)
        if self.state == _HEAD and self.buf:
            self._process()

    def _respond_tracked(
        self,
        request: _Request,
        entry: RequestRecord,
        decision: FaultDecision,
        ctx: RequestContext,
        body: Optional[bytes],
    ) -> None:
        self.delay_handle = None
        if self.state == _CLOSED or self.server.stopping:
            return
        collector = self.collector
        if decision.drop is None:
            entry.status = decision.status or 200
        collector._ingest(ctx, body, store=decision.store if decision.active else True)
        if decision.drop is not None:
            self._drop(decision.drop)
            return
        if decision.status is not None:
            payload = decision.body or f"injected failure {decision.status}\n".encode()
            self._answer(
                int(decision.status or 500), payload, headers=[*self._cors(), *decision.headers]
            )
            return
        self._answer_ok(request, ctx)

    def _answer_ok(self, request: _Request, ctx: RequestContext) -> None:
        """The 200 answer of a tracking request: ``ok`` for POST, the pixel otherwise."""
        name = self.collector.cookie_name
        if (
            request.method == "POST"
            and name is not None
            and not ctx.anonymous
            and not request.close
            and not self.body_unread
        ):
            # The common answer, in one piece (same bytes as ``respond`` would write).
            origin = request.headers._first.get("origin")
            self._write(
                (
                    f"HTTP/1.1 200 OK\r\nServer: {SERVER_VERSION}\r\nDate: {_http_date()}\r\n"
                    f"Content-Type: {_TEXT}\r\nContent-Length: 2\r\n"
                    f"Access-Control-Allow-Origin: {origin or '*'}\r\n"
                    "Access-Control-Allow-Credentials: true\r\n"
                    f"Set-Cookie: {name}={ctx.network_userid}; Expires={_cookie_expiry()}; "
                    "Path=/; SameSite=None; Secure; HttpOnly\r\n\r\nok"
                ).encode("latin-1", "replace")
            )
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s - %r 200 2", self.client[0], request.request_line)
            self._finish()
            return
        headers = [*self._cors(), *self._cookie_headers(ctx)]
        if request.method == "POST":
            self._answer(200, b"ok", headers=headers)
        else:
            headers.append(_NO_CACHE)
            self._answer(200, PIXEL_GIF, content_type="image/gif", headers=headers)

    def _cookie_headers(self, ctx: RequestContext) -> List[Tuple[str, str]]:
        name = self.collector.cookie_name
        if name is None:
            return []
        if ctx.anonymous:
            assert self.request is not None
            if _cookie_value(self.request.headers.get_all("Cookie"), name) is None:
                return []
            expired = "Thu, 01 Jan 1970 00:00:00 GMT"
            return [("Set-Cookie", f"{name}=; Expires={expired}; Path=/; SameSite=None; Secure")]
        expires = _cookie_expiry()
        cookie = (
            f"{name}={ctx.network_userid}; Expires={expires}; Path=/; "
            "SameSite=None; Secure; HttpOnly"
        )
        return [("Set-Cookie", cookie)]

    def _drop(self, mode: str) -> None:
        transport = self.transport
        if transport is None:
            return
        if mode == "close":
            self._close()
            return
        if mode == "partial":
            transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Le")
        sock = transport.get_extra_info("socket")
        try:
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
        self.state = _CLOSED
        transport.abort()


def _new_uuid() -> str:
    """A random (version 4) UUID string, without a system call."""
    value = (_random_bits(128) & _UUID_CLEAR) | _UUID_SET
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def _cookie_value(cookie_headers: Sequence[str], name: Optional[str]) -> Optional[str]:
    if name is None:
        return None
    for header in cookie_headers:
        for part in header.split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name:
                return value
    return None


def _query_value(query: str, name: str) -> Optional[str]:
    if not query or name + "=" not in query:
        return None
    try:
        return decode_query(query).get(name) or None
    except ProtocolError:
        return None


class AsyncHttpServer:
    """Binds on construction; ``start()`` serves in a thread, ``stop()`` joins it."""

    def __init__(self, address: Tuple[str, int], collector: LocalCollector) -> None:
        self.collector = collector
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self.socket = sock
        bound = sock.getsockname()
        self.server_name = str(bound[0])
        self.server_port = int(bound[1])
        self.loop = asyncio.new_event_loop()
        #: The protocol class made for each connection (the benchmarks' collector extends it).
        self.connection_class: Callable[[AsyncHttpServer], _Connection] = _Connection
        self.connections: Set[_Connection] = set()
        self.stopping = False
        self._server: Optional[asyncio.AbstractServer] = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"snowplow-local-collector-{self.server_port}", daemon=True
        )

    def start(self) -> None:
        """Start the event loop thread and wait until it accepts connections."""
        self._thread.start()
        self._ready.wait(5.0)

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                loop.create_server(
                    lambda: self.connection_class(self), sock=self.socket, backlog=128
                )
            )
            self._ready.set()
            loop.run_forever()
            self._server.close()
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.abort()
            loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(self._server.wait_closed())
        except Exception:  # pragma: no cover - startup failures are logged
            logger.exception("the local collector's event loop failed")
        finally:
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self.socket.close()

    def stop(self, timeout: float) -> None:
        """Close every connection, stop the loop and join its thread."""
        self.stopping = True
        if self._thread.is_alive():
            try:
                self.loop.call_soon_threadsafe(self.loop.stop)
            except RuntimeError:
                pass
            self._thread.join(timeout)
        else:
            self.socket.close()
