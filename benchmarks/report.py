"""Turns a results document into docs/benchmarks.md, the chart, and a console summary."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from benchmarks import envs

KINDS = ("structured", "page_view", "self_describing")
KIND_LABELS = {
    "structured": "structured event",
    "page_view": "page view",
    "self_describing": "self-describing + 2 entities",
}
IMPLS = ("ours", "v1_1_0", "segment")
EMITTER_LABELS = {"sync": "Emitter", "async": "AsyncEmitter"}
PLOT = Path(__file__).resolve().parent / "plot.py"


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _num(value: Optional[float], digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _ratio(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}x"


def _target_ratio(target: Dict[str, Any]) -> str:
    """The ratio of a target, with more digits where two would hide which side it is on."""
    ratio = target.get("ratio")
    threshold = target.get("threshold")
    if ratio is None or threshold is None or round(ratio, 2) != round(threshold, 2):
        return _ratio(ratio)
    return f"{ratio:.4f}x"


def _verdict(passed: Optional[bool]) -> str:
    if passed is None:
        return "n/a"
    return "pass" if passed else "**miss**"


def _impl_header(doc: Dict[str, Any], key: str) -> str:
    impl = doc["implementations"].get(key, {})
    if key == "ours":
        return f"ours ({impl.get('version') or '?'})"
    if key == "v1_1_0":
        return "1.1.0"
    return f"Segment {impl.get('version') or ''}".strip()


def targets_table(doc: Dict[str, Any]) -> List[str]:
    lines = [
        "| Target | Goal | Ours | Baseline | Ratio | Result |",
        "|---|---|---:|---:|---:|---|",
    ]
    for target in doc["targets"]:
        baseline = target.get("v1_1_0")
        base_label = "1.1.0"
        if target.get("baseline") is not None or target.get("baseline_label"):
            baseline = target.get("baseline")
            base_label = target.get("baseline_label", "")
        unit = target["unit"]
        lines.append(
            f"| {target['name']} | {target['target']} | {_num(target['ours'])} {unit} | "
            f"{_num(baseline)} {unit} ({base_label}) | {_target_ratio(target)} | "
            f"{_verdict(target['pass'])} |"
        )
    return lines


def throughput_table(doc: Dict[str, Any]) -> List[str]:
    tp = doc["throughput"]
    heads = [_impl_header(doc, k) for k in IMPLS]
    lines = [
        "| Emitter | Batch | "
        + " | ".join(f"{h} events/s" for h in heads)
        + " | ours vs 1.1.0 | "
        + " | ".join(f"{h} CPU µs/event" for h in heads)
        + " | ours vs 1.1.0 | collector busy (max) |",
        "|---|---:|" + "---:|" * (2 * len(IMPLS) + 3),
    ]
    for emitter in ("sync", "async"):
        for batch in ("10", "100"):
            rows = _get(tp, emitter, batch) or {}
            rates = [_num(_get(rows, k, "events_per_s"), 0) for k in IMPLS]
            cpus = [_num(_get(rows, k, "cpu_us_per_event")) for k in IMPLS]
            busy = [
                r.get("collector_utilization_max")
                for r in rows.values()
                if r.get("collector_utilization_max") is not None
            ]
            lines.append(
                f"| {EMITTER_LABELS[emitter]} | {batch} | "
                + " | ".join(rates)
                + f" | {_ratio(_get(rows, 'ours', 'events_per_s_vs_1_1_0'))} | "
                + " | ".join(cpus)
                + f" | {_ratio(_get(rows, 'ours', 'cpu_per_event_vs_1_1_0'))} | "
                + (f"{max(busy) * 100:.0f} %" if busy else "n/a")
                + " |"
            )
    return lines


def latency_table(doc: Dict[str, Any]) -> List[str]:
    lat = doc["latency"]
    floor = doc["floor"]
    heads = [_impl_header(doc, k) for k in IMPLS]
    lines = [
        "| Event | Emitter state | "
        + " | ".join(f"{h} median / p99 µs" for h in heads)
        + " | CPython floor median / p99 µs | wire floor median / p99 µs"
        + " | ours vs 1.1.0 median | ours vs 1.1.0 p99 |",
        "|---|---|" + "---:|" * (len(IMPLS) + 4),
    ]
    wire = floor.get("wire") or {}
    states = {"idle": "nothing sending", "async": "AsyncEmitter delivering"}
    for mode in ("idle", "async"):
        for kind in KINDS:
            cells = []
            for key in IMPLS:
                row = _get(lat, mode, key, kind) or {}
                cells.append(f"{_num(row.get('median_us'))} / {_num(row.get('p99_us'))}")
            floor_cells = "- | -"
            if mode == "idle":
                floor_cells = " | ".join(
                    f"{_num(_get(row, kind, 'median_us'))} / {_num(_get(row, kind, 'p99_us'))}"
                    for row in (floor, wire)
                )
            ours = _get(lat, mode, "ours", kind) or {}
            base = _get(lat, mode, "v1_1_0", kind) or {}
            med = _div(ours.get("median_us"), base.get("median_us"))
            p99 = _div(ours.get("p99_us"), base.get("p99_us"))
            lines.append(
                f"| {KIND_LABELS[kind]} | {states[mode]} | "
                + " | ".join(cells)
                + f" | {floor_cells} | {_ratio(med)} | {_ratio(p99)} |"
            )
    return lines


def _div(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or not b:
        return None
    return a / b


def blocked_table(doc: Dict[str, Any]) -> List[str]:
    blocked = doc["blocked"]
    heads = [_impl_header(doc, k) for k in IMPLS]
    lines = [
        "| Emitter | "
        + " | ".join(f"{h} ms per 1,000 calls" for h in heads)
        + " | ours vs 1.1.0 |",
        "|---|" + "---:|" * (len(IMPLS) + 1),
    ]
    for emitter in ("sync", "async"):
        values = [_get(blocked, emitter, k, "ms_per_1000_calls") for k in IMPLS]
        cells = [_num(v) if v is not None else "n/a" for v in values]
        lines.append(
            f"| {EMITTER_LABELS[emitter]} | "
            + " | ".join(cells)
            + f" | {_ratio(_div(values[0], values[1]))} |"
        )
    return lines


def memory_table(doc: Dict[str, Any]) -> List[str]:
    memory = doc["memory"]
    heads = [_impl_header(doc, k) for k in IMPLS]
    values = [_get(memory, k, "bytes_per_event") for k in IMPLS]
    return [
        "| | " + " | ".join(heads) + " | ours vs 1.1.0 |",
        "|---|" + "---:|" * (len(IMPLS) + 1),
        "| bytes per buffered event | "
        + " | ".join(_num(v, 0) for v in values)
        + f" | {_ratio(_get(memory, 'ours', 'vs_1_1_0'))} |",
    ]


def sqlite_table(doc: Dict[str, Any]) -> List[str]:
    sqlite = doc["sqlite"]
    lat = doc["latency"]
    lines = [
        "| Event | in-memory median / p99 µs | SQLiteEventStore median / p99 µs | ratio (median) |",
        "|---|---:|---:|---:|",
    ]
    for kind in KINDS:
        mem = _get(lat, "idle", "ours", kind) or {}
        sql = _get(sqlite, "ours", kind) or {}
        lines.append(
            f"| {KIND_LABELS[kind]} | {_num(mem.get('median_us'))} / {_num(mem.get('p99_us'))} | "
            f"{_num(sql.get('median_us'))} / {_num(sql.get('p99_us'))} | "
            f"{_ratio(_get(sqlite, 'ratio_to_in_memory', kind))} |"
        )
    return lines


def collector_table(doc: Dict[str, Any]) -> List[str]:
    col = doc["collector"]
    lines = [
        "| Batch | collector alone, events/s | collector CPU µs/event | one-core capacity, "
        "events/s | best client, events/s | headroom |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for batch in ("10", "100"):
        lines.append(
            f"| {batch} | {_num(_get(col, 'events_per_s', batch), 0)} | "
            f"{_num(_get(col, 'cpu_us_per_event', batch))} | "
            f"{_num(_get(col, 'capacity_one_core_events_per_s', batch), 0)} | "
            f"{_num(_get(col, 'best_client_events_per_s', batch), 0)} | "
            f"{_ratio(_get(col, 'headroom', batch))} |"
        )
    return lines


def _background_sentence(shares: Dict[str, Any]) -> str:
    if not shares:
        return ""
    parts = [
        f"{section} {value['median'] * 100:.0f} % (max {value['max'] * 100:.0f} %)"
        for section, value in sorted(shares.items())
    ]
    return (
        "; other processes used this share of the machine's CPU during the timed runs "
        "(median per section): " + ", ".join(parts)
    )


def _settle_sentence(settle: Dict[str, Any], settings: Dict[str, Any]) -> str:
    if not settings.get("settle_max_s"):
        return ""
    return (
        f". Before each timed run the harness waited up to {settings['settle_max_s']:g} s for "
        f"other work to drop below {settings['settle_threshold'] * 100:.0f} % of the CPU "
        f"({settle.get('children_delayed', 0)} runs waited, "
        f"{settle.get('seconds_waited', 0):.0f} s in all)"
    )


def _calls_phrase(sync_calls: int, async_calls: int) -> str:
    if sync_calls == async_calls:
        return f"{sync_calls:,}"
    return f"{sync_calls:,} (Emitter) or {async_calls:,} (AsyncEmitter)"


def _below_floor_lines(doc: Dict[str, Any]) -> List[str]:
    """A note under the targets for each missed p99 goal that lies below the wire floor's p99."""
    wire = (doc.get("floor") or {}).get("wire") or {}
    lines: List[str] = []
    for kind in KINDS:
        target = next(
            (t for t in doc["targets"] if t.get("metric") == "p99_async" and t.get("kind") == kind),
            None,
        )
        floor_p99 = _get(wire, kind, "p99_us")
        if target is None or target["pass"] is not False or target.get("v1_1_0") is None:
            continue
        goal = target["threshold"] * target["v1_1_0"]
        if floor_p99 is None or floor_p99 < goal:
            continue
        lines += [
            "",
            f"For the {KIND_LABELS[kind]} event, the p99 goal of {_num(goal)} µs lies below the "
            f"p99 of the wire floor for the same event with nothing sending ({_num(floor_p99)} µs, "
            f"median {_num(_get(wire, kind, 'median_us'))} µs): the work the wire form asks "
            "for, done inline with no library, no buffer and no sender, already misses it on "
            "this machine.",
        ]
    return lines


