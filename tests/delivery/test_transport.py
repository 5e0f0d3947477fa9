"""The emitters' default keep-alive transport: HTTPS verification, headers, fallbacks."""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import requests

from snowplow_tracker._transport import encode_query, usable_for
from snowplow_tracker.collector import LocalCollector
from snowplow_tracker.emitters import Emitter


def _event() -> Dict[str, Any]:
    return {"e": "se", "se_ca": "c", "se_ac": "a", "p": "srv", "tv": "t", "eid": str(uuid.uuid4())}


@pytest.fixture()
def tls_server(tmp_path: Path) -> Iterator[Tuple[str, Path, List[Dict[str, Any]]]]:
    """HTTPS on 127.0.0.1 with a self-signed certificate; yields (host:port, cert, log)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    received: List[Dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", cert, received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_https_is_verified_against_the_configured_ca_bundle(
    tls_server: Tuple[str, Path, List[Dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    host_port, cert, received = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    emitter = Emitter(host_port, protocol="https", batch_size=1, request_timeout=5)
    emitter.input(_event())
    assert emitter.stats().sent == 1
    assert received[0]["headers"]["User-Agent"] == requests.utils.default_user_agent()
    emitter.shutdown(timeout=0)


def test_https_with_an_untrusted_certificate_fails_like_requests(
    tls_server: Tuple[str, Path, List[Dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    host_port, _, received = tls_server
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    emitter = Emitter(host_port, protocol="https", batch_size=1, request_timeout=5)
    assert emitter.http_post('{"schema": "x", "data": []}') == -1
    assert received == []
    emitter.shutdown(timeout=0)


def test_requests_sees_the_same_headers_and_keeps_the_connection(
    snowplow_collector: LocalCollector,
) -> None:
    emitter = Emitter(snowplow_collector.endpoint, batch_size=1)
    for _ in range(3):
        emitter.input(_event())
    assert snowplow_collector.wait_for(3, timeout=5)
    headers = [r["headers"] for r in snowplow_collector.requests()]
    assert {h["User-Agent"] for h in headers} == {requests.utils.default_user_agent()}
    assert all(h["Content-Type"] == "application/json; charset=utf-8" for h in headers)
    emitter.shutdown(timeout=0)


def test_get_query_is_encoded_like_requests() -> None:
    params = {"e": "pv", "url": "https://e.com/a b?c=d&é", "n": 7, "f": 2.5, "b": True, "x": None}
    prepared = requests.Request("GET", "http://h/i", params=params).prepare()
    assert prepared.url == "http://h/i?" + encode_query(params)


def test_proxy_in_the_environment_keeps_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert not usable_for("http://collector.example.com/i")
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.delenv("http_proxy", raising=False)
    assert usable_for("http://collector.example.com/i")
