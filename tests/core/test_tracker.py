"""Tracker: payload completion, key order, emitters and flushing."""

from __future__ import annotations

import base64
import datetime
import json
import os
import time
import uuid
from typing import Any, Dict, List
from unittest import mock

import pytest

import snowplow_tracker
from snowplow_tracker import (
    Event,
    PagePing,
    PageView,
    ScreenView,
    SelfDescribing,
    SelfDescribingJson,
    StructuredEvent,
    Subject,
    Tracker,
    disable_contracts,
)
from snowplow_tracker.payload import Payload
from snowplow_tracker.tracker import VERSION

from .conftest import FIXED_DTM, FlushingEmitter, LifecycleEmitter, RecordingEmitter

CTX_SCHEMA = "iglu:com.acme/ctx/jsonschema/1-0-0"
EVENT_SCHEMA = "iglu:com.acme/event/jsonschema/1-0-0"
TAIL = ["eid", "dtm", "tv", "tna", "aid"]


def decode(value: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(value).decode("utf-8"))


# ---------------------------------------------------------------- construction


def test_defaults(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder)
    assert tracker.emitters == [recorder]
    assert isinstance(tracker.subject, Subject)
    assert tracker.encode_base64 is True
    assert tracker.json_encoder is None
    assert tracker.standard_nv_pairs == {"tv": VERSION, "tna": "ns", "aid": None}
    assert tracker.timer is None
    assert tracker.get_namespace() == "ns"


def test_keyword_construction_as_used_downstream(recorder: RecordingEmitter) -> None:
    tracker = Tracker(emitters=recorder, namespace="cf", app_id="dbt")
    assert tracker.standard_nv_pairs == {"tv": VERSION, "tna": "cf", "aid": "dbt"}


def test_emitter_list_is_kept_as_is(recorder: RecordingEmitter) -> None:
    emitters: List[Any] = [recorder]
    tracker = Tracker("ns", emitters)
    assert tracker.emitters is emitters
    other = RecordingEmitter()
    assert tracker.add_emitter(other) is tracker
    assert emitters == [recorder, other]


def test_emitter_tuple_is_a_list_of_emitters() -> None:
    first, second = RecordingEmitter(), RecordingEmitter()
    tracker = Tracker("ns", (first, second))
    assert tracker.emitters == [first, second]
    tracker.track(PageView("u"))
    assert len(first.payloads) == len(second.payloads) == 1


@pytest.mark.parametrize("emitters", [[], ()])
def test_empty_emitters_rejected(emitters: Any) -> None:
    with pytest.raises(ValueError, match=r"^emitters is empty\.$"):
        Tracker("ns", emitters)


def test_empty_emitter_list_allowed_without_contracts() -> None:
    disable_contracts()
    tracker = Tracker("ns", [])
    assert tracker.track(PageView("u")) is not None


@pytest.mark.parametrize("emitters", [None, "emitter", [object()]])
def test_emitters_need_an_input_method(emitters: Any) -> None:
    with pytest.raises(TypeError, match="emitters"):
        Tracker("ns", emitters)


def test_add_emitter_needs_an_input_method(recorder: RecordingEmitter) -> None:
    with pytest.raises(TypeError, match="emitters"):
        Tracker("ns", recorder).add_emitter(object())  # type: ignore[arg-type]


def test_namespace_must_be_a_string(recorder: RecordingEmitter) -> None:
    with pytest.raises(TypeError, match="namespace"):
        Tracker(None, recorder)  # type: ignore[arg-type]


# ---------------------------------------------------------------- track


def test_track_returns_eid_and_builds_full_payload(
    pinned: List[str], recorder: RecordingEmitter
) -> None:
    tracker = Tracker("ns", recorder, app_id="app")
    eid = tracker.track(StructuredEvent("cat", "AA"))
    assert eid == pinned[0]
    assert list(recorder.last.items()) == [
        ("e", "se"),
        ("se_ca", "cat"),
        ("se_ac", "AA"),
        ("p", "pc"),
        ("eid", pinned[0]),
        ("dtm", FIXED_DTM),
        ("tv", "py-" + snowplow_tracker.__version__),
        ("tna", "ns"),
        ("aid", "app"),
    ]
    assert isinstance(recorder.last["dtm"], int)


@pytest.mark.parametrize("app_id", [None, ""])
def test_aid_omitted_when_empty(recorder: RecordingEmitter, app_id: Any) -> None:
    Tracker("ns", recorder, app_id=app_id).track(PageView("u"))
    assert list(recorder.last) == ["e", "url", "p", "eid", "dtm", "tv", "tna"]


