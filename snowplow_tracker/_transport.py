"""A lean keep-alive HTTP/1.1 client for the emitters' default path.

``requests`` spends most of an emitter's client CPU per request, mostly re-reading proxy,
``.netrc`` and CA settings from the environment on every call, and even the standard
library's ``http.client`` costs several times what a request needs (it writes headers and
body in two writes and parses response headers with the ``email`` package). When the caller
gave no ``session`` and has not patched ``requests.post``/``requests.get``, emitters send
through :class:`Transport` instead: one persistent socket per sending thread
(``TCP_NODELAY``), each request written with one system call (``sendmsg`` of the head and
the body, so a large body is not copied once more to join them), and a minimal response parser
(status line, headers, a body framed by ``Content-Length``, chunked, or the end of the
connection). It sends the headers ``requests`` sends (so collectors see the same
``User-Agent``), encodes GET queries the same way, and verifies HTTPS against the same CA
bundle (``certifi``'s, or ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``). Errors are raised as
``requests`` exceptions, so ``http_post``/``http_get`` keep their contract.

It is not used when the environment configures a proxy for the collector or ``.netrc``
credentials for its host: those cases keep going through ``requests``.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import weakref
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import requests
import requests.utils

Timeout = Union[float, Tuple[float, float], None]

_BASE_HEADERS = {
    "User-Agent": requests.utils.default_user_agent(),
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "keep-alive",
}
_MAX_HEAD = 64 * 1024  # bytes of status line and headers we accept in a response
_RECV = 65536
_NO_BODY_CODES = frozenset({204, 304})
# On Linux, plain-HTTP sockets stay blocking with SO_RCVTIMEO/SO_SNDTIMEO as their timeouts:
# Python polls before each call on a socket that has a timeout, two extra system calls per
# request. (TLS sockets and other platforms use Python's timeouts.)
_KERNEL_TIMEOUTS = sys.platform.startswith("linux") and struct.calcsize("l") == 8
_UNSET = object()


class ResponseHeaders(Dict[str, str]):
    """Response headers, looked up without regard to case (keys are stored lower-case)."""

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())


class TransportResponse:
    """What emitters read from a response: the status code and the headers."""

    __slots__ = ("headers", "status_code")

    def __init__(self, status_code: int, headers: ResponseHeaders) -> None:
        self.status_code = status_code
        self.headers = headers


class _ProtocolError(Exception):
    """The server's answer is not HTTP/1.x we can read."""


class _Connection:
    """One keep-alive socket and the bytes read past the last response."""

    __slots__ = ("__weakref__", "buffer", "kernel_timeouts", "poller", "sock", "timeout")

    def __init__(self, sock: socket.socket, kernel_timeouts: bool) -> None:
        self.sock = sock
        self.buffer = b""
        #: Timeouts are socket options (blocking socket) rather than Python's poll-then-call.
        self.kernel_timeouts = kernel_timeouts
        #: The read timeout in force (``_UNSET`` until the first request sets one).
        self.timeout: Any = _UNSET
        self.poller: Any = None

    def set_timeout(self, timeout: Optional[float]) -> None:
        """Apply ``timeout`` (seconds, None for none) to every later send and receive."""
        if timeout == self.timeout:
            return
        if self.kernel_timeouts:
            seconds = 0.0 if timeout is None else max(float(timeout), 0.001)
            whole = int(seconds)
            value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
        else:
            self.sock.settimeout(timeout)
        self.timeout = timeout

    def closed_by_peer(self) -> bool:
        """True when the idle socket was closed (or reset) by the server."""
        try:
            if self.poller is None:
                if not hasattr(select, "poll"):
                    readable, _, _ = select.select([self.sock], [], [], 0)
                    return bool(readable)
                self.poller = select.poll()
                self.poller.register(self.sock, select.POLLIN)
            return bool(self.poller.poll(0))
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _write(connection: _Connection, head: bytes, body: bytes, timeout: Optional[float]) -> None:
    """Send ``head`` then ``body``: one ``sendmsg`` where the socket has it (plain TCP), so
    the two are not joined into a third copy first; ``sendall`` of the joined bytes on TLS.

    Like ``sendall`` with a timeout, the whole write must end within ``timeout`` seconds: a
    send that continues a write cut short may wait only for the time left (a peer that
    keeps reading a trickle does not stretch it). The connection's timeout is ``timeout``
    again once the write is done.
    """
    sock = connection.sock
    if not body or isinstance(sock, ssl.SSLSocket) or not hasattr(sock, "sendmsg"):
        sock.sendall(head + body)
        return
    deadline = None if timeout is None else time.monotonic() + timeout
    views = [memoryview(head), memoryview(body)]
    while True:
        sent = sock.sendmsg(views)  # all of it, unless a timeout or a signal cut it short
        while sent and views:
            first = views[0]
            if sent < len(first):
                views[0] = first[sent:]
                break
            sent -= len(first)
            del views[0]
        if not views:
            connection.set_timeout(timeout)
            return
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("timed out while sending the request")
            connection.set_timeout(remaining)


