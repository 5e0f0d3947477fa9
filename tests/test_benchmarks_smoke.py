"""Smoke check of the benchmark harness (benchmarks/run.py --quick).

It must run to the end and write well-formed JSON with every section; the timings are not
judged here (docs/benchmarks.md shows them, with the targets).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

from benchmarks.run import SECTIONS

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN = REPO_ROOT / "benchmarks" / "run.py"
KINDS = ("structured", "page_view", "self_describing")


def _number(node: Dict[str, Any], *path: str) -> float:
    for key in path:
        assert isinstance(node, dict) and key in node, f"missing {'/'.join(path)}"
        node = node[key]
    assert isinstance(node, (int, float)) and not isinstance(node, bool), path
    return float(node)


@pytest.mark.timeout(900)
def test_quick_benchmark_runs_and_writes_every_section(tmp_path: Path) -> None:
    output = tmp_path / "quick.json"
    result = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--no-docs", "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    document = json.loads(output.read_text())

    assert document["mode"] == "quick"
    for section in SECTIONS:
        assert section in document, section
    for impl in ("ours", "v1_1_0"):
        assert document["implementations"][impl]["available"]
        for mode in ("idle", "async"):
            for kind in KINDS:
                _number(document["latency"], mode, impl, kind, "median_us")
                _number(document["latency"], mode, impl, kind, "p99_us")
        for emitter in ("sync", "async"):
            for batch in ("10", "100"):
                _number(document["throughput"], emitter, batch, impl, "events_per_s")
                _number(document["throughput"], emitter, batch, impl, "cpu_us_per_event")
            _number(document["blocked"], emitter, impl, "ms_per_1000_calls")
        _number(document["memory"], impl, "bytes_per_event")
    _number(document["machine_stalls"], "stalls_per_s_over_5us")
    for kind in KINDS:
        _number(document["floor"], kind, "median_us")
        _number(document["floor"], "wire", kind, "p99_us")
        _number(document["sqlite"], "ours", kind, "median_us")
    for batch in ("10", "100"):
        _number(document["collector"], "events_per_s", batch)
        _number(document["collector"], "headroom", batch)
    assert document["targets"], "no targets evaluated"
    for target in document["targets"]:
        assert target["pass"] in (True, False), target
    assert document["errors"] == [] or all(
        error["impl"] == "segment" for error in document["errors"]
    ), document["errors"]


def test_wire_floor_writes_the_fields_the_tracker_sends() -> None:
    """The wire floor is a fair reference only if it does the tracker's encoding work: the
    same keys, and for the self-describing event the same base64 ``ue_px`` and ``cx``."""
    from benchmarks import child

    # The benchmark's own client of this package, on a closed port: nothing is sent.
    client = child.SnowplowClient("http://127.0.0.1:9", "sync", batch_size=10, buffer_capacity=10)
    for kind in KINDS:
        client.calls[kind]()
    sent = client.emitter.event_store.get_events_batch()
    floor = child.FloorClient(wire=True)
    for kind, ours in zip(KINDS, sent):
        wire = json.loads(floor.calls[kind]())
        assert set(wire) == set(ours), kind
        assert all(isinstance(value, str) for value in wire.values()), kind
        for key in ("ue_px", "cx", "se_va", "url", "page", "refr"):
            if key in ours:
                assert wire[key] == str(ours[key]), (kind, key)
