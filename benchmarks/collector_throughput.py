"""Throughput of the local collector: events per second absorbed over HTTP.

Several client threads, each with its own ``requests.Session`` (keep-alive), POST
``payload_data`` batches of 10 and of 100 events to a ``LocalCollector`` running in this
process, with validation on (protocol checks + JSON Schema validation of every
self-describing event and entity) and off. Also measures the validation cost alone (no HTTP).
Prints one JSON document.

    python benchmarks/collector_throughput.py --quick
    python benchmarks/collector_throughput.py --threads 8 --seconds 5
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import requests

from snowplow_tracker.collector import LocalCollector

SP = "iglu:com.snowplowanalytics.snowplow/"
TP2 = "/com.snowplowanalytics.snowplow/tp2"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_IGLU = REPO.parent / "shared" / "iglu"


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def make_event(index: int) -> Dict[str, str]:
    """Alternately a page view with one entity and a link click with two entities."""
    entities = [{"schema": SP + "web_page/jsonschema/1-0-0", "data": {"id": str(uuid.uuid4())}}]
    event = {
        "e": "pv",
        "p": "web",
        "tv": "py-1.1.0",
        "tna": "bench",
        "aid": "benchmark",
        "eid": str(uuid.uuid4()),
        "dtm": str(1_700_000_000_000 + index),
        "stm": str(1_700_000_000_500 + index),
        "url": f"https://shop.example/page/{index}",
        "page": "A page",
        "res": "1920x1080",
        "vp": "800x600",
        "lang": "en",
        "uid": "user-1",
    }
    if index % 2:
        event["e"] = "ue"
        event["ue_px"] = _b64(
            {
                "schema": SP + "unstruct_event/jsonschema/1-0-0",
                "data": {
                    "schema": SP + "link_click/jsonschema/1-0-1",
                    "data": {"targetUrl": "https://shop.example/next", "elementId": "a"},
                },
            }
        )
        entities.append(
            {
                "schema": SP + "geolocation_context/jsonschema/1-1-0",
                "data": {"latitude": 51.5, "longitude": -0.12},
            }
        )
    event["cx"] = _b64({"schema": SP + "contexts/jsonschema/1-0-1", "data": entities})
    return event


def make_bodies(batch: int, count: int) -> List[bytes]:
    """``count`` distinct POST bodies of ``batch`` events each."""
    bodies = []
    for n in range(count):
        events = [make_event(n * batch + i) for i in range(batch)]
        document = {"schema": SP + "payload_data/jsonschema/1-0-4", "data": events}
        bodies.append(json.dumps(document).encode())
    return bodies


def run_http(
    *, validate: bool, batch: int, threads: int, seconds: float, iglu: Optional[Path]
) -> Dict[str, Any]:
    """Absorb POSTs for ``seconds`` from ``threads`` clients; return the measured rates."""
    iglu_dirs = [iglu] if iglu is not None else []
    collector = LocalCollector(
        iglu_dirs=iglu_dirs, lenient=iglu is None, validate=validate, max_events=200_000
    )
    bodies = make_bodies(batch, 20)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    sent = [0] * threads
    failures = [0] * threads
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def client(slot: int) -> None:
        with requests.Session() as http:
            url = collector.url(TP2)
            http.post(url, data=bodies[0], headers=headers, timeout=30)  # warm-up connection
            start.wait()
            n = 0
            while time.perf_counter() < stop_at[0]:
                response = http.post(url, data=bodies[n % len(bodies)], headers=headers, timeout=30)
                if response.status_code == 200:
                    sent[slot] += batch
                else:
                    failures[slot] += 1
                n += 1

    with collector:
        workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        stop_at[0] = float("inf")  # set properly once every client is connected and warm
        start.wait()
        warmup = collector.stats()["events_received"]
        began = time.perf_counter()
        stop_at[0] = began + seconds
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - began
        stats = collector.stats()
    events = sum(sent)
    return {
        "validate": validate,
        "batch": batch,
        "threads": threads,
        "seconds": round(elapsed, 3),
        "events": events,
        "events_per_s": round(events / elapsed),
        "requests_per_s": round(events / batch / elapsed),
        "failed_requests": sum(failures),
        "collector_events_received": stats["events_received"] - warmup,
        "good": stats["good_received"],
        "bad": stats["bad_received"],
    }


def run_in_process(iglu: Optional[Path], seconds: float) -> Dict[str, Any]:
    """Validation cost without HTTP: ``EventValidator.check`` on decoded events."""
    collector = LocalCollector(iglu_dirs=[iglu] if iglu else [], lenient=iglu is None)
    events = [make_event(i) for i in range(200)]
    check = collector.validator.check
    for event in events:
        assert not check(event).errors
    count = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        for event in events:
            check(event)
        count += len(events)
    elapsed = time.perf_counter() - began
    return {"events": count, "events_per_s": round(count / elapsed)}


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (about 10 s in total)")
    parser.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--seconds", type=float, default=None, help="duration of each run")
    parser.add_argument("--iglu-dir", type=Path, default=None, help="Iglu repository to use")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (1.5 if args.quick else 5.0)
    iglu = args.iglu_dir or (DEFAULT_IGLU if (DEFAULT_IGLU / "schemas").is_dir() else None)
    results = [
        run_http(validate=validate, batch=batch, threads=args.threads, seconds=seconds, iglu=iglu)
        for validate in (True, False)
        for batch in (10, 100)
    ]
    report = {
        "benchmark": "collector_throughput",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "iglu_dir": str(iglu) if iglu else None,
        "events_per_body": "half page views with 1 entity, half link clicks with 2 entities",
        "http": results,
        "validation_only": run_in_process(iglu, seconds),
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
