"""HTTP-level behaviour of the collector endpoints (real requests on loopback)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest
import requests

from snowplow_tracker.collector import PIXEL_GIF, LocalCollector

from .helpers import (
    JSON_UTF8,
    LINK_CLICK,
    PAGE_VIEW,
    TP2,
    body,
    errors_of,
    link_click,
    page_view,
)


def test_pixel_gif_is_a_43_byte_transparent_gif() -> None:
    assert len(PIXEL_GIF) == 43
    assert PIXEL_GIF.startswith(b"GIF89a") and PIXEL_GIF.endswith(b";")


def test_get_i_answers_the_pixel_and_stores_the_event(
    collector: LocalCollector, session: requests.Session
) -> None:
    params = page_view()
    response = session.get(collector.url("/i"), params=params)
    assert response.status_code == 200
    assert response.content == PIXEL_GIF
    assert response.headers["Content-Type"] == "image/gif"
    assert response.headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    [good] = collector.good()
    assert good["rawEvent"]["api"] == {"vendor": "com.snowplowanalytics.snowplow", "version": "tp1"}
    assert good["rawEvent"]["parameters"] == params
    assert good["eventType"] == "page_view"
    assert good["schema"] == PAGE_VIEW
    assert good["event"]["event_id"] == params["eid"]
    assert good["incomplete"] is False
    assert collector.bad() == []


def test_legacy_ice_png_and_head_requests_work(
    collector: LocalCollector, session: requests.Session
) -> None:
    response = session.get(collector.url("/ice.png"), params=page_view())
    assert response.status_code == 200 and response.content == PIXEL_GIF
    head = session.head(collector.url("/i"), params=page_view())
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == "43"
    assert collector.summary() == {"total": 2, "good": 2, "bad": 0}


def test_post_tp2_answers_ok_text_plain(
    collector: LocalCollector, session: requests.Session
) -> None:
    events = [page_view(), link_click()]
    response = session.post(
        collector.url(TP2), data=json.dumps(body(*events)), headers={"Content-Type": JSON_UTF8}
    )
    assert response.status_code == 200
    assert response.text == "ok"
    assert response.headers["Content-Type"].startswith("text/plain")
    good = collector.good()
    assert [g["eventType"] for g in good] == ["page_view", "unstruct"]
    assert good[1]["schema"] == LINK_CLICK
    assert good[0]["rawEvent"]["contentType"] == JSON_UTF8
    assert good[0]["rawEvent"]["api"]["version"] == "tp2"


def test_get_on_tp2_path_is_one_event_from_the_query_string(
    collector: LocalCollector, session: requests.Session
) -> None:
    response = session.get(collector.url(TP2), params=page_view())
    assert response.status_code == 200 and response.content == PIXEL_GIF
    [good] = collector.good()
    assert good["rawEvent"]["api"]["version"] == "tp2"


def test_query_string_on_post_merges_into_every_event_and_wins(
    collector: LocalCollector, session: requests.Session
) -> None:
    events = [page_view(aid="from-body"), page_view(aid="from-body")]
    session.post(collector.url(TP2) + "?aid=from-query&uid=u1", json=body(*events))
    assert [g["event"]["app_id"] for g in collector.good()] == ["from-query", "from-query"]
    assert [g["event"]["user_id"] for g in collector.good()] == ["u1", "u1"]


def test_options_preflight_on_any_path(
    collector: LocalCollector, session: requests.Session
) -> None:
    for path in (TP2, "/i", "/anything/at/all"):
        response = session.options(collector.url(path), headers={"Origin": "https://shop.example"})
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert response.headers["Access-Control-Allow-Headers"] == "Content-Type, SP-Anonymous"
        assert response.headers["Access-Control-Max-Age"] == "3600"
        assert response.headers["Content-Length"] == "0"
    assert collector.requests() == []


def test_tracking_responses_echo_the_origin(
    collector: LocalCollector, session: requests.Session
) -> None:
    response = session.post(
        collector.url(TP2), json=body(page_view()), headers={"Origin": "https://a.example"}
    )
    assert response.headers["Access-Control-Allow-Origin"] == "https://a.example"


def test_health_robots_and_unknown_paths(
    collector: LocalCollector, session: requests.Session
) -> None:
    health = session.get(collector.url("/health"))
    assert (health.status_code, health.text) == (200, "ok")
    assert session.get(collector.url("/robots.txt")).text == "User-agent: *\nDisallow: /\n"
    assert session.get(collector.url("/nope")).status_code == 404
    assert session.get(collector.url("/a/b/c")).status_code == 404
    assert session.post(collector.url("/i"), data=b"x").status_code == 404
    redirect = session.get(collector.url("/r/tp2"), params={"u": "https://x.example"})
    assert (redirect.status_code, redirect.text) == (404, "redirects disabled")
    assert collector.summary()["total"] == 0


def test_cookie_sets_the_network_user_id(
    collector: LocalCollector, session: requests.Session
) -> None:
    response = session.get(collector.url("/i"), params=page_view())
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("sp=")
    nuid = cookie[3:].split(";", 1)[0]
    for attribute in ("Expires=", "Path=/", "SameSite=None", "Secure", "HttpOnly"):
        assert attribute in cookie
    [good] = collector.good()
    assert good["rawEvent"]["context"]["userId"] == nuid
    assert good["event"]["network_userid"] == nuid


def test_existing_cookie_and_nuid_parameter_are_reused(
    collector: LocalCollector, session: requests.Session
) -> None:
    session.get(collector.url("/i"), params=page_view(), headers={"Cookie": "sp=from-cookie"})
    session.get(collector.url("/i"), params=page_view(nuid="from-query"))
    first, second = collector.good()
    assert first["event"]["network_userid"] == "from-cookie"
    assert second["rawEvent"]["context"]["userId"] == "from-query"


def test_sp_anonymous_hides_ip_cookie_and_network_id(
    collector: LocalCollector, session: requests.Session
) -> None:
    response = session.post(
        collector.url(TP2),
        json=body(page_view()),
        headers={"SP-Anonymous": "*", "Cookie": "sp=old", "X-Forwarded-For": "1.2.3.4"},
    )
    assert response.status_code == 200
    set_cookie = response.headers.get("Set-Cookie", "")
    assert set_cookie.startswith("sp=;") and "1970" in set_cookie
    [good] = collector.good()
    context = good["rawEvent"]["context"]
    assert context["userId"] == "00000000-0000-0000-0000-000000000000"
    assert context["ipAddress"] == "unknown"
    names = {h.split(":", 1)[0].lower() for h in context["headers"]}
    assert not names & {"cookie", "x-forwarded-for", "x-real-ip"}
    assert good["event"]["network_userid"] == "00000000-0000-0000-0000-000000000000"
    assert good["event"]["user_ipaddress"] is None
    plain = session.get(collector.url("/i"), params=page_view(), headers={"SP-Anonymous": "*"})
    assert "Set-Cookie" not in plain.headers


def test_forwarded_for_header_gives_the_ip(
    collector: LocalCollector, session: requests.Session
) -> None:
    session.get(
        collector.url("/i"), params=page_view(), headers={"X-Forwarded-For": "9.8.7.6, 1.1.1.1"}
    )
    assert collector.good()[0]["event"]["user_ipaddress"] == "9.8.7.6"


def test_unsupported_vendor_version_is_accepted_then_a_bad_row(
    collector: LocalCollector, session: requests.Session
) -> None:
    assert session.get(collector.url("/com.acme/v9"), params={"a": "1"}).content == PIXEL_GIF
    assert session.post(collector.url("/com.acme/v9"), data=b"{}").text == "ok"
    bad = collector.bad()
    assert len(bad) == 2
    assert bad[0]["rawEvent"] is None
    assert bad[0]["collectorPayload"]["api"] == {"vendor": "com.acme", "version": "v9"}
    assert "vendor/version combination com.acme/v9 is not supported" in errors_of(bad)


def test_keep_alive_serves_many_requests_on_one_connection(collector: LocalCollector) -> None:
    connection = http.client.HTTPConnection(collector.host, collector.port, timeout=5)
    try:
        for _ in range(5):
            payload = json.dumps(body(page_view())).encode()
            connection.request("POST", TP2, payload, {"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200
            assert response.read() == b"ok"
            assert response.getheader("Connection") is None
        first_socket = connection.sock
        connection.request("GET", "/health")
        connection.getresponse().read()
        assert connection.sock is first_socket
    finally:
        connection.close()
    assert collector.summary()["good"] == 5


def test_requests_log_records_method_path_headers_body_status(
    collector: LocalCollector, session: requests.Session
) -> None:
    payload = json.dumps(body(page_view())).encode()
    session.post(collector.url(TP2) + "?x=1", data=payload, headers={"Content-Type": JSON_UTF8})
    session.get(collector.url("/i"), params={"e": "pv"})
    session.get(collector.url("/micro/all"))
    first, second = collector.requests()
    assert first["method"] == "POST" and first["path"] == TP2 and first["query"] == "x=1"
    assert first["body"] == payload and first["status"] == 200
    assert first["headers"]["Content-Type"] == JSON_UTF8
    assert second["method"] == "GET" and second["body"] is None and second["query"] == "e=pv"
    assert collector.requests_received == 2


def test_collector_listens_on_loopback_with_a_free_port(shared_iglu_dir: Path) -> None:
    with LocalCollector(iglu_dirs=[shared_iglu_dir]) as one, LocalCollector() as two:
        assert one.host == "127.0.0.1" and two.host == "127.0.0.1"
        assert one.port != two.port and one.port > 0
        assert one.endpoint == f"http://127.0.0.1:{one.port}"
    assert not one.running


def test_start_stop_without_context_manager(session: requests.Session) -> None:
    collector = LocalCollector()
    try:
        assert collector.start() is collector
        assert collector.start() is collector
        port = collector.port
        assert session.get(collector.url("/health")).status_code == 200
    finally:
        collector.stop()
        collector.stop()
    assert not collector.running
    with pytest.raises(requests.ConnectionError):
        session.get(f"http://127.0.0.1:{port}/health", timeout=1)
    with pytest.raises(RuntimeError, match="not running"):
        collector.endpoint  # noqa: B018