@pytest.mark.parametrize(
    ("event", "own_keys"),
    [
        (PageView("u", "t", "r"), ["e", "url", "page", "refr"]),
        (
            PagePing("u", "t", "r", 0, 1, 2, 3),
            ["e", "url", "page", "refr", "pp_mix", "pp_max", "pp_miy", "pp_may"],
        ),
        (
            StructuredEvent("c", "a", "l", "p", 0),
            ["e", "se_ca", "se_ac", "se_la", "se_pr", "se_va"],
        ),
        (SelfDescribing(SelfDescribingJson(EVENT_SCHEMA, {"k": 1})), ["e", "ue_px"]),
        (ScreenView("i", "n"), ["e", "ue_px"]),
        (Event(dict_={"e": "tr", "tr_id": "o"}), ["e", "tr_id"]),
    ],
)
def test_key_order_for_every_event_class(
    recorder: RecordingEmitter, event: Event, own_keys: List[str]
) -> None:
    event.context = [SelfDescribingJson(CTX_SCHEMA, {"c": 1})]
    event.true_timestamp = 1000
    tracker = Tracker("ns", recorder, subject=Subject().set_user_id("u"), app_id="a")
    tracker.track(event)
    assert list(recorder.last) == [*own_keys, "cx", "ttm", "p", "uid", *TAIL]


def test_base64_off_uses_raw_keys(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder, encode_base64=False)
    ctx = [SelfDescribingJson(CTX_SCHEMA, {"name": "żółw"})]
    tracker.track(SelfDescribing(SelfDescribingJson(EVENT_SCHEMA, {"k": "✓"}), context=ctx))
    payload = recorder.last
    assert "ue_pr" in payload and "co" in payload
    assert "ue_px" not in payload and "cx" not in payload
    assert '"k": "✓"' in payload["ue_pr"]
    assert '"name": "żółw"' in payload["co"]


def test_base64_on_encodes_utf8(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder)
    ctx = [SelfDescribingJson(CTX_SCHEMA, {"name": "żółw"})]
    tracker.track(SelfDescribing(SelfDescribingJson(EVENT_SCHEMA, {"k": "✓"}), context=ctx))
    assert decode(recorder.last["ue_px"])["data"]["data"] == {"k": "✓"}
    assert decode(recorder.last["cx"])["data"][0]["data"] == {"name": "żółw"}


def test_tracker_json_encoder(recorder: RecordingEmitter) -> None:
    def encoder(value: Any) -> Any:
        if isinstance(value, datetime.datetime):
            return value.isoformat()
        raise TypeError

    tracker = Tracker("ns", recorder, encode_base64=False, json_encoder=encoder)
    when = datetime.datetime(2024, 5, 6, 7, 8, 9)
    tracker.track(SelfDescribing(SelfDescribingJson(EVENT_SCHEMA, {"at": when})))
    assert json.loads(recorder.last["ue_pr"])["data"]["data"] == {"at": "2024-05-06T07:08:09"}


def test_unserialisable_value_raises_in_caller(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder)
    with pytest.raises(TypeError):
        tracker.track(SelfDescribing(SelfDescribingJson(EVENT_SCHEMA, {"s": {1, 2}})))
    assert recorder.payloads == []


def test_top_level_values_are_not_json_encoded(recorder: RecordingEmitter) -> None:
    Tracker("ns", recorder).track(StructuredEvent("c", "a", value=2.5))
    assert recorder.last["se_va"] == 2.5


def test_dtm_is_int_milliseconds_of_time_time(recorder: RecordingEmitter) -> None:
    with mock.patch.object(time, "time", return_value=1_234_567_890.9876):
        Tracker("ns", recorder).track(PageView("u"))
    assert recorder.last["dtm"] == 1_234_567_890_987


def test_eid_uses_uuid4(recorder: RecordingEmitter) -> None:
    fixed = uuid.UUID("12345678-1234-4234-8234-123456789abc")
    with mock.patch.object(uuid, "uuid4", return_value=fixed):
        assert Tracker("ns", recorder).track(PageView("u")) == str(fixed)
    assert recorder.last["eid"] == str(fixed)


def test_track_rejects_non_events(recorder: RecordingEmitter) -> None:
    with pytest.raises(TypeError, match="event"):
        Tracker("ns", recorder).track({"e": "pv"})  # type: ignore[arg-type]


def test_track_calls_complete_payload_with_keyword(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder)
    event = PageView("u")
    with mock.patch.object(
        Tracker, "complete_payload", return_value=Payload({"eid": "x"})
    ) as complete:
        assert tracker.track(event) == "x"
    complete.assert_called_once_with(event=event)
    assert recorder.last == {"eid": "x"}


def test_track_returns_none_without_eid(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder)
    with mock.patch.object(Tracker, "complete_payload", return_value=Payload({"e": "pv"})):
        assert tracker.track(PageView("u")) is None


