"""Load generator for measuring the benchmark collector alone (standard library only).

Keeps ``--connections`` keep-alive connections busy with POSTs of ``--batch`` Snowplow
events each (a mix of structured events, page views and self-describing events with two
entities, shaped like a tracker's), every event with a unique id, for ``--seconds``. The
client side is as cheap as possible (pre-built request text, raw sockets, one thread), so the
rate reached is the collector's. Prints one JSON line: requests, events and seconds.

Run: ``python blaster.py --port P --tag T --batch 100 --seconds 2``
"""

from __future__ import annotations

import argparse
import base64
import json
import selectors
import socket
import sys
import time
from typing import Dict, List, Optional

TP2 = "/com.snowplowanalytics.snowplow/tp2"
SP = "iglu:com.snowplowanalytics.snowplow/"
EID_MARK = "@@EID@@"


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _event_templates() -> List[Dict[str, str]]:
    common = {
        "eid": EID_MARK,
        "dtm": "1700000000000",
        "stm": "1700000000000",
        "tv": "py-1.1.0",
        "tna": "bench",
        "aid": "bench",
        "p": "pc",
    }
    entities = {
        "schema": SP + "contexts/jsonschema/1-0-1",
        "data": [
            {"schema": "iglu:com.acme/user/jsonschema/1-0-0", "data": {"id": 42, "tier": "gold"}},
            {
                "schema": "iglu:com.acme/product/jsonschema/1-0-0",
                "data": {"sku": "sku-1234", "price": 9.99, "currency": "EUR"},
            },
        ],
    }
    unstruct = {
        "schema": SP + "unstruct_event/jsonschema/1-0-0",
        "data": {
            "schema": "iglu:com.acme/add_to_basket/jsonschema/1-0-0",
            "data": {"sku": "sku-1234", "quantity": 2},
        },
    }
    return [
        {
            "e": "se",
            "se_ca": "shop",
            "se_ac": "add-to-basket",
            "se_la": "sku-1234",
            "se_pr": "colour=blue",
            "se_va": "2.5",
            **common,
        },
        {
            "e": "pv",
            "url": "https://shop.example/products/sku-1234",
            "page": "Product page",
            "refr": "https://shop.example/",
            **common,
        },
        {"e": "ue", "ue_px": _b64(unstruct), "cx": _b64(entities), **common},
    ]


class BodyMaker:
    """Request bodies of ``batch`` events, each event id new."""

    def __init__(self, batch: int, prefix: str) -> None:
        templates = _event_templates()
        events = [templates[i % len(templates)] for i in range(batch)]
        document = {"schema": SP + "payload_data/jsonschema/1-0-4", "data": events}
        self.parts = json.dumps(document).split(EID_MARK)
        self.batch = batch
        self.prefix = prefix[:15].ljust(15, "x")
        self.counter = 0

    def next(self) -> bytes:
        out = [self.parts[0]]
        base = self.counter
        self.counter += self.batch
        for i, part in enumerate(self.parts[1:]):
            out.append(f"{self.prefix}-{base + i:020d}")
            out.append(part)
        return "".join(out).encode()


def request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class Conn:
    """One keep-alive connection with at most one request outstanding."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.outgoing = b""
        self.incoming = bytearray()

    def response_complete(self) -> bool:
        end = self.incoming.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.incoming[:end]).decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip() == "content-length":
                length = int(value.strip())
        if len(self.incoming) < end + 4 + length:
            return False
        if not head.startswith("http/1.1 200"):
            raise RuntimeError(f"collector answered {head.splitlines()[0]!r}")
        del self.incoming[: end + 4 + length]
        return True


def blast(host: str, port: int, tag: str, batch: int, seconds: float, connections: int) -> Dict:
    maker = BodyMaker(batch, tag)
    path = f"/r/{tag}{TP2}"
    selector = selectors.DefaultSelector()
    conns: List[Conn] = []
    for _ in range(connections):
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        conn = Conn(sock)
        conns.append(conn)
    requests = 0
    began = time.perf_counter()
    deadline = began + seconds
    for conn in conns:
        conn.outgoing = request_bytes(host, port, path, maker.next())
        selector.register(conn.sock, selectors.EVENT_WRITE | selectors.EVENT_READ, conn)
    outstanding = len(conns)
    while outstanding:
        for key, mask in selector.select(timeout=5.0):
            conn = key.data
            if mask & selectors.EVENT_WRITE and conn.outgoing:
                sent = conn.sock.send(conn.outgoing)
                conn.outgoing = conn.outgoing[sent:]
                if not conn.outgoing:
                    selector.modify(conn.sock, selectors.EVENT_READ, conn)
            if mask & selectors.EVENT_READ:
                data = conn.sock.recv(65536)
                if not data:
                    raise RuntimeError("collector closed the connection")
                conn.incoming += data
                if conn.response_complete():
                    requests += 1
                    if time.perf_counter() < deadline:
                        conn.outgoing = request_bytes(host, port, path, maker.next())
                        events = selectors.EVENT_WRITE | selectors.EVENT_READ
                        selector.modify(conn.sock, events, conn)
                    else:
                        selector.unregister(conn.sock)
                        outstanding -= 1
    elapsed = time.perf_counter() - began
    for conn in conns:
        conn.sock.close()
    return {"requests": requests, "events": requests * batch, "seconds": elapsed}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Blast the benchmark collector")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=2)
    args = parser.parse_args(argv)
    result = blast(args.host, args.port, args.tag, args.batch, args.seconds, args.connections)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
