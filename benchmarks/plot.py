"""Draw the benchmark chart from a results JSON (needs matplotlib; see envs.plot_python).

Run: ``python plot.py results.json chart.png``
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SERIES = (
    ("ours", "this package", "#1f77b4"),
    ("v1_1_0", "snowplow-tracker 1.1.0", "#8c8c8c"),
    ("segment", "segment-analytics-python", "#ff7f0e"),
    ("floor", "CPython floor", "#2ca02c"),
    ("wire_floor", "wire floor", "#98df8a"),
)
KINDS = ("structured", "page_view", "self_describing")
MODES = ("idle", "async")
KIND_LABELS = {"structured": "struct", "page_view": "page view", "self_describing": "self-desc."}


def _get(data: Any, *path: str) -> Optional[float]:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data if isinstance(data, (int, float)) else None


def _bars(
    ax: Any,
    title: str,
    groups: Sequence[str],
    values: Dict[str, List[Optional[float]]],
    unit: str,
    log: bool = False,
    goals: Optional[List[Optional[float]]] = None,
) -> None:
    """Grouped bars, one series per implementation; ``goals`` marks our target per group."""
    present = [s for s in SERIES if any(v is not None for v in values.get(s[0], []))]
    width = 0.8 / max(1, len(present))
    for index, (key, label, colour) in enumerate(present):
        xs = [g + (index - (len(present) - 1) / 2) * width for g in range(len(groups))]
        ys = [v if v is not None else 0.0 for v in values[key]]
        bars = ax.bar(xs, ys, width=width, label=label, color=colour)
        if key == "ours" and goals:
            for x, goal in zip(xs, goals):
                if goal is not None:
                    ax.hlines(
                        goal,
                        x - width * 0.7,
                        x + width * 0.7,
                        colors="black",
                        linestyles="dashed",
                        linewidth=1.2,
                        label="target for this package",
                    )
        for bar, value in zip(bars, values[key]):
            if value is None:
                continue
            text = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=6,
                rotation=90,
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax.set_title(title, fontsize=10)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    if len(groups) == 1:
        ax.set_xlim(-1.2, 1.2)
    if log:
        ax.set_yscale("log")
    ax.margins(y=0.25)
    ax.grid(axis="y", alpha=0.3)


def _scaled(value: Optional[float], factor: float) -> Optional[float]:
    return None if value is None else value * factor


def draw(results: Dict[str, Any], path: str) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    ref = "v1_1_0"
    tp = results.get("throughput", {})
    tp_groups = [("sync", "10"), ("sync", "100"), ("async", "10"), ("async", "100")]
    tp_labels = ["Emitter b10", "Emitter b100", "Async b10", "Async b100"]
    rate_goal = {("sync", "10"): 2.0, ("sync", "100"): 2.0, ("async", "10"): 5.0}
    rate_goal[("async", "100")] = 3.0
    _bars(
        axes[0][0],
        "End-to-end throughput (higher is better)",
        tp_labels,
        {key: [_get(tp, e, b, key, "events_per_s") for e, b in tp_groups] for key, _, _ in SERIES},
        "events/s",
        goals=[
            _scaled(_get(tp, e, b, ref, "events_per_s"), rate_goal[(e, b)]) for e, b in tp_groups
        ],
    )
    _bars(
        axes[0][1],
        "Client CPU per event, until all counted (lower is better)",
        tp_labels,
        {
            key: [_get(tp, e, b, key, "cpu_us_per_event") for e, b in tp_groups]
            for key, _, _ in SERIES
        },
        "µs CPU / event",
        goals=[
            _scaled(_get(tp, e, b, ref, "cpu_us_per_event"), 0.2) if b == "10" else None
            for e, b in tp_groups
        ],
    )
    lat = results.get("latency", {})
    floor = results.get("floor", {})
    groups = [f"{KIND_LABELS[k]}\nidle" for k in KINDS]
    groups += [f"{KIND_LABELS[k]}\nasync" for k in KINDS]
    medians: Dict[str, List[Optional[float]]] = {}
    for key, _, _ in SERIES:
        if key == "floor":
            medians[key] = [_get(floor, k, "median_us") for k in KINDS] + [None] * 3
        elif key == "wire_floor":
            medians[key] = [_get(floor, "wire", k, "median_us") for k in KINDS] + [None] * 3
        else:
            medians[key] = [_get(lat, mode, key, k, "median_us") for mode in MODES for k in KINDS]
    _bars(
        axes[0][2],
        "Tracking call, median (lower is better)",
        groups,
        medians,
        "µs",
        goals=[_get(lat, mode, ref, k, "median_us") for mode in MODES for k in KINDS],
    )
    p99 = {key: [_get(lat, "async", key, k, "p99_us") for k in KINDS] for key, _, _ in SERIES}
    _bars(
        axes[1][0],
        "Tracking call p99 while AsyncEmitter sends",
        [KIND_LABELS[k] for k in KINDS],
        p99,
        "µs (log)",
        log=True,
        goals=[_scaled(_get(lat, "async", ref, k, "p99_us"), 0.25) for k in KINDS],
    )
    blocked = results.get("blocked", {})
    _bars(
        axes[1][1],
        "Caller blocked per 1,000 calls, collector +50 ms",
        ["Emitter", "AsyncEmitter"],
        {
            key: [_get(blocked, e, key, "ms_per_1000_calls") for e in ("sync", "async")]
            for key, _, _ in SERIES
        },
        "ms (log)",
        log=True,
    )
    memory = results.get("memory", {})
    _bars(
        axes[1][2],
        "Memory per buffered event, collector down",
        ["structured event"],
        {key: [_get(memory, key, "bytes_per_event")] for key, _, _ in SERIES},
        "bytes",
        goals=[_scaled(_get(memory, ref, "bytes_per_event"), 0.5)],
    )
    handles: List[Any] = []
    labels: List[str] = []
    for ax in (axes[0][0], axes[0][2]):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    meta = results.get("meta", {})
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.963), ncol=5, fontsize=9)
    fig.suptitle(
        f"snowplow_tracker benchmarks ({results.get('mode')} run, commit "
        f"{meta.get('commit_short')}, {meta.get('date_utc')} UTC, "
        f"{meta.get('machine', {}).get('nproc')} CPUs)",
        fontsize=11,
        y=0.995,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)


def main() -> int:
    with open(sys.argv[1]) as source:
        results = json.load(source)
    draw(results, sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