def test_complete_payload_calls_build_payload_with_keywords(recorder: RecordingEmitter) -> None:
    subject = Subject()
    tracker = Tracker("ns", recorder, subject=subject, encode_base64=False, json_encoder=str)
    event = PageView("u")
    with mock.patch.object(PageView, "build_payload", return_value=Payload({"e": "pv"})) as build:
        payload = tracker.complete_payload(event)
    build.assert_called_once_with(encode_base64=False, json_encoder=str, subject=subject)
    assert list(payload.nv_pairs) == ["e", "eid", "dtm", "tv", "tna"]


def test_get_uuid_and_get_timestamp(pinned: List[str]) -> None:
    assert Tracker.get_uuid() == pinned[-1]
    assert Tracker.get_timestamp() == FIXED_DTM
    assert Tracker.get_timestamp(1234.9) == 1234
    assert Tracker.get_timestamp(True) == 1
    assert Tracker.get_timestamp("99") == FIXED_DTM  # type: ignore[arg-type]


def test_patched_uuid_and_timestamp_are_used(recorder: RecordingEmitter) -> None:
    with mock.patch.object(Tracker, "get_uuid", return_value="fixed-id"), mock.patch.object(
        Tracker, "get_timestamp", return_value=42
    ):
        assert Tracker("ns", recorder).track(PageView("u")) == "fixed-id"
    assert recorder.last["dtm"] == 42


# ---------------------------------------------------------------- aliasing


def test_each_emitter_gets_its_own_dict() -> None:
    class MutatingEmitter(RecordingEmitter):
        def input(self, payload: Dict[str, Any]) -> None:
            payload["stm"] = "1"
            payload["e"] = "changed"
            super().input(payload)

    first, second, third = MutatingEmitter(), RecordingEmitter(), RecordingEmitter()
    Tracker("ns", [first, second, third]).track(PageView("u"))
    assert first.last["e"] == "changed"
    assert second.last["e"] == "pv" and "stm" not in second.last
    assert second.last == third.last
    assert second.last is not third.last
    third.last["tna"] = "mutated later"
    assert second.last["tna"] == "ns"


def test_retracking_an_event_gives_independent_payloads(
    pinned: List[str], recorder: RecordingEmitter
) -> None:
    tracker = Tracker("ns", recorder)
    event = PageView("u", context=[SelfDescribingJson(CTX_SCHEMA, {})])
    event.event_subject = Subject().set_user_id("first")
    tracker.track(event)
    event.event_subject = None
    tracker.track(event)
    first, second = recorder.payloads
    assert first is not second
    assert first["eid"] == pinned[0] and second["eid"] == pinned[1]
    assert first["uid"] == "first" and "uid" not in second
    assert event.payload.nv_pairs == {"e": "pv", "url": "u"}


def test_event_shared_by_trackers_with_different_encodings(recorder: RecordingEmitter) -> None:
    other = RecordingEmitter()
    event = StructuredEvent("c", "a", context=[SelfDescribingJson(CTX_SCHEMA, {})])
    Tracker("a", recorder, encode_base64=True).track(event)
    Tracker("b", other, encode_base64=False).track(event)
    Tracker("a", recorder, encode_base64=True).track(event)
    assert "co" in other.last and "cx" not in other.last
    for payload in recorder.payloads:
        assert "cx" in payload and "co" not in payload


def test_caller_objects_are_not_mutated(recorder: RecordingEmitter) -> None:
    seed = {"e": "se", "se_ca": "c", "se_ac": "a", "skip": None}
    event_data = {"k": [1, 2]}
    context_data = {"c": {"nested": True}}
    subject = Subject().set_user_id("u")
    snapshot = (dict(seed), repr(event_data), repr(context_data), dict(subject.standard_nv_pairs))
    event = Event(dict_=seed, context=[SelfDescribingJson(CTX_SCHEMA, context_data)])
    tracker = Tracker("ns", [recorder, RecordingEmitter()], subject=subject)
    tracker.track(event)
    tracker.track(SelfDescribing(SelfDescribingJson(EVENT_SCHEMA, event_data)))
    recorder.last["k"] = "emitter side change"
    after = (seed, repr(event_data), repr(context_data), subject.standard_nv_pairs)
    assert after == snapshot


def test_tracker_subject_not_mutated_by_tracking(recorder: RecordingEmitter) -> None:
    subject = Subject().set_user_id("u")
    tracker = Tracker("ns", recorder, subject=subject)
    tracker.track(PageView("u", event_subject=Subject().set_lang("x")))
    assert subject.standard_nv_pairs == {"p": "pc", "uid": "u"}


# ---------------------------------------------------------------- flushing


def test_flush_calls_sync_flush_by_default() -> None:
    emitter = FlushingEmitter()
    tracker = Tracker("ns", emitter)
    assert tracker.flush() is tracker
    assert tracker.flush(is_async=True) is tracker
    assert emitter.calls == ["sync_flush", "flush"]


