"""One benchmark scenario, run inside the interpreter of the implementation under test.

The harness (``run.py``) starts this file as ``python -I child.py '<json spec>'`` from a
temporary directory, so the interpreter imports the ``snowplow_tracker`` (or ``segment``)
installed in its own environment, never the repository's. Only the standard library and the
implementation are imported. The child prints one JSON line and leaves with ``os._exit`` so
that no exit hook (delivery drain, thread join) adds time or sends anything afterwards.

Implementations (``spec["impl"]``):

* ``snowplow``: the ``snowplow_tracker`` API, the same code for this package and 1.1.0;
* ``segment``: ``segment-analytics-python``, the peer row;
* ``floor``: no library, the CPython floor (uuid4 + dict + ``json.dumps`` of one event);
  with ``spec["wire"]``, the *wire floor*: the same events in the form the default emitter
  sends them (every value a string, the event and context JSON base64-encoded), written with
  the standard library and nothing else.

Scenarios (``spec["scenario"]``): ``latency``, ``throughput``, ``blocked``, ``memory``,
``stalls`` (the machine's own interruptions of a running thread, no library).
"""

from __future__ import annotations

import base64
import gc
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
import uuid
from typing import Any, Callable, Dict, List, Optional

Call = Callable[[], Any]
KINDS = ("structured", "page_view", "self_describing")

# The three events, as Snowplow sends them; reused by the floor and by the Segment row.
SKU = "sku-1234"
PAGE_URL = "https://shop.example/products/sku-1234"
PAGE_TITLE = "Product page"
REFERRER = "https://shop.example/"
EVENT_SCHEMA = "iglu:com.acme/add_to_basket/jsonschema/1-0-0"
EVENT_DATA = {"sku": SKU, "quantity": 2}
ENTITIES = [
    ("iglu:com.acme/user/jsonschema/1-0-0", {"id": 42, "tier": "gold"}),
    ("iglu:com.acme/product/jsonschema/1-0-0", {"sku": SKU, "price": 9.99, "currency": "EUR"}),
]
UNSTRUCT_SCHEMA = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
CONTEXTS_SCHEMA = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"


# --------------------------------------------------------------------------- collector


def collector_get(
    spec: Dict[str, Any], action: str, query: Dict[str, Any], http_timeout: float = 10.0
) -> Any:
    """Call a control endpoint of the benchmark collector."""
    args = "&".join(f"{key}={value}" for key, value in query.items())
    url = f"{spec['collector']}/_bench/{action}?{args}"
    with urllib.request.urlopen(url, timeout=http_timeout) as response:
        return json.loads(response.read())


def wait_counted(spec: Dict[str, Any], count: int, timeout: float) -> Dict[str, Any]:
    """Block (without using CPU) until the collector counted ``count`` unique ids of our tag."""
    query = {"tag": spec["tag"], "n": count, "timeout": timeout}
    return collector_get(spec, "wait", query, http_timeout=timeout + 10)


# --------------------------------------------------------------------------- implementations


class Client:
    """What a scenario needs from an implementation: three tracking calls and a flush."""

    calls: Dict[str, Call]

    def flush(self) -> None:
        raise NotImplementedError

    def buffered(self) -> Optional[int]:
        return None

    def stats(self) -> Optional[Dict[str, Any]]:
        return None


class SnowplowClient(Client):
    """``snowplow_tracker`` (this package or 1.1.0): a Tracker with one emitter."""

    def __init__(self, endpoint: str, emitter: str, **options: Any) -> None:
        import snowplow_tracker as sp

        self.version = sp.__version__
        if emitter == "sqlite":
            from snowplow_tracker.event_store import SQLiteEventStore  # ours only

            self.tmpdir = tempfile.mkdtemp(prefix="bench-sqlite-")
            max_events = options.pop("buffer_capacity")
            options["event_store"] = SQLiteEventStore(
                os.path.join(self.tmpdir, "events.db"), max_events=max_events
            )
            emitter = "sync"
        cls = sp.AsyncEmitter if emitter == "async" else sp.Emitter
        self.emitter = cls(endpoint, **options)
        tracker = sp.Tracker("bench", self.emitter, app_id="bench")
        track = tracker.track
        StructuredEvent = sp.StructuredEvent
        PageView = sp.PageView
        SelfDescribing = sp.SelfDescribing
        SDJ = sp.SelfDescribingJson

        def structured() -> Any:
            return track(
                StructuredEvent(
                    category="shop",
                    action="add-to-basket",
                    label=SKU,
                    property_="colour=blue",
                    value=2.5,
                )
            )

        def page_view() -> Any:
            return track(PageView(page_url=PAGE_URL, page_title=PAGE_TITLE, referrer=REFERRER))

        def self_describing() -> Any:
            return track(
                SelfDescribing(
                    SDJ(EVENT_SCHEMA, dict(EVENT_DATA)),
                    context=[SDJ(schema, dict(data)) for schema, data in ENTITIES],
                )
            )

        self.calls = {
            "structured": structured,
            "page_view": page_view,
            "self_describing": self_describing,
        }

    def flush(self) -> None:
        self.emitter.flush()

    def buffered(self) -> Optional[int]:
        return int(self.emitter.event_store.size())

    def stats(self) -> Optional[Dict[str, Any]]:
        stats = getattr(self.emitter, "stats", None)
        if stats is None:
            return None
        try:
            value = stats()
            return dict(value._asdict() if hasattr(value, "_asdict") else vars(value))
        except Exception as exc:
            return {"error": repr(exc)}

    def cleanup(self) -> None:
        tmpdir = getattr(self, "tmpdir", None)
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


