"""TrackerConfiguration and EmitterConfiguration."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests

from snowplow_tracker import EmitterConfiguration, TrackerConfiguration
from snowplow_tracker.event_store import InMemoryEventStore
from snowplow_tracker.retry import RetryPolicy

# ---------------------------------------------------------------- TrackerConfiguration


def test_tracker_configuration_defaults() -> None:
    config = TrackerConfiguration()
    assert config.encode_base64 is True
    assert config.json_encoder is None


def test_tracker_configuration_properties() -> None:
    config = TrackerConfiguration(False, str)
    assert config.encode_base64 is False and config.json_encoder is str
    config.encode_base64 = True
    config.json_encoder = None
    assert config.encode_base64 is True and config.json_encoder is None
    config.encode_base64 = None  # type: ignore[assignment]
    assert config.encode_base64 is None


@pytest.mark.parametrize("value", ["yes", 1, 0])
def test_bad_encode_base64_is_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError, match="encode_base64"):
        TrackerConfiguration(encode_base64=value)
    config = TrackerConfiguration()
    with pytest.raises(TypeError, match="encode_base64"):
        config.encode_base64 = value
    assert config.encode_base64 is True


def test_bad_json_encoder_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="json_encoder"):
        TrackerConfiguration(json_encoder="str")  # type: ignore[arg-type]


# ---------------------------------------------------------------- EmitterConfiguration

POSITIONAL = (
    "batch_size",
    "on_success",
    "on_failure",
    "byte_limit",
    "request_timeout",
    "buffer_capacity",
    "custom_retry_codes",
    "event_store",
    "session",
)


def test_emitter_configuration_defaults() -> None:
    config = EmitterConfiguration()
    for name in POSITIONAL:
        if name == "custom_retry_codes":
            assert config.custom_retry_codes == {}
        else:
            assert getattr(config, name) is None, name
    assert config.max_retry_delay_seconds == 60
    assert config.protocol is None
    assert config.port is None
    assert config.thread_count == 1
    assert config.asynchronous is False
    assert config.retry_policy is None
    assert config.overflow_policy == "drop_newest"
    assert config.block_timeout == 1.0
    assert config.on_drop is None
    assert config.exit_timeout == 2.0


def test_positional_order_matches_1_1_0() -> None:
    store = InMemoryEventStore(logging.getLogger("test"))
    session = requests.Session()
    codes = {500: False}
    callbacks = [lambda events: None, lambda count, events: None]
    config = EmitterConfiguration(
        5, callbacks[0], callbacks[1], 1000, 2.5, 50, codes, store, session
    )
    assert config.batch_size == 5
    assert config.on_success is callbacks[0]
    assert config.on_failure is callbacks[1]
    assert config.byte_limit == 1000
    assert config.request_timeout == 2.5
    assert config.buffer_capacity == 50
    assert config.custom_retry_codes is codes
    assert config.event_store is store
    assert config.session is session
    session.close()


def test_extras_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        EmitterConfiguration(1, None, None, None, None, None, None, None, None, 30)  # type: ignore[misc]


def test_every_property_is_writable() -> None:
    config = EmitterConfiguration()
    policy = RetryPolicy()
    values = {
        "batch_size": 3,
        "on_success": print,
        "on_failure": print,
        "byte_limit": 0,
        "request_timeout": (1.0, 2),
        "buffer_capacity": 10,
        "custom_retry_codes": {503: True},
        "event_store": InMemoryEventStore(logging.getLogger("test")),
        "session": None,
        "max_retry_delay_seconds": 5,
        "protocol": "http",
        "port": 8080,
        "thread_count": 4,
        "asynchronous": True,
        "retry_policy": policy,
        "overflow_policy": "block",
        "block_timeout": 0.5,
        "on_drop": print,
        "exit_timeout": 0,
    }
    for name, value in values.items():
        setattr(config, name, value)
        assert getattr(config, name) == value, name


def test_every_public_property_has_a_docstring() -> None:
    for name, member in vars(EmitterConfiguration).items():
        if isinstance(member, property) and not name.startswith("_"):
            assert member.__doc__, name


def test_custom_retry_codes_default_is_not_shared() -> None:
    first = EmitterConfiguration()
    assert first.set_retry_code(500, False) is True
    second = EmitterConfiguration()
    assert second.custom_retry_codes == {}
    assert first.custom_retry_codes == {500: False}
    assert first.custom_retry_codes is not second.custom_retry_codes


@pytest.mark.parametrize("name", ["batch_size", "byte_limit", "buffer_capacity"])
@pytest.mark.parametrize("value", [-1, 1.5, "10", True, False])
def test_count_settings_reject_bad_values(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=name):
        EmitterConfiguration(**{name: value})


@pytest.mark.parametrize("name", ["batch_size", "byte_limit", "buffer_capacity"])
@pytest.mark.parametrize("value", [None, 0, 1, 10_000])
def test_count_settings_accept_what_1_1_0_accepted(name: str, value: Any) -> None:
    assert getattr(EmitterConfiguration(**{name: value}), name) == value


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("on_success", "callback", TypeError),
        ("on_failure", 3, TypeError),
        ("on_drop", [], TypeError),
        ("request_timeout", "5", TypeError),
        ("request_timeout", (1, 2, 3), TypeError),
        ("request_timeout", [1, 2], TypeError),
        ("request_timeout", 0, ValueError),
        ("request_timeout", (1, -2), ValueError),
        ("custom_retry_codes", [500], TypeError),
        ("event_store", object(), TypeError),
        ("max_retry_delay_seconds", -1, ValueError),
        ("max_retry_delay_seconds", "60", TypeError),
        ("protocol", "ftp", ValueError),
        ("protocol", "HTTPS", ValueError),
        ("port", 0, ValueError),
        ("port", 70000, ValueError),
        ("port", "80", TypeError),
        ("port", True, TypeError),
        ("thread_count", 0, ValueError),
        ("thread_count", 1.5, TypeError),
        ("asynchronous", 1, TypeError),
        ("overflow_policy", "drop_all", ValueError),
        ("block_timeout", -0.1, ValueError),
        ("exit_timeout", None, TypeError),
    ],
)
def test_extras_are_validated(name: str, value: Any, error: type) -> None:
    with pytest.raises(error, match=name):
        EmitterConfiguration(**{name: value})
    config = EmitterConfiguration()
    before = getattr(config, name)
    with pytest.raises(error, match=name):
        setattr(config, name, value)
    assert getattr(config, name) == before


def test_set_retry_code(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = EmitterConfiguration()
    caplog.set_level(logging.WARNING, logger="snowplow_tracker")
    assert config.set_retry_code(503) is True
    assert config.set_retry_code(404, False) is True
    assert config.custom_retry_codes == {503: True, 404: False}
    assert config.set_retry_code("500") is False  # type: ignore[arg-type]
    assert config.set_retry_code(True) is False
    assert config.set_retry_code(500, "yes") is False  # type: ignore[arg-type]
    assert config.set_retry_code(200) is False
    assert config.set_retry_code(299, False) is False
    assert config.custom_retry_codes == {503: True, 404: False}
    assert len(caplog.records) == 5
    assert all(r.name == "snowplow_tracker.emitter_configuration" for r in caplog.records)
    assert capsys.readouterr().out == ""


def test_set_retry_code_mutates_the_given_dict() -> None:
    codes: dict = {}  # type: ignore[type-arg]
    config = EmitterConfiguration(custom_retry_codes=codes)
    config.set_retry_code(502)
    assert codes == {502: True}
