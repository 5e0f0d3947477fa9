"""Capacity of the local collector with the load generator in a separate process.

Starts a ``LocalCollector`` in this process and runs a raw-socket keep-alive load generator
(``--connections`` connections, one request outstanding on each) in a child process, which
POSTs ``payload_data`` bodies of ``--batch`` events (the events of
``collector_throughput.make_event``) for ``--seconds``. Runs validation on and off, batches of
10 and 100 (or the ones given), and prints one JSON document. Besides the wall-clock rates,
it reports the collector process's CPU time per request (``time.process_time`` of this
process, which holds only the collector): on a busy machine the wall-clock rates depend on
what else runs, the CPU cost does not.

    python benchmarks/collector_capacity.py
    python benchmarks/collector_capacity.py --seconds 3 --batch 10 --validate off
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.collector_throughput import DEFAULT_IGLU, make_bodies  # noqa: E402
from snowplow_tracker.collector import LocalCollector  # noqa: E402

TP2 = "/com.snowplowanalytics.snowplow/tp2"


def _request(port: int, body: bytes) -> bytes:
    head = (
        f"POST {TP2} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _complete(incoming: bytearray) -> Optional[int]:
    """Status of a complete response at the start of ``incoming`` (removed), else None."""
    end = incoming.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(incoming[:end]).decode("latin-1").lower()
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip() == "content-length":
            length = int(value.strip())
    if len(incoming) < end + 4 + length:
        return None
    del incoming[: end + 4 + length]
    return int(head.split(" ", 2)[1])


def blast(port: int, batch: int, seconds: float, connections: int) -> Dict[str, Any]:
    """The load generator (run in the child process).

    Lean on purpose, so that the rate measured is the collector's: pre-built requests, one
    ``epoll`` (``select`` elsewhere) for reading, and each next request sent right after
    the previous answer (a partly sent request is finished when the socket is writable).
    """
    requests = [_request(port, body) for body in make_bodies(batch, 50)]
    socks: Dict[int, socket.socket] = {}
    incoming: Dict[int, bytearray] = {}
    outgoing: Dict[int, bytes] = {}
    selector = selectors.DefaultSelector()
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        fd = sock.fileno()
        socks[fd], incoming[fd], outgoing[fd] = sock, bytearray(), b""
        selector.register(sock, selectors.EVENT_READ, fd)
    done = failed = n = 0
    began = time.perf_counter()
    deadline = began + seconds

    def send(fd: int, data: bytes) -> None:
        try:
            sent = socks[fd].send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            outgoing[fd] = data[sent:]
            selector.modify(socks[fd], selectors.EVENT_READ | selectors.EVENT_WRITE, fd)

    for fd in socks:
        send(fd, requests[n % len(requests)])
        n += 1
    outstanding = len(socks)
    while outstanding:
        for key, mask in selector.select(timeout=10.0):
            fd = key.data
            sock = socks[fd]
            if mask & selectors.EVENT_WRITE:
                rest = outgoing[fd]
                sent = sock.send(rest)
                outgoing[fd] = rest[sent:]
                if not outgoing[fd]:
                    selector.modify(sock, selectors.EVENT_READ, fd)
            if mask & selectors.EVENT_READ:
                data = sock.recv(65536)
                if not data:
                    raise RuntimeError("the collector closed the connection")
                buffer = incoming[fd]
                buffer += data
                status = _complete(buffer)
                if status is None:
                    continue
                done += 1
                failed += status != 200
                if time.perf_counter() < deadline:
                    send(fd, requests[n % len(requests)])
                    n += 1
                else:
                    selector.unregister(sock)
                    outstanding -= 1
    elapsed = time.perf_counter() - began
    for sock in socks.values():
        sock.close()
    return {"requests": done, "failed": failed, "seconds": elapsed}


def measure(
    *, validate: bool, batch: int, seconds: float, connections: int, iglu: Optional[Path]
) -> Dict[str, Any]:
    """One run: collector here, load generator in a child process."""
    collector = LocalCollector(
        iglu_dirs=[iglu] if iglu else [],
        lenient=iglu is None,
        validate=validate,
        max_events=200_000,
    )
    with collector:
        cpu_before = time.process_time()
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--client",
                str(collector.port),
                "--batch",
                str(batch),
                "--seconds",
                str(seconds),
                "--connections",
                str(connections),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        cpu = time.process_time() - cpu_before
        result = json.loads(child.stdout)
        stats = collector.stats()
    rate = result["requests"] / result["seconds"]
    cpu_per_request = cpu / max(result["requests"], 1)
    return {
        "validate": validate,
        "batch": batch,
        "connections": connections,
        "seconds": round(result["seconds"], 3),
        "requests_per_s": round(rate),
        "events_per_s": round(rate * batch),
        "collector_cpu_us_per_request": round(cpu_per_request * 1e6),
        "requests_per_cpu_s": round(1 / cpu_per_request) if cpu_per_request else None,
        "events_per_cpu_s": round(batch / cpu_per_request) if cpu_per_request else None,
        "failed_requests": result["failed"],
        "good": stats["good_received"],
        "bad": stats["bad_received"],
    }


def main(argv: Optional[List[str]] = None) -> int:
    """Run the measurements (or, with ``--client``, the load generator) and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--client", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, action="append", default=None)
    parser.add_argument("--validate", choices=("on", "off", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--iglu-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    batches = args.batch or [10, 100]
    if args.client is not None:
        result = blast(args.client, batches[0], args.seconds, args.connections)
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    iglu = args.iglu_dir or (DEFAULT_IGLU if (DEFAULT_IGLU / "schemas").is_dir() else None)
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.validate]
    runs = [
        measure(
            validate=validate,
            batch=batch,
            seconds=args.seconds,
            connections=args.connections,
            iglu=iglu,
        )
        for validate in modes
        for batch in batches
    ]
    report = {
        "benchmark": "collector_capacity",
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "client": "separate process, raw sockets, keep-alive",
        "iglu_dir": str(iglu) if iglu else None,
        "runs": runs,
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
