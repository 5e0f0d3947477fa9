"""Fault injection: failing statuses (count and seeded fraction), delays, dropped connections."""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List

import pytest
import requests

from snowplow_tracker.collector import FaultPlan, LocalCollector

from .helpers import TP2, body, page_view


def post(
    collector: LocalCollector, *events: Dict[str, Any], timeout: float = 5
) -> requests.Response:
    return requests.post(collector.url(TP2), json=body(*events), timeout=timeout)


def test_fail_next_answers_the_status_and_headers_without_storing(
    collector: LocalCollector,
) -> None:
    collector.fail_next(2, status=503, headers={"Retry-After": "1"})
    event = page_view()
    first, second, third = (post(collector, event) for _ in range(3))
    assert first.status_code == second.status_code == 503
    assert first.headers["Retry-After"] == "1"
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    assert third.status_code == 200
    assert collector.summary() == {"total": 1, "good": 1, "bad": 0}
    assert collector.event_ids() == [event["eid"]] * 3
    assert collector.duplicate_event_ids() == [event["eid"]]
    assert collector.requests_received == 3 and collector.events_received == 3
    assert [r["status"] for r in collector.requests()] == [503, 503, 200]
    assert [r["fault"] for r in collector.requests()] == ["status:503", "status:503", None]


def test_fail_next_can_store_the_events_anyway(collector: LocalCollector) -> None:
    collector.fail_next(1, status=500, store=True, body=b"boom")
    event = page_view()
    response = post(collector, event)
    assert (response.status_code, response.text) == (500, "boom")
    assert post(collector, event).status_code == 200
    assert [g["event"]["event_id"] for g in collector.good()] == [event["eid"]] * 2


def test_failures_queue_up_in_order_and_apply_to_get_too(collector: LocalCollector) -> None:
    collector.fail_next(1, status=429)
    collector.fail_next(1, status=400)
    statuses = [
        requests.get(collector.url("/i"), params=page_view(), timeout=5).status_code
        for _ in range(3)
    ]
    assert statuses == [429, 400, 200]


def test_faults_do_not_touch_micro_health_or_preflight(collector: LocalCollector) -> None:
    collector.fail_next(1, status=503)
    assert requests.get(collector.url("/micro/all"), timeout=5).status_code == 200
    assert requests.get(collector.url("/health"), timeout=5).status_code == 200
    assert requests.options(collector.url(TP2), timeout=5).status_code == 200
    assert post(collector, page_view()).status_code == 503


def test_fail_fraction_is_seeded_and_reproducible(collector: LocalCollector) -> None:
    def run() -> List[int]:
        collector.reset()
        collector.clear_faults()
        collector.fail_fraction(0.5, status=502, seed=7, requests=20)
        return [post(collector, page_view()).status_code for _ in range(24)]

    first, second = run(), run()
    assert first == second
    assert set(first[:20]) == {200, 502}
    assert first[20:] == [200] * 4
    assert collector.summary()["good"] == first.count(200)


def test_fail_fraction_edges() -> None:
    plan = FaultPlan()
    plan.fail_fraction(1.0, status=500)
    assert all(plan.decide().status == 500 for _ in range(10))
    plan.clear()
    plan.fail_fraction(0.0)
    assert all(plan.decide().status is None for _ in range(10))
    with pytest.raises(ValueError):
        plan.fail_fraction(1.5)
    with pytest.raises(ValueError):
        plan.drop_next(1, mode="explode")


def test_delay_next_waits_then_processes_normally(collector: LocalCollector) -> None:
    collector.delay_next(1, seconds=0.4)
    started = time.monotonic()
    assert post(collector, page_view()).status_code == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    assert post(collector, page_view()).status_code == 200
    assert time.monotonic() - started < 0.3
    assert collector.summary()["good"] == 2
    assert collector.requests()[0]["fault"] == "delay"


def test_delay_makes_client_timeouts_observable(collector: LocalCollector) -> None:
    collector.delay_next(1, seconds=1.0)
    with pytest.raises(requests.Timeout):
        post(collector, page_view(), timeout=0.2)
    assert collector.wait_for(1, timeout=3)


@pytest.mark.parametrize("mode", ["close", "reset", "partial"])
def test_drop_next_breaks_the_connection(collector: LocalCollector, mode: str) -> None:
    collector.drop_next(1, mode=mode)
    event = page_view()
    with pytest.raises(requests.ConnectionError):
        post(collector, event)
    assert collector.summary()["total"] == 0
    assert collector.event_ids() == [event["eid"]]
    assert collector.requests()[0]["fault"] == f"drop:{mode}"
    assert collector.requests()[0]["status"] is None
    assert post(collector, event).status_code == 200
    assert collector.summary()["good"] == 1


def test_drop_with_store_keeps_events_so_retries_duplicate(collector: LocalCollector) -> None:
    collector.drop_next(1, store=True)
    event = page_view()
    with pytest.raises(requests.ConnectionError):
        post(collector, event)
    assert post(collector, event).status_code == 200
    assert collector.summary()["good"] == 2
    assert collector.duplicate_event_ids() == [event["eid"]]


def test_drop_applies_before_failures_and_clear_removes_everything(
    collector: LocalCollector,
) -> None:
    collector.fail_next(1, status=503)
    collector.drop_next(1)
    collector.delay_next(5, seconds=5)
    assert collector.pending_faults() == {"delays": 1, "drops": 1, "failures": 1}
    collector.clear_faults()
    assert collector.pending_faults() == {"delays": 0, "drops": 0, "failures": 0}
    collector.fail_next(1, status=503)
    collector.drop_next(1)
    with pytest.raises(requests.ConnectionError):
        post(collector, page_view())
    assert post(collector, page_view()).status_code == 503
    assert post(collector, page_view()).status_code == 200


def test_stop_interrupts_a_pending_delay() -> None:
    collector = LocalCollector().start()
    outcome: List[Any] = []

    def call() -> None:
        try:
            outcome.append(post(collector, page_view(), timeout=10).status_code)
        except requests.RequestException as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=call)
    try:
        collector.delay_next(1, seconds=30)
        thread.start()
        assert collector.wait_for_requests(1, timeout=3)
        started = time.monotonic()
    finally:
        collector.stop()
        thread.join(5)
    assert time.monotonic() - started < 3
    assert outcome and outcome[0] != 200
    assert collector.summary()["total"] == 0
