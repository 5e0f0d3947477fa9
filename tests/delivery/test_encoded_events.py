"""POST emitters keep events encoded (JSON text) in their own in-memory store.

What callers see must not change: bodies byte for byte as 1.1.0 writes them, dicts in
callbacks, ``event_buffer``, ``get_events_batch()``, ``on_drop`` and overridden seams.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from snowplow_tracker._packing import encode_event, post_body, split_batches
from snowplow_tracker.collector import LocalCollector
from snowplow_tracker.emitters import AsyncEmitter, Emitter
from snowplow_tracker.event_store import InMemoryEventStore
from snowplow_tracker.typing import PayloadDictList
from tests.support.payloads import event

_values = st.one_of(
    st.text(),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.sampled_from(["%s", "%", "a%%b", "\x7f", "\x1f", '"', "\\", "é", "\ud800", "日本"]),
)
_keys = st.one_of(st.text(max_size=6), st.sampled_from(["e", "eid", "%s", "a%", 'k"', "é"]))


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_keys, _values, min_size=1, max_size=10))
def test_an_encoded_event_is_json_dumps_of_its_string_values_without_the_closing_brace(
    payload: Dict[str, Any],
) -> None:
    text = encode_event(payload)
    assert text + "}" == json.dumps({k: str(v) for k, v in payload.items()})


def test_the_body_splices_stm_last_exactly_where_1_1_0_puts_it() -> None:
    first, second = event(se_va=2.5), event(url='https://e.com/é?q="x"')
    encoded = [encode_event(first), encode_event(second)]
    as_dicts = [{k: str(v) for k, v in p.items()} for p in (first, second)]
    for item in as_dicts:
        item["stm"] = "1700000000123"
    expected = json.dumps(
        {
            "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
            "data": as_dicts,
        }
    )
    assert post_body(encoded, "1700000000123") == expected
    assert post_body([encoded[0], as_dicts[1]], "1700000000123") == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.dictionaries(_keys, _values, min_size=1, max_size=6), st.booleans()),
        min_size=0,
        max_size=5,
    )
)
def test_any_mix_of_encoded_events_and_dicts_makes_the_body_1_1_0_writes(
    events: List[Tuple[Dict[str, Any], bool]],
) -> None:
    stm = "1700000000123"
    sent = []
    items: List[Any] = []
    for payload, keep_as_dict in events:
        as_dict = {k: str(v) for k, v in payload.items()}
        as_dict.pop("stm", None)
        items.append(dict(as_dict, stm=stm) if keep_as_dict else encode_event(as_dict))
        as_dict["stm"] = stm
        sent.append(as_dict)
    expected = json.dumps(
        {
            "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
            "data": sent,
        }
    )
    assert post_body(items, stm) == expected


def test_a_value_that_looks_like_an_event_boundary_stays_a_value() -> None:
    payloads = [event(se_la='"}, {"'), event(se_la="}, {"), event(se_pr='x"}, {"e": "pv')]
    body = post_body([encode_event(p) for p in payloads], "1700000000123")
    sent = [{k: str(v) for k, v in p.items()} for p in payloads]
    for item in sent:
        item["stm"] = "1700000000123"
    assert json.loads(body)["data"] == sent


def test_an_encoded_event_takes_less_than_half_the_memory_of_its_dict() -> None:
    payload = event(se_la="label", se_pr="property", se_va=2.5, aid="app")
    as_dict = {k: str(v) for k, v in payload.items()}
    dict_bytes = sys.getsizeof(as_dict) + sum(sys.getsizeof(v) for v in as_dict.values())
    assert sys.getsizeof(encode_event(payload)) < dict_bytes / 2


def test_the_default_post_store_holds_text_but_shows_dicts() -> None:
    emitter = Emitter("127.0.0.1:9", protocol="http", batch_size=100)
    payloads = [event(se_va=1.5), event()]
    for payload in payloads:
        emitter.input(payload)
    store = emitter.event_store
    assert isinstance(store, InMemoryEventStore)
    assert all(isinstance(item, str) for item in store._buffer)
    expected = [{k: str(v) for k, v in p.items()} for p in payloads]
    assert store.event_buffer == expected
    assert store.get_events_batch(1) == expected[:1]
    assert store.size() == 1


def test_get_emitters_and_custom_stores_keep_dicts() -> None:
    get_emitter = Emitter("127.0.0.1:9", protocol="http", method="get", batch_size=100)
    get_emitter.input(event(se_va=1.5))
    assert get_emitter.event_store.event_buffer[0]["se_va"] == 1.5  # type: ignore[attr-defined]

    class Recording(InMemoryEventStore):
        def add_event(self, payload: Dict[str, Any]) -> bool:
            assert isinstance(payload, dict)
            return super().add_event(payload)

    store = Recording(logger=__import__("logging").getLogger("t"))
    emitter = Emitter("127.0.0.1:9", protocol="http", batch_size=100, event_store=store)
    emitter.input(event())
    assert isinstance(store._buffer[0], dict)


def test_callbacks_get_the_dicts_as_sent_with_their_stm(
    snowplow_collector: LocalCollector,
) -> None:
    seen: List[PayloadDictList] = []
    emitter = Emitter(snowplow_collector.endpoint, batch_size=2, on_success=seen.append)
    payloads = [event(se_va=3), event()]
    for payload in payloads:
        emitter.input(payload)
    assert snowplow_collector.wait_for(2, timeout=5)
    (sent,) = seen
    sent_on_wire = snowplow_collector.payloads()
    assert [dict(e) for e in sent] == [dict(p) for p in sent_on_wire]
    assert sent[0]["se_va"] == "3" and "stm" in sent[0]


def test_on_failure_and_on_drop_get_dicts(snowplow_collector: LocalCollector) -> None:
    failed: List[Tuple[int, PayloadDictList]] = []
    dropped: List[Tuple[PayloadDictList, str]] = []
    snowplow_collector.fail_next(1, status=400)
    emitter = Emitter(
        snowplow_collector.endpoint,
        batch_size=2,
        buffer_capacity=2,
        on_failure=lambda count, events: failed.append((count, events)),
        on_drop=lambda events, reason: dropped.append((events, reason)),
    )
    first = [event(), event()]
    for payload in first:
        emitter.input(payload)
    ((count, events),) = failed
    assert count == 0 and [e["eid"] for e in events] == [p["eid"] for p in first]
    assert all(isinstance(e, dict) and "stm" in e for e in events)

    # Fill the buffer while the collector is unreachable to see a drop.
    emitter.shutdown(timeout=0)
    late = event()
    emitter.input(late)
    ((events, reason),) = dropped
    assert reason == "shutdown" and events[0]["eid"] == late["eid"]


def test_drop_oldest_reports_the_evicted_event_as_a_dict() -> None:
    dropped: List[Tuple[PayloadDictList, str]] = []
    emitter = Emitter(
        "127.0.0.1:9",
        protocol="http",
        batch_size=10,
        buffer_capacity=2,
        overflow_policy="drop_oldest",
        on_drop=lambda events, reason: dropped.append((events, reason)),
    )
    payloads = [event(), event(), event()]
    for payload in payloads:
        emitter.input(payload)
    ((events, reason),) = dropped
    assert reason == "buffer_full" and events == [{k: str(v) for k, v in payloads[0].items()}]
    assert emitter.stats().dropped == 1 and emitter.stats().accepted == 3


def test_an_overridden_send_events_gets_dicts(snowplow_collector: LocalCollector) -> None:
    received: List[PayloadDictList] = []

    class Inspecting(Emitter):
        def send_events(self, evts: PayloadDictList) -> None:
            received.append([dict(e) for e in evts])
            super().send_events(evts)

    emitter = Inspecting(snowplow_collector.endpoint, batch_size=2)
    payloads = [event(), event()]
    for payload in payloads:
        emitter.input(payload)
    assert snowplow_collector.wait_for(2, timeout=5)
    assert [e["eid"] for e in received[0]] == [p["eid"] for p in payloads]


def test_an_overridden_attach_sent_timestamp_still_stamps_every_event(
    snowplow_collector: LocalCollector,
) -> None:
    class FixedStamp(Emitter):
        @staticmethod
        def attach_sent_timestamp(events: PayloadDictList) -> None:
            for item in events:
                item["stm"] = "1234"

    emitter = FixedStamp(snowplow_collector.endpoint, batch_size=2)
    for _ in range(2):
        emitter.input(event())
    assert snowplow_collector.wait_for(2, timeout=5)
    assert [p["stm"] for p in snowplow_collector.payloads()] == ["1234", "1234"]


def test_retried_encoded_events_are_sent_again_unchanged(
    snowplow_collector: LocalCollector,
) -> None:
    snowplow_collector.fail_next(1, status=503)
    emitter = AsyncEmitter(snowplow_collector.endpoint, batch_size=3)
    payloads = [event(page='café "quoted"'), event(), event(se_va=0.1)]
    for payload in payloads:
        emitter.input(payload)
    emitter.force_flush(timeout=5)
    report = emitter.force_flush(timeout=5)
    assert report.pending == 0
    delivered = {good["event"]["event_id"] for good in snowplow_collector.good()}
    assert delivered == {p["eid"] for p in payloads}
    bodies = [r["body"] for r in snowplow_collector.requests() if r["method"] == "POST"]
    first, last = (json.loads(b)["data"] for b in (bodies[0], bodies[-1]))
    for before, after in zip(first, last):
        before.pop("stm"), after.pop("stm")
        assert before == after


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=400), max_size=60),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=60, max_value=2_000),
)
def test_encoded_events_split_into_the_same_batches_as_the_per_event_rule(
    lengths: List[int], max_count: int, max_bytes: int
) -> None:
    events = ["{" + "x" * (length - 1) for length in lengths]
    batches = list(split_batches(events, max_count, max_bytes))
    expected: List[List[str]] = []  # greedy: add an event while the body stays in budget
    for item in events:
        if expected and len(expected[-1]) < max_count:
            body = len(post_body(expected[-1] + [item], "1700000000123"))
            if body <= max_bytes:
                expected[-1].append(item)
                continue
        expected.append([item])
    assert batches == expected
    for batch in batches:
        assert len(batch) == 1 or len(post_body(batch, "1700000000123")) <= max_bytes
