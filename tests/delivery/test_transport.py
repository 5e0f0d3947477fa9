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


# ---------------------------------------------------------------- the response parser
# A scripted server on loopback answers each request with canned bytes, written in small
# pieces, so every framing the transport must read is exercised on a real socket.


class ScriptedServer:
    """Answers the n-th request on a connection with ``answers[n]`` (bytes), in pieces."""

    def __init__(self, answers: List[bytes], piece: int = 7, close: bool = False) -> None:
        import socket as socket_module

        self.close_after = close
        self.answers = list(answers)
        self.piece = piece
        self.requests: List[bytes] = []
        self.connections = 0
        self.listener = socket_module.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                buffer = b""
                while self.answers:
                    while b"\r\n\r\n" not in buffer:
                        data = conn.recv(65536)
                        if not data:
                            break
                        buffer += data
                    if b"\r\n\r\n" not in buffer:
                        break
                    head, _, rest = buffer.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    self.requests.append(head + b"\r\n\r\n" + rest[:length])
                    buffer = rest[length:]
                    answer = self.answers.pop(0)
                    for start in range(0, len(answer), self.piece):
                        conn.sendall(answer[start : start + self.piece])
                    if self.close_after or b"Connection: close" in answer:
                        break
                    if answer.startswith(b"HTTP/1.0"):
                        break

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


def _post_status(answers: List[bytes], posts: int = 1) -> Tuple[List[int], ScriptedServer]:
    from snowplow_tracker._transport import Transport

    server = ScriptedServer(answers)
    transport = Transport(f"http://127.0.0.1:{server.port}/com.snowplowanalytics.snowplow/tp2")
    try:
        statuses = [
            transport.post('{"a": 1}', {"Content-Type": "application/json"}, (2, 2)).status_code
            for _ in range(posts)
        ]
    finally:
        transport.close()
        server.close()
    return statuses, server


def test_responses_framed_by_length_chunks_or_close_are_read_and_the_connection_reused() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    empty = b"HTTP/1.1 204 No Content\r\n\r\n"
    continue_then_ok = b"HTTP/1.1 100 Continue\r\n\r\n" + ok
    statuses, server = _post_status([ok, chunked, empty, continue_then_ok, ok], posts=5)
    assert statuses == [200, 200, 204, 200, 200]
    assert server.connections == 1  # every framing left the connection reusable


def test_a_response_that_closes_the_connection_opens_a_new_one() -> None:
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close"
    http10 = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    statuses, server = _post_status([close, http10, ok], posts=3)
    assert statuses == [200, 200, 200]
    assert server.connections == 3


def test_the_request_carries_requests_headers_and_the_body_in_one_message() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    _, server = _post_status([ok])
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "POST /com.snowplowanalytics.snowplow/tp2 HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Host"] == f"127.0.0.1:{server.port}"
    assert headers["User-Agent"] == requests.utils.default_user_agent()
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(body)) and body == b'{"a": 1}'


def test_retry_after_is_read_whatever_its_case() -> None:
    from snowplow_tracker._transport import Transport

    answer = b"HTTP/1.1 429 Too Many\r\nretry-after: 7\r\nContent-Length: 0\r\n\r\n"
    server = ScriptedServer([answer])
    transport = Transport(f"http://127.0.0.1:{server.port}/i")
    try:
        response = transport.get({"e": "pv"}, 2)
    finally:
        transport.close()
        server.close()
    assert response.status_code == 429
    assert response.headers.get("Retry-After") == "7" and "RETRY-AFTER" in response.headers


@pytest.mark.parametrize(
    "answer",
    [
        b"SPDY/3 200 OK\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n",
    ],
    ids=["not-http", "bad-status", "short-body", "bad-chunk", "cut-headers"],
)
def test_a_malformed_or_cut_response_is_a_connection_error(answer: bytes) -> None:
    from snowplow_tracker._transport import Transport

    server = ScriptedServer([answer], close=True)
    transport = Transport(f"http://127.0.0.1:{server.port}/i")
    try:
        with pytest.raises(requests.ConnectionError):
            transport.get({"e": "pv"}, 2)
    finally:
        transport.close()
        server.close()


def test_a_collector_that_never_answers_times_out_within_the_read_timeout() -> None:
    import socket as socket_module
    import time

    from snowplow_tracker._transport import Transport

    listener = socket_module.create_server(("127.0.0.1", 0))  # accepts, never answers
    transport = Transport(f"http://127.0.0.1:{listener.getsockname()[1]}/i")
    try:
        began = time.monotonic()
        with pytest.raises(requests.Timeout):
            transport.get({"e": "pv"}, (1.0, 0.3))
        assert 0.25 <= time.monotonic() - began < 2.0
    finally:
        transport.close()
        listener.close()


def test_a_body_larger_than_the_socket_buffers_arrives_whole_when_a_signal_cuts_a_write() -> None:
    """A signal during a blocked write ends that ``sendmsg`` part-way: the next one continues
    where it stopped, and the collector gets every byte once."""
    import hashlib
    import signal
    import socket as socket_module
    import time

    from snowplow_tracker._transport import Transport

    body = "".join(f'{{"n": "{n:09d}"}}, ' for n in range(1_000_000))  # 15 MB
    received: Dict[str, Any] = {}
    listener = socket_module.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            time.sleep(0.6)  # the client's write blocks; a signal cuts it at 0.2 s
            while len(rest) < length:
                rest += conn.recv(1 << 20)
            received["digest"] = hashlib.sha256(rest).hexdigest()
            received["length"] = len(rest)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    transport = Transport(f"http://127.0.0.1:{listener.getsockname()[1]}/i")
    previous = signal.signal(signal.SIGUSR1, lambda *_: None)
    main = threading.main_thread().ident
    assert main == threading.get_ident()
    interrupt = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGUSR1))
    interrupt.start()
    try:
        response = transport.post(body, {"Content-Type": "application/json"}, (2, 5))
    finally:
        interrupt.cancel()
        interrupt.join()
        signal.signal(signal.SIGUSR1, previous)
        transport.close()
        thread.join(10)
        listener.close()
    assert response.status_code == 200
    assert received["length"] == len(body)
    assert received["digest"] == hashlib.sha256(body.encode()).hexdigest()


def test_a_collector_reading_a_trickle_cannot_hold_the_write_past_its_timeout() -> None:
    import socket as socket_module
    import time

    from snowplow_tracker._transport import Transport

    body = "x" * 15_000_000
    listener = socket_module.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket_module.SOL_SOCKET, socket_module.SO_RCVBUF, 4096)
            while not done.is_set():  # 64 KiB every 50 ms: progress, but far too slow
                try:
                    if not conn.recv(65536):
                        return
                except OSError:
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    transport = Transport(f"http://127.0.0.1:{listener.getsockname()[1]}/i")
    began = time.monotonic()
    try:
        with pytest.raises(requests.exceptions.ReadTimeout):
            transport.post(body, {"Content-Type": "application/json"}, (2, 0.5))
    finally:
        elapsed = time.monotonic() - began
        done.set()
        transport.close()
        thread.join(10)
        listener.close()
    assert elapsed < 2.0
