"""Command line: ``python -m snowplow_tracker.collector [--port P] [--iglu-dir DIR ...]``.

Prints where it listens, then one line per received event (good or bad, type, schema, app id
and the reasons of bad ones). Stops cleanly on Ctrl-C (SIGINT) or SIGTERM with exit code 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any, List, Optional, Sequence

from .server import DEFAULT_MAX_BODY_BYTES, LocalCollector
from .store import EventSummary

__all__ = ["build_parser", "format_summary", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m snowplow_tracker.collector",
        description="Local validating Snowplow collector with a Snowplow-Micro-compatible API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=9090,
        help="port to listen on; 0 picks a free one (default 9090)",
    )
    parser.add_argument(
        "--iglu-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="static Iglu repository (DIR/schemas/VENDOR/NAME/jsonschema/VERSION); repeatable",
    )
    parser.add_argument(
        "--lenient", action="store_true", help="accept events whose schemas are not found"
    )
    parser.add_argument(
        "--no-validate", action="store_true", help="store every parsable event as good"
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest request body accepted; larger ones get 413 (default 2 MiB)",
    )
    parser.add_argument(
        "--max-events", type=int, default=100_000, help="stored events kept (oldest dropped first)"
    )
    parser.add_argument("--quiet", action="store_true", help="do not print one line per event")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    return parser


def format_summary(summary: EventSummary) -> str:
    """One readable line for an event: verdict, type, schema, app id, reasons."""
    verdict = "GOOD" if summary.good else "BAD "
    parts = [
        verdict,
        summary.event_type or "-",
        summary.schema or "-",
        f"app_id={summary.app_id or '-'}",
    ]
    if summary.good:
        parts.append("valid")
        if summary.notes:
            parts.append("(" + "; ".join(summary.notes) + ")")
    else:
        reasons = summary.errors[1:] or summary.errors
        parts.append("invalid: " + " | ".join(reasons))
    return " ".join(parts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the collector until SIGINT or SIGTERM; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    print_lock = threading.Lock()

    def emit(line: str) -> None:
        with print_lock:
            print(line, flush=True)

    def on_event(summary: EventSummary) -> None:
        if not args.quiet:
            emit(format_summary(summary))

    collector = LocalCollector(
        args.host,
        args.port,
        iglu_dirs=args.iglu_dir,
        lenient=args.lenient,
        validate=not args.no_validate,
        max_body_bytes=args.max_body_bytes,
        max_events=args.max_events,
        on_event=on_event,
    )
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        stop.set()

    previous: List[Any] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous.append((signum, signal.signal(signum, request_stop)))
    try:
        try:
            collector.start()
        except OSError as exc:
            print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
            return 2
        emit(f"Snowplow local collector listening on {collector.endpoint}")
        base = collector.endpoint
        emit(f"  POST {base}/com.snowplowanalytics.snowplow/tp2 | GET {base}/i")
        emit(f"  Micro API: {base}/micro/all | /micro/good | /micro/bad | /micro/reset")
        roots = ", ".join(str(r) for r in collector.registry.iglu_roots) or "none"
        mode = "lenient" if args.lenient else "strict"
        emit(f"  Iglu schemas: {roots} ({mode})")
        if not collector.registry.jsonschema_available:
            emit("  jsonschema is not installed: schema validation is skipped")
        while not stop.wait(0.2):
            pass
        emit("Stopping...")
    finally:
        collector.stop()
        for signum, handler in previous:
            signal.signal(signum, handler)
    summary = collector.summary()
    emit(f"Stopped: {summary['good']} good, {summary['bad']} bad events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
