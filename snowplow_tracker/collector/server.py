"""The local collector: an HTTP server speaking the Snowplow tracker protocol.

``LocalCollector`` runs a standard-library threading HTTP server (HTTP/1.1 keep-alive, one
thread per connection) in a background thread. It answers like the Snowplow stream collector
(pixel for GET, ``ok`` for POST, CORS, cookie), validates every event like the enrichment
does, stores good events and bad rows in bounded memory, serves a Snowplow-Micro-compatible
REST API under ``/micro/``, and can inject faults (failing statuses, delays, dropped
connections) for testing clients.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
import time
import uuid
from collections import Counter
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
)
from urllib.parse import urlsplit

from .._version import __version__
from .faults import FaultDecision, FaultPlan
from .micro_api import handle_micro
from .protocol import (
    ANONYMOUS_NUID,
    SNOWPLOW_VENDOR,
    ProtocolError,
    decode_query,
    parse_post_body,
    short_repr,
)
from .schemas import PathLike, SchemaRegistry
from .store import (
    EXTRACTION_FAILED,
    VALIDATION_FAILED,
    CollectorStore,
    EventSummary,
    StoredEvent,
)
from .validation import COLLECTOR_NAME, EventValidator, RequestContext, utc_now_ms

__all__ = ["DEFAULT_MAX_BODY_BYTES", "PIXEL_GIF", "LocalCollector"]

logger = logging.getLogger("snowplow_tracker.collector.server")

#: Default request body limit (bytes); larger bodies get 413.
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024

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

_TEXT = "text/plain; charset=utf-8"
_TP1 = (SNOWPLOW_VENDOR, "tp1")
_TP2 = (SNOWPLOW_VENDOR, "tp2")
_SIZE_VIOLATION_SCHEMA = (
    "iglu:com.snowplowanalytics.snowplow.badrows/size_violation/jsonschema/1-0-0"
)
_ANONYMOUS_DROPPED_HEADERS = frozenset(("x-forwarded-for", "x-real-ip", "cookie"))
_DRAIN_CAP = 64 * 1024 * 1024
_TIMEOUTS = (socket.timeout, TimeoutError)

Listener = Callable[[EventSummary], None]


class _BodyUnavailable(Exception):
    """The body could not be read; the response (if any) has been sent."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], collector: LocalCollector) -> None:
        self.collector = collector
        self._connections: Set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the FQDN, which can take seconds; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("error while handling a request from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "snowplow-tracker-local-collector/" + __version__
    sys_version = ""
    server: _Server

    # -- plumbing ---------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.settimeout(self.server.collector.idle_timeout)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _respond(
        self,
        status: int,
        body: bytes = b"",
        content_type: Optional[str] = _TEXT,
        headers: Iterable[Tuple[str, str]] = (),
        *,
        head: bool = False,
        close: bool = False,
    ) -> None:
        """Send a whole response in one write (always with Content-Length)."""
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Status"
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
        ]
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        lines.extend(f"{name}: {value}" for name, value in headers)
        if close or self._unread_body():
            self.close_connection = True
        if self.close_connection:
            lines.append("Connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        try:
            self.wfile.write(head_bytes if head else head_bytes + body)
        except OSError:
            self.close_connection = True
        self.log_request(status, len(body))

    def send_error(
        self, code: int, message: Optional[str] = None, explain: Optional[str] = None
    ) -> None:
        """Short plain-text errors (also for malformed requests), then close the connection."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        text = f"{code} {message or phrase}\n"
        self._respond(code, text.encode("utf-8", "replace"), close=True)

    def _unread_body(self) -> bool:
        """True when the request announced a body that was not read (keep-alive is unsafe)."""
        if getattr(self, "_body_consumed", True):
            return False
        length = self.headers.get("Content-Length")
        return self.headers.get("Transfer-Encoding") is not None or (
            length is not None and length.strip() not in ("", "0")
        )

    def _cors(self) -> List[Tuple[str, str]]:
        origin = self.headers.get("Origin")
        return [
            ("Access-Control-Allow-Origin", origin if origin else "*"),
            ("Access-Control-Allow-Credentials", "true"),
        ]

    # -- routing ----------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        self._body_consumed = False
        target = self.path
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        path, _, query = target.partition("?")
        path = path.split("#", 1)[0] or "/"
        head = method == "HEAD"
        if method == "OPTIONS":
            self._respond(
                200,
                content_type=None,
                headers=[
                    *self._cors(),
                    ("Access-Control-Allow-Headers", "Content-Type, SP-Anonymous"),
                    ("Access-Control-Max-Age", "3600"),
                ],
            )
            return
        if path in ("/health", "/sink-health") and method in ("GET", "HEAD"):
            self._respond(200, b"ok", head=head)
            return
        if path == "/robots.txt" and method in ("GET", "HEAD"):
            self._respond(200, b"User-agent: *\nDisallow: /\n", head=head)
            return
        if path == "/micro" or path.startswith("/micro/"):
            self._micro(method, path)
            return
        if path in ("/i", "/ice.png"):
            if method in ("GET", "HEAD"):
                self._track(method, path, query, _TP1)
            else:
                self._respond(404, b"not found\n", head=head)
            return
        segments = path.strip("/").split("/")
        if len(segments) == 2 and all(segments) and not path.startswith("//"):
            vendor, version = segments
            if vendor == "r":
                self._respond(404, b"redirects disabled", head=head)
            elif method in ("GET", "HEAD", "POST"):
                self._track(method, path, query, (vendor, version))
            else:
                self._respond(405, b"method not allowed\n", headers=[("Allow", "GET, HEAD, POST")])
            return
        self._respond(404, b"not found\n", head=head)

    def _micro(self, method: str, path: str) -> None:
        collector = self.server.collector
        body = b""
        if method == "POST":
            try:
                body = self._read_body(None)
            except _BodyUnavailable:
                return
        answer = handle_micro(collector._store, collector.registry, method, path, body)
        self._respond(answer.status, answer.body, answer.content_type, head=method == "HEAD")

    # -- body reading -----------------------------------------------------------------------

    def _read_body(self, entry: Optional[Dict[str, Any]]) -> bytes:
        self._body_consumed = True
        collector = self.server.collector
        limit = collector.max_body_bytes
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None and "chunked" in encoding.lower():
            return self._read_chunked(entry, limit)
        declared = self.headers.get("Content-Length")
        if declared is None:
            return b""
        try:
            length = int(declared.strip())
            if length < 0:
                raise ValueError(declared)
        except ValueError:
            self._fail_read(entry, 400, f"invalid Content-Length {short_repr(declared)}")
        if length > limit:
            self._reject_oversized(entry, length, limit, drain=length)
        return self._read_exact(entry, length)

    def _fail_read(
        self, entry: Optional[Dict[str, Any]], status: Optional[int], reason: str
    ) -> None:
        if entry is not None:
            entry["status"] = status
            entry["error"] = reason
            self._log(entry)
        if status is not None:
            self._respond(status, (reason + "\n").encode("utf-8"), close=True)
        self.close_connection = True
        raise _BodyUnavailable(reason)

    def _read_exact(self, entry: Optional[Dict[str, Any]], length: int) -> bytes:
        collector = self.server.collector
        deadline = time.monotonic() + collector.body_read_timeout
        chunks: List[bytes] = []
        remaining = length
        try:
            while remaining > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout()
                self.connection.settimeout(left)
                chunk = self.rfile.read1(min(remaining, 1 << 16))
                if not chunk:
                    self._fail_read(
                        entry,
                        None,
                        f"client closed the connection after {length - remaining} of "
                        f"{length} body bytes",
                    )
                chunks.append(chunk)
                remaining -= len(chunk)
        except _TIMEOUTS:
            self._fail_read(
                entry,
                408,
                f"timed out reading the request body: got {length - remaining} of {length} bytes "
                f"in {collector.body_read_timeout:g} s",
            )
        except (ConnectionError, ValueError, OSError) as exc:
            self._fail_read(entry, None, f"connection failed while reading the body: {exc}")
        finally:
            self._restore_timeout()
        return b"".join(chunks)

    def _restore_timeout(self) -> None:
        try:
            self.connection.settimeout(self.server.collector.idle_timeout)
        except OSError:
            pass

    def _read_chunked(self, entry: Optional[Dict[str, Any]], limit: int) -> bytes:
        collector = self.server.collector
        deadline = time.monotonic() + collector.body_read_timeout
        chunks: List[bytes] = []
        total = 0

        def step() -> None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.connection.settimeout(left)

        try:
            while True:
                step()
                line = self.rfile.readline(1024)
                if not line:
                    self._fail_read(entry, None, "client closed the connection mid-body")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self._fail_read(entry, 400, "malformed chunked body")
                if size == 0:
                    while True:  # trailers up to the blank line
                        step()
                        trailer = self.rfile.readline(1024)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > limit:
                    self._reject_oversized(entry, total, limit, drain=0)
                data = b""
                while len(data) < size + 2:
                    step()
                    piece = self.rfile.read1(size + 2 - len(data))
                    if not piece:
                        self._fail_read(entry, None, "client closed the connection mid-body")
                    data += piece
                chunks.append(data[:size])
        except _TIMEOUTS:
            self._fail_read(entry, 408, "timed out reading the chunked request body")
        except (ConnectionError, OSError) as exc:
            self._fail_read(entry, None, f"connection failed while reading the body: {exc}")
        finally:
            self._restore_timeout()
        return b"".join(chunks)

    def _reject_oversized(
        self, entry: Optional[Dict[str, Any]], size: int, limit: int, *, drain: int
    ) -> None:
        collector = self.server.collector
        reason = f"request body of {size} bytes is over the limit of {limit} bytes"
        if entry is not None:
            entry["status"] = 413
            entry["error"] = reason
            self._log(entry)
            collector._store_size_violation(self._context(entry), self.requestline, size, limit)
        self._respond(413, f"Payload Too Large: {reason}\n".encode(), close=True)
        self._drain(min(drain, _DRAIN_CAP))
        raise _BodyUnavailable(reason)

    def _drain(self, amount: int) -> None:
        """Discard up to ``amount`` bytes (bounded in time) so that the client reads the reply."""
        deadline = time.monotonic() + self.server.collector.body_read_timeout
        try:
            while amount > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.connection.settimeout(left)
                chunk = self.rfile.read1(min(amount, 1 << 16))
                if not chunk:
                    break
                amount -= len(chunk)
        except (OSError, ValueError):
            pass

    # -- tracking requests ------------------------------------------------------------------

    def _log(self, entry: Dict[str, Any]) -> None:
        """Add the request to the collector's request log (once)."""
        if getattr(self, "_logged_entry", None) is not entry:
            self._logged_entry = entry
            self.server.collector._store.record_request(entry)

    def _context(self, entry: Dict[str, Any]) -> RequestContext:
        collector = self.server.collector
        headers = self.headers
        anonymous = headers.get("SP-Anonymous") is not None
        cookie = _cookie_value(headers.get_all("Cookie") or [], collector.cookie_name)
        if anonymous:
            nuid: str = ANONYMOUS_NUID
        else:
            query_nuid = _query_value(entry["query"], "nuid")
            nuid = query_nuid or cookie or str(uuid.uuid4())
        if anonymous:
            ip: Optional[str] = "unknown"
        else:
            forwarded = headers.get("X-Forwarded-For")
            ip = forwarded.split(",")[0].strip() if forwarded else self.client_address[0]
        header_lines = [
            f"{name}: {value}"
            for name, value in headers.items()
            if not (anonymous and name.lower() in _ANONYMOUS_DROPPED_HEADERS)
        ]
        host = headers.get("Host")
        content_type = headers.get("Content-Type") if entry["method"] == "POST" else None
        return RequestContext(
            timestamp_ms=entry["timestamp_ms"],
            api_vendor=entry["api"][0],
            api_version=entry["api"][1],
            query=entry["query"],
            content_type=content_type.strip().lower() if content_type else None,
            headers=header_lines,
            ip_address=ip,
            useragent=headers.get("User-Agent"),
            referer=headers.get("Referer"),
            hostname=host.rsplit(":", 1)[0] if host and not host.endswith("]") else host,
            network_userid=nuid,
            anonymous=anonymous,
        )

    def _track(self, method: str, path: str, query: str, api: Tuple[str, str]) -> None:
        collector = self.server.collector
        entry: Dict[str, Any] = {
            "method": method,
            "path": path,
            "query": query,
            "headers": dict(self.headers.items()),
            "body": None,
            "status": None,
            "fault": None,
            "error": None,
            "timestamp": time.time(),
            "timestamp_ms": utc_now_ms(),
            "client": self.client_address[0],
            "api": api,
        }
        decision = collector._faults.decide()
        body: Optional[bytes] = None
        if method == "POST":
            try:
                body = self._read_body(entry)
            except _BodyUnavailable:
                self._log(entry)
                return
        entry["body"] = body
        ctx = self._context(entry)
        if decision.delay > 0:
            entry["fault"] = "delay"
        if decision.active:
            entry["fault"] = (
                f"drop:{decision.drop}" if decision.drop else f"status:{decision.status}"
            )
        self._log(entry)
        if decision.delay > 0 and collector._stopping.wait(decision.delay):
            self.close_connection = True
            return
        if decision.drop is None:
            entry["status"] = decision.status or 200
        collector._ingest(ctx, body, store=decision.store if decision.active else True)
        if decision.drop is not None:
            self._drop(decision.drop)
            return
        if decision.status is not None:
            self._fail(decision, method)
            return
        headers = [*self._cors(), *self._cookie_headers(ctx)]
        if method == "POST":
            self._respond(200, b"ok", _TEXT, headers)
        else:
            headers.append(("Cache-Control", "no-cache, no-store, must-revalidate"))
            self._respond(200, PIXEL_GIF, "image/gif", headers, head=method == "HEAD")

    def _cookie_headers(self, ctx: RequestContext) -> List[Tuple[str, str]]:
        name = self.server.collector.cookie_name
        if name is None:
            return []
        if ctx.anonymous:
            if _cookie_value(self.headers.get_all("Cookie") or [], name) is None:
                return []
            expired = "Thu, 01 Jan 1970 00:00:00 GMT"
            return [("Set-Cookie", f"{name}=; Expires={expired}; Path=/; SameSite=None; Secure")]
        expires = formatdate(time.time() + 365 * 24 * 3600, usegmt=True)
        cookie = (
            f"{name}={ctx.network_userid}; Expires={expires}; Path=/; "
            "SameSite=None; Secure; HttpOnly"
        )
        return [("Set-Cookie", cookie)]

    def _fail(self, decision: FaultDecision, method: str) -> None:
        body = decision.body or f"injected failure {decision.status}\n".encode()
        headers = [*self._cors(), *decision.headers]
        self._respond(int(decision.status or 500), body, _TEXT, headers, head=method == "HEAD")

    def _drop(self, mode: str) -> None:
        self.close_connection = True
        connection = self.connection
        try:
            if mode == "close":
                connection.shutdown(socket.SHUT_RDWR)
                return
            if mode == "partial":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Le")
            connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.rfile.close()
            connection.close()
        except OSError:
            pass


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


def _size_violation(
    ctx: RequestContext, request_line: str, size: int, limit: int
) -> Dict[str, Any]:
    summary = "\n".join([request_line, *ctx.headers])
    cap = 1073741824
    return {
        "schema": _SIZE_VIOLATION_SCHEMA,
        "data": {
            "processor": {"artifact": COLLECTOR_NAME, "version": __version__},
            "failure": {
                "timestamp": ctx.timestamp_iso,
                "maximumAllowedSizeBytes": min(limit, cap),
                "actualSizeBytes": min(size, cap),
                "expectation": "oversized collector payload: the request body is over the limit",
            },
            "payload": summary[: max(limit // 10, 0)],
        },
    }


class LocalCollector:
    """A local, validating Snowplow collector running in a background thread.

    Use it as a context manager (or call ``start()``/``stop()``)::

        with LocalCollector(iglu_dirs=["path/to/iglu"]) as collector:
            emitter = Emitter(collector.endpoint)
            ...
            assert collector.wait_for(3)
            assert not collector.bad()

    ``port=0`` (the default) picks a free port; ``endpoint``, ``host`` and ``port`` tell where
    it listens once started. ``good()``/``bad()`` return Micro-shaped dicts, oldest first.

    Args:
        host: Address to bind; the loopback address by default.
        port: TCP port; 0 picks a free one.
        iglu_dirs: Static Iglu repositories
            (``<dir>/schemas/<vendor>/<name>/jsonschema/<version>``), searched in order.
        lenient: Accept events whose schemas are not found (the event gets a note).
        validate: Check events; when False, every parsable event is stored as good.
        max_body_bytes: Largest request body accepted; larger ones get 413 (default 2 MiB).
        max_events: Stored events kept; the oldest are dropped first.
        max_requests: Tracking requests kept in the request log.
        max_request_log_bytes: Request body bytes kept in the request log.
        body_read_timeout: Seconds a request body may take to arrive; then 408.
        idle_timeout: Seconds an idle keep-alive connection is kept open.
        cookie_name: Name of the network user id cookie (``None``: no cookie is read or set).
        on_event: Called with an ``EventSummary`` for every stored event, from the server's
            threads.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        iglu_dirs: Sequence[PathLike] = (),
        lenient: bool = False,
        validate: bool = True,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_events: int = 100_000,
        max_requests: int = 10_000,
        max_request_log_bytes: int = 64 * 1024 * 1024,
        body_read_timeout: float = 5.0,
        idle_timeout: float = 30.0,
        cookie_name: Optional[str] = "sp",
        on_event: Optional[Listener] = None,
    ) -> None:
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")
        self._requested_host = host
        self._requested_port = port
        self.registry = SchemaRegistry(iglu_dirs, lenient=lenient)
        self.validator = EventValidator(self.registry)
        self.validate = validate
        self.max_body_bytes = max_body_bytes
        self.body_read_timeout = body_read_timeout
        self.idle_timeout = idle_timeout
        self.cookie_name = cookie_name
        self._store = CollectorStore(max_events, max_requests, max_request_log_bytes)
        self._faults = FaultPlan()
        self._listeners: List[Listener] = [on_event] if on_event is not None else []
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> LocalCollector:
        """Bind and start serving in a background thread; returns ``self``. Idempotent."""
        with self._lifecycle:
            if self._server is not None:
                return self
            self._stopping.clear()
            server = _Server((self._requested_host, self._requested_port), self)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"snowplow-local-collector-{server.server_port}",
                daemon=True,
            )
            self._server, self._thread = server, thread
            thread.start()
            logger.info("local collector listening on %s", self.endpoint)
            return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close open connections and join every thread. Idempotent."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            if server is None:
                return
            self._stopping.set()
            server.shutdown()
            server.close_connections()
            server.server_close()
            if thread is not None:
                thread.join(timeout)
            self._server = self._thread = None
            logger.info("local collector stopped")

    def __enter__(self) -> LocalCollector:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._server is not None

    def _require_server(self) -> _Server:
        if self._server is None:
            raise RuntimeError("the collector is not running: call start() or use 'with'")
        return self._server

    @property
    def host(self) -> str:
        """Host (IP address) the collector is bound to."""
        return self._require_server().server_name

    @property
    def port(self) -> int:
        """TCP port the collector listens on."""
        return self._require_server().server_port

    @property
    def endpoint(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (ready for ``Emitter(endpoint)``)."""
        host = self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """Absolute URL of ``path`` on this collector."""
        return self.endpoint + ("" if path.startswith("/") else "/") + path

    # -- configuration ----------------------------------------------------------------------

    @property
    def lenient(self) -> bool:
        """Whether unknown schemas are accepted."""
        return self.registry.lenient

    def add_schema(self, uri: str, schema: Mapping[str, Any]) -> None:
        """Register a JSON Schema for ``uri`` (wins over the Iglu directories)."""
        self.registry.add_schema(uri, dict(schema))

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(summary)`` for every stored event (from the server threads)."""
        self._listeners.append(listener)

    # -- results ----------------------------------------------------------------------------

    def good(self) -> List[Dict[str, Any]]:
        """Good events as Micro ``GoodEvent`` dicts, oldest first."""
        return [event.to_json() for event in self._store.good()]

    def bad(self) -> List[Dict[str, Any]]:
        """Bad rows as Micro ``BadEvent`` dicts, oldest first."""
        return [event.to_json() for event in self._store.bad()]

    def summary(self) -> Dict[str, int]:
        """``{"total", "good", "bad"}`` of the stored events (like ``/micro/all``)."""
        return self._store.counts()

    def reset(self) -> None:
        """Forget all events, requests and counters (pending faults are kept)."""
        self._store.reset()

    def event_ids(self) -> List[str]:
        """Every ``eid`` received (duplicates and failed requests included), arrival order."""
        return self._store.event_ids()

    def duplicate_event_ids(self) -> List[str]:
        """Event ids received more than once, in order of first arrival."""
        counts = Counter(self._store.event_ids())
        return [event_id for event_id, n in counts.items() if n > 1]

    def payloads(self) -> List[Dict[str, Any]]:
        """The raw parameter dict of every event received, arrival order."""
        return self._store.payloads()

    def requests(self) -> List[Dict[str, Any]]:
        """Every tracking request: method, path, query, headers, body, status, fault, error."""
        return [
            {k: v for k, v in entry.items() if k not in ("timestamp_ms", "api")}
            for entry in self._store.requests()
        ]

    @property
    def requests_received(self) -> int:
        """Tracking requests received since the last reset."""
        return self._store.requests_received

    @property
    def events_received(self) -> int:
        """Events received since the last reset, duplicates and failed requests included."""
        return self._store.events_received

    @property
    def events_dropped(self) -> int:
        """Stored events evicted because of the ``max_events`` cap since the last reset."""
        return self._store.events_dropped

    def stats(self) -> Dict[str, int]:
        """All counters in one dict."""
        store = self._store
        return {
            **store.counts(),
            "requests_received": store.requests_received,
            "events_received": store.events_received,
            "events_dropped": store.events_dropped,
            "good_received": store.good_received,
            "bad_received": store.bad_received,
        }

    def wait_for(self, count: int, timeout: float = 5.0, *, good: bool = False) -> bool:
        """Wait until ``count`` events (good and bad, or good only) arrived since the last reset.

        Returns True as soon as they are there, False after ``timeout`` seconds.
        """
        store = self._store
        if good:
            return store.wait_until(lambda: store.good_received >= count, timeout)
        return store.wait_until(lambda: store.good_received + store.bad_received >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``count`` tracking requests arrived since the last reset."""
        store = self._store
        return store.wait_until(lambda: store.requests_received >= count, timeout)

    def assert_counts(
        self, good: Optional[int] = None, bad: Optional[int] = None, timeout: float = 5.0
    ) -> None:
        """Wait for and assert exact good/bad counts; the message lists bad-row errors."""
        expected = (good or 0) + (bad or 0)
        self.wait_for(expected, timeout, good=bad is None)
        counts = self.summary()
        mismatch = (good is not None and counts["good"] != good) or (
            bad is not None and counts["bad"] != bad
        )
        if mismatch:
            reasons = [error for row in self.bad() for error in row["errors"][1:]][:20]
            raise AssertionError(
                f"expected good={good} bad={bad}, got {counts}; bad-row errors: {reasons}"
            )

    # -- faults -----------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        headers: Optional[Mapping[str, str]] = None,
        *,
        body: bytes = b"",
        store: bool = False,
    ) -> None:
        """Answer the next ``count`` tracking requests with ``status`` (events not stored)."""
        self._faults.fail_next(count, status, headers, body=body, store=store)

    def fail_fraction(
        self,
        fraction: float,
        status: int = 503,
        headers: Optional[Mapping[str, str]] = None,
        *,
        seed: Optional[int] = 0,
        requests: Optional[int] = None,
        body: bytes = b"",
        store: bool = False,
    ) -> None:
        """Fail each tracking request with probability ``fraction`` (seeded RNG)."""
        self._faults.fail_fraction(
            fraction, status, headers, seed=seed, requests=requests, body=body, store=store
        )

    def delay_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Wait ``seconds`` before answering each of the next ``count`` tracking requests."""
        self._faults.delay_next(count, seconds)

    def drop_next(self, count: int = 1, *, mode: str = "close", store: bool = False) -> None:
        """Drop the connection of the next ``count`` tracking requests (see ``DROP_MODES``)."""
        self._faults.drop_next(count, mode=mode, store=store)

    def clear_faults(self) -> None:
        """Cancel every pending fault."""
        self._faults.clear()

    def pending_faults(self) -> Dict[str, int]:
        """Number of pending fault rules by kind."""
        return self._faults.pending()

    # -- ingestion --------------------------------------------------------------------------

    def _extract(
        self, ctx: RequestContext, body: Optional[bytes]
    ) -> Tuple[List[Dict[str, Any]], List[str], List[Dict[str, Any]]]:
        """Split a request into events; returns (events, payload errors, received dicts)."""
        api = (ctx.api_vendor, ctx.api_version)
        if api not in (_TP1, _TP2):
            return [], [f"vendor/version combination {api[0]}/{api[1]} is not supported"], []
        try:
            query = decode_query(ctx.query) if ctx.query else {}
        except ProtocolError as exc:
            return [], exc.errors, []
        if body is None:
            if not query:
                return [], ["empty query string: the event must be in the query string"], []
            return [query], [], [query]
        if not body:
            if ctx.content_type:
                return [], [f"Content-Type {ctx.content_type} is present but the body is empty"], []
            if not query:
                return [], ["empty body and empty query string"], []
            return [query], [], [query]
        try:
            uri, data = parse_post_body(body, ctx.content_type)
        except ProtocolError as exc:
            return [], exc.errors, []
        received = (
            [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []
        )
        if self.validate:
            outcome = self.registry.validate(uri, data)
            if outcome.errors:
                version = uri.rsplit("/", 1)[-1]
                return [], [f"payload_data {version}: {e}" for e in outcome.errors], received
        elif len(received) != (len(data) if isinstance(data, list) else -1):
            return [], ["'data' must be an array of objects"], received
        events = [{**item, **query} for item in received] if query else received
        return events, [], events

    def _ingest(self, ctx: RequestContext, body: Optional[bytes], *, store: bool) -> None:
        events, problems, received = self._extract(ctx, body)
        records: List[StoredEvent] = []
        if problems:
            records.append(
                StoredEvent(good=False, params=None, ctx=ctx, errors=[EXTRACTION_FAILED, *problems])
            )
        elif self.validate:
            check = self.validator.check
            for params in events:
                result = check(params)
                errors = [VALIDATION_FAILED, *result.errors] if result.errors else None
                records.append(
                    StoredEvent(
                        good=errors is None, params=params, ctx=ctx, check=result, errors=errors
                    )
                )
        else:
            describe = self.validator.describe
            records.extend(
                StoredEvent(good=True, params=params, ctx=ctx, describe=describe)
                for params in events
            )
        if body is not None and any(not r.good for r in records):
            ctx.body = body.decode("utf-8", "replace")
        self._store.record_received(received)
        if store:
            self._store.store(records)
            self._notify(records)

    def _store_size_violation(
        self, ctx: RequestContext, request_line: str, size: int, limit: int
    ) -> None:
        row = _size_violation(ctx, request_line, size, limit)
        record = StoredEvent(
            good=False,
            params=None,
            ctx=ctx,
            errors=[
                f"Payload too large: the request body of {size} bytes is over the limit of "
                f"{limit} bytes (answered 413, nothing stored from it)",
                json.dumps(row),
            ],
        )
        self._store.store([record])
        self._notify([record])

    def _notify(self, records: List[StoredEvent]) -> None:
        if not self._listeners:
            return
        for record in records:
            summary = record.summary()
            for listener in list(self._listeners):
                try:
                    listener(summary)
                except Exception:
                    logger.exception("collector listener failed")
