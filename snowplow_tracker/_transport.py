"""A lean keep-alive HTTP transport for the emitters' default path.

``requests`` spends most of an emitter's client CPU per request (about five times what the
standard library's ``http.client`` needs here), mostly re-reading proxy, ``.netrc`` and CA
settings from the environment on every call. When the caller gave no ``session`` and has not
patched ``requests.post``/``requests.get``, emitters send through :class:`Transport`
instead: one persistent connection per sending thread, the same headers ``requests`` sends
(so collectors see the same ``User-Agent``), the same query encoding for GET, and the same
CA bundle (``certifi``'s, or ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``). Errors are raised as
``requests`` exceptions, so ``http_post``/``http_get`` keep their contract.

It is not used when the environment configures a proxy for the collector or ``.netrc``
credentials for its host: those cases keep going through ``requests``.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import threading
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


class TransportResponse:
    """What emitters read from a response: the status code and the headers."""

    __slots__ = ("headers", "status_code")

    def __init__(self, status_code: int, headers: http.client.HTTPMessage) -> None:
        self.status_code = status_code
        self.headers = headers


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
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path or "/"
        self._netloc = parts.netloc
        self._local = threading.local()
        self._ssl_context: Optional[ssl.SSLContext] = None
        self._lock = threading.Lock()
        # Weak, so a connection goes away with the thread that used it.
        self._connections: weakref.WeakSet[http.client.HTTPConnection] = weakref.WeakSet()

    def post(self, data: str, headers: Mapping[str, str], timeout: Timeout) -> TransportResponse:
        """POST ``data`` to the collector URL."""
        body = data.encode("utf-8")
        return self._request("POST", self._path, body, headers, timeout)

    def get(self, params: Mapping[str, Any], timeout: Timeout) -> TransportResponse:
        """GET the collector URL with ``params`` as the query string."""
        query = encode_query(params)
        target = f"{self._path}?{query}" if query else self._path
        return self._request("GET", target, None, {}, timeout)

    def close(self) -> None:
        """Close every connection this transport opened."""
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            try:
                connection.close()
            except Exception:
                pass

    def _request(
        self,
        method: str,
        target: str,
        body: Optional[bytes],
        headers: Mapping[str, str],
        timeout: Timeout,
    ) -> TransportResponse:
        connect_timeout, read_timeout = _split_timeout(timeout)
        all_headers: Dict[str, str] = dict(_BASE_HEADERS)
        all_headers.update(headers)
        if body is not None:
            all_headers["Content-Length"] = str(len(body))
        connection = self._connection(connect_timeout)
        try:
            if connection.sock is None:
                connection.connect()
            assert connection.sock is not None
            connection.sock.settimeout(read_timeout)
            connection.request(method, target, body=body, headers=all_headers)
            response = connection.getresponse()
            response.read()
        except socket.timeout as error:
            self._discard(connection)
            raise requests.Timeout(str(error)) from error
        except (OSError, http.client.HTTPException) as error:
            self._discard(connection)
            raise requests.ConnectionError(str(error)) from error
        if response.will_close:
            self._discard(connection)
        return TransportResponse(response.status, response.headers)

    def _connection(self, connect_timeout: Optional[float]) -> http.client.HTTPConnection:
        connection: Optional[http.client.HTTPConnection] = getattr(self._local, "connection", None)
        if (
            connection is not None
            and connection.sock is not None
            and _closed_by_peer(connection.sock)
        ):
            self._discard(connection)
            connection = None
        if connection is None:
            if self._https:
                connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=connect_timeout, context=self._context()
                )
            else:
                connection = http.client.HTTPConnection(
                    self._host, self._port, timeout=connect_timeout
                )
            self._local.connection = connection
            with self._lock:
                self._connections.add(connection)
        else:
            connection.timeout = connect_timeout
        return connection

    def _discard(self, connection: http.client.HTTPConnection) -> None:
        try:
            connection.close()
        except Exception:
            pass
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


def _split_timeout(timeout: Timeout) -> Tuple[Optional[float], Optional[float]]:
    if isinstance(timeout, tuple):
        return timeout[0], timeout[1]
    return timeout, timeout


def _closed_by_peer(sock: socket.socket) -> bool:
    """True when an idle keep-alive socket was closed (or reset) by the server."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