def _stalls_sentence(stalls: Optional[Dict[str, Any]]) -> str:
    """What the machine's own interruptions do to a p99, from the ``stalls`` census."""
    rate = _get(stalls, "stalls_per_s_over_20us")
    if not rate:
        return ""
    median = _get(stalls, "median_stall_over_20us_us")

    def hit(call_us: float) -> str:
        return f"{rate * call_us / 1e4:.2f} %"

    return (
        f" With nothing else running, a thread on this machine that only reads the clock is "
        f"stopped {rate:,.0f} times a second for more than 20 µs (median {_num(median)} µs; "
        f"{_num(_get(stalls, 'stalls_per_s_over_5us'), 0)} times for more than 5 µs): "
        "interrupts, the hypervisor. A call of d µs absorbs one with a probability of about "
        f"that rate times d: {hit(7)} for a 7 µs call, {hit(15)} for 15 µs, {hit(35)} for 35 µs. "
        "Once that nears 1 %, the call's p99 is its median plus one such stall, whatever the "
        "code does."
    )


def _local_collector_sentence(local: Optional[Dict[str, Any]]) -> str:
    rates = (local or {}).get("events_per_s") or {}
    if not rates:
        return ""
    return (
        " (`benchmarks/collector_throughput.py --quick` in this run, clients in the same "
        f"process: {_num(rates.get('not_validating_batch_10'), 0)} / "
        f"{_num(rates.get('not_validating_batch_100'), 0)} events/s at batch size 10 / 100 "
        f"with validation off, {_num(rates.get('validating_batch_10'), 0)} / "
        f"{_num(rates.get('validating_batch_100'), 0)} with validation on)"
    )


