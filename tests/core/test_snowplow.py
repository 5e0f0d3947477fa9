"""The Snowplow tracker registry and create_tracker."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Tuple

import pytest

from snowplow_tracker import (
    AsyncEmitter,
    Emitter,
    EmitterConfiguration,
    Snowplow,
    Subject,
    Tracker,
    TrackerConfiguration,
)
from snowplow_tracker import snowplow as snowplow_module
from snowplow_tracker.event_store import InMemoryEventStore
from snowplow_tracker.retry import RetryPolicy

from .conftest import LifecycleEmitter, RecordingEmitter


class FakeEmitter(RecordingEmitter):
    created: List[Tuple[str, Tuple[Any, ...], Dict[str, Any]]] = []
    kind = "sync"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        FakeEmitter.created.append((self.kind, args, kwargs))


class FakeAsyncEmitter(FakeEmitter):
    kind = "async"


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> List[Tuple[str, Tuple[Any, ...], Dict[str, Any]]]:
    FakeEmitter.created = []
    monkeypatch.setattr(snowplow_module, "Emitter", FakeEmitter)
    monkeypatch.setattr(snowplow_module, "AsyncEmitter", FakeAsyncEmitter)
    return FakeEmitter.created


COMMON_KEYS = {
    "method",
    "batch_size",
    "on_success",
    "on_failure",
    "byte_limit",
    "request_timeout",
    "max_retry_delay_seconds",
    "buffer_capacity",
    "custom_retry_codes",
    "event_store",
    "session",
    "retry_policy",
    "overflow_policy",
    "block_timeout",
    "on_drop",
    "exit_timeout",
}


def test_create_tracker_with_defaults(fakes: List[Any]) -> None:
    tracker = Snowplow.create_tracker("ns", "collector.example.com")
    assert isinstance(tracker, Tracker)
    assert Snowplow.get_tracker("ns") is tracker
    kind, args, kwargs = fakes[0]
    assert kind == "sync"
    assert args == ("collector.example.com",)
    assert set(kwargs) == COMMON_KEYS
    assert kwargs["method"] == "post"
    assert kwargs["custom_retry_codes"] == {}
    assert kwargs["max_retry_delay_seconds"] == 60
    assert tracker.encode_base64 is True
    assert tracker.json_encoder is None
    assert tracker.standard_nv_pairs["aid"] is None


def test_create_tracker_forwards_every_setting(fakes: List[Any]) -> None:
    store = InMemoryEventStore(logging.getLogger("test"))
    policy = RetryPolicy()
    callbacks = (lambda events: None, lambda count, events: None, lambda events, reason: None)
    config = EmitterConfiguration(
        batch_size=7,
        on_success=callbacks[0],
        on_failure=callbacks[1],
        byte_limit=999,
        request_timeout=(1, 2),
        buffer_capacity=70,
        custom_retry_codes={500: False},
        event_store=store,
        max_retry_delay_seconds=9,
        protocol="http",
        port=9090,
        retry_policy=policy,
        overflow_policy="drop_oldest",
        block_timeout=0.25,
        on_drop=callbacks[2],
        exit_timeout=0.5,
    )
    subject = Subject().set_user_id("u")
    tracker = Snowplow.create_tracker(
        "ns", "localhost", "get", "app", subject, TrackerConfiguration(False, str), config
    )
    kind, args, kwargs = fakes[0]
    assert kind == "sync"
    assert args == ("localhost",)
    assert kwargs == {
        "method": "get",
        "batch_size": 7,
        "on_success": callbacks[0],
        "on_failure": callbacks[1],
        "byte_limit": 999,
        "request_timeout": (1, 2),
        "max_retry_delay_seconds": 9,
        "buffer_capacity": 70,
        "custom_retry_codes": {500: False},
        "event_store": store,
        "session": None,
        "retry_policy": policy,
        "overflow_policy": "drop_oldest",
        "block_timeout": 0.25,
        "on_drop": callbacks[2],
        "exit_timeout": 0.5,
        "protocol": "http",
        "port": 9090,
    }
    assert kwargs["custom_retry_codes"] is config.custom_retry_codes
    assert tracker.subject is subject
    assert tracker.encode_base64 is False and tracker.json_encoder is str
    assert tracker.standard_nv_pairs["aid"] == "app"


def test_create_tracker_builds_async_emitter(fakes: List[Any]) -> None:
    config = EmitterConfiguration(asynchronous=True, thread_count=3)
    Snowplow.create_tracker("ns", "localhost", emitter_config=config)
    kind, _, kwargs = fakes[0]
    assert kind == "async"
    assert kwargs["thread_count"] == 3
    assert set(kwargs) == COMMON_KEYS | {"thread_count"}


def test_default_configurations_are_built_per_call(fakes: List[Any]) -> None:
    Snowplow.create_tracker("a", "localhost")
    Snowplow.create_tracker("b", "localhost")
    first, second = fakes[0][2], fakes[1][2]
    assert first["custom_retry_codes"] is not second["custom_retry_codes"]
    signature_defaults = Snowplow.create_tracker.__defaults__
    assert signature_defaults == ("post", None, None, None, None)


def test_endpoint_none_is_a_type_error(fakes: List[Any]) -> None:
    with pytest.raises(TypeError, match="endpoint"):
        Snowplow.create_tracker("ns", None)  # type: ignore[arg-type]
    assert fakes == []


def test_bad_namespace_raises_before_building(fakes: List[Any]) -> None:
    with pytest.raises(TypeError, match="namespace"):
        Snowplow.create_tracker(None, "localhost")  # type: ignore[arg-type]
    assert fakes == []


def test_duplicate_namespace_raises_before_building(fakes: List[Any]) -> None:
    first = Snowplow.create_tracker("ns", "localhost")
    with pytest.raises(TypeError, match="ns"):
        Snowplow.create_tracker("ns", "localhost")
    assert len(fakes) == 1
    assert Snowplow.get_tracker("ns") is first


def test_add_tracker_returns_the_tracker(recorder: RecordingEmitter) -> None:
    tracker = Tracker("ns", recorder)
    assert Snowplow.add_tracker(tracker) is tracker
    assert Snowplow.get_tracker("ns") is tracker
    with pytest.raises(TypeError, match="ns"):
        Snowplow.add_tracker(Tracker("ns", recorder))


def test_add_tracker_rejects_non_trackers() -> None:
    with pytest.raises(TypeError, match="tracker"):
        Snowplow.add_tracker("tracker")  # type: ignore[arg-type]


def test_remove_and_reset(recorder: RecordingEmitter, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="snowplow_tracker")
    first = Snowplow.add_tracker(Tracker("a", recorder))
    Snowplow.add_tracker(Tracker("b", recorder))
    Snowplow.add_tracker(Tracker("c", recorder))
    Snowplow.remove_tracker(first)
    assert Snowplow.get_tracker("a") is None
    Snowplow.remove_tracker_by_namespace("b")
    Snowplow.remove_tracker_by_namespace("missing")
    assert Snowplow.get_tracker("b") is None
    assert len([r for r in caplog.records if r.name == "snowplow_tracker.snowplow"]) == 3
    Snowplow.reset()
    assert Snowplow.get_tracker("c") is None
    assert Snowplow._trackers == {}


def test_shutdown_all_trackers() -> None:
    first, second = LifecycleEmitter(), LifecycleEmitter()
    Snowplow.add_tracker(Tracker("a", first))
    Snowplow.add_tracker(Tracker("b", second))
    Snowplow.shutdown(2.0)
    assert first.calls == ["shutdown"] and second.calls == ["shutdown"]
    assert all(0 <= t <= 2.0 for t in first.timeouts + second.timeouts)
    assert Snowplow.get_tracker("a") is not None
    with pytest.raises(ValueError, match="timeout"):
        Snowplow.shutdown(-1)


@pytest.mark.parametrize("asynchronous", [False, True])
def test_real_emitters_accept_every_forwarded_setting(asynchronous: bool) -> None:
    config = EmitterConfiguration(
        batch_size=5,
        buffer_capacity=50,
        request_timeout=1.0,
        max_retry_delay_seconds=3,
        protocol="http",
        port=9,
        thread_count=2,
        asynchronous=asynchronous,
        retry_policy=RetryPolicy(),
        overflow_policy="drop_oldest",
        block_timeout=0.1,
        exit_timeout=0,
    )
    tracker = Snowplow.create_tracker("real", "127.0.0.1", emitter_config=config)
    emitter = tracker.emitters[0]
    try:
        assert type(emitter) is (AsyncEmitter if asynchronous else Emitter)
        assert emitter.endpoint == "http://127.0.0.1:9/com.snowplowanalytics.snowplow/tp2"  # type: ignore[attr-defined]
        assert emitter.batch_size == 5  # type: ignore[attr-defined]
        assert emitter.max_retry_delay_seconds == 3  # type: ignore[attr-defined]
    finally:
        tracker.shutdown(0)