class SegmentClient(Client):
    """``segment-analytics-python``: the Client with its consumer thread."""

    def __init__(self, endpoint: str, emitter: str, **options: Any) -> None:
        from segment.analytics import Client as SegmentAnalytics
        from segment.analytics.version import VERSION

        self.version = VERSION
        batch = options.get("batch_size") or 100
        capacity = options.get("buffer_capacity") or 10000
        kwargs: Dict[str, Any] = {
            "write_key": "bench",
            "host": endpoint,
            "max_queue_size": capacity,
            "upload_size": batch,
        }
        if options.get("hold"):
            # Nothing must be sent: the consumer keeps collecting and never uploads.
            kwargs["upload_interval"] = 3600.0
        self.client = SegmentAnalytics(**kwargs)
        client = self.client

        def structured() -> Any:
            return client.track(
                "user-42",
                "add-to-basket",
                {"category": "shop", "label": SKU, "property": "colour=blue", "value": 2.5},
            )

        def page_view() -> Any:
            return client.page("user-42", None, PAGE_TITLE, {"url": PAGE_URL, "referrer": REFERRER})

        def self_describing() -> Any:
            return client.track(
                "user-42",
                "add_to_basket",
                dict(EVENT_DATA),
                context={"user": dict(ENTITIES[0][1]), "product": dict(ENTITIES[1][1])},
            )

        self.calls = {
            "structured": structured,
            "page_view": page_view,
            "self_describing": self_describing,
        }

    def flush(self) -> None:
        self.client.flush()

    def buffered(self) -> Optional[int]:
        return int(self.client.queue.qsize())


class FloorClient(Client):
    """The CPython floor: uuid4, the event's dict, ``json.dumps`` of it. No library.

    With ``wire=True`` it is the *wire floor*: the work the protocol itself asks of a
    tracking call with the default settings, done inline with the standard library: every
    value made a string, the self-describing event and its context entities written as JSON
    (as 1.1.0 writes them: ``ensure_ascii=False``) and URL-safe base64-encoded into
    ``ue_px`` and ``cx``, then the event's own JSON. No buffer, no event objects.
    """

    def __init__(self, wire: bool = False) -> None:
        self.version = sys.version.split()[0]
        dumps = json.dumps
        uuid4 = uuid.uuid4
        now = time.time
        field_json = json.JSONEncoder(ensure_ascii=False).encode
        event_json = json.JSONEncoder().encode
        b64 = base64.urlsafe_b64encode

        def common() -> Dict[str, Any]:
            return {
                "eid": str(uuid4()),
                "dtm": str(int(now() * 1000)),
                "tv": "py-1.1.0",
                "p": "pc",
                "tna": "bench",
                "aid": "bench",
            }

        def wire_text(event: Dict[str, Any]) -> str:
            return event_json({key: str(value) for key, value in event.items()})

        finish: Callable[[Dict[str, Any]], str] = wire_text if wire else dumps

        def structured() -> Any:
            event = common()
            event.update(
                e="se",
                se_ca="shop",
                se_ac="add-to-basket",
                se_la=SKU,
                se_pr="colour=blue",
                se_va=2.5,
            )
            return finish(event)

        def page_view() -> Any:
            event = common()
            event.update(e="pv", url=PAGE_URL, page=PAGE_TITLE, refr=REFERRER)
            return finish(event)

        def self_describing() -> Any:
            event = common()
            unstruct = {"schema": EVENT_SCHEMA, "data": dict(EVENT_DATA)}
            contexts = [{"schema": schema, "data": dict(data)} for schema, data in ENTITIES]
            if not wire:
                event.update(e="ue", ue_pr=unstruct, co=contexts)
                return finish(event)
            event["e"] = "ue"
            event["ue_px"] = b64(
                field_json({"schema": UNSTRUCT_SCHEMA, "data": unstruct}).encode("utf-8")
            ).decode("ascii")
            event["cx"] = b64(
                field_json({"schema": CONTEXTS_SCHEMA, "data": contexts}).encode("utf-8")
            ).decode("ascii")
            return finish(event)

        self.calls = {
            "structured": structured,
            "page_view": page_view,
            "self_describing": self_describing,
        }

    def flush(self) -> None:
        pass


