"""Benchmark harness: this package against snowplow-tracker 1.1.0 and a peer (see run.py)."""
