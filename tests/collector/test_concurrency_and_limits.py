"""Parallel clients, bounded storage, waiting helpers, clean shutdown."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List

import pytest
import requests

from snowplow_tracker.collector import EventSummary, LocalCollector

from .helpers import TP2, body, link_click, page_view


def test_eight_clients_times_fifty_requests_are_all_counted(collector: LocalCollector) -> None:
    def client(index: int) -> List[int]:
        statuses = []
        with requests.Session() as http:
            for n in range(50):
                if n % 2:
                    response = http.get(
                        collector.url("/i"), params=page_view(aid=f"c{index}"), timeout=10
                    )
                else:
                    events = [page_view(aid=f"c{index}"), link_click(aid=f"c{index}")]
                    response = http.post(collector.url(TP2), json=body(*events), timeout=10)
                statuses.append(response.status_code)
        return statuses

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(client, range(8)))
    assert all(status == 200 for statuses in results for status in statuses)
    expected_events = 8 * (25 * 2 + 25)
    assert collector.wait_for(expected_events, timeout=10)
    assert collector.summary() == {"total": expected_events, "good": expected_events, "bad": 0}
    assert collector.requests_received == 400
    assert collector.events_received == expected_events
    assert len(set(collector.event_ids())) == expected_events
    apps = [g["event"]["app_id"] for g in collector.good()]
    assert all(apps.count(f"c{i}") == 75 for i in range(8))


def test_requests_are_served_in_parallel(collector: LocalCollector) -> None:
    collector.delay_next(4, seconds=0.5)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(
            pool.map(
                lambda _: (
                    requests.post(collector.url(TP2), json=body(page_view()), timeout=5).status_code
                ),
                range(4),
            )
        )
    assert statuses == [200] * 4
    assert time.monotonic() - started < 1.5


def test_storage_cap_drops_the_oldest_events_and_counts_them() -> None:
    with LocalCollector(max_events=5, lenient=True) as collector, requests.Session() as http:
        for index in range(8):
            http.get(collector.url("/i"), params=page_view(aid=f"e{index}"), timeout=5)
        http.get(collector.url("/i"), params={"e": "bogus", "p": "web", "tv": "t"}, timeout=5)
        summary = collector.summary()
        assert summary == {"total": 5, "good": 4, "bad": 1}
        assert [g["event"]["app_id"] for g in collector.good()] == ["e4", "e5", "e6", "e7"]
        assert collector.events_dropped == 4
        assert collector.events_received == 9
        assert len(collector.event_ids()) == 5
        assert collector.stats()["events_dropped"] == 4


def test_request_log_is_bounded_by_count_and_bytes() -> None:
    with LocalCollector(max_requests=3, max_request_log_bytes=10_000) as collector:
        with requests.Session() as http:
            for index in range(5):
                http.get(collector.url("/i"), params=page_view(aid=str(index)), timeout=5)
            assert [r["query"].count("aid=") for r in collector.requests()] == [1, 1, 1]
            assert collector.requests_received == 5
            for _ in range(3):
                http.post(
                    collector.url(TP2), json=body(*[page_view(page="x" * 1000)] * 4), timeout=5
                )
        log = collector.requests()
        assert sum(len(r["body"] or b"") for r in log) <= 10_000
        assert len(log) <= 3


def test_wait_for_returns_true_early_or_false_after_timeout(collector: LocalCollector) -> None:
    assert collector.wait_for(1, timeout=0.2) is False

    def later() -> None:
        time.sleep(0.2)
        requests.post(collector.url(TP2), json=body(page_view(), page_view(e="nope")), timeout=5)

    thread = threading.Thread(target=later)
    thread.start()
    started = time.monotonic()
    try:
        assert collector.wait_for(2, timeout=5) is True
        assert time.monotonic() - started < 2
        assert collector.wait_for(2, timeout=0.2, good=True) is False
        assert collector.wait_for(1, timeout=0.2, good=True) is True
    finally:
        thread.join(5)


def test_assert_counts_reports_bad_row_reasons(collector: LocalCollector) -> None:
    requests.post(collector.url(TP2), json=body(page_view(), page_view(eid="x")), timeout=5)
    collector.assert_counts(good=1, bad=1, timeout=2)
    with pytest.raises(AssertionError, match="field 'eid' is not a valid UUID"):
        collector.assert_counts(good=2, bad=0, timeout=0.2)


def failing_listener(summary: EventSummary) -> None:
    raise RuntimeError("listener bug")


def test_listeners_see_every_stored_event(shared_iglu_dir: Path) -> None:
    seen: List[EventSummary] = []
    with LocalCollector(iglu_dirs=[shared_iglu_dir], on_event=seen.append) as collector:
        collector.add_listener(failing_listener)  # a failing listener is only logged
        requests.post(
            collector.url(TP2), json=body(page_view(aid="a"), link_click(eid="x")), timeout=5
        )
    assert [(s.good, s.event_type, s.app_id) for s in seen] == [
        (True, "page_view", "a"),
        (False, "unstruct", None),
    ]
    assert "field 'eid' is not a valid UUID: 'x'" in seen[1].errors


def test_stop_closes_idle_keep_alive_connections_quickly() -> None:
    collector = LocalCollector(idle_timeout=60).start()
    http = requests.Session()
    try:
        for _ in range(3):
            assert http.get(collector.url("/i"), params=page_view(), timeout=5).status_code == 200
    finally:
        started = time.monotonic()
        collector.stop()
        http.close()
    assert time.monotonic() - started < 2


def test_validation_can_be_turned_off(shared_iglu_dir: Path) -> None:
    with LocalCollector(iglu_dirs=[shared_iglu_dir], validate=False) as collector:
        requests.post(
            collector.url(TP2),
            json=body(link_click(eid="not-a-uuid"), {**page_view(), "custom": "kept"}),
            timeout=5,
        )
        good = collector.good()
        assert collector.summary() == {"total": 2, "good": 2, "bad": 0}
        assert good[0]["eventType"] == "unstruct"
        assert (
            good[0]["schema"] == "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1"
        )
        assert good[1]["rawEvent"]["parameters"]["custom"] == "kept"
        requests.post(
            collector.url(TP2),
            data=b"{broken",
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        assert collector.summary()["bad"] == 1