def make_client(spec: Dict[str, Any], emitter: str, endpoint: str, **options: Any) -> Client:
    impl = spec["impl"]
    if impl == "snowplow":
        return SnowplowClient(endpoint, emitter, **options)
    if impl == "segment":
        return SegmentClient(endpoint, emitter, **options)
    if impl == "floor":
        return FloorClient(wire=bool(spec.get("wire")))
    raise ValueError(f"unknown implementation {impl!r}")


def endpoint_of(spec: Dict[str, Any], tag: Optional[str] = None) -> str:
    return f"{spec['collector']}/r/{tag or spec['tag']}"


# --------------------------------------------------------------------------- statistics


def percentile(sorted_values: List[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return 0
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[int(rank) - 1]


def summarize_ns(samples: List[int]) -> Dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": percentile(ordered, 0.5) / 1000.0,
        "p99_us": percentile(ordered, 0.99) / 1000.0,
        "max_us": ordered[-1] / 1000.0 if ordered else 0.0,
        "mean_us": sum(ordered) / len(ordered) / 1000.0 if ordered else 0.0,
        "calls": len(ordered),
    }


def timed_rounds(calls: List[Call], rounds: int) -> List[List[int]]:
    """Time each call ``rounds`` times, the kinds interleaved so they share conditions."""
    clock = time.perf_counter_ns
    samples = [[0] * rounds for _ in calls]
    for index in range(rounds):
        for kind, call in enumerate(calls):
            start = clock()
            call()
            samples[kind][index] = clock() - start
    return samples


# --------------------------------------------------------------------------- scenarios


def scenario_latency(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Tracking-call cost per kind, for each requested mode.

    ``idle``: an Emitter that never sends (batch larger than the run). ``sqlite``: the same
    with a SQLiteEventStore. ``async``: an AsyncEmitter at batch size 10 delivering to the
    live collector while the calls are measured. The harness runs one mode per process.
    """
    rounds = spec["rounds"]
    warmup = spec["warmup"]
    capacity = (rounds + warmup) * len(KINDS) + 100
    out: Dict[str, Any] = {}
    for mode in spec["modes"]:
        tag = f"{spec['tag']}-{mode}"
        if mode == "async":
            options: Dict[str, Any] = {"batch_size": 10, "buffer_capacity": capacity}
            emitter = "async"
        else:
            options = {"batch_size": capacity, "buffer_capacity": capacity, "hold": True}
            emitter = "sqlite" if mode == "sqlite" else "sync"
        if spec["impl"] == "snowplow":
            options.pop("hold", None)
        # Nothing sending: no collector at all (the batch never fills anyway).
        endpoint = endpoint_of(spec, tag) if mode == "async" else spec["dead_endpoint"]
        client = make_client(spec, emitter, endpoint, **options)
        calls = [client.calls[kind] for kind in KINDS]
        timed_rounds(calls, warmup)
        before = collector_get(spec, "stats", {"tag": tag}) if mode == "async" else None
        began = time.perf_counter()
        samples = timed_rounds(calls, rounds)
        elapsed = time.perf_counter() - began
        result: Dict[str, Any] = {
            kind: summarize_ns(values) for kind, values in zip(KINDS, samples)
        }
        result["seconds"] = elapsed
        if before is not None:
            after = collector_get(spec, "stats", {"tag": tag})
            result["delivered_during_measurement"] = after["unique"] - before["unique"]
            result["tracked_during_measurement"] = rounds * len(KINDS)
        if mode != "async":
            result["buffered"] = client.buffered()
        out[mode] = result
        out["version"] = client.version
        if isinstance(client, SnowplowClient):
            client.cleanup()
    return out


def scenario_throughput(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Track ``events`` events and wait until the collector counted all of them.

    Wall time and this process's CPU time (all threads) run from the first measured call to
    the collector's confirmation. A warm-up of two batches is delivered first.
    """
    batch = spec["batch_size"]
    events = spec["events"]
    warm = 2 * batch
    client = make_client(
        spec,
        spec["emitter"],
        endpoint_of(spec),
        batch_size=batch,
        buffer_capacity=events + warm + batch,
    )
    calls = [client.calls[kind] for kind in KINDS]
    for index in range(warm):
        calls[index % 3]()
    client.flush()
    warm_state = wait_counted(spec, warm, spec["timeout"])
    if warm_state.get("timed_out"):
        return {"error": "warm-up events never arrived", "collector": warm_state}
    gc.collect()
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for index in range(events):
        calls[index % 3]()
    wall_loop = time.perf_counter() - wall0
    client.flush()
    final = wait_counted(spec, warm + events, spec["timeout"])
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    return {
        "version": client.version,
        "events": events,
        "warmup_events": warm,
        "wall_s": wall,
        "cpu_s": cpu,
        "tracking_loop_s": wall_loop,
        "events_per_s": events / wall,
        "cpu_us_per_event": cpu / events * 1e6,
        "timed_out": bool(final.get("timed_out")),
        "collector": final,
        "emitter_stats": client.stats(),
    }


def scenario_blocked(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Wall time of ``calls`` tracking calls while the collector delays every answer.

    The harness sets the delay on this run's tag. One batch is delivered first (warm-up).
    """
    calls_n = spec["calls"]
    client = make_client(spec, spec["emitter"], endpoint_of(spec), batch_size=10)
    calls = [client.calls[kind] for kind in KINDS]
    for index in range(10):
        calls[index % 3]()
    client.flush()
    wait_counted(spec, 10, spec["timeout"])
    clock = time.perf_counter_ns
    durations = [0] * calls_n
    began = clock()
    for index in range(calls_n):
        start = clock()
        calls[index % 3]()
        durations[index] = clock() - start
    total = (clock() - began) / 1e9
    summary = summarize_ns(durations)
    return {
        "version": client.version,
        "calls": calls_n,
        "blocked_s": total,
        "blocked_ms_per_1000": total * 1000.0 * 1000.0 / calls_n,
        "call_median_us": summary["median_us"],
        "call_p99_us": summary["p99_us"],
        "call_max_us": summary["max_us"],
    }


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def scenario_memory(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Resident memory per buffered event, the collector down, nothing ever sent.

    The endpoint is a closed port and the batch size exceeds the run, so every event stays
    in the emitter's buffer (Segment: its queue and its consumer's pending batch).
    """
    events = spec["events"]
    warm = 1000
    capacity = events + warm + 10
    options: Dict[str, Any] = {"batch_size": capacity, "buffer_capacity": capacity}
    if spec["impl"] == "segment":
        options["hold"] = True
    client = make_client(spec, "sync", spec["dead_endpoint"], **options)
    kinds = spec["kinds"]
    calls = [client.calls[kind] for kind in kinds]
    for index in range(warm):
        calls[index % len(calls)]()
    gc.collect()
    rss0 = _rss_bytes()
    began = time.perf_counter()
    for index in range(events):
        calls[index % len(calls)]()
    elapsed = time.perf_counter() - began
    gc.collect()
    rss1 = _rss_bytes()
    return {
        "version": client.version,
        "events": events,
        "warmup_events": warm,
        "kinds": kinds,
        "rss_before": rss0,
        "rss_after": rss1,
        "bytes_per_event": (rss1 - rss0) / events,
        "buffered": client.buffered(),
        "seconds": elapsed,
    }


def scenario_stalls(spec: Dict[str, Any]) -> Dict[str, Any]:
    """How often this machine stops a running thread, and for how long (no library at all).

    A loop that only reads the clock for ``seconds``: any gap between two reads longer than
    5 µs is time the thread did not run its own code (timer and other interrupts, the
    hypervisor, other processes). A timed call of d µs absorbs such a stall with a
    probability of about (stalls per second) x d, which is what its p99 is made of once that
    probability nears 1 %.
    """
    clock = time.perf_counter_ns
    seconds = float(spec["seconds"])
    gaps: List[int] = []
    start = last = clock()
    end = start + int(seconds * 1e9)
    while last < end:
        now = clock()
        if now - last > 5_000:
            gaps.append(now - last)
        last = now
    elapsed = (last - start) / 1e9
    long_gaps = sorted(gap for gap in gaps if gap > 20_000)
    return {
        "seconds": elapsed,
        "stalls_per_s_over_5us": len(gaps) / elapsed,
        "stalls_per_s_over_20us": len(long_gaps) / elapsed,
        "median_stall_over_20us_us": percentile(long_gaps, 0.5) / 1000.0,
        "p90_stall_over_20us_us": percentile(long_gaps, 0.9) / 1000.0,
    }


SCENARIOS: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {
    "stalls": scenario_stalls,
    "latency": scenario_latency,
    "throughput": scenario_throughput,
    "blocked": scenario_blocked,
    "memory": scenario_memory,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("src"):
        # The harness's snapshot of the package under test, ahead of the installed one.
        sys.path.insert(0, spec["src"])
    try:
        result = SCENARIOS[spec["scenario"]](spec)
        code = 0
    except Exception as exc:  # reported to the harness, which marks the row as failed
        import traceback

        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        code = 1
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