def render_markdown(doc: Dict[str, Any], chart_name: str) -> str:
    meta = doc["meta"]
    machine = meta["machine"]
    s = doc["settings"]
    impls = doc["implementations"]
    col = doc["collector"]
    minutes = meta["duration_s"] / 60
    misses = [t for t in doc["targets"] if t["pass"] is False]
    passes = [t for t in doc["targets"] if t["pass"] is True]
    unknown = [t for t in doc["targets"] if t["pass"] is None]
    dirty = ""
    if meta.get("library_uncommitted_changes"):
        files = meta.get("library_uncommitted_files") or []
        listed = ", ".join(f"`{name}`" for name in files[:8]) + (", ..." if len(files) > 8 else "")
        dirty = " plus uncommitted changes" + (f" in {listed}" if listed else "")
    busy = col.get("max_utilization_during_client_runs")
    out: List[str] = [
        "# Benchmarks",
        "",
        "<!-- Generated by benchmarks/run.py (full mode); edit benchmarks/report.py, not this "
        "file. -->",
        "",
        "How much a tracking call costs, how fast events reach a collector and at what CPU "
        "cost, how long the caller waits on a slow collector, and how much memory buffered "
        "events take: this package against the original `snowplow-tracker` 1.1.0 from PyPI, "
        "with `segment-analytics-python` as a peer row, all measured in one run against one "
        "loopback collector.",
        "",
        "Run it (the first run also builds the 1.1.0, Segment and matplotlib environments "
        "under `.cache/`):",
        "",
        "```bash",
        ".venv/bin/python benchmarks/run.py           # full run, about "
        f"{max(1, round(minutes))} minutes here; updates this page",
        ".venv/bin/python benchmarks/run.py --quick   # under a minute; "
        "benchmarks/results/latest-quick.json only",
        "```",
        "",
        "Options: `--no-docs` (results JSON only), `--no-segment`, `--repeats N`, "
        "`--output PATH`, `--render JSON` (rewrite this page from a results file). CI runs "
        "the quick mode as a smoke test "
        "(`tests/test_benchmarks_smoke.py`: it must finish and write every section; timings "
        "are not judged).",
        "",
        "## Latest full run",
        "",
        f"- Started {meta['date_utc']} UTC; took {minutes:.1f} minutes.",
        f"- Library measured: the working tree at commit `{meta['commit_short']}`{dirty}, "
        "copied at the start of the run (children import the copy, so edits made during the "
        "run are not measured). The library is being optimised concurrently; these figures "
        "are a snapshot.",
        f"- Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['platform']}, "
        f"CPython {machine['python']}. The machine is shared: load average before / after "
        f"{meta.get('load_average_before')} / {meta.get('load_average_after')}"
        + _background_sentence(meta.get("background_cpu_share") or {})
        + _settle_sentence(meta.get("settle") or {}, s)
        + ".",
        "- Implementations: "
        + "; ".join(
            f"{v['label']}"
            + (f" ({v['version']})" if v.get("version") and v["version"] not in v["label"] else "")
            + ("" if v["available"] else f" — unavailable: {v.get('error')}")
            for k, v in impls.items()
        )
        + ".",
        f"- Repeats: {s['repeats']} (tracking call: {s['latency_repeats']} shorter runs; "
        f"end-to-end: {s.get('throughput_repeats', s['repeats'])}; "
        f"memory: {s['memory_repeats']}); every figure is the "
        "median over the repeats, and every ratio compares two figures of this same run.",
        "",
        f"![Benchmark chart]({chart_name})",
        "",
        "## Targets",
        "",
        f"{len(passes)} met, {len(misses)} missed"
        + (f", {len(unknown)} not measured" if unknown else "")
        + ". Throughput ratios are ours ÷ 1.1.0 (higher is better); cost, latency and memory "
        "ratios are ours ÷ baseline (lower is better).",
        "",
        *targets_table(doc),
        *_below_floor_lines(doc),
        "",
        "## Results",
        "",
        "### End-to-end throughput and client CPU",
        "",
        f"{s['throughput_events']:,} events (structured, page view and self-describing in "
        "turn) tracked back to back after a warm-up of two batches; the clock stops when the "
        "collector has counted every event id. Client CPU is the child process's CPU time, "
        "all threads, over the same span. Every run is checked: exactly the expected number "
        "of unique ids, no duplicate, no bad request. Segment has no synchronous batching "
        "mode, so it has no Emitter rows.",
        "",
        *throughput_table(doc),
        "",
        "### Tracking call",
        "",
        f"{s['latency_rounds']:,} timed calls per event type (after {s['latency_warmup']:,} "
        "warm-up calls), the three types interleaved; each call is timed with "
        "`perf_counter_ns` and includes building the event object. Each mode of each "
        "implementation runs in a fresh process, and the implementations take turns over "
        f"{s['latency_repeats']} such short runs: this machine's speed changes by up to 1.5x "
        "from one fraction of a second to the next, and many short runs in turns spread "
        "that over all implementations. *Nothing sending*: an `Emitter` whose batch "
        "is larger than the run, pointed at a closed port, so the buffer grows through the "
        "run (Segment: its consumer thread still takes events off its queue and encodes "
        "them; its rare uploads fail at once). *AsyncEmitter delivering*: batch size 10, "
        "live collector, events being sent while the calls are timed (the median number "
        "delivered during the timed calls is in the JSON). The CPython floor is `uuid4()` + "
        "the event's dict + `json.dumps` of it, in the same interpreter. The wire floor is "
        "the work the default wire form itself asks for, written inline with the standard "
        "library: every value a string and, for the self-describing event, the event and its "
        "two entities as JSON, base64-encoded into `ue_px` and `cx`, then the event's JSON "
        "(no event objects, no buffer). p99 figures, "
        "especially while sending, move by a factor of two or more from run to run on this "
        "shared machine (thread scheduling and the GIL); see the per-run figures in the JSON."
        + _stalls_sentence(doc.get("machine_stalls")),
        "",
        *latency_table(doc),
        "",
        "### Caller blocked by a slow collector",
        "",
        f"The collector holds every answer {s['delay_s'] * 1000:.0f} ms. Wall time of "
        + _calls_phrase(s["blocked_calls_sync"], s["blocked_calls_async"])
        + " tracking calls at batch size 10 (after one delivered batch), per 1,000 calls. "
        "The synchronous Emitter waits for each request by design.",
        "",
        *blocked_table(doc),
        "",
        "### Memory per buffered event",
        "",
        f"Resident memory growth (after `gc.collect()`) over {doc['memory']['events']:,} "
        "structured events held in the buffer with the collector down (endpoint on a closed "
        "port, batch size and buffer capacity larger than the run, so nothing is sent or "
        "dropped), divided by the number of events. Runs go two at a time; memory is not "
        "timing-sensitive.",
        "",
        *memory_table(doc),
        "",
        "### Tracking call with SQLiteEventStore (ours only)",
        "",
        "The *nothing sending* tracking call with `event_store=SQLiteEventStore(path)` (a "
        "file in a temporary directory, default settings: WAL, `synchronous=NORMAL`), against "
        "the same call with the default in-memory store.",
        "",
        *sqlite_table(doc),
        "",
        "### The collector is not the bottleneck",
        "",
        "One collector process serves every row: the package's own `LocalCollector` "
        "(`snowplow_tracker.collector`, its asyncio HTTP/1.1 keep-alive server, request "
        "parsing, event extraction and storage) with validation off, wrapped by "
        "`benchmarks/bench_collector.py`, which counts event ids per run (Snowplow `eid`, "
        "Segment `messageId`) in a set, checks for duplicates, and can hold answers for a "
        "given delay. Its capacity with validation on and off is measured in "
        "docs/collector.md" + _local_collector_sentence(col.get("local_collector")) + ".",
        "",
        "*Collector alone*: `benchmarks/blaster.py` keeps 2, then 8 keep-alive connections "
        f"busy for {s['collector_seconds']:g} s each with pre-built tracker-shaped bodies of "
        "unique ids (the better of the two counts). *One-core capacity* is 1 ÷ the "
        "collector's CPU per event. *Headroom* is the collector-alone rate ÷ the fastest "
        "client rate at the same batch size."
        + (
            f" During the client runs the collector was busy at most {busy * 100:.0f} % of "
            "the wall time."
            if busy is not None
            else ""
        ),
        "",
        *collector_table(doc),
        "",
        "## Method notes",
        "",
        "- Each implementation runs in its own virtual environment and interpreter: ours "
        "in the project venv, 1.1.0 in the venv `tests/support/reference_env.py` builds, "
        f"Segment {envs.SEGMENT_VERSION} in a venv under `.cache/`. Each scenario is one "
        "child process (`python -I benchmarks/child.py SPEC` from a temporary directory), "
        "so each imports its own package; the same client code drives ours and 1.1.0 "
        "(same API). Children end with `os._exit`, so exit hooks never add time.",
        "- Default settings except the endpoint, the batch size and, where a run needs "
        "every event kept, `buffer_capacity` (set above the run's event count for both "
        "Snowplow implementations; Segment: `max_queue_size`). 1.1.0 uses `requests.post` "
        "without a session (a new connection per request) and logs each send at INFO: that "
        "is its default behaviour and is measured as such (stderr goes to a file).",
        "- The implementations take turns within each repeat, in an order that rotates, so "
        "drift on the shared machine hits all of them alike.",
        "- Medians and p99 are nearest-rank over all timed calls of a run; the reported "
        "figure is the median of the runs' figures.",
        "- Per-run figures are in `benchmarks/results/latest.json`.",
    ]
    restarts = meta.get("collector_restarts") or []
    if restarts:
        out += ["", "## Collector restarts", ""]
        for death in restarts:
            out.append(
                f"- At {death['at_s']} s the collector had exited with status "
                f"{death['returncode']}; it was restarted and the runs in flight were dropped."
            )
    if doc.get("errors"):
        out += ["", "## Runs that failed", ""]
        for error in doc["errors"]:
            first = error["error"].splitlines()[0] if error["error"] else ""
            out.append(f"- {error['section']} / {error['impl']} / {error['detail']}: {first}")
    return "\n".join(out) + "\n"