def test_flush_skips_missing_methods(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder)
    tracker.flush()
    tracker.flush(is_async=True)


def test_force_flush_prefers_force_flush_then_sync_flush_then_flush() -> None:
    lifecycle, flushing = LifecycleEmitter(), FlushingEmitter()

    class OnlyFlush(RecordingEmitter):
        def flush(self) -> None:
            self.calls.append("flush")

    only_flush, bare = OnlyFlush(), RecordingEmitter()
    tracker = Tracker("ns", [lifecycle, flushing, only_flush, bare])
    assert tracker.force_flush(3.0) is tracker
    assert lifecycle.calls == ["force_flush"]
    assert 0 <= lifecycle.timeouts[0] <= 3.0
    assert flushing.calls == ["sync_flush"]
    assert only_flush.calls == ["flush"]


def test_shutdown_prefers_shutdown_else_force_flush() -> None:
    lifecycle, flushing = LifecycleEmitter(), FlushingEmitter()
    tracker = Tracker("ns", [lifecycle, flushing, RecordingEmitter()])
    assert tracker.shutdown() is tracker
    assert lifecycle.calls == ["shutdown"]
    assert 0 <= lifecycle.timeouts[0] <= 5.0
    assert flushing.calls == ["sync_flush"]


def test_shutdown_continues_after_an_emitter_fails() -> None:
    class Broken(RecordingEmitter):
        def shutdown(self, timeout: float) -> None:
            raise RuntimeError("boom")

    healthy = LifecycleEmitter()
    tracker = Tracker("ns", [Broken(), healthy])
    with pytest.raises(RuntimeError, match="boom"):
        tracker.shutdown(1.0)
    assert healthy.calls == ["shutdown"]


@pytest.mark.parametrize(
    ("timeout", "error"), [(-1, ValueError), ("5", TypeError), (True, TypeError)]
)
def test_flush_timeouts_are_validated(
    recorder: RecordingEmitter, timeout: Any, error: type
) -> None:
    tracker = Tracker("ns", recorder)
    with pytest.raises(error, match="timeout"):
        tracker.force_flush(timeout)
    with pytest.raises(error, match="timeout"):
        tracker.shutdown(timeout)


def test_set_subject(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder)
    subject = Subject()
    assert tracker.set_subject(subject) is tracker
    assert tracker.subject is subject
    assert tracker.set_subject(None).subject is None


def test_real_emitter_class_works_with_tracker() -> None:
    # Only construction and buffering: nothing is sent (batch size not reached).
    emitter = snowplow_tracker.Emitter("collector.invalid", batch_size=100, exit_timeout=0)
    try:
        tracker = Tracker("ns", emitter)
        tracker.track(PageView("u"))
    finally:
        emitter.shutdown(0)


def test_event_ids_are_version_4_uuids_and_unique_across_threads() -> None:
    import threading
    import uuid as uuid_module

    ids: List[str] = []
    lock = threading.Lock()

    def draw() -> None:
        mine = [Tracker.get_uuid() for _ in range(3000)]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(ids) == 12000 and len(set(ids)) == 12000
    for value in ids[:200]:
        parsed = uuid_module.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid_module.RFC_4122
        assert str(parsed) == value


@pytest.mark.parametrize(
    "getrandom",
    [
        pytest.param(mock.Mock(side_effect=BlockingIOError(11, "not ready")), id="not-ready"),
        pytest.param(mock.Mock(side_effect=OSError(38, "no system call")), id="no-syscall"),
        pytest.param(mock.Mock(return_value=b"\x00" * 100), id="short-read"),
    ],
)
def test_event_id_bytes_fall_back_to_urandom_when_getrandom_cannot_serve(
    getrandom: mock.Mock,
) -> None:
    from snowplow_tracker import tracker as tracker_module

    with mock.patch.object(os, "getrandom", getrandom, create=True), mock.patch.object(
        os, "urandom", wraps=os.urandom
    ) as urandom:
        data = tracker_module._random_bytes(4096)
    assert len(data) == 4096 and data != b"\x00" * 4096
    urandom.assert_called_once_with(4096)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_never_draws_its_parents_event_ids() -> None:
    Tracker.get_uuid()  # the parent's pool has bytes left when it forks
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next ids, then leave at once
        os.close(read_end)
        os.write(write_end, ",".join(Tracker.get_uuid() for _ in range(50)).encode())
        os._exit(0)
    os.close(write_end)
    parent_ids = {Tracker.get_uuid() for _ in range(50)}
    with os.fdopen(read_end) as pipe:
        child_ids = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    assert len(child_ids) == 50 and not child_ids & parent_ids
