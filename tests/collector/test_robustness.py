"""Malformed, oversized, truncated and slow requests: clear verdicts, nothing partial stored."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import jsonschema
import pytest
import requests

from snowplow_tracker.collector import LocalCollector

from .helpers import (
    JSON_UTF8,
    PAYLOAD_DATA,
    TP2,
    body,
    body_bytes,
    errors_of,
    link_click,
    page_view,
    raw_exchange,
    status_of,
)

EXTRACTION = "Error while extracting event(s) from collector payload and validating it/them."


@pytest.fixture
def small(shared_iglu_dir: Path) -> Iterator[LocalCollector]:
    """A collector with a 10 kB body limit and a 0.3 s body read timeout."""
    with LocalCollector(
        iglu_dirs=[shared_iglu_dir], max_body_bytes=10_000, body_read_timeout=0.3
    ) as running:
        yield running


def post_raw(
    collector: LocalCollector, data: bytes, content_type: str = JSON_UTF8
) -> requests.Response:
    return requests.post(
        collector.url(TP2), data=data, headers={"Content-Type": content_type}, timeout=5
    )


def only_bad_row(collector: LocalCollector) -> Dict[str, Any]:
    assert collector.good() == []
    [row] = collector.bad()
    return row


@pytest.mark.parametrize(
    ("data", "content_type", "reason"),
    [
        (b"{not json", JSON_UTF8, "body is not valid JSON"),
        (b"\xff\xfe\x00garbage", JSON_UTF8, "body is not valid UTF-8"),
        (b'{"schema": "x"}', JSON_UTF8, "body is not a self-describing JSON"),
        (body_bytes(page_view()), "text/plain", "Content-Type 'text/plain' is not allowed"),
        (body_bytes(page_view()), "application/json; charset=latin-1", "is not allowed"),
        (json.dumps(body()).encode(), JSON_UTF8, "'data' is an empty array"),
        (json.dumps({"schema": PAYLOAD_DATA, "data": {}}).encode(), JSON_UTF8, "must be an array"),
        (b"[" * 100_000 + b"]" * 100_000, JSON_UTF8, "body is nested too deeply"),
    ],
)
def test_broken_payloads_give_one_bad_row_and_200(
    collector: LocalCollector, data: bytes, content_type: str, reason: str
) -> None:
    response = post_raw(collector, data, content_type)
    assert (response.status_code, response.text) == (200, "ok")
    row = only_bad_row(collector)
    assert row["rawEvent"] is None
    assert row["errors"][0] == EXTRACTION
    assert any(reason in error for error in row["errors"]), row["errors"]
    assert row["collectorPayload"]["api"]["version"] == "tp2"


def test_envelope_violation_rejects_the_whole_payload(collector: LocalCollector) -> None:
    events: List[Dict[str, Any]] = [
        page_view(),
        {**page_view(), "unknown_key": "x"},
        {**page_view(), "dtm": 17},
    ]
    post_raw(collector, json.dumps(body(*events)).encode())
    row = only_bad_row(collector)
    assert row["rawEvent"] is None
    unknown = "data[1]: unknown field 'unknown_key' (not allowed by payload_data 1-0-4)"
    assert f"payload_data 1-0-4: {unknown}" in row["errors"]
    assert (
        "payload_data 1-0-4: data[2]: value of 'dtm' is not a string (got number)" in row["errors"]
    )
    assert collector.events_received == 3


def test_null_values_and_missing_required_fields_in_post(collector: LocalCollector) -> None:
    event = page_view(aid="x")
    event["aid"] = None  # type: ignore[assignment]
    del event["e"]
    post_raw(collector, json.dumps(body(event)).encode())
    errors = only_bad_row(collector)["errors"]
    assert "payload_data 1-0-4: data[0]: missing required field 'e'" in errors
    assert "payload_data 1-0-4: data[0]: value of 'aid' cannot be null" in errors


def test_good_and_bad_events_in_one_post_are_judged_one_by_one(collector: LocalCollector) -> None:
    events = [
        page_view(aid="ok-1"),
        link_click(ue_px="!!!"),
        page_view(aid="ok-2"),
        page_view(p="tv-set"),
    ]
    post_raw(collector, json.dumps(body(*events)).encode())
    assert [g["event"]["app_id"] for g in collector.good()] == ["ok-1", "ok-2"]
    bad = collector.bad()
    assert len(bad) == 2
    assert bad[0]["rawEvent"]["parameters"]["ue_px"] == "!!!"
    assert any("ue_px is not valid base64" in e for e in bad[0]["errors"])
    assert any("unknown platform 'tv-set'" in e for e in bad[1]["errors"])
    assert bad[0]["errors"][0] == "Error while validating the event."


def test_missing_content_type_and_empty_bodies(collector: LocalCollector) -> None:
    url = collector.url(TP2)
    requests.post(url, data=body_bytes(page_view()), timeout=5)
    requests.post(url, data=b"", headers={"Content-Type": "application/json"}, timeout=5)
    requests.post(url, data=b"", timeout=5)
    errors = errors_of(collector.bad())
    assert "request has a body but no Content-Type (expected application/json)" in errors
    assert "Content-Type application/json is present but the body is empty" in errors
    assert "empty body and empty query string" in errors
    requests.post(url + "?e=pv&p=web&tv=t", data=b"", timeout=5)
    assert collector.summary()["good"] == 1


def test_empty_or_undecodable_query_strings_are_bad_rows(collector: LocalCollector) -> None:
    assert requests.get(collector.url("/i"), timeout=5).status_code == 200
    assert requests.get(collector.url("/i") + "?e=pv&p=%ff", timeout=5).status_code == 200
    errors = errors_of(collector.bad())
    assert "empty query string: the event must be in the query string" in errors
    assert "query string is not valid UTF-8 once percent-decoded" in errors


def test_oversized_body_gets_413_and_a_size_violation_row(
    small: LocalCollector, shared_iglu_dir: Path
) -> None:
    big = body_bytes(*[page_view(page="x" * 500) for _ in range(40)])
    assert len(big) > 10_000
    response = post_raw(small, big)
    assert response.status_code == 413
    assert "over the limit of 10000 bytes" in response.text
    row = only_bad_row(small)
    assert row["rawEvent"] is None and row["collectorPayload"]["body"] is None
    assert "Payload too large" in row["errors"][0]
    violation = json.loads(row["errors"][1])
    assert violation["schema"].endswith("badrows/size_violation/jsonschema/1-0-0")
    published = json.loads(
        (
            shared_iglu_dir
            / "schemas/com.snowplowanalytics.snowplow.badrows/size_violation/jsonschema/1-0-0"
        ).read_text()
    )
    jsonschema.Draft4Validator(published).validate(violation["data"])
    assert violation["data"]["failure"]["actualSizeBytes"] == len(big)
    assert small.event_ids() == [] and small.payloads() == []
    [logged] = small.requests()
    assert logged["status"] == 413 and logged["body"] is None
    assert post_raw(small, body_bytes(page_view())).status_code == 200
    assert small.summary()["good"] == 1


def test_oversized_content_length_is_refused_before_the_body_arrives(small: LocalCollector) -> None:
    head = (
        f"POST {TP2} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 50000000\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection((small.host, small.port), timeout=5) as sock:
        sock.sendall(head + b"{")
        reply = sock.recv(4096)
    assert status_of(reply) == 413
    assert time.monotonic() - started < 2
    assert small.summary() == {"total": 1, "good": 0, "bad": 1}


def test_truncated_body_times_out_with_408_and_stores_nothing(small: LocalCollector) -> None:
    payload = body_bytes(page_view())
    head = (
        f"POST {TP2} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload) + 100}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    reply = raw_exchange(small.host, small.port, head + payload, timeout=5)
    assert status_of(reply) == 408
    assert b"timed out reading the request body" in reply
    assert 0.25 < time.monotonic() - started < 3
    assert small.summary()["total"] == 0 and small.payloads() == []
    [logged] = small.requests()
    assert logged["status"] == 408
    assert post_raw(small, payload).status_code == 200


def test_slow_trickling_client_is_cut_off(small: LocalCollector) -> None:
    payload = body_bytes(page_view())
    head = (
        f"POST {TP2} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection((small.host, small.port), timeout=5) as sock:
        sock.sendall(head)
        reply = b""
        for byte in payload[:40]:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.02)
        sock.settimeout(3)
        try:
            reply = sock.recv(4096)
        except OSError:
            pass
    assert reply == b"" or status_of(reply) == 408
    assert small.summary()["total"] == 0


def test_client_closing_mid_body_stores_nothing(small: LocalCollector) -> None:
    payload = body_bytes(page_view())
    head = (
        f"POST {TP2} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection((small.host, small.port), timeout=5) as sock:
        sock.sendall(head + payload[: len(payload) // 2])
    assert small.wait_for_requests(1, timeout=3)
    time.sleep(0.1)
    assert small.summary()["total"] == 0
    assert "closed the connection" in (small.requests()[0]["error"] or "")


def test_good_events_alongside_broken_clients_are_not_lost(small: LocalCollector) -> None:
    payload = body_bytes(page_view())
    truncated = (
        f"POST {TP2} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload) * 2}\r\n\r\n"
    ).encode() + payload
    broken = [
        threading.Thread(target=raw_exchange, args=(small.host, small.port, truncated))
        for _ in range(4)
    ]
    for thread in broken:
        thread.start()
    with requests.Session() as http:
        for index in range(20):
            response = http.post(
                small.url(TP2), json=body(page_view(aid=f"good-{index}")), timeout=5
            )
            assert response.status_code == 200
    for thread in broken:
        thread.join(5)
    assert small.summary() == {"total": 20, "good": 20, "bad": 0}


def test_chunked_bodies_are_read_and_limited(small: LocalCollector) -> None:
    payload = body_bytes(page_view(aid="chunked"))
    chunks = [payload[:10], payload[10:]]
    encoded = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    head = (
        f"POST {TP2} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    reply = raw_exchange(small.host, small.port, head + encoded)
    assert status_of(reply) == 200
    assert small.good()[0]["event"]["app_id"] == "chunked"
    big = b"a" * 6000
    oversized = (f"{len(big):x}\r\n".encode() + big + b"\r\n") * 2 + b"0\r\n\r\n"
    reply = raw_exchange(small.host, small.port, head + oversized)
    assert status_of(reply) == 413


def test_invalid_content_length_gets_400(collector: LocalCollector) -> None:
    head = (
        f"POST {TP2} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: lots\r\n\r\n"
    ).encode()
    assert status_of(raw_exchange(collector.host, collector.port, head)) == 400
    assert collector.summary()["total"] == 0


def test_garbage_request_lines_and_huge_urls_do_not_hurt_the_server(
    collector: LocalCollector,
) -> None:
    assert status_of(raw_exchange(collector.host, collector.port, b"NONSENSE\r\n\r\n")) == 400
    long_url = b"GET /i?e=" + b"x" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert status_of(raw_exchange(collector.host, collector.port, long_url)) == 414
    assert requests.get(collector.url("/i"), params=page_view(), timeout=5).status_code == 200
    assert collector.summary()["good"] == 1