def write_docs(
    doc: Dict[str, Any], docs_path: Path, chart_path: Path, log: Callable[[str], None]
) -> None:
    """Write the chart (with matplotlib in its own venv) and the markdown page."""
    try:
        log("drawing the chart (matplotlib venv under .cache/)")
        python = envs.plot_python()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as tmp:
            json.dump(doc, tmp)
        subprocess.run(
            [
                str(python),
                "-I",
                str(Path(__file__).resolve().parent / "plot.py"),
                tmp.name,
                str(chart_path),
            ],
            check=True,
            timeout=300,
            capture_output=True,
        )
        Path(tmp.name).unlink()
    except Exception as exc:  # the numbers still go into the page
        log(f"  ! chart not drawn: {exc}")
    docs_path.write_text(render_markdown(doc, chart_path.name))
    log(f"wrote {docs_path} and {chart_path}")


def summary_text(doc: Dict[str, Any]) -> str:
    """A short console summary: the target table."""
    lines = [f"\n{doc['mode']} run, commit {doc['meta']['commit_short']}:"]
    for target in doc["targets"]:
        base = target.get("baseline") if target.get("baseline_label") else target.get("v1_1_0")
        lines.append(
            f"  {_verdict(target['pass']).strip('*'):5} {target['name']}: "
            f"{_num(target['ours'])} vs {_num(base)} {target['unit']} "
            f"({_ratio(target['ratio'])}, goal {target['target']})"
        )
    if doc.get("errors"):
        lines.append(f"  {len(doc['errors'])} failed runs (see 'errors' in the JSON)")
    return "\n".join(lines) + "\n"