def usable_for(url: str) -> bool:
    """Whether :class:`Transport` can serve ``url`` exactly as ``requests`` would."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if requests.utils.get_environ_proxies(url):
        return False
    try:
        return requests.utils.get_netrc_auth(url) is None
    except Exception:
        return False


def encode_query(params: Mapping[str, Any]) -> str:
    """Encode GET parameters as ``requests`` does (``None`` skipped, ``quote_plus``)."""
    pairs: List[Tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        pairs.append((key, value if isinstance(value, str) else str(value)))
    return urllib.parse.urlencode(pairs)


class Transport:
    """Keep-alive connections to one collector, one per sending thread.

    Args:
        url: The collector URL the emitter sends to (scheme, host, port, path).
    """

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self._https = parts.scheme == "https"
        default_port = 443 if self._https else 80
        self._host = parts.hostname or ""
        self._port = parts.port or default_port
        self._path = parts.path or "/"
        host = f"[{self._host}]" if ":" in self._host else self._host
        host_header = host if self._port == default_port else f"{host}:{self._port}"
        common = "".join(f"{name}: {value}\r\n" for name, value in _BASE_HEADERS.items())
        self._head_suffix = f" HTTP/1.1\r\nHost: {host_header}\r\n{common}"
        self._local = threading.local()
        self._ssl_context: Optional[ssl.SSLContext] = None
        self._lock = threading.Lock()
        # Weak, so a connection goes away with the thread that used it.
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()

    def post(self, data: str, headers: Mapping[str, str], timeout: Timeout) -> TransportResponse:
        """POST ``data`` to the collector URL."""
        body = data.encode("utf-8")
        extra = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        head = f"POST {self._path}{self._head_suffix}{extra}Content-Length: {len(body)}\r\n\r\n"
        return self._request(head.encode("latin-1"), timeout, body)

    def get(self, params: Mapping[str, Any], timeout: Timeout) -> TransportResponse:
        """GET the collector URL with ``params`` as the query string."""
        query = encode_query(params)
        target = f"{self._path}?{query}" if query else self._path
        head = f"GET {target}{self._head_suffix}\r\n"
        return self._request(head.encode("latin-1"), timeout)

    def close(self) -> None:
        """Close every connection this transport opened."""
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            connection.close()

    # ------------------------------------------------------------------ request

    def _request(self, head: bytes, timeout: Timeout, body: bytes = b"") -> TransportResponse:
        connect_timeout, read_timeout = (
            timeout if isinstance(timeout, tuple) else (timeout, timeout)
        )
        connection = self._connection(connect_timeout)
        try:
            connection.set_timeout(read_timeout)
            _write(connection, head, body, read_timeout)
            response = self._read_response(connection)
        except (socket.timeout, BlockingIOError) as error:  # BlockingIOError: SO_RCVTIMEO
            self._discard(connection)
            raise requests.exceptions.ReadTimeout(str(error) or "read timed out") from error
        except ssl.SSLError as error:
            self._discard(connection)
            raise requests.exceptions.SSLError(str(error)) from error
        except (OSError, _ProtocolError) as error:
            self._discard(connection)
            raise requests.ConnectionError(str(error) or type(error).__name__) from error
        status, headers, keep_alive = response
        if not keep_alive:
            self._discard(connection)
        return TransportResponse(status, headers)

    def _read_response(self, connection: _Connection) -> Tuple[int, ResponseHeaders, bool]:
        """Read one response (skipping 1xx); return its status, headers and keep-alive."""
        sock = connection.sock
        data = connection.buffer
        connection.buffer = b""
        while True:
            end = data.find(b"\r\n\r\n")
            while end < 0:
                if len(data) > _MAX_HEAD:
                    raise _ProtocolError("response headers too long")
                chunk = sock.recv(_RECV)
                if not chunk:
                    raise _ProtocolError("connection closed before a complete response")
                data += chunk
                end = data.find(b"\r\n\r\n")
            head = data[:end].decode("latin-1")
            data = data[end + 4 :]
            lines = head.split("\r\n")
            version, _, rest = lines[0].partition(" ")
            if not version.startswith("HTTP/1."):
                raise _ProtocolError("not an HTTP/1.x response")
            try:
                status = int(rest[:3])
            except ValueError:
                raise _ProtocolError("bad status line") from None
            fields: Dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    key = name.strip().lower()
                    value = value.strip()
                    previous = fields.get(key)
                    fields[key] = value if previous is None else previous + ", " + value
            headers = ResponseHeaders(fields)
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            break
        connection_header = dict.get(headers, "connection", "").lower()
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in connection_header
        else:
            keep_alive = "close" not in connection_header
        if status in _NO_BODY_CODES:
            connection.buffer = data
            return status, headers, keep_alive
        if "chunked" in dict.get(headers, "transfer-encoding", "").lower():
            connection.buffer = self._skip_chunked(sock, data)
            return status, headers, keep_alive
        length_text = dict.get(headers, "content-length")
        if length_text is None:
            while sock.recv(_RECV):  # framed by the end of the connection
                pass
            return status, headers, False
        try:
            length = int(length_text.split(",")[0])
        except ValueError:
            raise _ProtocolError("bad Content-Length") from None
        while len(data) < length:
            chunk = sock.recv(max(_RECV, length - len(data)))
            if not chunk:
                raise _ProtocolError("connection closed inside the response body")
            data += chunk
        connection.buffer = data[length:]
        return status, headers, keep_alive

    @staticmethod
    def _skip_chunked(sock: socket.socket, data: bytes) -> bytes:
        """Read past a chunked body; return the bytes after it."""

        def more(buffer: bytes) -> bytes:
            chunk = sock.recv(_RECV)
            if not chunk:
                raise _ProtocolError("connection closed inside a chunked body")
            return buffer + chunk

        def line(buffer: bytes) -> Tuple[bytes, bytes]:
            """The next CRLF-terminated line (without the CRLF) and the bytes after it."""
            end = buffer.find(b"\r\n")
            while end < 0:
                buffer = more(buffer)
                end = buffer.find(b"\r\n")
            return buffer[:end], buffer[end + 2 :]

        while True:
            size_line, data = line(data)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _ProtocolError("bad chunk size") from None
            if size == 0:
                trailer, data = line(data)
                while trailer:  # trailers, up to the empty line
                    trailer, data = line(data)
                return data
            while len(data) < size + 2:
                data = more(data)
            data = data[size + 2 :]

    # ------------------------------------------------------------------ connections

    def _connection(self, connect_timeout: Optional[float]) -> _Connection:
        connection: Optional[_Connection] = getattr(self._local, "connection", None)
        if connection is not None and (connection.buffer or connection.closed_by_peer()):
            self._discard(connection)
            connection = None
        if connection is None:
            sock = self._connect(connect_timeout)
            kernel_timeouts = _KERNEL_TIMEOUTS and not self._https
            if kernel_timeouts:
                sock.settimeout(None)  # blocking: no poll() before every send and receive
            connection = _Connection(sock, kernel_timeouts)
            self._local.connection = connection
            with self._lock:
                self._connections.add(connection)
        return connection

    def _connect(self, connect_timeout: Optional[float]) -> socket.socket:
        try:
            sock = socket.create_connection((self._host, self._port), timeout=connect_timeout)
        except socket.timeout as error:
            raise requests.exceptions.ConnectTimeout(str(error) or "connect timed out") from error
        except OSError as error:
            raise requests.ConnectionError(str(error) or type(error).__name__) from error
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._https:
                sock = self._context().wrap_socket(sock, server_hostname=self._host)
        except socket.timeout as error:
            sock.close()
            raise requests.exceptions.ConnectTimeout(
                str(error) or "TLS handshake timed out"
            ) from error
        except ssl.SSLError as error:
            sock.close()
            raise requests.exceptions.SSLError(str(error)) from error
        except OSError as error:
            sock.close()
            raise requests.ConnectionError(str(error) or type(error).__name__) from error
        return sock

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        with self._lock:
            self._connections.discard(connection)

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            bundle = (
                os.environ.get("REQUESTS_CA_BUNDLE")
                or os.environ.get("CURL_CA_BUNDLE")
                or requests.utils.DEFAULT_CA_BUNDLE_PATH
            )
            if os.path.isdir(bundle):
                context = ssl.create_default_context(capath=bundle)
            else:
                context = ssl.create_default_context(cafile=bundle)
            self._ssl_context = context
        return self._ssl_context
