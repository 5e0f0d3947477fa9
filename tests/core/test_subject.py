"""Subject: setters, validation and how tracker and event subjects combine."""

from __future__ import annotations

from typing import Any

import pytest

from snowplow_tracker import StructuredEvent, Subject, Tracker, disable_contracts

from .conftest import RecordingEmitter

SUBJECT_KEYS = (
    "p",
    "uid",
    "res",
    "vp",
    "cd",
    "tz",
    "lang",
    "duid",
    "sid",
    "vid",
    "ip",
    "ua",
    "tnuid",
)


def full_subject() -> Subject:
    return (
        Subject()
        .set_platform("mob")
        .set_user_id("user-1")
        .set_screen_resolution(1920, 1080)
        .set_viewport(800, 600)
        .set_color_depth(24)
        .set_timezone("Europe/London")
        .set_lang("en")
        .set_domain_user_id("duid-1")
        .set_domain_session_id("sid-1")
        .set_domain_session_index(3)
        .set_ip_address("10.0.0.1")
        .set_useragent("agent/1.0")
        .set_network_user_id("nuid-1")
    )


def test_new_subject_has_platform_pc() -> None:
    assert Subject().standard_nv_pairs == {"p": "pc"}


def test_every_setter_chains_and_sets_its_key() -> None:
    subject = full_subject()
    assert subject.standard_nv_pairs == {
        "p": "mob",
        "uid": "user-1",
        "res": "1920x1080",
        "vp": "800x600",
        "cd": 24,
        "tz": "Europe/London",
        "lang": "en",
        "duid": "duid-1",
        "sid": "sid-1",
        "vid": 3,
        "ip": "10.0.0.1",
        "ua": "agent/1.0",
        "tnuid": "nuid-1",
    }
    assert tuple(subject.standard_nv_pairs) == SUBJECT_KEYS


@pytest.mark.parametrize("platform", ["pc", "tv", "mob", "cnsl", "iot", "web", "srv", "app"])
def test_supported_platforms(platform: str) -> None:
    assert Subject().set_platform(platform).standard_nv_pairs["p"] == platform  # type: ignore[arg-type]


def test_unsupported_platform() -> None:
    with pytest.raises(ValueError, match=r"^value is not supported\.$"):
        Subject().set_platform("desktop")  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["set_screen_resolution", "set_viewport"])
@pytest.mark.parametrize(
    ("width", "height", "message"),
    [(0, 10, "^width must be greater than 0.$"), (10, -1, "^height must be greater than 0.$")],
)
def test_dimensions_must_be_positive(method: str, width: int, height: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        getattr(Subject(), method)(width, height)


def test_checks_are_off_when_contracts_are_disabled() -> None:
    disable_contracts()
    subject = Subject().set_platform("desktop").set_viewport(0, -1)  # type: ignore[arg-type]
    assert subject.standard_nv_pairs == {"p": "desktop", "vp": "0x-1"}


def test_combine_subject_event_subject_wins_and_tracker_keys_come_first() -> None:
    tracker_subject = Subject().set_user_id("tracker-user").set_lang("en")
    event_subject = Subject().set_user_id("event-user").set_timezone("UTC")
    combined = event_subject.combine_subject(tracker_subject)
    assert combined == {"p": "pc", "uid": "event-user", "lang": "en", "tz": "UTC"}
    assert list(combined) == ["p", "uid", "lang", "tz"]
    assert tracker_subject.standard_nv_pairs == {"p": "pc", "uid": "tracker-user", "lang": "en"}


def test_combine_subject_with_none_returns_own_pairs() -> None:
    subject = Subject().set_user_id("u")
    assert subject.combine_subject(None) is subject.standard_nv_pairs


def _subject_keys(payload: Any) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in payload.items() if k in SUBJECT_KEYS}


def test_tracker_subject_goes_into_every_event(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder, subject=full_subject())
    tracker.track(StructuredEvent("c", "a"))
    assert _subject_keys(recorder.last) == full_subject().standard_nv_pairs


def test_default_tracker_subject_sends_platform_pc(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder)
    assert isinstance(tracker.subject, Subject)
    tracker.track(StructuredEvent("c", "a"))
    assert _subject_keys(recorder.last) == {"p": "pc"}


def test_event_subject_combines_over_tracker_subject(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder, subject=Subject().set_platform("srv").set_user_id("t"))
    event_subject = Subject().set_platform("app").set_lang("fr")
    tracker.track(StructuredEvent("c", "a", event_subject=event_subject))
    assert _subject_keys(recorder.last) == {"p": "app", "uid": "t", "lang": "fr"}


def test_event_subject_resets_platform_to_pc_quirk(recorder: RecordingEmitter) -> None:
    # Kept from 1.1.0: every Subject carries p=pc, so an event subject overrides the
    # tracker's platform unless it sets its own.
    tracker = Tracker("ns", recorder, subject=Subject().set_platform("mob").set_user_id("t"))
    tracker.track(StructuredEvent("c", "a", event_subject=Subject().set_lang("de")))
    assert _subject_keys(recorder.last) == {"p": "pc", "uid": "t", "lang": "de"}


def test_event_subject_without_tracker_subject(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder).set_subject(None)
    tracker.track(StructuredEvent("c", "a", event_subject=Subject().set_user_id("e")))
    assert _subject_keys(recorder.last) == {"p": "pc", "uid": "e"}


def test_no_subject_at_all_sends_no_subject_keys(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder)
    tracker.set_subject(None)
    tracker.track(StructuredEvent("c", "a"))
    assert _subject_keys(recorder.last) == {}
    assert list(recorder.last) == ["e", "se_ca", "se_ac", "eid", "dtm", "tv", "tna"]


def test_none_and_empty_subject_values_are_dropped(recorder: RecordingEmitter) -> None:
    subject = Subject().set_user_id("").set_lang(None).set_color_depth(0)  # type: ignore[arg-type]
    Tracker("ns", recorder, subject=subject).track(StructuredEvent("c", "a"))
    assert _subject_keys(recorder.last) == {"p": "pc", "cd": 0}


def test_subject_changes_apply_to_later_events(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder)
    tracker.track(StructuredEvent("c", "a"))
    tracker.subject.set_user_id("later")  # type: ignore[union-attr]
    tracker.track(StructuredEvent("c", "a"))
    assert "uid" not in recorder.payloads[0]
    assert recorder.payloads[1]["uid"] == "later"
