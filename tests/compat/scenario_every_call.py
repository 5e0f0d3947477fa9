"""One sequence of tracker calls, run unchanged under snowplow-tracker 1.1.0 and under ours.

Usage: python scenario_every_call.py HOST:PORT

The clock and uuid4 are pinned, so both implementations must put the same bytes on the wire
(except ``tv`` and the deviations listed in docs/compatibility.md). Only the 1.1.0 public API
is used here.
"""

from __future__ import annotations

import datetime
import sys
import time
import uuid
import warnings
from typing import Any

warnings.simplefilter("ignore")

_counter = [0]


def _pinned_uuid4() -> uuid.UUID:
    _counter[0] += 1
    return uuid.UUID(int=0x1234_5678_0000_4000_8000_0000_0000_0000 + _counter[0])


uuid.uuid4 = _pinned_uuid4  # type: ignore[assignment]
time.time = lambda: 1700000000.0

from snowplow_tracker import (  # noqa: E402
    Emitter,
    PagePing,
    PageView,
    ScreenView,
    SelfDescribing,
    SelfDescribingJson,
    StructuredEvent,
    Subject,
    Tracker,
)

ENDPOINT = sys.argv[1]
WHEN = datetime.datetime(2024, 5, 6, 7, 8, 9)


def encoder(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def contexts() -> list:
    return [
        SelfDescribingJson(
            "iglu:com.acme/context/jsonschema/1-0-0",
            {"name": "Zoë ✓ 😀", "when": WHEN, "n": 1.5, "ok": True, "none": None},
        ),
        SelfDescribingJson("iglu:com.acme/other/jsonschema/1-0-0", {"list": [1, "two"]}),
    ]


def tracker_subject() -> Subject:
    subject = Subject()
    subject.set_platform("srv")
    subject.set_user_id("user-ü")
    subject.set_screen_resolution(1920, 1080)
    subject.set_viewport(800, 600)
    subject.set_color_depth(24)
    subject.set_timezone("Europe/London")
    subject.set_lang("fr-CA")
    subject.set_domain_user_id("duid-1")
    subject.set_domain_session_id("11111111-2222-4333-8444-555555555555")
    subject.set_domain_session_index(3)
    subject.set_ip_address("203.0.113.9")
    subject.set_useragent("Mozilla/5.0 (X11) Firefox/120.0")
    subject.set_network_user_id("nuid-9")
    return subject


def event_subject() -> Subject:
    return Subject().set_user_id("event-user").set_lang("de")


def run(tracker: Tracker) -> None:
    ctx = contexts()
    tracker.track(
        PageView(
            page_url="https://example.com/päge?q=1&r=a b",
            page_title="Tïtle — “quoted”",
            referrer="https://ref.example.com/",
            context=ctx,
            true_timestamp=1699999999999,
        )
    )
    tracker.track(
        PagePing(
            page_url="https://example.com/",
            page_title="Ping",
            min_x=0,
            max_x=100,
            min_y=5,
            max_y=500,
            event_subject=event_subject(),
        )
    )
    tracker.track(
        StructuredEvent(
            category="shop",
            action="add",
            label="socks ✓",
            property_="colour",
            value=2.5,
            context=ctx,
        )
    )
    tracker.track(StructuredEvent(category="shop", action="view", value=0, label=""))
    tracker.track(
        SelfDescribing(
            SelfDescribingJson("iglu:com.acme/event/jsonschema/1-0-0", {"when": WHEN, "x": "ÿ"}),
            context=ctx,
            event_subject=event_subject(),
            true_timestamp=1699999999000.7,
        )
    )
    tracker.track(
        ScreenView(
            id_="5a4c6cb1-ef61-4b5e-9b56-56fd2a1d5c27",
            name="Home",
            type="feed",
            previous_name="Splash",
            previous_id="1b1b1b1b-ef61-4b5e-9b56-56fd2a1d5c27",
            previous_type="splash",
            transition_type="push",
            context=ctx,
        )
    )
    tracker.track_page_view(
        "https://example.com/legacy", "Legacy", "https://r/", ctx, 1699999990000
    )
    tracker.track_page_ping("https://example.com/legacy", "Legacy", None, 1, 2, 3, 4, ctx)
    tracker.track_link_click(
        "https://example.com/target",
        element_id="link-1",
        element_classes=["a", "b"],
        element_target="_blank",
        element_content="Click ✓",
        context=ctx,
    )
    tracker.track_add_to_cart("sku-1", 2, "Socks", "clothes", 9.99, "EUR", ctx, 1699999980000)
    tracker.track_remove_from_cart("sku-1", 1, unit_price=2.50, currency="GBP")
    tracker.track_form_change("form-1", "field-1", "INPUT", None, "text", ["c1"], ctx)
    tracker.track_form_change("form-1", None, "TEXTAREA", "typed ü")
    tracker.track_form_submit(
        "form-1",
        ["f1", "f2"],
        [{"name": "email", "value": "a@b.c", "nodeName": "INPUT", "type": "email"}],
        ctx,
    )
    tracker.track_form_submit("form-2")
    tracker.track_site_search(["socks", "wool"], {"size": "L"}, 100, 10, ctx)
    tracker.track_ecommerce_transaction(
        "order-1",
        29.97,
        affiliation="shop",
        tax_value=2.5,
        shipping=5,
        city="Zürich",
        state="ZH",
        country="CH",
        currency="CHF",
        items=[
            {"sku": "sku-1", "price": 9.99, "quantity": 3, "name": "Socks", "category": "c"},
            {"sku": "sku-2", "price": 1, "quantity": 1},
        ],
        context=ctx,
        tstamp=1699999970000,
    )
    tracker.track_ecommerce_transaction_item(
        "order-2", "sku-3", 4.5, 2, "Hat", "hats", "EUR", ctx, 1699999960000
    )
    tracker.track_screen_view("Legacy screen", "screen-id-1", ctx)
    tracker.track_mobile_screen_view("Mobile", None, "type", "prev", None, None, "push", ctx)
    tracker.track_struct_event("cat", "act", "lab", "prop", 7, ctx, 1699999950000)
    tracker.track_self_describing_event(
        SelfDescribingJson("iglu:com.acme/event/jsonschema/1-0-0", {"k": "v"}),
        ctx,
        1699999940000,
        event_subject(),
    )
    tracker.track_unstruct_event(
        SelfDescribingJson("iglu:com.acme/event/jsonschema/1-0-0", {"k": "u"}), tuple(ctx)
    )


def main() -> None:
    for method in ("post", "get"):
        for encode_base64 in (True, False):
            emitter = Emitter(ENDPOINT, protocol="http", method=method, batch_size=7)
            tracker = Tracker(
                namespace=f"ns-{method}-{encode_base64}",
                emitters=emitter,
                subject=tracker_subject(),
                app_id="app-ü",
                encode_base64=encode_base64,
                json_encoder=encoder,
            )
            run(tracker)
            tracker.flush()
    # A tracker whose subject was removed (as dbt does) and no app id.
    bare = Tracker("bare", Emitter(ENDPOINT, protocol="http", batch_size=2))
    bare.set_subject(None)
    bare.track(StructuredEvent("c", "a"))
    bare.track(PageView("https://example.com/"))
    bare.flush()
    print('{"done": true}')


main()
